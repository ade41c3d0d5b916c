"""Deletion / minimality game (Fong & Vedaldi 2017, section 5.3) on Tiny Darknet.

For each correctly classified shared photo and each method (meaningful-perturbation mask,
gradient saliency, gradient x input, guided backprop, occlusion), the map is min-max
normalised and thresholded at 100 levels (0, 0.01, ..., 0.99, as the authors' code); the
tight bounding box of the pixels above each level is blurred (sigma 10) and the softmax score
is normalised as (s - s_blur) / (s0 - s_blur). We report the smallest box whose blurring
brings that normalised score to <= 0.01 (a 99% drop), and to <= 0.05 / 0.1 / 0.2, averaged
over photos.

The mask has the paper's settings (those of the authors' code): 300 Adam steps (lr 0.1),
lambda1 1e-4, lambda2 1e-2, beta 3, a 28x28 mask upsampled x8 by nearest neighbour and
smoothed (5 px), jitter 4, blur sigma 10, initialised at the smallest centred blurred disc
whose deletion removes the class (``init="circle"``).

Default (2-core CPU): 36 photos, about 33 minutes (the wall time is in results.json).

    python experiments/attribution/deletion/main.py \
        --out experiments/attribution/deletion/results --seed 0

The earlier library-default run (16 photos, 100 steps, init 1, bilinear, 20 thresholds):

    python experiments/attribution/deletion/main.py --scale library-defaults \
        --out experiments/attribution/deletion/results_library_defaults --seed 0

Paper scale (GPU/TPU): every correctly classified shared photo (~580), occlusion stride 8:

    python experiments/attribution/deletion/main.py --scale paper \
        --out experiments/attribution/deletion/results_paper --seed 0

Writes config.json, results.json, paired.json (the mask against each method, photo by photo:
see paired.py), results.md, deletion_bars.png, deletion_levels.png and panel.png to --out.
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
import paired  # noqa: E402  (this folder, the script's own)

import fvjax  # noqa: E402
from fvjax import attribution as A  # noqa: E402

LEVELS = (0.2, 0.1, 0.05, 0.01)
METHODS = ("mask", "gradient", "gradient x input", "guided backprop", "occlusion")
PAPER_MASK = {"steps": 300, "init": "circle", "upsample": "nearest"}
SCALES = {
    "default": {"n_photos": 36, "n_thresholds": 100,
                "mask": {**PAPER_MASK, "batch_size": 6},
                "occlusion": {"window": 32, "stride": 16}},
    "library-defaults": {"n_photos": 16, "n_thresholds": 20,
                         "mask": {"steps": 100, "init": 1.0, "upsample": "bilinear",
                                  "batch_size": 8},
                         "occlusion": {"window": 32, "stride": 16}},
    "paper": {"n_photos": 1000, "n_thresholds": 100, "mask": {**PAPER_MASK, "batch_size": 16},
              "occlusion": {"window": 32, "stride": 8}},
}


def mask_init(text: str):
  """``--mask-init``: a number in [0, 1] or ``circle``."""
  return text if text == "circle" else float(text)


def panel(images, names, maps, results, path, rows=6):
  """One row per photo, the photo then one column per method: the map over the photo and
  the smallest box reaching a 99% drop."""
  rows = min(rows, len(images))
  cols = ["image", *maps]
  fig, axes = plt.subplots(rows, len(cols), figsize=(1.8 * len(cols), 1.8 * rows + 0.4),
                           squeeze=False)
  for r in range(rows):
    for c, name in enumerate(cols):
      ax = axes[r, c]
      ax.set_xticks([])
      ax.set_yticks([])
      if name == "image":
        ax.imshow(images[r])
        ax.set_ylabel(names[r].split("_", 1)[-1][:18], fontsize=7)
      else:
        ax.imshow(A.overlay(images[r:r + 1], maps[name][r:r + 1])[0])
        res = results[name]
        ok = res.normalized[r] <= 0.01
        j = int(np.argmin(np.where(ok, res.areas[r], 2.0)))
        t, l, b, rr = res.boxes[r, j]
        ax.add_patch(plt.Rectangle((l - 0.5, t - 0.5), rr - l, b - t, fill=False,
                                   edgecolor="w", lw=1.2))
        ax.set_xlabel(f"{100 * res.areas[r, j]:.0f}%", fontsize=7)
      if r == 0:
        ax.set_title(name, fontsize=8)
  fig.suptitle("smallest blurred box with a 99% score drop (white), per method", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def level_curves(summary, path):
  fig, ax = plt.subplots(figsize=(5, 3.4))
  drops = [100 * (1 - lv) for lv in LEVELS]
  for name, s in summary.items():
    ax.plot(drops, [100 * s[f"{lv}"]["mean"] for lv in LEVELS], marker="o", label=name)
  ax.set_xlabel("normalised score drop (%)")
  ax.set_ylabel("mean smallest box (% of image)")
  ax.set_title("deletion game (Fong & Vedaldi 2017, Fig. 8 protocol)", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv=None):
  matplotlib.use("Agg")  # the script only saves figures
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="experiments/attribution/deletion/results")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=sorted(SCALES), default="default")
  parser.add_argument("--n-photos", type=int, default=None, help="override the scale's count")
  parser.add_argument("--mask-steps", type=int, default=None, help="override the mask steps")
  parser.add_argument("--mask-penalties", choices=["mask", "image"], default="mask",
                      help="sum the L1/TV terms over the 28x28 mask (default) or the 224x224 one")
  parser.add_argument("--mask-init", type=mask_init, default=None,
                      help="initial mask: a value in [0, 1] or 'circle' (the scale's if unset)")
  parser.add_argument("--mask-upsample", choices=["nearest", "bilinear"], default=None,
                      help="resize of the 28x28 mask (the scale's if unset)")
  parser.add_argument("--n-thresholds", type=int, default=None,
                      help="levels 0, 1/n, ..., (n-1)/n (the scale's if unset)")
  args = parser.parse_args(argv)
  cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SCALES[args.scale].items()}
  if args.n_photos:
    cfg["n_photos"] = args.n_photos
  if args.mask_steps:
    cfg["mask"]["steps"] = args.mask_steps
  cfg["mask"]["penalties"] = args.mask_penalties
  if args.mask_init is not None:
    cfg["mask"]["init"] = args.mask_init
  if args.mask_upsample:
    cfg["mask"]["upsample"] = args.mask_upsample
  if args.n_thresholds:
    cfg["n_thresholds"] = args.n_thresholds
  thresholds = [round(i / cfg["n_thresholds"], 4) for i in range(cfg["n_thresholds"])]
  start = time.time()
  model = fvjax.zoo.load("tiny-darknet")
  photos, classes, tried = common.correct_photos(model, cfg["n_photos"], seed=args.seed)
  config = {
      "experiment": "deletion game (Fong & Vedaldi 2017, sec. 5.3)", "scale": args.scale,
      "seed": args.seed, "model": model.name, "photos": str(common.PHOTOS),
      "n_photos": len(photos.names), "photos_tried": tried, "methods": list(METHODS),
      "thresholds": thresholds,
      "blur_sigma": 10.0, "score": "softmax probability", "levels": list(LEVELS),
      "mask": {"game": "deletion", "perturbation": "blur", "l1": 1e-4, "tv": 1e-2, "beta": 3,
               "mask_size": 28, "mask_smooth": 5.0, "blur_sigma": 10.0, "jitter": 4,
               "learning_rate": 0.1, **cfg["mask"]},
      "occlusion": {"fill": "grey", "score": "probability", **cfg["occlusion"]},
      "environment": common.environment(),
  }
  common.write_json(os.path.join(args.out, "config.json"), config)
  table = common.method_table(cfg)
  key = jax.random.key(args.seed)
  maps, seconds, results, game_seconds = {}, {}, {}, {}
  mask_run = {}
  for name in METHODS:
    fn = table[name]
    if name == "mask":  # keep the whole result (init radius, scores) for results.json
      def fn(key, model, x, c):
        mask_run["result"] = A.meaningful_perturbation(key, model, x, c, progress=True,
                                                       **cfg["mask"])
        return mask_run["result"].saliency
    maps[name], seconds[name] = common.timed(fn, key, model, photos.images, classes)
    print(f"{name}: maps in {seconds[name]:.0f} s", flush=True)
    results[name], game_seconds[name] = common.timed(
        A.deletion_game, model, photos.images, classes, maps[name], thresholds=thresholds)
  summary, per_image = {}, {}
  for name, res in results.items():
    summary[name] = {}
    for level in LEVELS:
      area = A.minimal_deletion_area(res, level)
      summary[name][f"{level}"] = {
          "mean": float(area.mean()), "median": float(np.median(area)),
          "sem": float(area.std(ddof=1) / np.sqrt(len(area))) if len(area) > 1 else 0.0}
    per_image[name] = {"area_99": A.minimal_deletion_area(res, 0.01),
                       "normalized": res.normalized, "areas": res.areas}
  res0 = results[METHODS[0]]
  ranking = sorted(summary, key=lambda n: summary[n]["0.01"]["mean"])
  results_json = {
      "summary": summary, "ranking_at_99": ranking,
      "mask_smallest_at_99": ranking[0] == "mask",
      "photos": list(photos.names), "classes": classes, "s0": res0.base, "s_blur": res0.blurred,
      "per_image": per_image, "seconds": seconds, "deletion_game_seconds": game_seconds,
      "total_seconds": time.time() - start,
      "mask": {"init_radius_px": mask_run["result"].init_radius,
               "init_deleted_fraction": 1.0 - mask_run["result"].init.mean(axis=(1, 2)),
               "final_deleted_fraction": mask_run["result"].saliency.mean(axis=(1, 2)),
               "base_score": mask_run["result"].base,
               "perturbed_score": mask_run["result"].perturbed,
               "blurred_score": mask_run["result"].reference},
      "paper": {"claim": "the learned mask gives the smallest deletion boxes at every drop "
                         "level (GoogLeNet, ImageNet val; Fig. 8)",
                "methods": ["mask", "occlusion", "contrast excitation", "excitation",
                            "Grad-CAM", "gradient", "guided backprop"]},
  }
  common.write_json(os.path.join(args.out, "results.json"), results_json)
  common.write_json(os.path.join(args.out, "paired.json"), paired.paired(results_json))
  lines = [f"# Deletion game on {model.name}: smallest blurred box (% of image)", "",
           f"{len(photos.names)} correctly classified shared photos, seed {args.seed}, scale "
           f"{args.scale}; mask: {cfg['mask']['steps']} Adam steps, penalties summed over the "
           f"{'28x28' if cfg['mask']['penalties'] == 'mask' else 'full-size'} mask, init "
           f"{cfg['mask']['init']}, upsampling {cfg['mask']['upsample']}; "
           f"{cfg['n_thresholds']} thresholds. Mean (median, +- s.e.m.).",
           "", "| method | 99% drop (<= 0.01) | 95% drop | 90% drop | 80% drop |",
           "|---|---|---|---|---|"]
  for name in ranking:
    cells = [f"{100 * summary[name][str(lv)]['mean']:.1f} "
             f"({100 * summary[name][str(lv)]['median']:.1f}, "
             f"+-{100 * summary[name][str(lv)]['sem']:.1f})" for lv in (0.01, 0.05, 0.1, 0.2)]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  lines += ["", "Seconds per method (all photos): " +
            ", ".join(f"{n} {s:.0f}" for n, s in seconds.items()) + "."]
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  A.deletion_bars({n: per_image[n]["area_99"] for n in ranking},
                  os.path.join(args.out, "deletion_bars.png"),
                  title=f"{model.name}, {len(photos.names)} photos: smallest box for a 99% drop")
  level_curves(summary, os.path.join(args.out, "deletion_levels.png"))
  panel(photos.images, photos.names, maps, results, os.path.join(args.out, "panel.png"))
  print("\n".join(lines))
  print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
  main()
