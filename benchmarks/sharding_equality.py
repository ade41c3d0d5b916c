"""Why a sharded render differs from the unsharded one, and by how much (issue 14).

Runs itself in a fresh process with ``--devices`` simulated CPU devices and measures, for
``--units`` channels of Tiny Darknet (random weights unless the vendored weights are present)
rendered for ``--steps`` steps at ``--size`` px with one key:

- ``sharded_vs_unsharded``: the same units with ``mesh=`` (one unit per device when units ==
  devices) and without (all units vmapped together on one device): max / mean pixel
  difference of the images after 1 step and after ``--steps`` steps, and the relative
  difference of the final objectives.
- ``sharded_vs_per_device_groups``: the sharded run against unsharded renders of each
  device's share of units alone (same keys): the same per-device program.
- ``forward_batch``: one forward pass of the same images as one batch of ``units`` and one
  image at a time: the relative difference of a layer's activations (reduction order of the
  batched convolution).
- ``adam_first_step``: after one step, the fraction of image parameters whose update differs
  between the two runs by more than a tenth of the learning rate, and the median |gradient|
  of those parameters against all parameters (Adam's first update is
  ``lr * g / (|g| + eps)``: a near-zero gradient whose rounding differs moves by up to lr).
- ``between_units``: the mean pixel difference between two different units of one run, the
  scale of "a different picture".

    python benchmarks/sharding_equality.py --out benchmarks/results/sharding_equality.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def measure(args) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np

  import fvjax
  from fvjax import objectives as O

  assert jax.device_count() == args.devices, jax.devices()
  model = fvjax.zoo.load("tiny-darknet")
  layer = args.layer
  key = jax.random.key(args.seed)
  objective = O.channel(layer, jnp.arange(args.units))
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("units",))
  snaps = sorted({s for s in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if s <= args.steps}
                 | {args.steps})
  out: dict = {"devices": args.devices, "units": args.units, "steps": args.steps,
               "size": args.size, "layer": layer, "cpu": _cpu(), "jax": jax.__version__}

  optimizers = {"Adam(0.05)": fvjax.optvis.Adam(0.05),
                "Adam(0.05, eps=1e-4)": fvjax.optvis.Adam(0.05, eps=1e-4),
                f"SGD({args.sgd_lr})": fvjax.optvis.SGD(args.sgd_lr)}
  for name, optimizer in optimizers.items():
    kwargs = dict(key=key, steps=args.steps, size=args.size, progress=False,
                  optimizer=optimizer, snapshots=[0, *snaps])
    t = time.perf_counter()
    plain = fvjax.render(model, objective, **kwargs)
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    sharded = fvjax.render(model, objective, mesh=mesh, **kwargs)
    t_sharded = time.perf_counter() - t
    rows = {}
    for s in snaps:
      d = np.abs(plain.snapshots[s] - sharded.snapshots[s])
      moved = np.abs(plain.snapshots[s] - plain.snapshots[0]).mean()
      rows[s] = {"max_pixel": float(d.max()), "mean_pixel": float(d.mean()),
                 "mean_pixel_moved_since_step_0": float(moved)}
    rel = np.abs(plain.final - sharded.final) / np.abs(plain.final)
    trace_rel = (np.abs(plain.trace - sharded.trace) / np.abs(plain.trace).max(-1, keepdims=True))
    out[name] = {"by_step": rows, "final_rel_max": float(rel.max()),
                 "trace_rel_max": float(trace_rel.max()),
                 "final_mean": float(plain.final.mean()),
                 "seconds_unsharded": t_plain, "seconds_sharded": t_sharded}
    if name.startswith("Adam(0.05)"):
      d = np.abs(plain.images[0] - plain.images[1])
      out["between_two_units_mean_pixel"] = float(d.mean())

  pictures = jax.random.uniform(jax.random.key(1), (args.units, args.size, args.size, 3))
  apply = jax.jit(lambda p, x: model.apply(p, x)[layer])
  together = apply(model.params, pictures)
  alone = jnp.concatenate([apply(model.params, pictures[i:i + 1]) for i in range(args.units)])
  placed = jax.device_put(pictures, jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec("units")))
  spread = apply(model.params, placed)
  scale = float(jnp.abs(together).max())
  out["forward_pass"] = {
      f"batch_{args.units}_vs_batch_1_max_rel": float(jnp.abs(together - alone).max()) / scale,
      "sharded_vs_batch_1_max_rel": float(jnp.abs(spread - alone).max()) / scale,
      f"sharded_vs_batch_{args.units}_max_rel": float(jnp.abs(spread - together).max()) / scale}

  # Adam's first update is lr * g / (|g| + eps) ~ lr * sign(g): where a gradient entry is
  # within rounding of zero, the two layouts can move the parameter in opposite directions.
  settings = fvjax.optvis.broadcast(fvjax.optvis.Settings(size=args.size), args.units)
  keys = jax.random.split(key, args.units)
  init = jax.jit(jax.vmap(fvjax.optvis.init, in_axes=(0, None, 0, 0)))
  step = jax.jit(jax.vmap(fvjax.optvis.step, in_axes=(0, None, 0, 0)))
  state = init(keys, model, objective, settings)
  first = lambda st, o, se: np.asarray(jax.tree.leaves(step(st, model, o, se)[0].params)[0])
  cut = lambda tree, i: jax.tree.map(lambda x: x[i:i + 1], tree)
  together = first(state, objective, settings)
  alone = np.concatenate([first(cut(state, i), cut(objective, i), cut(settings, i))
                          for i in range(args.units)])
  differ = np.abs(together - alone)
  out["adam_first_step_batch_vs_one"] = {
      "max_param_update_difference": float(differ.max()),
      "fraction_params_differing_over_lr_over_100": float((differ > 0.05 / 100).mean()),
      "params": int(together.size)}
  return out


def _cpu() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--devices", type=int, default=8)
  parser.add_argument("--units", type=int, default=8)
  parser.add_argument("--steps", type=int, default=64)
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--layer", default="leaky_re_lu_8")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--sgd-lr", type=float, default=50.0)
  parser.add_argument("--out", default=None)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if not args.child:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices}")
    done = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env,
                          capture_output=True, text=True)
    if done.returncode:
      sys.exit(done.stderr[-4000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))
    if args.out:
      os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
      with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return
  print(json.dumps(measure(args)))


if __name__ == "__main__":
  main()
