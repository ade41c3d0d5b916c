"""Dataset examples: the natural images that most (and least) excite each unit.

`dataset_examples` streams a dataset through a model in fixed-size, jit-compiled batches and
keeps, for each of K units (a batched objective, or every channel of a layer), a running
top-k and bottom-k of the scores with `jax.lax.top_k` merges: the device state is
``O(K * k)`` whatever the dataset size, and the last partial batch is padded (and masked) so
one compiled step serves the whole stream. For spatial units (a channel, neuron or direction
of a convolutional layer) it also keeps the position of each image's peak activation and can
return crops of the input around it: an activation cell ``(y, x)`` of a layer with stride
``s = input side / layer side`` covers input pixels ``[s*y, s*(y+1))``, so the crop is
centred on ``s * (y + 0.5)`` (and shifted inward where it would leave the image).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from fvjax._src import multihost
from fvjax._src import objectives as objectives_lib
from fvjax._src.batching import check_batch_size
from fvjax._src.data import ImageSet
from fvjax._src.errors import FvjaxError
from fvjax._src.validate import check_images
from fvjax._src.model import Model

REDUCTIONS = ("mean", "max")


class Examples(NamedTuple):
  """The k examples kept for each of K units (NumPy arrays), best first.

  images: ``[K, k, h, w, 3]`` in [0, 1]: whole images, or crops when ``crop`` was given.
  scores: ``[K, k]`` the unit's score of each image (descending for the top examples,
    ascending for the bottom ones).
  indices: ``[K, k]`` positions of the images in the dataset stream (0-based).
  positions: ``[K, k, 2]`` the ``(y, x)`` input-pixel centre of the activation cell where the
    unit peaks (its argmax; its argmin for bottom examples ranked by the mean), or None for
    units without a spatial map (logits, sums of objectives).
  boxes: ``[K, k, 4]`` ``(top, left, bottom, right)`` pixel boxes of the crops (end
    exclusive), or None without ``crop``.
  names: ``K`` tuples of ``k`` image names (file names for an `ImageSet`, ``"#<index>"`` for
    bare arrays).
  labels: ``K`` tuples of ``k`` label strings (empty strings when the data had none).
  """
  images: np.ndarray
  scores: np.ndarray
  indices: np.ndarray
  positions: np.ndarray | None
  boxes: np.ndarray | None
  names: tuple[tuple[str, ...], ...]
  labels: tuple[tuple[str, ...], ...]


class DatasetExamples(NamedTuple):
  """What `dataset_examples` returns.

  top: the k highest-scoring images per unit (`Examples`).
  bottom: the k lowest-scoring images per unit, or None with ``bottom=False``.
  units: a short description of each of the K units (e.g. ``"leaky_re_lu_12:5"``).
  count: how many images were streamed.
  """
  top: Examples
  bottom: Examples | None
  units: tuple[str, ...]
  count: int


@dataclasses.dataclass(frozen=True)
class _Config:
  """Everything static about one scan: equal configs share one compiled step."""
  apply: Any
  layer: str | None  # every channel of this layer (units is None), else an objective
  k: int
  bottom: bool
  reduce: str
  spatial: str | None  # "map": argmax/argmin of a spatial map; "fixed": a neuron; None


# -- the compiled step ---------------------------------------------------------------------
def _unit_map(obj, acts):
  """The spatial map ``[B, h, w]`` whose mean is (or whose peak locates) the unit's score."""
  if isinstance(obj, objectives_lib.Scaled):
    return obj.factor * _unit_map(obj.objective, acts)
  if isinstance(obj, objectives_lib.Channel):
    return jnp.take(acts[obj.layer], obj.index, axis=-1)
  if isinstance(obj, objectives_lib.Direction):
    a = acts[obj.layer]
    v = obj.vector.astype(a.dtype)
    dot = jnp.tensordot(a, v, axes=[[-1], [0]])
    if obj.cossim_pow:
      cos = dot / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(v) + 1e-6)
      dot = dot * jnp.maximum(cos, 0.1) ** obj.cossim_pow
    return dot
  raise AssertionError(type(obj))  # excluded by _spatial_kind


