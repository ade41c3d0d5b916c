"""The ``fvjax`` command line.

    fvjax render --model tiny-darknet --layer leaky_re_lu_8 --channels 0:16 --out out/
    fvjax layers --model tiny-darknet

``render`` writes ``grid.png`` (one labelled tile per unit), ``images.npz`` (``images``:
float32 [K, H, W, 3] in [0, 1]; ``trace``: [K, steps]; one ``snapshot_<step>`` array per
snapshot) and ``result.json`` (the config and each unit's final objective value).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from fvjax._src.errors import FvjaxError


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
  render.add_argument("--layer", required=True)
  render.add_argument("--channels", default="0:16", help="START:STOP[:STEP], N or N,M,...")
  render.add_argument("--out", required=True, help="output folder")
  render.add_argument("--steps", type=int, default=512)
  render.add_argument("--size", type=int, default=128)
  render.add_argument("--lr", type=float, default=0.05, help="Adam learning rate")
  render.add_argument("--seed", type=int, default=0)
  render.add_argument("--snapshots", default="", help="comma-separated steps, e.g. 32,128")
  render.add_argument("--no-progress", action="store_true")

  layers = sub.add_parser("layers", help="list a model's layers and activation shapes")
  layers.add_argument("--model", default="tiny-darknet")
  layers.add_argument("--weights", default=None)
  return parser


def _layers(args) -> None:
  from fvjax._src.zoo import registry
  model = registry.load(args.model, weights=args.weights)
  width = max(len(name) for name in model.layers)
  print(f"{model.name}: input {model.input_size[0]}x{model.input_size[1]}x3 in [0, 1]")
  for name, shape in model.layers.items():
    print(f"{name:<{width}}  {'x'.join(str(s) for s in shape)}")


def _render(args) -> None:
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from fvjax._src import objectives, plot
  from fvjax._src.render import render
  from fvjax._src.zoo import registry

  channels = parse_channels(args.channels)
  snapshots = [int(s) for s in args.snapshots.split(",") if s.strip()] if args.snapshots else []
  model = registry.load(args.model, weights=args.weights)
  model.layer_shape(args.layer)
  objective = objectives.channel(args.layer, jnp.asarray(channels))
  start = time.time()
  result = render(model, objective, key=jax.random.key(args.seed), steps=args.steps,
                  size=args.size, optimizer=optax.adam(args.lr), snapshots=snapshots,
                  progress=not args.no_progress)
  seconds = time.time() - start

  os.makedirs(args.out, exist_ok=True)
  labels = [f"{args.layer}:{c}\n{v:.3g}" for c, v in zip(channels, result.final)]
  plot.image_grid(result.images, os.path.join(args.out, "grid.png"), labels=labels,
                  title=f"{model.name} {args.layer}, {args.steps} steps")
  arrays = {"images": result.images.astype(np.float32), "trace": result.trace,
            "channels": np.asarray(channels)}
  arrays.update({f"snapshot_{s}": v for s, v in result.snapshots.items()})
  np.savez_compressed(os.path.join(args.out, "images.npz"), **arrays)
  config = {k: v for k, v in vars(args).items() if k not in ("command", "no_progress")}
  config.update(channels=channels, param="fourier+decorrelate+sigmoid (Lucid image)",
                transforms="Lucid standard", optimizer=f"adam({args.lr})", jax=jax.__version__,
                backend=jax.default_backend())
  units = [{"channel": c, "final_objective": float(v), "last_step_objective": float(t[-1])}
           for c, v, t in zip(channels, result.final, result.trace)]
  with open(os.path.join(args.out, "result.json"), "w") as f:
    json.dump({"config": config, "seconds": seconds, "units": units}, f, indent=2)
  print(f"rendered {len(channels)} units of {args.layer} in {seconds:.1f}s -> {args.out}")


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  try:
    {"render": _render, "layers": _layers}[args.command](args)
  except FvjaxError as err:
    print(f"fvjax {args.command}: error: {err}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
