"""Silent units: every unit of a layer visualizes a target pattern, predictions unchanged.

Part 2 of Geirhos et al. 2023, "Don't trust your eyes" (paper: ResNet-50 layer4.1 conv2,
512 units). Here: Tiny Darknet conv2d_12 (3x3, 64 -> 512 channels, stride 16, the last
stage but one), all 512 units manipulated; the visualized unit is channel u of
leaky_re_lu_12. Each unit gets ``+ ReLU(conv(x, f_u) + b_u)`` after its BatchNorm, with
``f_u`` mostly orthogonal to the unit's weights and tuned to a target photo, and ``b_u`` minus
the filter's maximum over the 1000 natural photos (see `fvjax.reliability.silent`).

Reproduce (CPU, 2 cores, about 3 minutes when the machine is otherwise idle):

    python experiments/geirhos/silent_units/main.py \
        --out experiments/geirhos/silent_units/results --seed 0

``--scale paper`` renders all 512 units at 224 px for 512 steps (GPU/TPU).
Writes config.json, results.json, fig_units.png, fig_grid_before.png, fig_grid_after.png,
fig_similarity.png and fig_ablation.png to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
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
from fvjax.reliability import paths, silent

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PHOTOS = str(shared_photos_dir())

ABLATION_MIXES = (1.0, 3.0, math.inf)  # 3: the authors' notebook; inf: purely orthogonal
SCALES = {
    # units rendered (all are manipulated), render size/steps, ablation units
    "default": dict(render_every=16, size=64, steps=128, ablation_units=8, show=16),
    "paper": dict(render_every=1, size=224, steps=512, ablation_units=64, show=16),
    "smoke": dict(render_every=64, size=32, steps=8, ablation_units=4, show=8),  # plumbing only
}


def prediction_check(su, original, images, batch_size=50):
  """Agreement and largest differences of logits and of the manipulated layer, and how
  often the added branches fire, from one pass through both models."""
  c = silent.compare_on(su, original, images, layer="leaky_re_lu_12", batch_size=batch_size,
                        progress=True)
  top_a = c["logits_original"].argmax(1)
  top_b = c["logits_manipulated"].argmax(1)
  pre = c["branch"]
  return {
      "images": len(images),
      "top1_agreement": float(np.mean(top_a == top_b)),
      "max_abs_logit_diff": float(np.max(np.abs(c["logits_original"] -
                                                c["logits_manipulated"]))),
      "max_abs_layer_max_diff": float(np.max(np.abs(c["layer_original"] -
                                                    c["layer_manipulated"]))),
      "logits_bitwise_identical": bool(np.array_equal(c["logits_original"],
                                                      c["logits_manipulated"])),
      "fraction_images_any_branch_fires": float(np.mean((pre > 0).any(1))),
      "fraction_image_unit_pairs_fire": float(np.mean(pre > 0)),
      "max_branch_preactivation": float(pre.max()),
  }, top_a, pre


def main(argv=None):
  matplotlib.use("Agg")  # the script only saves figures
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default=os.path.join(HERE, "results"))
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--scale", choices=sorted(SCALES), default="default")
  ap.add_argument("--target", default="n07745940_strawberry.jpg",
                  help="file name of the target photo in the shared sample")
  ap.add_argument("--mix", type=float, default=0.5)
  ap.add_argument("--gain", type=float, default=100.0)
  ap.add_argument("--limit", type=int, default=None, help="use only the first N photos")
  args = ap.parse_args(argv)
  require_photos(PHOTOS)
  os.makedirs(args.out, exist_ok=True)
  t0 = time.time()
  sc = SCALES[args.scale]
  conv, bn, vis_layer = "conv2d_12", "batch_normalization_12", "leaky_re_lu_12"
  model = fvjax.zoo.load("tiny-darknet")
  channels = model.layer_shape(vis_layer)[-1]
  rendered = np.arange(0, channels, sc["render_every"])
  ablation = rendered[:sc["ablation_units"]]
  upstream = paths.path_layers(model, up_to="leaky_re_lu_11", logits=False)
  cfg = {
      "seed": args.seed, "scale": args.scale, "model": "tiny-darknet", "conv_layer": conv,
      "added_after": bn, "visualized_layer": vis_layer, "units_manipulated": channels,
      "units_rendered": rendered.tolist(), "render_size": sc["size"], "render_steps": sc["steps"],
      "render": "fvjax.render defaults: Fourier + decorrelated colour + sigmoid, Lucid's "
                "standard transforms, Adam(0.05); objective channel(leaky_re_lu_12, u)",
      "target_photo": args.target, "target_size": 224, "mix": args.mix, "gain": args.gain,
      "margin": 1e-4, "centre_target_on_natural_mean": True,
      "natural_images": f"all photos of {PHOTOS} resized to 224x224 (no crop)",
      "held_out_images": "the same photos flipped left-right (not used for the biases)",
      "similarity_layers": upstream,
      "ablation_mixes": [str(m) for m in ABLATION_MIXES], "ablation_units": ablation.tolist(),
      "keys": "target visualization: fold_in(key(seed), 1); unit renders (before, after and "
              "ablations share it): fold_in(key(seed), 2)",
  }
  key = jax.random.key(args.seed)
  k_target, k_units = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)

  log("loading the natural photos at 224")
  natural = fvjax.data.image_folder(PHOTOS, 224, limit=args.limit)
  flipped = natural.images[:, :, ::-1]
  target = fvjax.data.load_image(os.path.join(PHOTOS, args.target), 224, crop=True)[None]

  log(f"input of {conv} for the natural photos")
  inputs = silent.conv_module_input(model, conv, natural.images, progress=True)
  log("building the silent units")
  su = silent.make_silent_units(model, conv, target, None, natural_inputs=inputs,
                                mix=args.mix, gain=args.gain, margin=1e-4, progress=True)
  manipulated = su.model
  w = su.weights.reshape(-1, channels)
  d = su.directions.reshape(-1, channels)
  ortho = np.abs(np.sum(w * d, 0)) / np.linalg.norm(w, axis=0)
  build = {
      "add_to": su.add_to,
      "max_abs_cos_direction_weights": float(ortho.max()),
      "cos_filter_weights": float(np.mean(su.cosine)),
      "orthogonal_fraction_of_filter": float(args.mix / math.sqrt(1 + args.mix ** 2)),
      "bias_min": float(su.biases.min()), "bias_median": float(np.median(su.biases)),
      "bias_max": float(su.biases.max()),
  }
  log(f"built: cos(filter, weights) = {build['cos_filter_weights']:.3f}, max |cos(d, w)| = "
      f"{build['max_abs_cos_direction_weights']:.2e}")

  log("predictions on the natural photos (biases measured on them) and flipped (held out)")
  same_set, top_orig, _ = prediction_check(su, model, natural.images)
  held_out, _, pre_flip = prediction_check(su, model, flipped)
  # A larger safety margin on the bias, -(max + (su.margin + m) |max|), lowers the measured
  # pre-activations by m |max|.
  scale_m = np.abs(su.natural_max)[None]
  held_out["margin_sweep"] = [
      {"margin": su.margin + m, "fraction_images_any_branch_fires": float(np.mean(
          (pre_flip - m * scale_m > 0).any(1))),
       "fraction_image_unit_pairs_fire": float(np.mean(pre_flip - m * scale_m > 0))}
      for m in (0.0, 0.02, 0.05, 0.1, 0.2)]
  labels = [l.split("\t")[0] for l in open(os.path.join(REPO, "fvjax", "weights",
                                                          "tiny_darknet_labels.tsv"))]
  truth = np.array([labels.index(s) for s in natural.labels])
  accuracy = {"original_top1": float(np.mean(top_orig == truth))}
  log(f"same set: {same_set}")
  log(f"held out: {held_out}")

  log("target visualization (the target filter itself, unmanipulated model)")
  probe = silent.filter_probe(model, conv, su.target, name="target_probe")
  rkw = dict(steps=sc["steps"], size=sc["size"])
  target_vis = fvjax.render(probe, fvjax.objectives.channel("target_probe", 0), key=k_target,
                            **rkw)
  obj = fvjax.objectives.channel(vis_layer, jnp.asarray(rendered))
  log(f"rendering {len(rendered)} units before manipulation")
  before = fvjax.render(model, obj, key=k_units, **rkw)
  log(f"rendering {len(rendered)} units after manipulation")
  after = fvjax.render(manipulated, obj, key=k_units, **rkw)

  def measure(images, su_used):
    feats = paths.layer_activations(probe, images, upstream, extra={"probe": "target_probe"})
    tfeat = paths.layer_activations(probe, target_vis.images, upstream,
                                    extra={"probe": "target_probe"})
    sim = np.mean([paths.spearman_matrix(feats[l], tfeat[l])[:, 0] for l in upstream], axis=0)
    response = feats["probe"][:, 0] / tfeat["probe"][0, 0]
    fires = silent.branch_preactivation(su_used, images)
    on = fires[np.arange(len(images)), rendered[:len(images)]] > 0
    return sim, response, on

  sim_b, resp_b, on_b = measure(before.images, su)
  sim_a, resp_a, on_a = measure(after.images, su)
  unit_stats = {
      "similarity_to_target_vis_before_mean": float(sim_b.mean()),
      "similarity_to_target_vis_after_mean": float(sim_a.mean()),
      "similarity_to_target_vis_before_median": float(np.median(sim_b)),
      "similarity_to_target_vis_after_median": float(np.median(sim_a)),
      "fraction_units_more_similar_after": float(np.mean(sim_a > sim_b)),
      "target_response_before_mean": float(resp_b.mean()),
      "target_response_after_mean": float(resp_a.mean()),
      "fraction_units_branch_on_after": float(on_a.mean()),
      "fraction_units_branch_on_before": float(on_b.mean()),
      "objective_before_median": float(np.median(before.final)),
      "objective_after_median": float(np.median(after.final)),
      "similarity_after_switched_mean": float(sim_a[on_a].mean()) if on_a.any() else None,
      "images_identical_to_before_when_branch_off": bool(all(
          np.array_equal(after.images[i], before.images[i]) for i in np.flatnonzero(~on_a))),
      "similarity_after_not_switched_mean": float(sim_a[~on_a].mean()) if (~on_a).any() else None,
  }
  log(f"units: {unit_stats}")

  log(f"ablation over mix {ABLATION_MIXES} on {len(ablation)} units")
  ablations = {f"{args.mix:g}": {"switch_rate": float(on_a[:len(ablation)].mean()),
                                 "similarity_mean": float(sim_a[:len(ablation)].mean())}}
  abl_images = {}
  for mix in ABLATION_MIXES:
    su_m = silent.make_silent_units(model, conv, target, None, natural_inputs=inputs, mix=mix,
                                    gain=args.gain, progress=False)
    res = fvjax.render(su_m.model, fvjax.objectives.channel(vis_layer, jnp.asarray(ablation)),
                       key=k_units, **rkw)
    sim_m, resp_m, on_m = measure(res.images, su_m)
    ablations[f"{mix:g}"] = {"switch_rate": float(on_m.mean()),
                             "similarity_mean": float(sim_m.mean()),
                             "target_response_mean": float(resp_m.mean()),
                             "cos_filter_weights": float(np.mean(su_m.cosine))}
    abl_images[f"{mix:g}"] = res.images
  ablations[f"{args.mix:g}"]["target_response_mean"] = float(resp_a[:len(ablation)].mean())
  ablations[f"{args.mix:g}"]["cos_filter_weights"] = float(np.mean(su.cosine))
  ablations["before"] = {"similarity_mean": float(sim_b[:len(ablation)].mean()),
                         "target_response_mean": float(resp_b[:len(ablation)].mean())}
  log(f"ablation: {ablations}")

  results = {
      "summary": {
          "units_manipulated": channels,
          "units_rendered": len(rendered),
          "natural_top1_agreement": same_set["top1_agreement"],
          "natural_max_abs_logit_diff": same_set["max_abs_logit_diff"],
          "held_out_top1_agreement": held_out["top1_agreement"],
          "held_out_max_abs_logit_diff": held_out["max_abs_logit_diff"],
          "switch_rate": unit_stats["fraction_units_branch_on_after"],
          "similarity_to_target_vis_before": unit_stats["similarity_to_target_vis_before_mean"],
          "similarity_to_target_vis_after": unit_stats["similarity_to_target_vis_after_mean"],
          "fraction_units_more_similar_after": unit_stats["fraction_units_more_similar_after"],
      },
      "build": build,
      "accuracy_on_sample": accuracy,
      "predictions_natural_same_set": same_set,
      "predictions_held_out_flipped": held_out,
      "units": unit_stats,
      "ablation_mix": ablations,
      "per_unit": {"unit": rendered, "similarity_before": sim_b, "similarity_after": sim_a,
                   "target_response_before": resp_b, "target_response_after": resp_a,
                   "branch_on_after": on_a, "objective_before": before.final,
                   "objective_after": after.final, "natural_max": su.natural_max[rendered],
                   "bias": su.biases[rendered]},
      "runtime_s": time.time() - t0,
  }
  write_json(os.path.join(args.out, "config.json"), cfg)
  write_json(os.path.join(args.out, "results.json"), results)

  show = np.arange(min(sc["show"], len(rendered)))
  plot_units(target[0], target_vis.images[0], before.images[show], after.images[show],
             rendered[show], on_a[show], os.path.join(args.out, "fig_units.png"))
  na = len(ablation)
  plot_ablation(before.images[:na], after.images[:na], args.mix, abl_images, ablation,
                os.path.join(args.out, "fig_ablation.png"))
  ncols = int(math.ceil(math.sqrt(len(rendered))))
  fvjax.plot.image_grid(before.images, os.path.join(args.out, "fig_grid_before.png"),
                        labels=[str(u) for u in rendered], ncols=ncols,
                        title=f"{vis_layer}, original Tiny Darknet", tile_inches=1.0)
  fvjax.plot.image_grid(after.images, os.path.join(args.out, "fig_grid_after.png"),
                        labels=[f"{u}{'' if o else ' (off)'}" for u, o in zip(rendered, on_a)],
                        ncols=ncols, title=f"{vis_layer}, silent units added (predictions on "
                        "the 1000 calibration photos unchanged)", tile_inches=1.0)
  plot_similarity(sim_b, sim_a, resp_b, resp_a, on_a, ablations,
                  os.path.join(args.out, "fig_similarity.png"))
  print(json.dumps(jsonable(results["summary"]), indent=2))
  log(f"wrote {args.out} in {time.time() - t0:.0f} s")


def plot_units(target, target_vis, before, after, units, on, path):
  n = len(units)
  fig, axes = plt.subplots(2, n + 1, figsize=(1.25 * (n + 1), 3.3), squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  axes[0, 0].imshow(target)
  axes[0, 0].set_title("target photo", fontsize=7)
  axes[1, 0].imshow(np.clip(target_vis, 0, 1))
  axes[1, 0].set_title("target filter's\nvisualization", fontsize=7)
  for i in range(n):
    axes[0, i + 1].imshow(np.clip(before[i], 0, 1))
    axes[0, i + 1].set_title(f"unit {units[i]}", fontsize=7)
    axes[1, i + 1].imshow(np.clip(after[i], 0, 1))
    axes[1, i + 1].set_title("branch on" if on[i] else "branch off (same image)", fontsize=6,
                             color="k" if on[i] else "tab:red")
  for r, label in enumerate(["original", "manipulated"]):
    axes[r, 1].text(-0.08, 0.5, label, transform=axes[r, 1].transAxes, rotation=90,
                    ha="right", va="center", fontsize=8)
  fig.suptitle("Silent units in Tiny Darknet leaky_re_lu_12: feature visualizations before "
               "(row 1) and after (row 2) the manipulation;\npredictions on the 1000 photos the "
               "biases were set on are unchanged (see results.json for held-out photos)",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_ablation(before, after, main_mix, abl_images, abl_units, path):
  rows = [("original", before), (f"mix={main_mix:g} (used)", after)] + [
      (f"mix={k}", v) for k, v in abl_images.items()]
  n = len(abl_units)
  fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n + 0.6, 1.35 * len(rows) + 0.5),
                           squeeze=False)
  for r, (label, imgs) in enumerate(rows):
    for i in range(n):
      axes[r, i].imshow(np.clip(imgs[i], 0, 1))
      axes[r, i].set_xticks([])
      axes[r, i].set_yticks([])
      if r == 0:
        axes[r, i].set_title(f"unit {abl_units[i]}", fontsize=7)
    axes[r, 0].set_ylabel(label, fontsize=8)
  shares = ", ".join(f"mix={m:g}: {m / math.sqrt(1 + m * m) if math.isfinite(m) else 1:.2f}"
                     for m in (main_mix, *ABLATION_MIXES))
  fig.suptitle(f"Share of the added filter orthogonal to the unit's weights ({shares}); "
               "same units, same render keys", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_similarity(sim_b, sim_a, resp_b, resp_a, on_a, ablations, path):
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  ax = axes[0]
  ax.scatter(sim_b[on_a], sim_a[on_a], s=14, label="branch on")
  ax.scatter(sim_b[~on_a], sim_a[~on_a], s=14, color="tab:red", label="branch off")
  lo, hi = min(sim_b.min(), sim_a.min()) - 0.02, max(sim_b.max(), sim_a.max()) + 0.02
  ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
  ax.set_xlabel("before: Spearman to target's visualization")
  ax.set_ylabel("after")
  ax.set_title("similarity to the target's visualization\n(mean over leaky_re_lu_1..11, pools)")
  ax.legend(fontsize=8)
  ax = axes[1]
  ax.scatter(resp_b, resp_a, s=14, c=np.where(on_a, "tab:blue", "tab:red"))
  ax.axhline(1, color="0.5", lw=0.8)
  ax.axvline(1, color="0.5", lw=0.8)
  ax.set_xlabel("before")
  ax.set_ylabel("after")
  ax.set_title("target-filter response / response to\nthe target's own visualization")
  ax = axes[2]
  names = [k for k in ablations if k != "before"]
  x = np.arange(len(names) + 1)
  sims = [ablations["before"]["similarity_mean"]] + [ablations[k]["similarity_mean"]
                                                     for k in names]
  ax.bar(x, sims, color=["0.6"] + ["tab:blue"] * len(names))
  for xi, k in zip(x[1:], names):
    ax.text(xi, sims[xi] + 0.005, f"on {100 * ablations[k]['switch_rate']:.0f}%", ha="center",
            fontsize=8)
  ax.set_xticks(x)
  ax.set_xticklabels(["original"] + [f"mix={k}" for k in names])
  ax.set_ylabel("mean similarity to target's visualization")
  ax.set_title("ablation over the filter's orthogonal share\n(same units, same keys)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  main()
