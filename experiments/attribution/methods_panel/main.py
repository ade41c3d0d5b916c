"""Every attribution method side by side on a few shared photos, plus the views, on Tiny Darknet.

Maps (one column per method, one row per photo): gradient saliency (Simonyan et al. 2014),
gradient x input, guided backprop and deconvnet (Springenberg et al. 2015, by rewriting the
model's LeakyReLU backward rule), occlusion (Zeiler & Fergus 2014, grey 32 px square, stride
8), and the meaningful-perturbation masks of the deletion and preservation games (Fong &
Vedaldi 2017, blur perturbation). Also: class model visualisations (Simonyan et al.) of the
photos' classes, plain and with blur / small-norm clipping, the first-layer filters and the
activation maps of every channel of a layer for one photo.

Default (2-core CPU, ~12 min): 4 photos, masks 150 Adam steps, class models 200 steps.

    python experiments/attribution/methods_panel/main.py \
        --out experiments/attribution/methods_panel/results --seed 0

Paper scale (GPU/TPU): 8 photos, masks 300 steps (the paper's), class models 1000 steps:

    python experiments/attribution/methods_panel/main.py --scale paper \
        --out experiments/attribution/methods_panel/results_paper --seed 0

Writes config.json, results.json, results.md and panel.png, panel_overlay.png,
reconstructions.png, class_models.png, filters.png, activations.png to --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

import fvjax  # noqa: E402
from fvjax import attribution as A  # noqa: E402

SCALES = {
    "default": {"n_photos": 4, "mask_steps": 150, "class_steps": 200, "occlusion_stride": 8},
    "paper": {"n_photos": 8, "mask_steps": 300, "class_steps": 1000, "occlusion_stride": 4},
}
ACTIVATION_LAYER = "leaky_re_lu_2"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="experiments/attribution/methods_panel/results")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=sorted(SCALES), default="default")
  args = parser.parse_args(argv)
  cfg = dict(SCALES[args.scale])
  start = time.time()
  model = fvjax.zoo.load("tiny-darknet")
  photos, classes, tried = common.correct_photos(model, cfg["n_photos"], seed=args.seed)
  x = photos.images
  key = jax.random.key(args.seed)
  config = {"experiment": "methods panel", "scale": args.scale, "seed": args.seed,
            "model": model.name, "photos": list(photos.names), "photos_tried": tried, **cfg,
            "occlusion": {"window": 32, "stride": cfg["occlusion_stride"], "fill": "grey"},
            "mask": "library defaults (Fong & Vedaldi: l1 1e-4, tv 1e-2, beta 3, 28x28 mask, "
                    "blur sigma 10, jitter 4, Adam 0.1) except steps",
            "class_model": {"plain": {"weight_decay": 1e-3},
                            "regularised": {"weight_decay": 1e-3, "blur_every": 4,
                                            "blur_sigma": 1.0, "norm_percentile": 20.0}},
            "activation_layer": ACTIVATION_LAYER, "environment": common.environment()}
  common.write_json(os.path.join(args.out, "config.json"), config)
  seconds = {}

  def run(name, fn, *a, **k):
    out, seconds[name] = common.timed(fn, *a, **k)
    print(f"{name}: {seconds[name]:.0f} s", flush=True)
    return out

  maps = {
      "gradient": run("gradient", A.saliency, model, x, classes),
      "gradient x input": run("gradient x input", A.gradient_x_input, model, x, classes),
      "guided backprop": run("guided backprop", A.guided_backprop, model, x, classes),
      "deconvnet": run("deconvnet", A.deconvnet, model, x, classes),
      "occlusion": run("occlusion", A.occlusion, model, x, classes, window=32,
                       stride=cfg["occlusion_stride"]),
  }
  deletion = run("mask (deletion)", A.meaningful_perturbation, jax.random.fold_in(key, 1),
                 model, x, classes, steps=cfg["mask_steps"])
  preservation = run("mask (preservation)", A.meaningful_perturbation,
                     jax.random.fold_in(key, 2), model, x, classes, game="preservation",
                     steps=cfg["mask_steps"])
  maps["mask (deletion)"] = deletion.saliency
  maps["mask (preservation)"] = preservation.saliency
  labels = [n.split("_", 1)[-1].rsplit(".", 1)[0][:20] for n in photos.names]
  A.attribution_panel(x, maps, os.path.join(args.out, "panel.png"), labels=labels,
                      title=f"{model.name}: attribution maps for the true class")
  A.attribution_panel(x, maps, os.path.join(args.out, "panel_overlay.png"), labels=labels,
                      overlay_maps=True, title=f"{model.name}: maps over the photos")
  raw = {}
  for rule in ("gradient", "guided", "deconvnet"):
    signal = A.backprop(model, x, classes, rule=rule)
    scale = np.percentile(np.abs(signal), 99.5, axis=(1, 2, 3), keepdims=True)
    raw[rule] = np.clip(0.5 + 0.5 * signal / np.maximum(scale, 1e-12), 0, 1)
  A.attribution_panel(x, raw, os.path.join(args.out, "reconstructions.png"), labels=labels,
                      title="backward signal at the input (RGB, 0.5 = zero)")
  plain = run("class model", A.class_model, model, classes, steps=cfg["class_steps"],
              **config["class_model"]["plain"])
  regular = run("class model (regularised)", A.class_model, model, classes,
                steps=cfg["class_steps"], **config["class_model"]["regularised"])
  A.attribution_panel(x, {"class model": plain.images, "blur + clip": regular.images},
                      os.path.join(args.out, "class_models.png"), labels=labels,
                      title="class model visualisation (Simonyan et al.) of each photo's class")
  A.filter_grid(model, os.path.join(args.out, "filters.png"))
  A.activation_grid(model, x[0], ACTIVATION_LAYER, os.path.join(args.out, "activations.png"),
                    title=f"{model.name}: {ACTIVATION_LAYER} for {labels[0]}")
  probs = np.asarray(jax.nn.softmax(model(x)["logits"]))
  results = {
      "photos": list(photos.names), "classes": classes,
      "probability": probs[np.arange(len(x)), classes],
      "mask_deletion": {"base": deletion.base, "perturbed": deletion.perturbed,
                        "fully_blurred": deletion.reference,
                        "deleted_fraction": (1 - deletion.masks).mean(axis=(1, 2))},
      "mask_preservation": {"base": preservation.base, "perturbed": preservation.perturbed,
                            "fully_blurred": preservation.reference,
                            "kept_fraction": preservation.masks.mean(axis=(1, 2))},
      "class_model": {"initial_logit": plain.initial, "final_logit": plain.scores,
                      "final_logit_regularised": regular.scores},
      "rank_correlation_with_gradient": {
          n: A.rank_correlation(maps["gradient"], m).mean() for n, m in maps.items()},
      "seconds": seconds, "total_seconds": time.time() - start,
  }
  common.write_json(os.path.join(args.out, "results.json"), results)
  lines = [f"# Methods panel on {model.name}", "",
           f"{len(x)} correctly classified shared photos (seed {args.seed}, scale {args.scale}).",
           "", "| photo | p(class) | deletion mask: deleted % | p after deletion | p fully "
           "blurred | preservation mask: kept % | p with only kept | class model logit "
           "(start -> end) |", "|---|---|---|---|---|---|---|---|"]
  for i, label in enumerate(labels):
    lines.append(
        f"| {label} | {results['probability'][i]:.3f} | "
        f"{100 * results['mask_deletion']['deleted_fraction'][i]:.1f} | "
        f"{deletion.perturbed[i]:.3f} | {deletion.reference[i]:.3f} | "
        f"{100 * results['mask_preservation']['kept_fraction'][i]:.1f} | "
        f"{preservation.perturbed[i]:.3f} | {plain.initial[i]:.1f} -> {plain.scores[i]:.1f} |")
  lines += ["", "Seconds: " + ", ".join(f"{n} {s:.0f}" for n, s in seconds.items()) + "."]
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))
  print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
  main()
