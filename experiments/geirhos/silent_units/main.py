"""Silent units: every unit of a layer visualizes a target pattern, predictions unchanged.

Part 2 of Geirhos et al. 2023, "Don't trust your eyes" (paper: ResNet-50 layer4.1 conv2,
512 units). Here: Tiny Darknet conv2d_12 (3x3, 64 -> 512 channels, stride 16, the last
stage but one), all 512 units manipulated; the visualized unit is channel u of
leaky_re_lu_12. Each unit gets ``+ ReLU(conv(x, f_u) + b_u)`` after its BatchNorm. As in the
authors' notebook (``code/orthogonal_filters.ipynb``): the target is the feature
visualization of unit 0 of the layer, the target filter is the kernel that responds most to
it (not centred on natural photos), ``f_u`` mixes the unit's weights with the orthogonal
direction towards it at ``mix = 3`` (``lbd``) and ``gain = 100`` (``weight_factor``), and
``b_u`` is minus the filter's maximum over the calibration photos (the first 800 photos; the
other 200 and all flipped photos are held out). See `fvjax.reliability.silent`.

Reproduce (CPU, 2 cores, about 5 minutes when the machine is otherwise idle):

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

ABLATION_MIXES = (0.5, math.inf)  # 3 (the notebook's) is the main run; inf: purely orthogonal
PHOTO_TARGET = "n07745940_strawberry.jpg"  # the earlier run's target, ablated at the main mix
SCALES = {
    # units rendered (all are manipulated), render size/steps, ablation units
    # target_steps: the target visualization (the notebook renders it for 2000 steps)
    "default": dict(render_every=64, size=64, steps=128, target_steps=256, ablation_units=4,
                    show=8),
    "paper": dict(render_every=1, size=224, steps=512, target_steps=2000, ablation_units=64,
                  show=16),
    "smoke": dict(render_every=64, size=32, steps=8, target_steps=8, ablation_units=4,
                  show=8),  # plumbing only
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
  ap.add_argument("--target", default="unit:0",
                  help="'unit:N': the feature visualization of unit N of leaky_re_lu_12 in the "
                       "original model (the authors' notebook: unit 0); or the file name of a "
                       "photo in the shared sample")
  ap.add_argument("--mix", type=float, default=3.0)
  ap.add_argument("--gain", type=float, default=100.0)
  ap.add_argument("--centre", action="store_true",
                  help="centre the target filter on the natural photos' mean patch (not the "
                       "notebook's construction)")
  ap.add_argument("--calibration", type=int, default=800,
                  help="the first N photos set the biases; the others are held out")
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
      "target": args.target, "target_steps": sc["target_steps"], "mix": args.mix,
      "gain": args.gain, "margin": 1e-4, "centre_target_on_natural_mean": args.centre,
      "natural_images": f"photos of {PHOTOS} resized to 224x224 (no crop); the first "
                        f"{args.calibration} (sorted by name) set the biases",
      "held_out_images": "the other photos, and all photos flipped left-right (neither used "
                         "for the biases)",
      "photo_target_ablation": PHOTO_TARGET,
      "similarity_layers": upstream,
      "ablation_mixes": [str(m) for m in ABLATION_MIXES], "ablation_units": ablation.tolist(),
      "keys": "target filter's visualization: fold_in(key(seed), 1); unit renders (before, "
              "after and ablations share it): fold_in(key(seed), 2); the target (unit:N): "
              "fold_in(key(seed), 3)",
  }
  key = jax.random.key(args.seed)
  k_target, k_units = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
  k_target_image = jax.random.fold_in(key, 3)

  log("loading the natural photos at 224")
  natural = fvjax.data.image_folder(PHOTOS, 224, limit=args.limit)
  calib = natural.images[:args.calibration]
  held = natural.images[args.calibration:]
  flipped = natural.images[:, :, ::-1]
  rkw = dict(steps=sc["steps"], size=sc["size"])
  photo_target = fvjax.data.load_image(os.path.join(PHOTOS, PHOTO_TARGET), 224, crop=True)[None]
  if args.target.startswith("unit:"):
    target_unit = int(args.target.split(":")[1])
    log(f"target: the visualization of unit {target_unit} ({sc['target_steps']} steps)")
    target = fvjax.render(model, fvjax.objectives.channel(vis_layer, target_unit),
                          key=k_target_image, steps=sc["target_steps"],
                          size=sc["size"]).images
  else:
    target_unit = None
    target = fvjax.data.load_image(os.path.join(PHOTOS, args.target), 224, crop=True)[None]

  log(f"input of {conv} for the {len(calib)} calibration photos")
  inputs = silent.conv_module_input(model, conv, calib, progress=True)
  log("building the silent units")
  su = silent.make_silent_units(model, conv, target, None, natural_inputs=inputs,
                                mix=args.mix, gain=args.gain, margin=1e-4,
                                centre=args.centre, progress=True)
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
      # The notebook scales its orthogonal part to |w|^2 / |delta| (delta: the orthogonalized
      # unit-norm target filter) before lbd multiplies it, so its effective mix is
      # lbd * |w| / |delta|, which depends on the scale of the raw kernel (median here):
      "raw_kernel_norm_median": float(np.median(np.linalg.norm(
          np.asarray(silent.conv_kernel(model, conv)).reshape(-1, channels), axis=0))),
      "target_filter_sin_to_weights_median": float(np.median(np.sqrt(np.clip(1 - (
          np.sum(w * su.target.reshape(-1, 1), 0) / np.linalg.norm(w, axis=0)) ** 2, 0, 1)))),
  }
  log(f"built: cos(filter, weights) = {build['cos_filter_weights']:.3f}, max |cos(d, w)| = "
      f"{build['max_abs_cos_direction_weights']:.2e}")

  log("predictions on the calibration photos, the held-out photos and all flipped photos")
  same_set, top_calib, _ = prediction_check(su, model, calib)
  held_photos, top_held, _ = (prediction_check(su, model, held) if len(held)
                              else ({}, np.zeros(0, int), None))
  held_out, _, pre_flip = prediction_check(su, model, flipped)
  top_orig = np.concatenate([top_calib, top_held])
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
  log(f"held-out photos: {held_photos}")
  log(f"flipped: {held_out}")

  log("target visualization (the target filter itself, unmanipulated model)")
  probe = silent.filter_probe(model, conv, su.target, name="target_probe")
  target_vis = fvjax.render(probe, fvjax.objectives.channel("target_probe", 0), key=k_target,
                            **rkw)
  obj = fvjax.objectives.channel(vis_layer, jnp.asarray(rendered))
  log(f"rendering {len(rendered)} units before manipulation")
  before = fvjax.render(model, obj, key=k_units, **rkw)
  log(f"rendering {len(rendered)} units after manipulation")
  after = fvjax.render(manipulated, obj, key=k_units, **rkw)

  extra = {"probe": "target_probe", "vis": vis_layer}
  tfeat = paths.layer_activations(probe, target_vis.images, upstream, extra=extra)
  timg = paths.layer_activations(probe, target, upstream, extra=extra)

  def measure(images, su_used, units=rendered):
    """Per rendered unit: Spearman similarity (mean over the upstream layers) to the target
    filter's visualization and to the target image, the target filter's response (1 = its
    response to its own visualization), the target unit's activation in the original model
    (1 = on the target image), and whether the unit's branch is on."""
    feats = paths.layer_activations(probe, images, upstream, extra=extra)
    sim = np.mean([paths.spearman_matrix(feats[l], tfeat[l])[:, 0] for l in upstream], axis=0)
    sim_img = np.mean([paths.spearman_matrix(feats[l], timg[l])[:, 0] for l in upstream],
                      axis=0)
    response = feats["probe"][:, 0] / tfeat["probe"][0, 0]
    t_unit = (feats["vis"][:, target_unit] / timg["vis"][0, target_unit]
              if target_unit is not None else np.full(len(images), np.nan))
    fires = silent.branch_preactivation(su_used, images)
    on = fires[np.arange(len(images)), units[:len(images)]] > 0
    return sim, response, on, sim_img, t_unit

  sim_b, resp_b, on_b, simg_b, tu_b = measure(before.images, su)
  sim_a, resp_a, on_a, simg_a, tu_a = measure(after.images, su)
  others = rendered != target_unit  # the target unit itself is left out of these means
  unit_stats = {
      "similarity_to_target_vis_before_mean": float(sim_b.mean()),
      "similarity_to_target_vis_after_mean": float(sim_a.mean()),
      "similarity_to_target_vis_before_median": float(np.median(sim_b)),
      "similarity_to_target_vis_after_median": float(np.median(sim_a)),
      "fraction_units_more_similar_after": float(np.mean(sim_a > sim_b)),
      "target_response_before_mean": float(resp_b.mean()),
      "target_response_after_mean": float(resp_a.mean()),
      "similarity_to_target_image_before_mean": float(simg_b[others].mean()),
      "similarity_to_target_image_after_mean": float(simg_a[others].mean()),
      "fraction_units_more_similar_to_target_image_after": float(np.mean(
          simg_a[others] > simg_b[others])),
      "target_unit_activation_before_mean": float(np.mean(tu_b[others])),
      "target_unit_activation_after_mean": float(np.mean(tu_a[others])),
      "fraction_units_target_unit_higher_after": float(np.mean(tu_a[others] > tu_b[others])),
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
  na = len(ablation)

  def row(on, sim, resp, simg, tu, cos, nat_fire):
    return {"switch_rate": float(on.mean()), "similarity_mean": float(sim.mean()),
            "target_response_mean": float(resp.mean()),
            "similarity_to_target_image_mean": float(simg.mean()),
            "target_unit_activation_mean": float(np.nanmean(tu)) if target_unit is not None
            else None, "cos_filter_weights": cos,
            "held_out_fraction_images_any_branch_fires": nat_fire}

  held_check = held if len(held) else flipped
  ablations = {f"{args.mix:g}": row(on_a[:na], sim_a[:na], resp_a[:na], simg_a[:na],
                                    tu_a[:na], float(np.mean(su.cosine)),
                                    (held_photos or held_out)["fraction_images_any_branch_fires"])}
  abl_images = {}
  variants = [(f"{m:g}", m, target, args.centre) for m in ABLATION_MIXES]
  variants.append((f"{args.mix:g}, photo target", args.mix, photo_target, True))
  for name, mix, tgt, centre in variants:
    su_m = silent.make_silent_units(model, conv, tgt, None, natural_inputs=inputs, mix=mix,
                                    gain=args.gain, centre=centre, progress=False)
    res = fvjax.render(su_m.model, fvjax.objectives.channel(vis_layer, jnp.asarray(ablation)),
                       key=k_units, **rkw)
    sim_m, resp_m, on_m, simg_m, tu_m = measure(res.images, su_m)
    fire = float(np.mean((silent.branch_preactivation(su_m, held_check) > 0).any(1)))
    ablations[name] = row(on_m, sim_m, resp_m, simg_m, tu_m, float(np.mean(su_m.cosine)), fire)
    abl_images[name] = res.images
  ablations["before"] = {"similarity_mean": float(sim_b[:na].mean()),
                         "target_response_mean": float(resp_b[:na].mean()),
                         "similarity_to_target_image_mean": float(simg_b[:na].mean()),
                         "target_unit_activation_mean": float(np.nanmean(tu_b[:na]))
                         if target_unit is not None else None}
  log(f"ablation: {ablations}")

  results = {
      "summary": {
          "units_manipulated": channels,
          "units_rendered": len(rendered),
          "natural_top1_agreement": same_set["top1_agreement"],
          "natural_max_abs_logit_diff": same_set["max_abs_logit_diff"],
          "held_out_photos_top1_agreement": held_photos.get("top1_agreement"),
          "held_out_photos_max_abs_logit_diff": held_photos.get("max_abs_logit_diff"),
          "held_out_photos_fraction_any_branch_fires":
              held_photos.get("fraction_images_any_branch_fires"),
          "flipped_top1_agreement": held_out["top1_agreement"],
          "flipped_max_abs_logit_diff": held_out["max_abs_logit_diff"],
          "flipped_fraction_any_branch_fires": held_out["fraction_images_any_branch_fires"],
          "cos_filter_weights": build["cos_filter_weights"],
          "switch_rate": unit_stats["fraction_units_branch_on_after"],
          "similarity_to_target_vis_before": unit_stats["similarity_to_target_vis_before_mean"],
          "similarity_to_target_vis_after": unit_stats["similarity_to_target_vis_after_mean"],
          "fraction_units_more_similar_after": unit_stats["fraction_units_more_similar_after"],
      },
      "build": build,
      "accuracy_on_sample": accuracy,
      "predictions_natural_same_set": same_set,
      "predictions_held_out_photos": held_photos,
      "predictions_held_out_flipped": held_out,
      "units": unit_stats,
      "ablation_mix": ablations,
      "per_unit": {"unit": rendered, "similarity_before": sim_b, "similarity_after": sim_a,
                   "target_response_before": resp_b, "target_response_after": resp_a,
                   "similarity_to_target_image_before": simg_b,
                   "similarity_to_target_image_after": simg_a,
                   "target_unit_activation_before": tu_b, "target_unit_activation_after": tu_a,
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
  plot_ablation(before.images[:na], after.images[:na], args.mix, abl_images, ablation,
                os.path.join(args.out, "fig_ablation.png"))
  ncols = int(math.ceil(math.sqrt(len(rendered))))
  fvjax.plot.image_grid(before.images, os.path.join(args.out, "fig_grid_before.png"),
                        labels=[str(u) for u in rendered], ncols=ncols,
                        title=f"{vis_layer}, original Tiny Darknet", tile_inches=1.0)
  fvjax.plot.image_grid(after.images, os.path.join(args.out, "fig_grid_after.png"),
                        labels=[f"{u}{'' if o else ' (off)'}" for u, o in zip(rendered, on_a)],
                        ncols=ncols, title=f"{vis_layer}, silent units added (predictions on "
                        f"the {len(calib)} calibration photos unchanged)", tile_inches=1.0)
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
  axes[0, 0].set_title("target", fontsize=7)
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
               "(row 1) and after (row 2) the manipulation;\npredictions on the photos the "
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
                     for m in (*ABLATION_MIXES[:2], main_mix, *ABLATION_MIXES[2:]))
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
  ax.set_xticklabels(["original"] + [f"mix={k}".replace(", ", "\n") for k in names], fontsize=7)
  ax.set_ylabel("mean similarity to target's visualization")
  ax.set_title("ablation over the filter's orthogonal share\n(same units, same keys)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  main()
