"""`build`: a static atlas of units, built in compiled batches, resumable after a kill.

For every chosen unit (a channel of a spatial layer) the atlas renders, in one vmapped program
per layer (`fvjax._src.render.optimize_units`, the batching of `fvjax.render`), 1 + D images:
image 0 maximises the channel alone (the unit's visualization, with snapshots), images 1..D
the channel plus a diversity reward among themselves (the diversity batch). The natural
images are streamed once per layer for the unit statistics of the trust report (the histogram
of each unit's spatial-mean activation comes from the same pass) and once per group of up to
64 units for the top-k / bottom-k dataset examples (crops around the peak). Then every unit's
visualization is judged by `fvjax.reliability.trust_reports`.

Resuming: each finished batch (and each natural pass) is written to ``<out>/_build/`` as one
``.npz`` renamed into place (a kill leaves no half file), holding a fingerprint of everything
that determines it (model weights, layer, units, keys, steps, size, settings, the natural
images, formats), part by part as `fvjax.sweep` fingerprints its chunks. A re-run loads the
batches whose fingerprint matches; a batch of other settings is refused, naming what differs,
unless ``overwrite=True`` recomputes it. The image files a batch writes are written before
its ``.npz``, so a batch on record always has its files.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
import time
import zlib
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from fvjax._src import objectives as objectives_lib
from fvjax._src import optvis
from fvjax._src import render as render_lib
from fvjax._src import stored as stored_lib
from fvjax._src.atlas import pages
from fvjax._src.data import ImageSet, image_folder
from fvjax._src.dataset_examples import dataset_examples
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.reliability import trust as trust_lib

FORMATS = ("webp", "png")
EXAMPLE_GROUP = 64  # units per dataset-examples pass (bounds the crops held in memory)
BUILD_DIR = "_build"


@objectives_lib.register(traced={"index": 0, "weight": 0})
class AtlasUnit(objectives_lib.Objective):
  """Channel ``index`` of ``layer`` on a batch of B images: image 0 maximises the channel
  alone (the unit's visualization); images 1..B-1 maximise the channel plus ``weight`` times
  their diversity (`fvjax.objectives.diversity`) among themselves. Scores ``[B]``."""
  layer: str
  index: Any
  weight: Any

  def __call__(self, acts):
    channel = objectives_lib.Channel(self.layer, self.index)(acts)
    a = acts[self.layer]
    if a.shape[0] < 3:  # no diversity batch (D = 0) or a single extra image
      return channel
    diversity = objectives_lib.Diversity(self.layer)({self.layer: a[1:]})
    return channel + jnp.concatenate([jnp.zeros((1,), channel.dtype),
                                      self.weight * diversity.astype(channel.dtype)])

  def check(self, model):
    objectives_lib.Channel(self.layer, self.index).check(model)


class AtlasResult(NamedTuple):
  """What `build` returns. out: the site's folder (open ``out/index.html``); units: units in
  the atlas; computed / loaded: ``(layer, batch index)`` pairs optimized in this call / read
  back from ``out/_build``; seconds: wall time of this call; estimate: for a dry run, the
  estimate (a dict: ``units``, ``batches``, ``layers`` and ``total_s``), else None."""
  out: str
  units: int
  computed: list[tuple[str, int]]
  loaded: list[tuple[str, int]]
  seconds: float
  estimate: dict[str, Any] | None


# -- arguments ----------------------------------------------------------------------------------
def parse_units(spec, channels: int, layer: str) -> list[int]:
  """Units of a layer of ``channels`` channels: None (all), ``"START:STOP[:STEP]"`` (a range,
  clipped to the layer like a Python slice, so ``0:64`` takes every unit of a 16-channel
  layer), ``"3"`` / ``"1,5,9"`` or a sequence of ints (each must exist)."""
  if spec is None:
    return list(range(channels))
  if isinstance(spec, str):
    text = spec.strip()
    try:
      if ":" in text:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] is not None
                                        and parts[2] < 1):
          raise ValueError
        values = list(range(channels))[slice(*parts)]
        if not values:
          raise FvjaxError(f"--units {spec!r} selects no unit of layer {layer!r} "
                           f"({channels} channels: 0..{channels - 1})")
        return values
      values = [int(p) for p in text.split(",")]
    except ValueError:
      raise FvjaxError(f"malformed units {spec!r}; use START:STOP[:STEP] (e.g. 0:64), an index "
                       "(3) or a list (1,5,9)") from None
  else:
    try:
      values = [int(v) for v in spec]
    except (TypeError, ValueError):
      raise FvjaxError(f"units must be None, a string such as '0:64' or a list of ints, "
                       f"got {spec!r}") from None
  bad = [v for v in values if not 0 <= v < channels]
  if bad or not values:
    raise FvjaxError(f"units {bad or values} are not channels of layer {layer!r} "
                     f"(valid: 0..{channels - 1})")
  return sorted(set(values))


def _positive(value, name: str, minimum: int = 1) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise FvjaxError(f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def _layer_folder(layer: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]", "_", layer)


def _load_images(images, model: Model) -> ImageSet:
  size = model.input_size
  if isinstance(images, (str, os.PathLike)):
    return image_folder(os.fspath(images), size, crop=True)
  if isinstance(images, ImageSet):
    return images
  arr = np.asarray(images)
  if arr.ndim != 4 or arr.shape[-1] != 3:
    raise FvjaxError(f"images must be a folder, an fvjax.data.ImageSet or an array "
                     f"[N, H, W, 3], got shape {arr.shape}")
  if np.issubdtype(arr.dtype, np.integer):
    arr = arr.astype(np.float32) / 255.0
  return ImageSet(arr.astype(np.float32), tuple(f"#{i}" for i in range(len(arr))),
                  tuple("" for _ in range(len(arr))))


class _Plan(NamedTuple):
  layer: str
  folder: str
  shape: tuple[int, ...]
  units: list[int]
  batch: int  # units per compiled batch in this layer
  batches: list[list[int]]
  crop: int


def _plan(model: Model, layers: Sequence[str], units, batch_units: int, crop) -> list[_Plan]:
  if isinstance(layers, str):
    layers = [l for l in layers.split(",") if l.strip()]
  layers = [l.strip() for l in layers]
  if not layers:
    raise FvjaxError("give at least one layer, e.g. layers=['leaky_re_lu_5']")
  if len(set(layers)) != len(layers):
    raise FvjaxError(f"layers {layers} name a layer twice")
  plans, folders = [], set()
  for layer in layers:
    shape = model.layer_shape(layer)
    if len(shape) != 3:
      raise FvjaxError(f"layer {layer!r} has shape {shape}; an atlas shows channels of spatial "
                       f"[H, W, C] layers, e.g. {', '.join(_spatial(model)[:3])}")
    chosen = parse_units(units, shape[-1], layer)
    count = math.ceil(len(chosen) / batch_units)
    size = math.ceil(len(chosen) / count)  # equal batches: at most count - 1 padded units
    folder = _layer_folder(layer)
    if folder in folders or folder in (BUILD_DIR, "index.html"):
      raise FvjaxError(f"layer {layer!r} would share the folder {folder!r}; rename it")
    folders.add(folder)
    stride = model.input_size[0] / shape[0]
    side = min(model.input_size)
    layer_crop = (min(side, max(32, int(round(12 * stride)))) if crop is None
                  else _positive(crop, "crop"))
    if layer_crop > side:
      raise FvjaxError(f"crop {layer_crop} is larger than the model's input side {side}")
    plans.append(_Plan(layer, folder, shape, chosen, size,
                       [chosen[i:i + size] for i in range(0, len(chosen), size)], layer_crop))
  return plans


def _spatial(model: Model) -> list[str]:
  return [n for n, s in model.layers.items() if len(s) == 3]


def unit_key(key: jax.Array, layer: str, unit: int) -> jax.Array:
  """The key of one unit: ``fold_in(fold_in(key, crc32(layer)), unit)``; it does not depend
  on which other units are built or how they are batched."""
  return jax.random.fold_in(jax.random.fold_in(key, zlib.crc32(layer.encode()) & 0x7FFFFFFF),
                            unit)


# -- stored parts -------------------------------------------------------------------------------
REMEDY = "use another --out folder, or --overwrite to recompute them"


def _save_image(array: np.ndarray, path: str, fmt: str, max_side: int | None = None) -> None:
  """``array`` ``[H, W, 3]`` in [0, 1] as a compressed WebP (quality 85) or PNG."""
  image = Image.fromarray(np.clip(np.round(np.asarray(array) * 255), 0, 255).astype(np.uint8))
  if max_side is not None and max(image.size) > max_side:
    scale = max_side / max(image.size)
    image = image.resize((max(1, round(image.width * scale)),
                          max(1, round(image.height * scale))), Image.LANCZOS)
  partial = path + ".partial"
  if fmt == "webp":
    image.save(partial, format="WEBP", quality=85, method=4)
  else:
    image.save(partial, format="PNG", optimize=True)
  os.replace(partial, path)


# -- the natural images -------------------------------------------------------------------------
def _natural(model, plan, data, weights, images_digest, out, overwrite, fmt, k):
  """Per-layer natural statistics (for the trust report and the histogram) and the dataset
  examples of every unit (crops written as image files): ``(stats, examples by unit)``."""
  folder = os.path.join(out, BUILD_DIR, plan.folder)
  os.makedirs(folder, exist_ok=True)
  path_layers = trust_lib.paths.path_layers(model, up_to=plan.layer)
  base = {"model": model.name, "weights": weights, "layer": plan.layer,
          "natural images": images_digest}
  fingerprint = dict(base, **{"path layers": list(path_layers)})
  path = os.path.join(folder, "natural.npz")
  stored = stored_lib.load(path, fingerprint, overwrite=overwrite, remedy=REMEDY)
  if stored is None:
    stats = trust_lib.natural_statistics(model, plan.layer, data.images,
                                         path_layers=path_layers, batch_size=32)
    arrays = {"unit_mean": stats.unit_mean, "unit_max": stats.unit_max}
    arrays.update({f"path_{i}": stats.path[l] for i, l in enumerate(path_layers)})
    stored_lib.save(path, fingerprint, arrays, {"layer": plan.layer})
  else:
    stats = trust_lib.NaturalStatistics(
        plan.layer, stored["unit_mean"], stored["unit_max"],
        {l: stored[f"path_{i}"] for i, l in enumerate(path_layers)})

  examples: dict[int, dict] = {}
  image_dir = os.path.join(out, plan.folder, "img")
  os.makedirs(image_dir, exist_ok=True)
  for g in range(0, len(plan.units), EXAMPLE_GROUP):
    group = plan.units[g:g + EXAMPLE_GROUP]
    fingerprint = dict(base, units=group, k=k, crop=plan.crop, format=fmt)
    path = os.path.join(folder, f"examples_{g // EXAMPLE_GROUP:04d}.npz")
    stored = stored_lib.load(path, fingerprint, overwrite=overwrite, remedy=REMEDY)
    if stored is None:
      found = dataset_examples(model, objectives_lib.channel(plan.layer, jnp.asarray(group)),
                               data, k, crop=plan.crop, batch_size=32, progress=False)
      for which, ex in (("top", found.top), ("bottom", found.bottom)):
        for u, unit in enumerate(group):
          for j in range(k):
            _save_image(ex.images[u, j], os.path.join(image_dir, f"{unit}_{which}{j}.{fmt}"),
                        fmt, max_side=96)
      stored = {f"{w}_{f}": np.asarray(getattr(ex, f)) for w, ex in
                (("top", found.top), ("bottom", found.bottom))
                for f in ("scores", "indices", "boxes")}
      stored_lib.save(path, fingerprint, stored, {"units": group})
    for u, unit in enumerate(group):
      examples[unit] = {
          w: [{"score": float(stored[f"{w}_scores"][u, j]),
               "name": data.names[int(stored[f"{w}_indices"][u, j])],
               "box": [int(b) for b in stored[f"{w}_boxes"][u, j]],
               "file": f"img/{unit}_{w}{j}.{fmt}"} for j in range(k)]
          for w in ("top", "bottom")}
  return stats, examples


# -- one compiled batch -------------------------------------------------------------------------
def _batch_inputs(plan, batch_units, key, settings, weight):
  padded = batch_units + [batch_units[-1]] * (plan.batch - len(batch_units))
  index = jnp.asarray(padded, jnp.int32)
  stacked = AtlasUnit(plan.layer, index, jnp.full((len(padded),), weight, jnp.float32))
  keys = jnp.stack([unit_key(key, plan.layer, u) for u in padded])
  return stacked, keys, optvis.broadcast(settings, len(padded))


def _run_batch(model, plan, batch_units, key, settings, weight, steps, snapshots):
  stacked, keys, unit_settings = _batch_inputs(plan, batch_units, key, settings, weight)
  return render_lib.optimize_units(model, stacked, keys, unit_settings, steps=steps,
                                   keep_batch=True, snapshots=snapshots, progress=False)


def _batch(model, plan, index, key, settings, weight, steps, snapshots, stats, weights,
           natural_fp, out, overwrite, fmt, trust_args):
  """One batch: loaded from ``_build`` when on record, else rendered, judged and written."""
  batch_units = plan.batches[index]
  stacked, keys, unit_settings = _batch_inputs(plan, batch_units, key, settings, weight)
  fingerprint = {
      "model": model.name, "weights": weights, "layer": plan.layer, "units": batch_units,
      "batch size": plan.batch, "steps": int(steps), "snapshots": list(snapshots),
      "objective": stored_lib.digest(stacked), "keys": stored_lib.digest(keys),
      "settings (parameterization, transforms, optimizer, images per unit)":
          stored_lib.digest(unit_settings), "natural images": natural_fp, "format": fmt,
      "trust report": trust_args}
  path = os.path.join(out, BUILD_DIR, plan.folder, f"batch_{index:04d}.npz")
  stored = stored_lib.load(path, fingerprint, overwrite=overwrite, remedy=REMEDY)
  if stored is not None:
    return stored, False
  n = len(batch_units)
  result = render_lib.optimize_units(model, stacked, keys, unit_settings, steps=steps,
                                     keep_batch=True, snapshots=snapshots, progress=False)
  images = result.images[:n]  # [n, 1 + D, S, S, 3]
  image_dir = os.path.join(out, plan.folder, "img")
  for u, unit in enumerate(batch_units):
    _save_image(images[u, 0], os.path.join(image_dir, f"{unit}.{fmt}"), fmt)
    for d in range(1, images.shape[1]):
      _save_image(images[u, d], os.path.join(image_dir, f"{unit}_d{d}.{fmt}"), fmt)
    for s in snapshots:
      _save_image(result.snapshots[s][u, 0], os.path.join(image_dir, f"{unit}_s{s}.{fmt}"),
                  fmt)
  reports = trust_lib.trust_reports(
      model, plan.layer, batch_units, natural=stats, visualizations=images[:, 0],
      key=jax.random.fold_in(key, zlib.crc32(plan.layer.encode()) & 0x7FFFFFFF),
      top_k=trust_args["top_k"], n_reference=trust_args["n_reference"], progress=False)
  stored = {"final": np.asarray(result.final[:n], np.float32),
            "trace": np.asarray(result.trace[:n], np.float32),
            "trust": np.asarray(json.dumps([r.to_dict() for r in reports]))}
  stored_lib.save(path, fingerprint, stored, {"units": batch_units})
  return stored, True


# -- estimate -----------------------------------------------------------------------------------
def _estimate(model, plans, key, settings, weight, steps, data, progress, probe_steps=4):
  """Time the first batch of each layer (its compile, then ``probe_steps`` steps of the
  compiled program) and one batch of natural images; extrapolate to every batch."""
  rows, total = [], 0.0
  natural_batch = data.images[:32]
  apply = jax.jit(model.apply)
  jax.block_until_ready(apply(model.params, natural_batch))
  start = time.perf_counter()
  jax.block_until_ready(apply(model.params, natural_batch))
  forward = (time.perf_counter() - start) * math.ceil(len(data.images) / len(natural_batch))
  for plan in tqdm(plans, desc="timing a first batch per layer", disable=not progress,
                   leave=False):
    start = time.perf_counter()
    _run_batch(model, plan, plan.batches[0], key, settings, weight, probe_steps, ())
    first = time.perf_counter() - start
    start = time.perf_counter()
    _run_batch(model, plan, plan.batches[0], key, settings, weight, probe_steps, ())
    run = time.perf_counter() - start
    step = run / probe_steps
    passes = 1 + math.ceil(len(plan.units) / EXAMPLE_GROUP)
    seconds = max(first - run, 0.0) + len(plan.batches) * steps * step + passes * forward
    rows.append({"layer": plan.layer, "units": len(plan.units), "batches": len(plan.batches),
                 "batch size": plan.batch, "compile_s": max(first - run, 0.0),
                 "step_s": step, "natural_s": passes * forward, "estimate_s": seconds})
    total += seconds
  return {"units": sum(len(p.units) for p in plans),
          "batches": sum(len(p.batches) for p in plans), "layers": rows, "total_s": total,
          "probe_steps": probe_steps}


# -- the public function ------------------------------------------------------------------------
def build(model: Model | str, layers: Sequence[str] | str, images, out: str, *,
          key: jax.Array, units=None, steps: int = 512, size: int = 128, diversity: int = 4,
          diversity_weight: float = 100.0, snapshots: Sequence[int] | None = None, k: int = 6,
          crop: int | None = None, batch_units: int = 8, image_format: str = "webp",
          overwrite: bool = False, dry_run: bool = False, progress: bool = True,
          command: str | None = None,
          on_batch: Callable[[str, int], None] | None = None) -> AtlasResult:
  """Build a static atlas site of ``layers``' units in ``out``.

  Args:
    model: an `fvjax.Model` or a zoo name (``"tiny-darknet"``).
    layers: spatial ``[H, W, C]`` layers (a list, or comma-separated names).
    images: natural images: a folder (resized and centre-cropped to the model's input size),
      an `fvjax.data.ImageSet`, or an array ``[N, H, W, 3]`` (floats in [0, 1] or uint8) at
      the model's input size; more than ``k`` images and at least 4.
    out: the site's folder (``index.html``, one folder per layer, ``_build/`` for resuming).
    key: PRNG key. Unit u of layer l renders with `unit_key` ``(key, l, u)``.
    units: per layer: None (all), ``"START:STOP[:STEP]"`` (clipped to each layer), ``"3"``,
      ``"1,5,9"`` or a list of ints.
    steps, size: optimization steps and image side (pixels) of every rendering.
    diversity: D extra images per unit, optimized with ``diversity_weight`` times the batch
      diversity reward (0: none; else >= 2).
    snapshots: steps (0..steps) whose images the unit page shows; default
      ``(steps // 16, steps // 4)``.
    k: top and bottom dataset examples per unit; crop: their crop side in input pixels
      (default per layer ``min(input side, max(32, 12 * stride))``).
    batch_units: units per compiled batch (each layer's units are split into equal batches
      of at most this many; one compile per layer).
    image_format: ``"webp"`` or ``"png"``.
    overwrite: recompute stored batches of other settings instead of refusing.
    dry_run: time a first batch per layer and return the estimate; nothing is written.
    progress: a progress bar over units.
    command: how the build was asked for, shown on the index page (the CLI passes its
      command line).
    on_batch: called with ``(layer, batch index)`` once that batch is on disk (computed or
      loaded); an exception it raises stops the build there (a later build resumes).

  Returns:
    An `AtlasResult`. Bad input raises `FvjaxError` before any work.
  """
  started = time.time()
  if isinstance(model, str):
    from fvjax._src.zoo import registry
    model = registry.load(model)
  if not isinstance(model, Model):
    raise FvjaxError(f"model must be an fvjax.Model or a zoo name, got {type(model).__name__}")
  steps = _positive(steps, "steps")
  size = _positive(size, "size")
  k = _positive(k, "k")
  batch_units = _positive(batch_units, "batch_units")
  diversity = _positive(diversity, "diversity", 0)
  if diversity == 1:
    raise FvjaxError("diversity must be 0 (no diversity batch) or >= 2 images, got 1")
  if image_format not in FORMATS:
    raise FvjaxError(f"image_format must be one of {FORMATS}, got {image_format!r}")
  try:
    weight = float(diversity_weight)
  except (TypeError, ValueError):
    raise FvjaxError(f"diversity_weight must be a number, got {diversity_weight!r}") from None
  snapshots = (sorted({max(1, steps // 16), max(1, steps // 4)} - {steps})
               if snapshots is None else sorted({int(s) for s in snapshots}))
  key = optvis.as_key(key)
  plans = _plan(model, layers, units, batch_units, crop)
  settings = render_lib.settings_from(size=size, batch=1 + diversity)
  for plan in plans:
    stacked, _, _ = _batch_inputs(plan, plan.batches[0], key, settings, weight)
    render_lib.validate(model, stacked, settings, steps, snapshots)
  data = _load_images(images, model)
  n = len(data.images)
  if n < 4 or k >= n:
    raise FvjaxError(f"need at least 4 natural images and more than k={k}, got {n}")
  if tuple(data.images.shape[1:3]) != tuple(model.input_size):
    raise FvjaxError(f"natural images are {data.images.shape[1]}x{data.images.shape[2]}; the "
                     f"model takes {model.input_size[0]}x{model.input_size[1]} (a folder is "
                     "resized for you)")
  total_units = sum(len(p.units) for p in plans)
  if dry_run:
    estimate = _estimate(model, plans, key, settings, weight, steps, data, progress)
    return AtlasResult(out, total_units, [], [], time.time() - started, estimate)
  _prepare_out(out)

  weights = stored_lib.digest(model.params)
  images_digest = stored_lib.digest(data.images)
  trust_top = min(8, n - 2)
  trust_args = {"top_k": trust_top, "n_reference": min(64, n - trust_top),
                "criteria": "default"}
  computed, loaded, layer_info = [], [], []
  units_info: dict[str, dict[int, dict]] = {}
  with tqdm(total=total_units, desc="atlas", unit="unit", disable=not progress) as bar:
    for plan in plans:
      layer_start = time.time()
      bar.set_postfix(layer=plan.layer, stage="natural images")
      stats, examples = _natural(model, plan, data, weights, images_digest, out, overwrite,
                                 image_format, k)
      natural_s = time.time() - layer_start
      info: dict[int, dict] = {}
      render_s = 0.0
      for index, batch_units_ in enumerate(plan.batches):
        bar.set_postfix(layer=plan.layer, batch=f"{index + 1}/{len(plan.batches)}")
        batch_start = time.time()
        stored, fresh = _batch(model, plan, index, key, settings, weight, steps, snapshots,
                               stats, weights, images_digest, out, overwrite, image_format,
                               trust_args)
        (computed if fresh else loaded).append((plan.layer, index))
        if on_batch is not None:
          on_batch(plan.layer, index)
        if fresh:
          render_s += time.time() - batch_start
        reports = json.loads(str(stored["trust"]))
        for u, unit in enumerate(batch_units_):
          info[unit] = {"final": float(stored["final"][u]), "trust": reports[u],
                        "examples": examples[unit],
                        "natural": stats.unit_mean[:, unit].astype(float).tolist()}
        bar.update(len(batch_units_))
      units_info[plan.layer] = info
      layer_info.append({"layer": plan.layer, "folder": plan.folder, "shape": list(plan.shape),
                         "channels": plan.shape[-1], "units": plan.units,
                         "batch size": plan.batch, "batches": len(plan.batches),
                         "crop": plan.crop,
                         "computed batches": sum(1 for l, _ in computed if l == plan.layer),
                         "natural_s": round(natural_s, 2), "render_s": round(render_s, 2)})
  seconds = time.time() - started
  manifest = {
      "model": model.name, "input": list(model.input_size),
      "layers": layer_info, "units": total_units,
      "settings": {"steps": steps, "size": size, "diversity": diversity,
                   "diversity_weight": weight, "snapshots": snapshots, "k": k,
                   "batch_units": batch_units, "image_format": image_format,
                   "parameterization": "fvjax.param.image (Fourier, 1/f, decorrelated colour)",
                   "transforms": "Lucid standard", "optimizer": "Adam(0.05)",
                   "natural images": n, "trust report": trust_args},
      "command": command or _python_command(model, plans, steps, size, diversity, k),
      "versions": _versions(), "date": datetime.datetime.now(datetime.timezone.utc)
      .strftime("%Y-%m-%d %H:%M UTC"),
      "seconds": round(seconds, 1), "computed batches": len(computed),
      "loaded batches": len(loaded)}
  pages.write_site(out, manifest, units_info, snapshots, diversity, image_format)
  with open(os.path.join(out, "atlas.json"), "w") as f:
    json.dump(manifest, f, indent=2)
  return AtlasResult(out, total_units, computed, loaded, seconds, None)


def _prepare_out(out: str) -> None:
  stored_lib.output_folder(out)
  if os.listdir(out) and not os.path.isdir(os.path.join(out, BUILD_DIR)):
    raise FvjaxError(f"--out {out!r} is a folder of other files, not an atlas; give an empty "
                     "or new folder (or an earlier atlas to resume it)")
  os.makedirs(os.path.join(out, BUILD_DIR), exist_ok=True)


def _python_command(model, plans, steps, size, diversity, k) -> str:
  return (f"fvjax.atlas.build({model.name!r}, {[p.layer for p in plans]!r}, ..., "
          f"steps={steps}, size={size}, diversity={diversity}, k={k})")


def _versions() -> dict[str, str]:
  import flax
  import PIL

  import fvjax
  cpu = ""
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                 "")
  except OSError:
    pass
  device = jax.devices()[0]
  return {"fvjax": fvjax.__version__, "jax": jax.__version__, "flax": flax.__version__,
          "numpy": np.__version__, "Pillow": PIL.__version__,
          "python": platform.python_version(),
          "device": f"{device.platform} ({getattr(device, 'device_kind', '')})"
                    + (f", {cpu}" if cpu and device.platform == "cpu" else "")
                    + f", {os.cpu_count()} cores"}


def step_flops(model: Model, layer: str, *, size: int = 128, diversity: int = 4,
               diversity_weight: float = 100.0) -> float:
  """FLOPs of one optimization step of one atlas unit of ``layer`` (its 1 + ``diversity``
  images of ``size`` px: parameterization, transforms, the model up to ``layer`` forward and
  backward, the optimizer), from XLA's cost analysis of the compiled step."""
  settings = render_lib.settings_from(size=size, batch=1 + diversity)
  objective = AtlasUnit(layer, jnp.int32(0), jnp.float32(diversity_weight))
  render_lib.validate(model, objective, settings, 1)
  state = optvis.init(jax.random.key(0), model, objective, settings)
  compiled = jax.jit(optvis.step).lower(state, model, objective, settings).compile()
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis["flops"])
