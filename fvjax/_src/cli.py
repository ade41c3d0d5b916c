"""The ``fvjax`` command line.

    fvjax render --model tiny-darknet --layer leaky_re_lu_8 --channels 0:16 --out out/
    fvjax render --layer leaky_re_lu_8 --directions 8 --out out/        # random directions
    fvjax render --objective "channel:leaky_re_lu_8:3 + 100*diversity:leaky_re_lu_8" \
        --batch 4 --preset lucid --snapshots 32,128,512 --out out/
    fvjax sweep --layer leaky_re_lu_8 --channels 0:4 --learning-rate 0.02,0.05 --decay 1,1.5 \
        --out sweep/                                                    # resumable
    fvjax layers --model tiny-darknet
    fvjax atlas --layers leaky_re_lu_5,leaky_re_lu_8 --units 0:64 --images DIR --out atlas/

``render`` writes ``grid.png`` (one labelled tile per unit), ``images.npz`` (``images``:
float32 [K, H, W, 3] in [0, 1], or [K, B, H, W, 3] with ``--batch B``; ``trace``: [K, steps];
one ``snapshot_<step>`` array per snapshot), ``snapshots.png`` when snapshots were asked for,
and ``result.json`` (the config and each unit's final objective value).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from fvjax._src.errors import FvjaxError
from fvjax._src.presets import PRESETS

PARAMS = ("image", "pixel", "fourier", "maco", "cppn")


def parse_channels(text: str) -> list[int]:
  """``"0:16"`` (a range, optional ``:step``), ``"3"`` or ``"1,5,9"`` -> channel indices."""
  try:
    if ":" in text:
      parts = [int(p) for p in text.split(":")]
      if len(parts) not in (2, 3):
        raise ValueError
      values = list(range(*parts))
    else:
      values = [int(p) for p in text.split(",")]
  except ValueError:
    values = None
  if not values:
    raise FvjaxError(f"malformed --channels {text!r}; use START:STOP[:STEP] (e.g. 0:16), "
                     "an index (3) or a list (1,5,9), with at least one channel")
  return values


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="fvjax", description="Feature visualization in JAX.")
  sub = parser.add_subparsers(dest="command", required=True)

  render = sub.add_parser("render", help="render a grid of channel visualizations")
  render.add_argument("--model", default="tiny-darknet")
  render.add_argument("--weights", default=None, help="safetensors file overriding the zoo's")
  render.add_argument("--layer", help="layer for --channels / --directions")
  render.add_argument("--channels", default="0:16", help="START:STOP[:STEP], N or N,M,...")
  render.add_argument("--directions", type=int, default=None,
                      help="render N random directions of --layer instead of channels")
  render.add_argument("--objective", default=None,
                      help='an expression, e.g. "channel:conv2d_8:3 + 100*diversity:conv2d_8"')
  render.add_argument("--out", required=True, help="output folder")
  render.add_argument("--preset", default="lucid", choices=sorted(PRESETS))
  render.add_argument("--param", default=None, choices=sorted(PARAMS),
                      help="override the preset's image parameterization")
  render.add_argument("--batch", type=int, default=None, help="images per unit (diversity)")
  render.add_argument("--steps", type=int, default=None, help="default: the preset's")
  render.add_argument("--size", type=int, default=128)
  render.add_argument("--lr", type=float, default=None,
                      help="Adam learning rate (default: the preset's optimizer)")
  render.add_argument("--seed", type=int, default=0)
  render.add_argument("--snapshots", default="", help="comma-separated steps, e.g. 32,128")
  render.add_argument("--no-progress", action="store_true")
  render.add_argument("--overwrite", action="store_true",
                      help="replace the outputs of an earlier render in --out")

  sweep = sub.add_parser("sweep", help="render units under a grid of hyperparameters")
  sweep.add_argument("--model", default="tiny-darknet")
  sweep.add_argument("--weights", default=None)
  sweep.add_argument("--layer", required=True)
  sweep.add_argument("--channels", default="0:4")
  sweep.add_argument("--out", required=True, help="output folder (finished chunks resume)")
  sweep.add_argument("--learning-rate", default="0.05", help="comma-separated Adam rates")
  sweep.add_argument("--decay", default="1", help="Fourier decay powers")
  sweep.add_argument("--transform-strength", default="1", help="transform range multipliers")
  sweep.add_argument("--seeds", default="0", help="seeds")
  sweep.add_argument("--tv-weight", default="0", help="total-variation penalty weights")
  sweep.add_argument("--steps", type=int, default=256)
  sweep.add_argument("--size", type=int, default=96)
  sweep.add_argument("--settings-per-chunk", type=int, default=4)
  sweep.add_argument("--seed", type=int, default=0, help="base PRNG seed")
  sweep.add_argument("--no-progress", action="store_true")

  atlas = sub.add_parser("atlas", help="a static site of every unit of some layers")
  atlas.add_argument("--model", default="tiny-darknet")
  atlas.add_argument("--weights", default=None)
  atlas.add_argument("--layers", required=True, help="comma-separated spatial layers")
  atlas.add_argument("--units", default=None, help="START:STOP[:STEP] (clipped per layer), "
                     "N or N,M,...; default: every unit")
  atlas.add_argument("--images", required=True, help="folder of natural images")
  atlas.add_argument("--out", required=True, help="output folder (a killed build resumes)")
  atlas.add_argument("--steps", type=int, default=512)
  atlas.add_argument("--size", type=int, default=128)
  atlas.add_argument("--diversity", type=int, default=4, help="diversity images per unit")
  atlas.add_argument("--k", type=int, default=6, help="top and bottom dataset examples")
  atlas.add_argument("--batch-units", type=int, default=8, help="units per compiled batch")
  atlas.add_argument("--max-images", type=int, default=None, help="use the first N images")
  atlas.add_argument("--format", default="webp", choices=("webp", "png"))
  atlas.add_argument("--seed", type=int, default=0)
  atlas.add_argument("--dry-run", action="store_true",
                     help="print the units and the time estimated from a first batch per layer")
  atlas.add_argument("--overwrite", action="store_true",
                     help="recompute stored batches of other settings instead of refusing")
  atlas.add_argument("--no-progress", action="store_true")

  layers = sub.add_parser("layers", help="list a model's layers and activation shapes")
  layers.add_argument("--model", default="tiny-darknet")
  layers.add_argument("--weights", default=None)
  return parser


def _layers(args) -> None:
  from fvjax._src.zoo import registry
  # The shapes need no weights: without --weights they come from the module's template.
  model = (registry.abstract(args.model) if args.weights is None
           else registry.load(args.model, weights=args.weights))
  width = max(len(name) for name in model.layers)
  print(f"{model.name}: input {model.input_size[0]}x{model.input_size[1]}x3 in [0, 1]")
  for name, shape in model.layers.items():
    print(f"{name:<{width}}  {'x'.join(str(s) for s in shape)}")


def _objective_and_labels(args, model, key):
  """The (possibly batched) objective the arguments ask for, and one label per unit."""
  import jax.numpy as jnp

  from fvjax._src import objectives
  from fvjax._src.expressions import parse_objective

  if args.objective:
    objective = parse_objective(args.objective)
    if _has(objective, objectives.Diversity) and (args.batch or 1) < 2:
      raise FvjaxError("a diversity term needs several images per unit: add --batch 4 (or more)")
    return objective, ["objective"], {"objective": args.objective}
  if not args.layer:
    raise FvjaxError("say what to render: --layer (with --channels or --directions) or "
                     "--objective")
  shape = model.layer_shape(args.layer)
  if args.directions is not None:
    if args.directions < 1:
      raise FvjaxError(f"--directions must be >= 1, got {args.directions}")
    vectors = objectives.random_directions(key, args.directions, shape[-1])
    labels = [f"{args.layer} dir {i}" for i in range(args.directions)]
    return objectives.direction(args.layer, vectors), labels, {"directions": args.directions}
  channels = parse_channels(args.channels)
  labels = [f"{args.layer}:{c}" for c in channels]
  return objectives.channel(args.layer, jnp.asarray(channels)), labels, {"channels": channels}


def _has(objective, cls) -> bool:
  return isinstance(objective, cls) or any(_has(c, cls) for c in objective.children())


RENDER_OUTPUTS = ("grid.png", "snapshots.png", "images.npz", "result.json")


def prepare_out(path: str, *, outputs: tuple[str, ...], overwrite: bool) -> None:
  """Check and create the output folder before any work: a file, an unwritable folder or a
  folder holding another run's outputs (unless ``overwrite``, which deletes them) is an
  `FvjaxError`."""
  old = [name for name in outputs if os.path.exists(os.path.join(path, name))]
  if old and not overwrite:
    raise FvjaxError(f"--out {path!r} holds the outputs of another run ({', '.join(old)}); "
                     "use another folder or pass --overwrite to replace them")
  from fvjax._src import stored
  stored.output_folder(path)  # a file, or a folder that cannot be written, is refused here
  for name in old:
    os.remove(os.path.join(path, name))


def _snapshot_steps(text: str) -> list[int]:
  try:
    return [int(s) for s in text.split(",") if s.strip()] if text else []
  except ValueError:
    raise FvjaxError(f"malformed --snapshots {text!r}; give comma-separated steps, e.g. "
                     "32,128,512") from None


def _render(args) -> None:
  import jax
  import numpy as np
  from fvjax._src import optvis
  from fvjax._src import param as param_lib
  from fvjax._src import plot
  from fvjax._src.presets import preset
  from fvjax._src.objectives import stack
  from fvjax._src.render import RenderDiverged, render, settings_from, validate
  from fvjax._src.zoo import registry

  snapshots = _snapshot_steps(args.snapshots)
  _seeds(str(args.seed), "--seed")
  model = registry.load(args.model, weights=args.weights)
  objective_key, render_key = jax.random.split(jax.random.key(args.seed))
  objective, labels, what = _objective_and_labels(args, model, objective_key)
  batch = args.batch or 1
  settings = preset(args.preset, args.size, batch=batch)
  if args.param:
    settings["param"] = getattr(param_lib, args.param)(args.size, batch=batch)
  if args.steps is not None:
    settings["steps"] = args.steps
  if args.lr is not None:
    if not (math.isfinite(args.lr) and args.lr > 0):
      raise FvjaxError(f"--lr must be a positive finite learning rate (e.g. 0.05), got "
                       f"{args.lr!r}")
    settings["optimizer"] = optvis.Adam(args.lr)
  render_settings = settings_from(size=args.size, batch=args.batch,
                                  **{k: v for k, v in settings.items() if k != "steps"})
  validate(model, stack(objective)[1], render_settings, settings["steps"], snapshots)
  prepare_out(args.out, outputs=RENDER_OUTPUTS, overwrite=args.overwrite)  # before any work
  start = time.time()
  diverged = None
  try:
    result = render(model, objective, key=render_key, batch=args.batch, steps=settings["steps"],
                    settings=render_settings, snapshots=snapshots,
                    progress=not args.no_progress)
  except RenderDiverged as err:
    diverged, result = err, err.result
  seconds = time.time() - start
  config = {k: v for k, v in vars(args).items() if k not in ("command", "no_progress")}
  config.update(what, steps=settings["steps"], param=args.param or PRESETS[args.preset],
                transforms="Lucid standard", jax=jax.__version__, backend=jax.default_backend())
  if diverged is not None:
    kept = 0 if result is None else int(result.trace.shape[1])
    if result is not None:
      np.savez_compressed(os.path.join(args.out, "images.npz"),
                          images=result.images.astype(np.float32), trace=result.trace)
    with open(os.path.join(args.out, "result.json"), "w") as f:
      json.dump({"config": config, "seconds": seconds,
                 "diverged": {"step": diverged.step, "kept_steps": kept,
                              "message": str(diverged)}}, f, indent=2)
    raise RenderStopped(f"the objective became NaN/inf at step {diverged.step}; "
                        + (f"the images after step {kept} are in {args.out}/images.npz"
                           if kept else "nothing was finite to keep")
                        + f" ({args.out}/result.json says where it stopped)")
  tiles = result.images.reshape(-1, *result.images.shape[-3:])
  per_unit = len(tiles) // len(result.final)
  tile_labels = [f"{labels[i // per_unit]}" + (f" #{i % per_unit}" if per_unit > 1 else "")
                 + f"\n{result.final[i // per_unit]:.3g}" for i in range(len(tiles))]
  title = f"{model.name}, {settings['steps']} steps, preset {args.preset}"
  plot.image_grid(tiles, os.path.join(args.out, "grid.png"), labels=tile_labels,
                  title=f"{args.objective}\n{title}" if args.objective else title)
  if result.snapshots:
    plot.snapshot_strip(result.snapshots, os.path.join(args.out, "snapshots.png"),
                        labels=labels)
  arrays = {"images": result.images.astype(np.float32), "trace": result.trace}
  arrays.update({f"snapshot_{s}": v for s, v in result.snapshots.items()})
  np.savez_compressed(os.path.join(args.out, "images.npz"), **arrays)
  units = [{"label": label, "final_objective": float(v), "last_step_objective": float(t[-1])}
           for label, v, t in zip(labels, result.final, result.trace)]
  for unit, channel in zip(units, what.get("channels", [])):
    unit["channel"] = channel
  with open(os.path.join(args.out, "result.json"), "w") as f:
    json.dump({"config": config, "seconds": seconds, "units": units}, f, indent=2)
  print(f"rendered {len(units)} unit(s) in {seconds:.1f}s -> {args.out}")


def _floats(text: str, flag: str) -> list[float]:
  try:
    values = [float(v) for v in text.split(",") if v.strip()]
  except ValueError:
    values = []
  if not values or not all(math.isfinite(v) for v in values):
    raise FvjaxError(f"malformed {flag} {text!r}; give comma-separated finite numbers, e.g. "
                     "0.01,0.05")
  return values


def _seeds(text: str, flag: str) -> list[int]:
  """Comma-separated PRNG seeds, integers in 0..2**32-1 (no rounding)."""
  try:
    values = [int(v) for v in text.split(",") if v.strip()]
  except ValueError:
    values = []
  if not values or any(not 0 <= v < 2**32 for v in values):
    raise FvjaxError(f"malformed {flag} {text!r}; give integers in 0..{2**32 - 1}, "
                     "comma-separated (e.g. 0,1,2)")
  return values


def _sweep(args) -> None:
  import jax
  import jax.numpy as jnp
  import numpy as np

  from fvjax._src import objectives, plot
  from fvjax._src.sweep import sweep
  from fvjax._src.zoo import registry

  channels = parse_channels(args.channels)
  _seeds(str(args.seed), "--seed")
  rates = _floats(args.learning_rate, "--learning-rate")
  if min(rates) <= 0:
    raise FvjaxError(f"--learning-rate {args.learning_rate!r}: learning rates must be > 0")
  grid = {"learning_rate": rates,
          "decay": _floats(args.decay, "--decay"),
          "transform_strength": _floats(args.transform_strength, "--transform-strength"),
          "seed": _seeds(args.seeds, "--seeds"),
          "total_variation": _floats(args.tv_weight, "--tv-weight")}
  model = registry.load(args.model, weights=args.weights)
  model.layer_shape(args.layer)
  units = jnp.asarray(channels)
  objective = objectives.channel(args.layer, units)
  start = time.time()
  result = sweep(model, objective, key=jax.random.key(args.seed), grid=grid, steps=args.steps,
                 size=args.size, settings_per_chunk=args.settings_per_chunk, out=args.out,
                 progress=not args.no_progress)
  seconds = time.time() - start
  names = [n for n, v in grid.items() if len(v) > 1] or ["learning_rate"]
  rows = [", ".join(f"{n}={s[n]:g}" for n in names) for s in result.settings]
  labels = [f"{row}\n{args.layer}:{c} {v:.3g}" for row, finals in zip(rows, result.final)
            for c, v in zip(channels, finals)]
  plot.image_grid(result.images.reshape(-1, *result.images.shape[-3:]),
                  os.path.join(args.out, "grid.png"), labels=labels, ncols=len(channels),
                  tile_inches=1.9, title=f"{model.name} sweep: settings x units")
  np.savez_compressed(os.path.join(args.out, "images.npz"), images=result.images,
                      final=result.final, trace=result.trace)
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump({"config": {k: v for k, v in vars(args).items() if k != "command"},
               "grid": grid, "channels": channels, "seconds": seconds,
               "computed_chunks": result.computed, "loaded_chunks": result.loaded,
               "settings": [dict(s, final_objective=[float(v) for v in finals])
                            for s, finals in zip(result.settings, result.final)]}, f, indent=2)
  print(f"swept {len(result.settings)} settings x {len(channels)} units in {seconds:.1f}s "
        f"({len(result.loaded)} chunks loaded from disk) -> {args.out}")


def _atlas(args, argv=None) -> None:
  import shlex

  import jax

  from fvjax._src.atlas.build import build
  from fvjax._src.data import image_folder
  from fvjax._src.zoo import registry

  model = registry.load(args.model, weights=args.weights)
  if args.max_images is not None and args.max_images < 1:
    raise FvjaxError(f"--max-images must be >= 1, got {args.max_images}")
  images = image_folder(args.images, model.input_size, crop=True, limit=args.max_images)
  command = "fvjax " + shlex.join(sys.argv[1:] if argv is None else list(argv))
  result = build(model, args.layers, images, args.out, key=jax.random.key(args.seed),
                 units=args.units, steps=args.steps, size=args.size, diversity=args.diversity,
                 k=args.k, batch_units=args.batch_units, image_format=args.format,
                 overwrite=args.overwrite, dry_run=args.dry_run, progress=not args.no_progress,
                 command=command)
  if args.dry_run:
    estimate = result.estimate
    for row in estimate["layers"]:
      print(f"{row['layer']}: {row['units']} units in {row['batches']} batches of "
            f"{row['batch size']}; compile {row['compile_s']:.1f} s, {row['step_s']:.3f} s per "
            f"step of a batch, natural images {row['natural_s']:.0f} s -> "
            f"{row['estimate_s'] / 60:.1f} min")
    print(f"{estimate['units']} units in {estimate['batches']} batches: estimated "
          f"{estimate['total_s'] / 3600:.2f} h ({estimate['total_s'] / 60:.0f} min) for "
          f"{args.steps} steps at {args.size} px, from a first batch per layer timed over "
          f"{estimate['probe_steps']} steps")
    return
  print(f"atlas of {result.units} units in {result.seconds:.1f}s ({len(result.computed)} "
        f"batches computed, {len(result.loaded)} resumed) -> {args.out}/index.html")


def compilation_cache_dir() -> str | None:
  """Where the CLI keeps JAX's persistent compilation cache: ``$FVJAX_CACHE_DIR``, or
  ``$XDG_CACHE_HOME/fvjax/jax`` (default ``~/.cache/fvjax/jax``); ``FVJAX_CACHE_DIR=off``
  turns it off. A second ``fvjax render`` of the same shapes then loads the compiled loop
  instead of compiling it."""
  value = os.environ.get("FVJAX_CACHE_DIR", "")
  if value.lower() in ("off", "0", "none"):
    return None
  if value:
    return value
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "fvjax", "jax")


def _enable_compilation_cache() -> None:
  path = compilation_cache_dir()
  if path is None:
    return
  import jax
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


class RenderStopped(Exception):
  """A render that diverged: its partial result is on disk; exit code 3."""


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.command in ("render", "sweep", "atlas"):
    _enable_compilation_cache()
  try:
    {"render": _render, "layers": _layers, "sweep": _sweep,
     "atlas": lambda a: _atlas(a, argv)}[args.command](args)
  except FvjaxError as err:
    print(f"fvjax {args.command}: error: {err}", file=sys.stderr)
    return 2
  except RenderStopped as err:
    print(f"fvjax {args.command}: diverged: {err}", file=sys.stderr)
    return 3
  except BrokenPipeError:  # e.g. `fvjax layers ... | head`: the reader stopped, not an error
    sys.stdout = open(os.devnull, "w")
  return 0


if __name__ == "__main__":
  sys.exit(main())
