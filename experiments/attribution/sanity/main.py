"""Sanity check by cascading randomisation (Adebayo et al. 2018) on Tiny Darknet.

Starting from the logits layer, the model's layers are re-initialised one at a time, top
down and cumulatively (a convolution together with its BatchNorm: kernel He-normal, BatchNorm
reset to the identity), until every layer is random. After each stage every method's maps are
recomputed for the same photos and class, and compared with the trained model's maps by the
Spearman rank correlation of their absolute values (and without absolute values). A method
whose maps stay correlated with the original ones while the weights they are supposed to
explain are destroyed fails the check (the paper: guided backprop and, to a lesser degree,
gradient x input; the gradient's correlation falls quickly).

Default (2-core CPU, ~10 min): 8 correctly classified shared photos; gradient, gradient x
input, guided backprop, deconvnet and occlusion (window 56, stride 28).

    python experiments/attribution/sanity/main.py \
        --out experiments/attribution/sanity/results --seed 0

Paper scale (GPU/TPU): 100 photos, occlusion stride 16, and the meaningful-perturbation mask
(300 steps) as a sixth method:

    python experiments/attribution/sanity/main.py --scale paper \
        --out experiments/attribution/sanity/results_paper --seed 0

Writes config.json, results.json, results.md, sanity_curves.png, sanity_curves_noabs.png and
cascade.png to --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

import fvjax  # noqa: E402
from fvjax import attribution as A  # noqa: E402

SCALES = {
    "default": {"n_photos": 8,
                "methods": ["gradient", "gradient x input", "guided backprop", "deconvnet",
                            "occlusion"],
                "occlusion": {"window": 56, "stride": 28}, "mask": {"steps": 100}},
    "paper": {"n_photos": 100,
              "methods": ["gradient", "gradient x input", "guided backprop", "deconvnet",
                          "occlusion", "mask"],
              "occlusion": {"window": 56, "stride": 16}, "mask": {"steps": 300,
                                                                  "batch_size": 16}},
}
TABLE_STAGES = ("conv2d_16", "conv2d_14", "conv2d_12", "conv2d_8", "conv2d_4", "conv2d_1")


def cascade_figure(image, stage_maps, stages, path, columns=9):
  """Rows: methods; columns: a subset of the stages; photo 0's maps."""
  picks = np.unique(np.linspace(0, len(stages) - 1, columns).round().astype(int))
  methods = list(stage_maps)
  fig, axes = plt.subplots(len(methods), len(picks) + 1,
                           figsize=(1.5 * (len(picks) + 1), 1.5 * len(methods) + 0.5),
                           squeeze=False)
  for r, name in enumerate(methods):
    axes[r, 0].imshow(image)
    axes[r, 0].set_ylabel(name, fontsize=7)
    for c, s in enumerate(picks, start=1):
      m = A.normalize(np.abs(stage_maps[name][s][:1]))[0]
      axes[r, c].imshow(m, cmap="inferno", vmin=0, vmax=1)
      if r == 0:
        axes[r, c].set_title(stages[s], fontsize=7)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  axes[0, 0].set_title("photo", fontsize=7)
  fig.suptitle("cascading randomisation: |map| of photo 0, trained model (left) to all "
               "layers random (right)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv=None):
  matplotlib.use("Agg")  # the script only saves figures
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="experiments/attribution/sanity/results")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=sorted(SCALES), default="default")
  parser.add_argument("--n-photos", type=int, default=None, help="override the scale's count")
  args = parser.parse_args(argv)
  cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SCALES[args.scale].items()}
  if args.n_photos:
    cfg["n_photos"] = args.n_photos
  start = time.time()
  model = fvjax.zoo.load("tiny-darknet")
  photos, classes, tried = common.correct_photos(model, cfg["n_photos"], seed=args.seed)
  key = jax.random.key(args.seed)
  stages = [("original", model)] + A.cascading_randomization(jax.random.fold_in(key, 1), model)
  names = [n for n, _ in stages]
  config = {
      "experiment": "cascading randomisation sanity check (Adebayo et al. 2018)",
      "scale": args.scale, "seed": args.seed, "model": model.name,
      "n_photos": len(photos.names), "photos_tried": tried, "methods": cfg["methods"],
      "stages": names, "groups": A.layer_groups(model),
      "randomisation": "kernels He-normal N(0, 2/fan_in), conv bias 0, BatchNorm scale 1, "
                       "bias 0, mean 0, var 1; cumulative from the logits down",
      "similarity": "Spearman rank correlation of |map| (and of the signed map)",
      "occlusion": cfg["occlusion"], "mask": cfg["mask"], "environment": common.environment(),
  }
  common.write_json(os.path.join(args.out, "config.json"), config)
  table = common.method_table(cfg)
  stage_maps = {m: [] for m in cfg["methods"]}
  seconds = {m: 0.0 for m in cfg["methods"]}
  for s, (stage, stage_model) in enumerate(stages):
    for name in cfg["methods"]:
      maps, dt = common.timed(table[name], jax.random.fold_in(key, 2), stage_model,
                              photos.images, classes)
      stage_maps[name].append(maps)
      seconds[name] += dt
    print(f"stage {s} ({stage}) done at {time.time() - start:.0f} s", flush=True)
  corr_abs, corr_raw, summary = {}, {}, {}
  for name, maps in stage_maps.items():
    corr_abs[name] = np.stack([A.rank_correlation(maps[0], m) for m in maps], axis=1)
    corr_raw[name] = np.stack([A.rank_correlation(maps[0], m, absolute=False) for m in maps],
                              axis=1)
    summary[name] = {stage: {"abs_mean": corr_abs[name][:, i].mean(),
                             "abs_std": corr_abs[name][:, i].std(),
                             "signed_mean": corr_raw[name][:, i].mean()}
                     for i, stage in enumerate(names)}
  results = {"stages": names, "summary": summary, "per_image_abs": corr_abs,
             "per_image_signed": corr_raw, "photos": list(photos.names), "classes": classes,
             "seconds": seconds, "total_seconds": time.time() - start,
             "paper": {"claim": "gradient and gradient x input maps decorrelate from the "
                                "originals as layers are randomised; guided backprop (and "
                                "guided Grad-CAM) stay highly correlated even with every "
                                "layer random (Inception v3, ImageNet; Fig. 2)"}}
  common.write_json(os.path.join(args.out, "results.json"), results)
  shown = [s for s in TABLE_STAGES if s in names]
  lines = [f"# Cascading randomisation on {model.name}: Spearman rank correlation of |map| "
           "with the trained model's map", "",
           f"{len(photos.names)} correctly classified shared photos, seed {args.seed}, scale "
           f"{args.scale}. Column = randomised from the logits down to (and including) that "
           "layer; mean over photos (signed-map correlation in brackets).", "",
           "| method | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
  for name in cfg["methods"]:
    lines.append(f"| {name} | " + " | ".join(
        f"{summary[name][s]['abs_mean']:.2f} ({summary[name][s]['signed_mean']:.2f})"
        for s in shown) + " |")
  lines += ["", "Seconds per method (all stages): " +
            ", ".join(f"{n} {s:.0f}" for n, s in seconds.items()) + "."]
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  A.sanity_curves(corr_abs, names, os.path.join(args.out, "sanity_curves.png"),
                  title=f"{model.name}: cascading randomisation, rank correlation of |map|")
  A.sanity_curves(corr_raw, names, os.path.join(args.out, "sanity_curves_noabs.png"),
                  title=f"{model.name}: cascading randomisation, rank correlation (signed)")
  cascade_figure(photos.images[0], stage_maps, names, os.path.join(args.out, "cascade.png"))
  print("\n".join(lines))
  print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
  main()