def _fixed_position(obj, acts):
  """``(y, x)`` activation cell of a neuron objective."""
  if isinstance(obj, objectives_lib.Scaled):
    return _fixed_position(obj.objective, acts)
  shape = acts[obj.layer].shape
  y = shape[1] // 2 if obj.y is None else obj.y
  x = shape[2] // 2 if obj.x is None else obj.x
  return jnp.asarray([y, x], jnp.int32)


def _peaks(flat: jax.Array, width: int, find_max: bool) -> jax.Array:
  """``[..., h*w]`` -> ``[..., 2]`` (y, x) of the max (or min)."""
  where = jnp.argmax(flat, axis=-1) if find_max else jnp.argmin(flat, axis=-1)
  return jnp.stack([where // width, where % width], axis=-1).astype(jnp.int32)


def _step(config: _Config, params, units, state, images, ok, index):
  """Merge one batch: ``images [B, H, W, 3]``, ``ok [B]`` (False on padding rows), ``index
  [B]`` (each row's dataset index)."""
  acts = dict(config.apply(params, images))
  acts["input"] = images
  batch = images.shape[0]
  flat = None
  if config.layer is not None:
    a = acts[config.layer]
    if a.ndim == 4:
      maps = jnp.moveaxis(a, -1, 0)  # [C, B, h, w]
      width = maps.shape[-1]
      flat = maps.reshape(*maps.shape[:2], -1)
      scores = flat.mean(-1)
    else:
      scores = a.reshape(batch, -1).T  # [C, B]
  else:
    scores = jax.vmap(lambda o: o(acts))(units)  # [K, B]
    if config.spatial == "map":
      maps = jax.vmap(lambda o: _unit_map(o, acts))(units)  # [K, B, h, w]
      width = maps.shape[-1]
      flat = maps.reshape(*maps.shape[:2], -1)
  count = scores.shape[0]
  if config.reduce == "max":
    scores = flat.max(-1)
  if flat is not None:
    top_pos = _peaks(flat, width, True)
    bottom_pos = _peaks(flat, width, config.reduce == "max")
  elif config.spatial == "fixed":
    top_pos = bottom_pos = jnp.broadcast_to(
        jax.vmap(lambda o: _fixed_position(o, acts))(units)[:, None], (count, batch, 2))
  else:
    top_pos = bottom_pos = jnp.zeros((count, batch, 2), jnp.int32)
  scores = scores.astype(jnp.float32)
  index = jnp.broadcast_to(index, (count, batch))
  new = {"top": _merge(state["top"], jnp.where(ok, scores, -jnp.inf), index, top_pos, config.k,
                       largest=True)}
  if config.bottom:
    new["bottom"] = _merge(state["bottom"], jnp.where(ok, scores, jnp.inf), index, bottom_pos,
                           config.k, largest=False)
  return new


def _merge(kept, scores, index, pos, k, *, largest):
  """Merge a batch ``[K, B]`` into the kept ``[K, k]`` best with one `lax.top_k`."""
  s = jnp.concatenate([kept[0], scores], axis=1)
  i = jnp.concatenate([kept[1], index], axis=1)
  p = jnp.concatenate([kept[2], pos], axis=1)
  _, sel = jax.lax.top_k(s if largest else -s, k)
  return (jnp.take_along_axis(s, sel, axis=1), jnp.take_along_axis(i, sel, axis=1),
          jnp.take_along_axis(p, sel[..., None], axis=1))


_step_jit = jax.jit(_step, static_argnums=0)


def _empty(count: int, k: int, fill: float):
  return (jnp.full((count, k), fill, jnp.float32), jnp.full((count, k), -1, jnp.int32),
          jnp.zeros((count, k, 2), jnp.int32))


# -- the dataset stream ---------------------------------------------------------------------
class _Chunk(NamedTuple):
  images: np.ndarray
  names: Sequence[str] | None
  labels: Sequence[str] | None


def _as_images(value, what: str) -> np.ndarray:
  arr = np.asarray(value) if not isinstance(value, (str, bytes)) else value
  if np.ndim(arr) == 3:
    arr = arr[None]
  arr = check_images(arr, what)
  return np.asarray(arr, np.float32)


def _chunks(data) -> tuple[Iterator[_Chunk], int | None, _Chunk | None]:
  """``(chunks, N or None, the whole dataset as one chunk when it is in memory)``."""
  if isinstance(data, ImageSet):
    whole = _Chunk(_as_images(data.images, "the ImageSet's images"), data.names, data.labels)
    return iter([whole]), len(whole.images), whole
  if hasattr(data, "shape") and hasattr(data, "dtype"):
    whole = _Chunk(_as_images(data, "images"), None, None)
    return iter([whole]), len(whole.images), whole
  if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
    raise FvjaxError(f"images must be an array [N, H, W, 3], an ImageSet or an iterable of "
                     f"them (batches), got {type(data).__name__}")

  def stream():
    for i, item in enumerate(data):
      if isinstance(item, ImageSet):
        yield _Chunk(_as_images(item.images, f"batch {i}"), item.names, item.labels)
      else:
        yield _Chunk(_as_images(item, f"batch {i}"), None, None)

  return stream(), None, None


def _rebatch(chunks: Iterator[_Chunk], size: int) -> Iterator[tuple[_Chunk, int]]:
  """Fixed-size batches ``(chunk, valid)``; the last one is zero-padded to ``size``."""
  pending: list[_Chunk] = []
  held = 0
  shape = None

  def take(n):
    nonlocal held
    parts, names, labels, got = [], [], [], 0
    while got < n and pending:
      c = pending[0]
      use = min(n - got, len(c.images))
      parts.append(c.images[:use])
      names.append(c.names[:use] if c.names is not None else None)
      labels.append(c.labels[:use] if c.labels is not None else None)
      got += use
      if use == len(c.images):
        pending.pop(0)
      else:
        pending[0] = _Chunk(c.images[use:], None if c.names is None else c.names[use:],
                            None if c.labels is None else c.labels[use:])
    held -= got
    images = np.concatenate(parts) if len(parts) > 1 else parts[0]
    flat_names = (None if any(n is None for n in names)
                  else tuple(x for n in names for x in n))
    flat_labels = (None if any(lab is None for lab in labels)
                   else tuple(x for lab in labels for x in lab))
    return _Chunk(images, flat_names, flat_labels), got

  for chunk in chunks:
    if not len(chunk.images):
      continue
    if shape is None:
      shape = chunk.images.shape[1:]
    elif chunk.images.shape[1:] != shape:
      raise FvjaxError(f"images of shape {chunk.images.shape[1:]} follow images of shape "
                       f"{shape}; resize the dataset to one size first")
    pending.append(chunk)
    held += len(chunk.images)
    while held >= size:
      yield take(size)
  if held:
    chunk, got = take(held)
    pad = np.zeros((size - got, *shape), np.float32)
    yield _Chunk(np.concatenate([chunk.images, pad]), chunk.names, chunk.labels), got


def _lockstep(batches: Iterator[tuple[_Chunk, int]], rows: int
              ) -> Iterator[tuple[_Chunk, int]]:
  """This process's batches while any process still has some (a process whose shard is done
  contributes padding); every process agrees, through one small all-gather per step, on
  when to stop and on the image size."""
  while True:
    item = next(batches, None)
    shape = (0, 0) if item is None else item[0].images.shape[1:3]
    table = multihost.gather(np.asarray([item is not None, *shape], np.int64))
    if not table[:, 0].any():
      return
    shapes = sorted({tuple(int(v) for v in r[1:]) for r in table if r[0]})
    if len(shapes) > 1:
      raise FvjaxError(f"the processes' image shards have different image sizes {shapes}; "
                       "resize every shard to one size first")
    if item is None:
      item = (_Chunk(np.zeros((rows, *shapes[0], 3), np.float32), None, None), 0)
    yield item


def _gather_examples(flat, store, processes: int, process: int):
  """The pictures, names and labels of dataset indices ``flat`` from the processes holding
  them (index ``i * processes + p`` is image ``i`` of process ``p``)."""
  shape = next(iter(store.values()))[0].shape if store else None
  shapes = [s for s in multihost.gather_json(None if shape is None else list(shape)) if s]
  pictures = np.zeros((len(flat), *shapes[0]), np.float32)
  names: list = [None] * len(flat)
  labels: list = [None] * len(flat)
  for j, i in enumerate(flat):
    if i >= 0 and i % processes == process:
      picture, name, label = store[int(i)]
      pictures[j] = picture
      names[j] = None if name is None else str(name)
      labels[j] = None if label is None else str(label)
  every = multihost.gather(pictures)
  texts = multihost.gather_json([names, labels])
  owner = np.where(flat >= 0, flat % processes, 0)
  pictures = every[owner, np.arange(len(flat))]
  names = [texts[o][0][j] if texts[o][0][j] is not None else f"#{i}"
           for j, (o, i) in enumerate(zip(owner, flat))]
  labels = [texts[o][1][j] if texts[o][1][j] is not None else ""
            for j, o in enumerate(owner)]
  return pictures, names, labels


# -- units ------------------------------------------------------------------------------------
def _spatial_kind(obj, model: Model) -> tuple[str | None, str | None]:
  """``("map" | "fixed" | None, layer)`` for one (stacked) objective."""
  if isinstance(obj, objectives_lib.Scaled):
    return _spatial_kind(obj.objective, model)
  kind = None
  if isinstance(obj, (objectives_lib.Channel, objectives_lib.Direction)):
    kind = "map"
  elif isinstance(obj, objectives_lib.Neuron):
    kind = "fixed"
  if kind is None or obj.layer == "input" or len(model.layer_shape(obj.layer)) != 3:
    return None, None
  return kind, obj.layer


def _describe(obj, count: int) -> tuple[str, ...]:
  if isinstance(obj, objectives_lib.Scaled):
    return _describe(obj.objective, count)
  index = getattr(obj, "index", None)
  if index is not None:
    where = getattr(obj, "layer", "logits")
    return tuple(f"{where}:{int(i)}" for i in np.asarray(index).reshape(count))
  if isinstance(obj, objectives_lib.Direction):
    return tuple(f"{obj.layer} direction {i}" for i in range(count))
  return tuple(f"{type(obj).__name__} {i}" for i in range(count))


def _crop_size(crop) -> tuple[int, int] | None:
  if crop is None:
    return None
  size = (crop, crop) if isinstance(crop, (int, np.integer)) else tuple(crop)
  if (len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                for s in size) or min(size) < 1):
    raise FvjaxError(f"crop must be a positive int or (height, width), got {crop!r}")
  return int(size[0]), int(size[1])


def _boxes(cells: np.ndarray, stride: tuple[float, float], crop: tuple[int, int],
           image: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """Input-pixel centres ``[..., 2]`` of activation cells and crop boxes ``[..., 4]``."""
  s = np.asarray(stride, np.float64)
  centre = (cells + 0.5) * s  # continuous coordinates; pixel i spans [i, i + 1)
  size = np.asarray(crop)
  start = np.floor(centre - size / 2 + 0.5).astype(np.int64)
  start = np.clip(start, 0, np.asarray(image) - size)
  boxes = np.concatenate([start, start + size], axis=-1)
  return centre - 0.5, boxes


# -- the public function ----------------------------------------------------------------------
def dataset_examples(model: Model, objective_or_layer, images, k: int = 9, *,
                     batch_size: int = 32, bottom: bool = True,
                     crop: int | tuple[int, int] | None = None, reduce: str = "mean",
                     progress: bool = True, mesh=None) -> DatasetExamples:
  """The top-k (and bottom-k) images of a dataset for each of K units.

  Args:
    model: a `fvjax.Model`.
    objective_or_layer: a layer name (every channel of it is a unit, scored by its mean over
      positions, like ``objectives.channel``), or an objective: one, one batched over K units
      (``channel(layer, jnp.arange(K))``, ``direction(layer, vectors [K, C])``), or a list of
      K objectives of the same structure. An objective's score of an image is what
      `fvjax.render` maximises.
    images: the dataset: an array ``[N, H, W, 3]`` of floats in [0, 1] (integer pixels are
      refused: pass ``images / 255``), an `fvjax.data.ImageSet`, or an iterable of such
      batches (any sizes; e.g. ``fvjax.data.tfds_images(..., batch_size=...)``) streamed once. All images one size.
    k: examples kept per unit (1..N).
    batch_size: images per compiled step; the last partial batch is padded and masked.
    bottom: also keep the k lowest-scoring images per unit.
    crop: None for whole images, or a crop size (int or ``(h, w)``) around the peak
      activation of spatial units (channel, neuron or direction of a 4-D layer, possibly
      scaled); the peak cell is mapped to input pixels by the layer's stride.
    reduce: ``"mean"`` ranks by the objective's own score (for a layer name: each channel's
      mean); ``"max"`` ranks by the peak of the unit's spatial map (channels, directions and
      layer names of spatial layers), the usual choice with crops.
    progress: show a progress bar.
    mesh: a `jax.sharding.Mesh`; each batch of images is sharded over its first axis
      (``batch_size`` rounded up to a multiple of its size), the model's weights and the
      running top-k replicated. The same examples as the unsharded run (scores to float
      rounding). A mesh spanning several processes (`jax.distributed`): every process calls
      `dataset_examples` with the same arguments except ``images``, which is that process's
      own shard of the dataset (any sizes, arrays or streams; images of one size on all
      processes); each step takes ``batch_size / processes`` images from every process, and
      the top-k is merged over all shards. Image ``i`` of process ``p``'s shard gets the
      index ``i * process_count + p``; every process receives the same result, with the
      example images (and names, labels) gathered from the processes that hold them.

  Returns:
    `DatasetExamples` with ``top`` (and ``bottom``) `Examples`. Memory: the device keeps
    ``O(K * k)`` scores, and the host keeps only images still among some unit's examples.
    Raises `FvjaxError` for bad input (an unknown layer, k out of 1..N, ...).
  """
  if not isinstance(model, Model):
    raise FvjaxError(f"dataset_examples needs an fvjax.Model, got {type(model).__name__}")
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise FvjaxError(f"k must be a positive integer (examples per unit), got {k!r}")
  batch_size = check_batch_size(batch_size)
  if reduce not in REDUCTIONS:
    raise FvjaxError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
  k, batch_size = int(k), int(batch_size)
  crop_size = _crop_size(crop)
  params, place = model.params, jnp.asarray
  processes, process, rows = 1, 0, batch_size  # rows: this process's images per step
  if mesh is not None:
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    mesh = Mesh(mesh.devices, mesh.axis_names)
    devices = mesh.shape[mesh.axis_names[0]]
    batch_size = rows = -(-batch_size // devices) * devices
    params = jax.device_put(params, NamedSharding(mesh, PartitionSpec()))
    sharded = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    place = lambda x: jax.device_put(jnp.asarray(x), sharded)
    if multihost.spans_processes(mesh):
      processes, process = jax.process_count(), jax.process_index()
      rows = len(multihost.addressable_rows(sharded, batch_size))
      place = lambda x: jax.make_array_from_process_local_data(
          sharded, np.asarray(x), (batch_size, *np.shape(x)[1:]))

  if isinstance(objective_or_layer, str):
    layer = objective_or_layer
    shape = model.layer_shape(layer)
    count, units = shape[-1], None
    spatial, map_layer = ("map", layer) if len(shape) == 3 else (None, None)
    names = tuple(f"{layer}:{c}" for c in range(count))
  else:
    layer = None
    count, units, _ = objectives_lib.stack(objective_or_layer)
    units.check(model)
    spatial, map_layer = _spatial_kind(units, model)
    names = _describe(units, count)
  if reduce == "max" and spatial != "map":
    raise FvjaxError("reduce='max' needs units with a spatial map: a layer name, or channel or "
                     "direction objectives of a [H, W, C] layer")
  if crop_size is not None and spatial is None:
    raise FvjaxError("crop needs spatial units (a layer name or a channel, neuron or direction "
                     "objective of a [H, W, C] layer) to know where to crop; "
                     f"{type(objective_or_layer).__name__} has no position; use crop=None")

  chunks, total, whole = _chunks(images)
  batches = _rebatch(chunks, rows)
  if processes > 1:  # every process's shard, in lockstep; the counts are checked globally
    total = whole = None
    batches = _lockstep(batches, rows)
  if total is not None:
    if total == 0:
      raise FvjaxError("the dataset is empty")
    if k > total:
      raise FvjaxError(f"k={k} examples per unit, but the dataset has only {total} images "
                       f"(valid k: 1..{total})")

  config = _Config(model.apply, layer, k, bool(bottom), reduce, spatial)
  state = {"top": _empty(count, k, -np.inf)}
  if bottom:
    state["bottom"] = _empty(count, k, np.inf)
  store: dict[int, tuple[np.ndarray, str | None, str | None]] = {}
  seen = 0
  image_shape = None
  with tqdm(total=total, desc=f"dataset examples ({count} units)", unit="img",
            disable=not progress, leave=False) as bar:
    for chunk, valid in batches:
      if image_shape is None:
        image_shape = chunk.images.shape[1:3]
        model.check_size(min(image_shape))
        if crop_size is not None and (crop_size[0] > image_shape[0]
                                      or crop_size[1] > image_shape[1]):
          raise FvjaxError(f"crop {crop_size} is larger than the images "
                           f"{tuple(image_shape)}")
      position = seen + np.arange(rows, dtype=np.int32)  # in this process's shard
      state = _step_jit(config, params, units, state, place(chunk.images),
                        place(np.arange(rows) < valid),
                        place(position * processes + process))
      if whole is None:  # streaming: keep only the images some unit still holds
        for i in range(valid):
          store[(seen + i) * processes + process] = (
              chunk.images[i], None if chunk.names is None else chunk.names[i],
              None if chunk.labels is None else chunk.labels[i])
        held = set(multihost.fetch(state["top"][1]).ravel().tolist())
        if bottom:
          held |= set(multihost.fetch(state["bottom"][1]).ravel().tolist())
        for i in [i for i in store if i not in held]:
          del store[i]
      seen += valid
      bar.update(valid)
  if processes > 1:
    seen = int(multihost.gather(np.int64(seen)).sum())
  if seen == 0:
    raise FvjaxError("the dataset is empty")
  if k > seen:
    raise FvjaxError(f"k={k} examples per unit, but the dataset has only {seen} images "
                     f"(valid k: 1..{seen})")

  stride = None
  if spatial is not None:
    probe = jax.ShapeDtypeStruct((1, *image_shape, 3), jnp.float32)
    cells = jax.eval_shape(model.apply, model.params, probe)[map_layer].shape[1:3]
    stride = (image_shape[0] / cells[0], image_shape[1] / cells[1])

  def fetch(which) -> Examples:
    scores, index, cells = (multihost.fetch(x) for x in state[which])
    flat = index.ravel()
    if processes > 1:
      pictures, pic_names, pic_labels = _gather_examples(flat, store, processes, process)
    elif whole is not None:
      pictures = whole.images[flat]
      pic_names = [whole.names[i] if whole.names is not None else f"#{i}" for i in flat]
      pic_labels = [whole.labels[i] if whole.labels is not None else "" for i in flat]
    else:
      pictures = np.stack([store[i][0] for i in flat])
      pic_names = [store[i][1] if store[i][1] is not None else f"#{i}" for i in flat]
      pic_labels = [store[i][2] if store[i][2] is not None else "" for i in flat]
    pictures = pictures.reshape(count, k, *pictures.shape[1:])
    positions = boxes = None
    if stride is not None:
      positions, boxes = _boxes(cells, stride, crop_size or (1, 1), image_shape)
      if crop_size is None:
        boxes = None
      else:
        pictures = np.stack([
            np.stack([pictures[u, j, b[0]:b[2], b[1]:b[3]] for j, b in enumerate(boxes[u])])
            for u in range(count)])
    group = lambda xs: tuple(tuple(xs[u * k:(u + 1) * k]) for u in range(count))  # noqa: E731
    return Examples(pictures, scores, index.astype(np.int64), positions, boxes,
                    group(pic_names), group(pic_labels))

  return DatasetExamples(fetch("top"), fetch("bottom") if bottom else None, names, seen)
