"""Olah et al. (2017), "Preconditioning and parameterization": steepest ascent under three
metrics on the same units, same steps, same seeds.

    python experiments/preconditioning/main.py --out experiments/preconditioning/results

- ``pixel_l2``: plain gradient ascent on pixels (steepest ascent in the L2 metric);
- ``pixel_linf``: sign-gradient ascent on pixels (steepest ascent in the L-infinity metric);
- ``decorrelated``: plain gradient ascent on Lucid's Fourier + decorrelated-colour parameters.

Every method is plain SGD (no Adam, whose per-coordinate scaling is itself a preconditioner);
each gets the best of its learning rates (all are reported). The grid starts from the scale's
rates and is widened, one rate at a time beyond whichever edge holds the best, until no
method's best is at an edge of its grid (a run that diverges, final objective NaN, counts as
worse than any other), up to ``--max-extra`` extra rates per method. Writes ``config.json``,
``results.json`` (final objectives and the steps each method needs to reach a fraction of the
best final value), ``images.png`` (methods x units) and ``curves.png``.
"""

import argparse
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fvjax
from fvjax import objectives as O

SCALES = {
    "default": dict(size=96, steps=192, units=(3, 13, 42, 77), lrs={
        "pixel_l2": (1e1, 1e2, 1e3), "pixel_linf": (0.03, 0.1, 0.3),
        "decorrelated": (1.0, 3.0, 10.0)}),
    "paper": dict(size=128, steps=512, units=tuple(range(0, 256, 16)), lrs={
        "pixel_l2": (1e1, 1e2, 1e3, 1e4, 1e5), "pixel_linf": (0.003, 0.01, 0.03, 0.1, 0.3),
        "decorrelated": (0.1, 0.3, 1.0, 3.0, 10.0)}),
}


@fvjax.pytree.dataclass
class SignSGD(fvjax.optvis.Optimizer):
  """Steepest ascent in L-infinity: step every coordinate by ``learning_rate`` along the
  gradient sign. The rate is traced, so every rate reuses one compiled loop."""
  learning_rate: Any = np.float32(0.1)

  def transformation(self) -> optax.GradientTransformation:
    return optax.chain(optax.stateless(lambda g, _: jax.tree.map(jnp.sign, g)),
                       optax.sgd(self.learning_rate))


def method_settings(name: str, size: int, lr: float):
  """Parameterization and optimizer of a method; the rate is traced (one compile per method)."""
  lr = np.float32(lr)
  if name == "pixel_l2":
    return fvjax.param.pixel(size), fvjax.optvis.SGD(lr)
  if name == "pixel_linf":
    return fvjax.param.pixel(size), SignSGD(lr)
  return fvjax.param.image(size), fvjax.optvis.SGD(lr)


def steps_to_reach(trace: np.ndarray, target: float, window: int = 8) -> int | None:
  """First step at which the running mean (``window`` steps) of ``trace`` reaches ``target``."""
  smooth = np.convolve(trace, np.ones(window) / window, mode="valid")
  hits = np.flatnonzero(smooth >= target)
  return None if not len(hits) else int(hits[0] + window)


def extend(lrs: list[float], finals: dict[float, float]) -> float | None:
  """The next rate to try when the best of ``lrs`` (by ``finals``, NaN = worst) sits at an
  edge of the sorted grid: one grid ratio beyond that edge; None when the best is inside."""
  lrs = sorted(lrs)
  score = [finals[lr] if np.isfinite(finals[lr]) else -np.inf for lr in lrs]
  best = int(np.argmax(score))
  if best == len(lrs) - 1:
    return lrs[-1] * (lrs[-1] / lrs[-2])
  if best == 0:
    return lrs[0] / (lrs[1] / lrs[0])
  return None


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="experiments/preconditioning/results")
  parser.add_argument("--layer", default="leaky_re_lu_8")
  parser.add_argument("--scale", default="default", choices=sorted(SCALES))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--max-extra", type=int, default=4,
                      help="most rates added beyond a grid edge per method")
  args = parser.parse_args()
  cfg = SCALES[args.scale]
  os.makedirs(args.out, exist_ok=True)
  model = fvjax.zoo.load("tiny-darknet")
  objective = O.channel(args.layer, jnp.asarray(cfg["units"]))
  key = jax.random.key(args.seed)
  runs, start = {}, time.time()
  grids, added, edge_free = {}, {}, {}

  def run(name, lr):
    param, optimizer = method_settings(name, cfg["size"], lr)
    result = fvjax.render(model, objective, key=key, steps=cfg["steps"], param=param,
                          optimizer=optimizer, progress=False)
    runs[(name, lr)] = result
    print(f"{name:13s} lr={lr:<8g} final objective {result.final.mean():.3f}", flush=True)

  def final(name, lr):
    value = float(runs[(name, lr)].final.mean())
    return value if np.isfinite(value) else -np.inf

  for name, lrs in cfg["lrs"].items():
    grid = sorted(float(lr) for lr in lrs)
    for lr in grid:
      run(name, lr)
    added[name] = []
    while True:
      nxt = extend(grid, {lr: final(name, lr) for lr in grid})
      if nxt is None or len(added[name]) >= args.max_extra:
        break
      nxt = float(f"{nxt:.6g}")
      run(name, nxt)
      added[name].append(nxt)
      grid = sorted([*grid, nxt])
    grids[name] = grid
    edge_free[name] = extend(grid, {lr: final(name, lr) for lr in grid}) is None
  best = {name: max(grid, key=lambda lr: final(name, lr)) for name, grid in grids.items()}
  best_final = max(runs[(n, lr)].final.mean() for n, lr in best.items())
  results = {"seconds": time.time() - start, "best_lr": best, "grids": grids,
             "rates_added_beyond_the_start_grid": added,
             "best_inside_grid": edge_free, "methods": {}}
  for name, lr in best.items():
    r = runs[(name, lr)]
    results["methods"][name] = {
        "final_objective_mean": float(r.final.mean()),
        "final_objective_per_unit": r.final.tolist(),
        "all_lrs": {str(l): float(runs[(name, l)].final.mean()) for l in grids[name]},
        "steps_to_reach": {f"{int(f * 100)}%_of_best": [steps_to_reach(t, f * best_final)
                                                        for t in r.trace]
                           for f in (0.25, 0.5, 0.75)},
    }
  labels = [f"{args.layer}:{u}" for u in cfg["units"]]
  images = np.concatenate([runs[(n, lr)].images for n, lr in best.items()])
  fvjax.plot.image_grid(images, os.path.join(args.out, "images.png"), ncols=len(labels),
                        labels=[f"{n} (lr {lr:g})\n{u}" for n, lr in best.items() for u in labels],
                        title=f"Tiny Darknet, {cfg['steps']} steps of plain SGD, same seeds")
  fvjax.plot.objective_curves({f"{n} (lr {lr:g})": runs[(n, lr)].trace for n, lr in best.items()},
                              os.path.join(args.out, "curves.png"),
                              title=f"{args.layer}, units {list(cfg['units'])}: mean and range")
  with open(os.path.join(args.out, "config.json"), "w") as f:
    json.dump({"layer": args.layer, "scale": args.scale, "seed": args.seed,
               **{k: v for k, v in cfg.items() if k != "lrs"},
               "start_lrs": cfg["lrs"], "max_extra": args.max_extra,
               "transforms": "Lucid standard"}, f, indent=2)
  fvjax.experiment.write_json(os.path.join(args.out, "results.json"), results)
  print(json.dumps({n: m["final_objective_mean"] for n, m in results["methods"].items()}))


if __name__ == "__main__":
  main()
