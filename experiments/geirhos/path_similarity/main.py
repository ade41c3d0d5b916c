"""Natural vs. synthetic path similarity, layer by layer (Geirhos et al. 2023, Fig. 5).

For K classes with a natural photo in the shared sample: render the class-logit feature
visualization, make V natural views of the photo (centre crop, its mirror image, random
crops and flips), and compare the spatially averaged activations of every leaky_re_lu and
max-pool layer and the logits by Spearman rank correlation. Per layer, normalise so that
natural views of the same class score 1 and natural views of different classes score 0.

Reproduce (CPU, 2 cores, about 3 minutes):

    python experiments/geirhos/path_similarity/main.py \
        --out experiments/geirhos/path_similarity/results --seed 0

``--scale paper`` uses 200 classes, 224 px and 512 steps (GPU/TPU). Writes config.json,
results.json, fig_path_similarity.png and fig_classes.png to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import fvjax
from fvjax.experiment import (jsonable, log, require_photos, shared_photos_dir,
                              write_json)
from fvjax.reliability import paths

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PHOTOS = str(shared_photos_dir())
SCALES = {
    "default": dict(classes=24, views=6, size=96, steps=160),
    "paper": dict(classes=200, views=8, size=224, steps=512),
    "smoke": dict(classes=3, views=3, size=32, steps=4),  # plumbing only
}


def summarize(layers, values):
  """Per-layer mean, std, median, quartiles of ``values`` ``[K, L]``."""
  return {l: {"mean": float(np.mean(values[:, i])), "std": float(np.std(values[:, i])),
              "median": float(np.median(values[:, i])),
              "q25": float(np.quantile(values[:, i], 0.25)),
              "q75": float(np.quantile(values[:, i], 0.75))}
          for i, l in enumerate(layers)}


def main(argv=None):
  matplotlib.use("Agg")  # the script only saves figures
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default=os.path.join(HERE, "results"))
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--scale", choices=sorted(SCALES), default="default")
  args = ap.parse_args(argv)
  require_photos(PHOTOS)
  os.makedirs(args.out, exist_ok=True)
  t0 = time.time()
  sc = SCALES[args.scale]
  model = fvjax.zoo.load("tiny-darknet")
  layers = paths.path_layers(model)
  synsets = [l.split("\t")[0] for l in open(os.path.join(REPO, "fvjax", "weights",
                                                           "tiny_darknet_labels.tsv"))]
  key = jax.random.key(args.seed)
  k_classes, k_views, k_render = (jax.random.fold_in(key, i) for i in range(3))

  log("classifying the 1000 photos at 224 to pick correctly classified classes")
  photos = fvjax.data.image_folder(PHOTOS, 224)
  logits = paths.layer_activations(model, photos.images, ["logits"], progress=True)["logits"]
  truth = np.array([synsets.index(s) for s in photos.labels])
  correct = np.flatnonzero(logits.argmax(1) == truth)
  pick = np.sort(np.asarray(jax.random.permutation(k_classes, len(correct)))[:sc["classes"]])
  chosen = correct[pick]
  classes = truth[chosen]
  names = [model.labels[c] for c in classes]
  cfg = {
      "seed": args.seed, "scale": args.scale, "model": "tiny-darknet", "layers": layers,
      "classes": classes.tolist(), "class_names": names,
      "photos": [photos.names[i] for i in chosen],
      "class_choice": f"{sc['classes']} classes drawn (fold_in(key(seed), 0)) among the "
                      f"{len(correct)} whose photo Tiny Darknet classifies correctly at 224",
      "views_per_class": sc["views"],
      "views": "view 0: centre square crop; view 1: its mirror image; others: random square "
               "crops of 60-100% of the shorter side, flipped with p=1/2 (fold_in(key, 1))",
      "size": sc["size"], "steps": sc["steps"],
      "visualization": "fvjax.render(class_logit(c)) with the defaults: Fourier + decorrelated "
                       "colour + sigmoid, Lucid's standard transforms, Adam(0.05); one image "
                       "per class (fold_in(key, 2))",
      "reduction": "spatial mean per channel; Spearman over channels",
      "normalisation": "per layer: (rho - mean different-class natural rho) / (mean same-class "
                       "natural rho - mean different-class natural rho), constants pooled over "
                       "classes",
      "primary_eval_size": f"everything (views and visualizations) at {sc['size']} px",
      "secondary_eval_size": "natural views at 224 px, visualizations at their render size",
  }

  log(f"natural views of {len(chosen)} photos")
  views_small, views_224 = [], []
  for j, i in enumerate(chosen):
    photo = fvjax.data.load_image(os.path.join(PHOTOS, photos.names[i]))
    kv = jax.random.fold_in(k_views, j)
    views_small.append(paths.natural_views(kv, photo, sc["size"], sc["views"]))
    views_224.append(paths.natural_views(kv, photo, 224, sc["views"]))
  views_small, views_224 = np.stack(views_small), np.stack(views_224)

  log(f"rendering {len(classes)} class visualizations at {sc['size']} px, {sc['steps']} steps")
  vis = fvjax.render(model, fvjax.objectives.class_logit(jnp.asarray(classes)), key=k_render,
                     steps=sc["steps"], size=sc["size"])

  log("activations")
  k, v = len(classes), sc["views"]
  acts_vis = paths.layer_activations(model, vis.images, layers)
  acts_small = paths.layer_activations(model, views_small.reshape(k * v, *views_small.shape[2:]),
                                       layers, progress=True)
  acts_224 = paths.layer_activations(model, views_224.reshape(k * v, *views_224.shape[2:]),
                                     layers, progress=True)
  res = paths.path_similarity(acts_vis, {l: a.reshape(k, v, -1) for l, a in acts_small.items()},
                              layers)
  res224 = paths.path_similarity(acts_vis, {l: a.reshape(k, v, -1) for l, a in acts_224.items()},
                                 layers)
  vis_top1 = acts_vis["logits"].argmax(1)
  view_top1 = acts_small["logits"].argmax(1).reshape(k, v)
  view224_top1 = acts_224["logits"].argmax(1).reshape(k, v)

  by_layer = {
      "same_class_rho": dict(zip(layers, res.same)),
      "different_class_rho": dict(zip(layers, res.different)),
      "visualization_rho": dict(zip(layers, res.raw.mean(0))),
      "visualization_normalized": summarize(layers, res.normalized),
      "visualization_vs_other_classes_normalized": summarize(layers, res.normalized_other),
      "natural_reference_normalized": summarize(layers, res.natural),
      "naturals_at_224": {
          "same_class_rho": dict(zip(layers, res224.same)),
          "different_class_rho": dict(zip(layers, res224.different)),
          "visualization_normalized": summarize(layers, res224.normalized),
      },
  }
  mean_norm = res.normalized.mean(0)
  results = {
      "summary": {
          "classes": k, "views_per_class": v, "size": sc["size"],
          "visualization_top1_is_class": float(np.mean(vis_top1 == classes)),
          "natural_views_top1_is_class": float(np.mean(view_top1 == classes[:, None])),
          "natural_views_224_top1_is_class": float(np.mean(view224_top1 == classes[:, None])),
          "normalized_mean_over_layers": float(mean_norm.mean()),
          "normalized_first_layer": float(mean_norm[0]),
          "normalized_logits": float(mean_norm[-1]),
          "normalized_min_layer": layers[int(np.argmin(mean_norm))],
          "normalized_min_value": float(mean_norm.min()),
          "layers_below_0.5": [l for l, m in zip(layers, mean_norm) if m < 0.5],
          "fraction_layers_below_0.5": float(np.mean(mean_norm < 0.5)),
          "normalized_per_layer_mean": dict(zip(layers, mean_norm)),
          "normalized_per_layer_mean_naturals_at_224": dict(zip(layers, res224.normalized.mean(0))),
      },
      "by_layer": by_layer,
      "per_class": {"class": classes, "name": names,
                    "normalized": res.normalized, "normalized_other": res.normalized_other,
                    "final_logit": vis.final},
      "runtime_s": time.time() - t0,
  }
  write_json(os.path.join(args.out, "config.json"), cfg)
  write_json(os.path.join(args.out, "results.json"), results)
  plot_curve(layers, res, res224, os.path.join(args.out, "fig_path_similarity.png"), sc)
  plot_classes(vis.images, views_small, names, os.path.join(args.out, "fig_classes.png"))
  print(json.dumps(jsonable({k_: v_ for k_, v_ in results["summary"].items()
                             if not k_.startswith("normalized_per_layer")}), indent=2))
  log(f"wrote {args.out} in {time.time() - t0:.0f} s")


def short(layer):
  return (layer.replace("leaky_re_lu_", "lrelu").replace("max_pooling2d_", "pool"))


def plot_curve(layers, res, res224, path, sc):
  x = np.arange(len(layers))
  fig, axes = plt.subplots(1, 2, figsize=(15, 4.8), gridspec_kw={"width_ratios": [2.2, 1]})
  ax = axes[0]
  ax.axhline(1, color="tab:green", lw=1, ls="--", label="same-class natural pairs (= 1)")
  ax.axhline(0, color="0.4", lw=1, ls="--", label="different-class natural pairs (= 0)")
  nat = res.natural
  ax.fill_between(x, np.quantile(nat, 0.1, 0), np.quantile(nat, 0.9, 0), color="tab:green",
                  alpha=0.12, label="natural same-class, per class (10-90%)")
  for values, color, label in (
      (res.normalized, "tab:red", "visualization vs. its class (mean, 25-75%, 10-90%)"),
      (res.normalized_other, "tab:gray", "visualization vs. other classes (mean)")):
    mean = values.mean(0)
    ax.plot(x, mean, "o-", color=color, ms=4, label=label)
    if color == "tab:red":
      ax.fill_between(x, np.quantile(values, 0.25, 0), np.quantile(values, 0.75, 0),
                      color=color, alpha=0.25)
      ax.fill_between(x, np.quantile(values, 0.1, 0), np.quantile(values, 0.9, 0),
                      color=color, alpha=0.1)
  ax.plot(x, res224.normalized.mean(0), "s--", color="tab:orange", ms=3,
          label="visualization vs. its class, naturals at 224 px (mean)")
  ax.set_xticks(x)
  ax.set_xticklabels([short(l) for l in layers], rotation=60, fontsize=8)
  ax.set_ylabel("normalised Spearman similarity")
  ax.set_title(f"Tiny Darknet: path similarity of class visualizations to natural images "
               f"({res.normalized.shape[0]} classes, {sc['size']} px)")
  ax.legend(fontsize=7.5, loc="upper left")
  ax = axes[1]
  ax.plot(x, res.same, "o-", color="tab:green", ms=3, label="same class (views of one photo)")
  ax.plot(x, res.different, "o-", color="0.4", ms=3, label="different classes")
  ax.plot(x, res.raw.mean(0), "o-", color="tab:red", ms=3, label="visualization vs. its class")
  ax.set_xticks(x)
  ax.set_xticklabels([short(l) for l in layers], rotation=60, fontsize=7)
  ax.set_ylabel("raw Spearman rho (mean)")
  ax.set_title("before normalisation")
  ax.legend(fontsize=7.5)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_classes(vis, views, names, path):
  n = min(len(names), 12)
  fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.6), squeeze=False)
  for i in range(n):
    for r, img in enumerate((vis[i], views[i, 0], views[i, 2])):
      axes[r, i].imshow(np.clip(img, 0, 1))
      axes[r, i].axis("off")
    axes[0, i].set_title(names[i][:14], fontsize=7)
  fig.suptitle("row 1: class-logit visualization; rows 2-3: natural views (centre crop, a "
               "random crop) of the class photo", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  main()
