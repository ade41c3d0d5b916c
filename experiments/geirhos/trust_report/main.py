"""Trust reports on manipulated and unmanipulated units (issue "Don't trust your eyes", part 5).

For units of Tiny Darknet, `trust_reports` renders each unit's feature visualization and
compares it with natural data: how far beyond its natural range the visualization drives the
unit (drive), on how many natural photos the unit fires at all, how much of the
visualization's activation a linear read-out of the layer below, fitted on natural photos,
fails to explain (judged where that read-out is exact, as for the class logits), and how
similar the visualization's path through the network is to the paths of the unit's
top-activating natural photos (reported). The experiment measures flag rates on

* leaky_re_lu_12 units of the original model (should not be flagged),
* the same units with silent units added (part 2, the authors' notebook construction; should be flagged),
* class logits of the part-1 fooling circuit (permutation target; should be flagged) and
  the same class logits of the original model (should not be flagged). The fooling circuit
  needs a trained visualization detector E: it is trained here at a reduced size with
  `fvjax.reliability.fooling` (``--fooled off`` skips this part).

Reproduce (CPU, 2 cores, about 5 minutes idle, 9 beside other jobs; most of it renders):

    python experiments/geirhos/trust_report/main.py \
        --out experiments/geirhos/trust_report/results --seed 0

``--scale paper`` uses all 512 units, 224 px, 512 steps and the fooling experiment's paper
settings for E (GPU/TPU). Writes config.json, results.json, fig_trust.png and
fig_examples.png to ``--out``.
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
from fvjax.reliability import paths, silent, trust

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PHOTOS = str(shared_photos_dir())
SCALES = {
    "default": dict(units_every=16, size=64, steps=128, top_k=8, n_reference=64,
                    fooled_train_classes=48, fooled_eval_classes=16, detector_steps=600,
                    target_steps=256,
                    detector_batch=64, detector_photo_size=96,
                    snapshot_steps=[0, 2, 4, 8, 16, 32, 64, 128]),
    "paper": dict(units_every=1, size=224, steps=512, top_k=16, n_reference=256,
                  fooled_train_classes=800, fooled_eval_classes=200, detector_steps=5000,
                  target_steps=2000,
                  detector_batch=256, detector_photo_size=256, snapshot_steps=None),
    "smoke": dict(units_every=128, size=32, steps=4, top_k=4, n_reference=16,  # plumbing
                  fooled_train_classes=4, fooled_eval_classes=3, detector_steps=4,
                  target_steps=4,
                  detector_batch=8, detector_photo_size=64, snapshot_steps=[0, 2, 4]),
}
UNIT_LAYER, CONV = "leaky_re_lu_12", "conv2d_12"


def describe(reports):
  """Flag rates and the distributions of the measurements."""
  out = trust.flag_rate(reports)
  for field in ("drive", "unexplained", "readout_error", "path_similarity_mean",
                "fire_fraction"):
    v = np.array([getattr(r, field) for r in reports], np.float64)
    if np.isfinite(v).any():
      out[f"{field}_median"] = float(np.nanmedian(v))
      out[f"{field}_min"] = float(np.nanmin(v))
      out[f"{field}_max"] = float(np.nanmax(v))
  out["readout_exact"] = float(np.mean([r.readout_exact for r in reports]))
  return out


def judged(model, layer, units, key, natural, criteria, sc):
  """Render the units' visualizations (key fold_in(key, 0), as trust_reports would) and
  return ``(reports, images)``."""
  objective = (fvjax.objectives.class_logit(jnp.asarray(units)) if layer == "logits"
               else fvjax.objectives.channel(layer, jnp.asarray(units)))
  images = fvjax.render(model, objective, key=jax.random.fold_in(key, 0), steps=sc["steps"],
                        size=sc["size"]).images
  reps = trust.trust_reports(model, layer, units, key=key, natural=natural,
                             visualizations=images, criteria=criteria, top_k=sc["top_k"],
                             n_reference=sc["n_reference"])
  return reps, images


def split_statistics(acts, layer, path_layers):
  return trust.NaturalStatistics(layer, acts[f"{layer}/mean"], acts[f"{layer}/max"],
                                 {l: acts[l] for l in path_layers})


def natural_pass(model, images, layers, all_path):
  extra = {}
  for layer in layers:
    extra[f"{layer}/mean"] = f"{layer}:mean"
    extra[f"{layer}/max"] = f"{layer}:max"
  return paths.layer_activations(model, images, all_path, extra=extra, progress=True)


def build_fooled(model, photos, synsets, key, sc, eval_classes, train_classes):
  """The part-1 fooling circuit (permutation target, the library's defaults: shift 100,
  k 250, offset 100) with a visualization detector E (default `Detector()`) trained here on
  snapshots of ``train_classes`` renders against the photos of the other classes."""
  from fvjax.reliability import fooling as fo
  steps = sc["snapshot_steps"] or [0, *fo.paper_snapshot_steps(4, sc["steps"], 15)]
  k_render, k_train = jax.random.split(key)
  log(f"fooling circuit: rendering E's training data ({len(train_classes)} classes)")
  snaps = fo.render_snapshots(model, train_classes, key=k_render, steps=max(steps),
                              size=sc["size"], snapshots=steps,
                              units_per_call=len(train_classes))
  held = np.isin(np.array([synsets.index(s) for s in photos.labels]), eval_classes)
  n = int((~held).sum())
  small = np.asarray(jax.image.resize(jnp.asarray(photos.images[~held]),
                                      (n, sc["detector_photo_size"], sc["detector_photo_size"],
                                       3), "linear"))
  detector = fo.Detector()
  log(f"fooling circuit: training E for {sc['detector_steps']} steps")
  det_vars, losses, accs = fo.train_detector(k_train, small, snaps.images, detector=detector,
                                             steps=sc["detector_steps"],
                                             batch=sc["detector_batch"])
  fooled = fo.fooled_model(model, det_vars, target="permutation", detector=detector)
  e_natural = fo.detector_logits(det_vars, photos.images, detector=detector) > 0
  info = {"detector_final_train_accuracy": float(accs[-50:].mean()),
          "detector_fires_on_natural_photos": float(e_natural.mean()),
          "train_classes": len(train_classes), "snapshot_steps": list(steps),
          "detector_steps": sc["detector_steps"], "detector_batch": sc["detector_batch"],
          "detector_photo_size": sc["detector_photo_size"],
          "circuit": "fooling.fooled_model(target='permutation') defaults: shift 100, k 250, "
                     "offset 100; Detector() defaults"}
  return fooled, info


def main(argv=None):
  matplotlib.use("Agg")  # the script only saves figures
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default=os.path.join(HERE, "results"))
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--scale", choices=sorted(SCALES), default="default")
  ap.add_argument("--fooled", choices=["train", "off"], default="train",
                  help="include the part-1 fooling circuit (trains its detector E here)")
  ap.add_argument("--limit", type=int, default=None, help="use only the first N photos")
  ap.add_argument("--unit-offset", type=int, default=0,
                  help="judge units offset, offset + every, ... (another set of units than "
                       "the default run's, for validating the thresholds)")
  args = ap.parse_args(argv)
  require_photos(PHOTOS)
  os.makedirs(args.out, exist_ok=True)
  t0 = time.time()
  sc = SCALES[args.scale]
  criteria = trust.TrustCriteria()
  logit_criteria = trust.TrustCriteria(fire_threshold=None)
  model = fvjax.zoo.load("tiny-darknet")
  synsets = [l.split("\t")[0] for l in open(os.path.join(REPO, "fvjax", "weights",
                                                           "tiny_darknet_labels.tsv"))]
  key = jax.random.key(args.seed)
  k_units, k_fool_classes, k_fool, k_logits, k_target = (jax.random.fold_in(key, i)
                                                          for i in range(5))
  units = np.arange(args.unit_offset, model.layer_shape(UNIT_LAYER)[-1], sc["units_every"])
  all_path = paths.path_layers(model)
  unit_path = paths.path_layers(model, up_to=UNIT_LAYER, logits=False)
  cfg = {
      "seed": args.seed, "scale": args.scale, "model": "tiny-darknet",
      "unit_layer": UNIT_LAYER, "units": units.tolist(), "size": sc["size"],
      "steps": sc["steps"], "top_k": sc["top_k"], "n_reference": sc["n_reference"],
      "criteria_units": criteria.__dict__, "criteria_logits": logit_criteria.__dict__,
      "criteria_note": "revised after a first run: the earlier criteria (activation / natural "
                       "max > 10, normalised path similarity < 0) flagged 97% of the original "
                       "units; max_drive 50 lies between the largest drive of original units "
                       "(22) and the smallest with silent units (129) in that run, and the "
                       "read-out criterion was added for the fooling circuit (see README)",
      "natural_images": "the 1000 shared photos at 224x224",
      "silent_units": "part 2, the authors' notebook construction (as silent_units/main.py): "
                      "conv2d_12, all 512 units, target the visualization of unit 0 of "
                      f"{UNIT_LAYER} ({sc['target_steps']} steps, {sc['size']} px), target "
                      "filter not centred, mix 3, gain 100, bias = -max over the 1000 photos "
                      "(1e-4 slack)",
      "path_layers_units": unit_path, "path_layers_logits": all_path,
      "keys": "unit renders fold_in(key(seed), 0) for both models (same starting images); "
              "fooled-class choice fold_in(key, 1); E training fold_in(key, 2); logit "
              "renders fold_in(key, 3) for both models; the silent units' target "
              "visualization fold_in(key, 4)",
      "fooled": args.fooled,
  }

  log("loading the natural photos at 224")
  photos = fvjax.data.image_folder(PHOTOS, 224, limit=args.limit)
  log("natural activations of the original model")
  acts = natural_pass(model, photos.images, [UNIT_LAYER, "logits"], all_path)
  nat_units = split_statistics(acts, UNIT_LAYER, unit_path)

  log(f"silent units (the notebook's construction): target = unit 0's visualization, "
      f"{sc['target_steps']} steps")
  target = fvjax.render(model, fvjax.objectives.channel(UNIT_LAYER, 0), key=k_target,
                        steps=sc["target_steps"], size=sc["size"]).images
  su = silent.make_silent_units(model, CONV, target, photos.images, mix=3.0, gain=100.0,
                                centre=False)
  check = paths.layer_activations(su.model, photos.images[:100], unit_path,
                                  extra={"m": f"{UNIT_LAYER}:mean"})
  identical = bool(np.array_equal(check["m"], nat_units.unit_mean[:100]) and all(
      np.array_equal(check[l], nat_units.path[l][:100]) for l in unit_path))
  log(f"silent model's natural activations identical to the original's: {identical}")

  results = {"silent_model_natural_activations_identical_first_100": identical}
  reports, images = {}, {}
  log(f"trust reports: {len(units)} units of {UNIT_LAYER}, original model")
  reports["original_units"], images["original_units"] = judged(
      model, UNIT_LAYER, units, k_units, nat_units, criteria, sc)
  log(f"trust reports: {len(units)} units of {UNIT_LAYER}, silent units added")
  reports["silent_units"], images["silent_units"] = judged(
      su.model, UNIT_LAYER, units, k_units, nat_units, criteria, sc)
  # Did each unit's branch switch on? Where it did not, the visualization is the honest one
  # (the same keys give the original's image), and a flag would be a false alarm.
  on = silent.branch_preactivation(su, images["silent_units"])[np.arange(len(units)), units] > 0
  unchanged = np.array([np.array_equal(a, b) for a, b in zip(images["original_units"],
                                                             images["silent_units"])])
  flagged = np.array([r.flagged for r in reports["silent_units"]])
  results["silent_units_branches"] = {
      "branch_on": on.tolist(), "visualization_identical_to_original": unchanged.tolist(),
      "units_branch_on": int(on.sum()), "flagged_where_branch_on": int(flagged[on].sum()),
      "flagged_where_branch_off": int(flagged[~on].sum()),
      "identical_where_branch_off": int(unchanged[~on].sum())}
  log(f"silent units: branch on for {on.sum()} of {len(units)}; flagged {flagged[on].sum()} "
      f"of those, {flagged[~on].sum()} of the others ({unchanged[~on].sum()} of which render "
      "exactly the original's image)")

  if args.fooled == "train":
    truth = np.array([synsets.index(s) for s in photos.labels])
    order = np.asarray(jax.random.permutation(k_fool_classes, len(truth)))
    eval_classes = np.sort(truth[order[:sc["fooled_eval_classes"]]])
    train_classes = np.sort(truth[order[sc["fooled_eval_classes"]:
                                        sc["fooled_eval_classes"] +
                                        sc["fooled_train_classes"]]])
    fooled, info = build_fooled(model, photos, synsets, k_fool, sc, eval_classes,
                                train_classes)
    log("natural activations of the fooled model")
    facts = natural_pass(fooled, photos.images, ["logits"], all_path)
    nat_fooled = split_statistics(facts, "logits", all_path)
    nat_logits = split_statistics(acts, "logits", all_path)
    info["fooled_natural_top1_agreement"] = float(np.mean(
        facts["logits"].argmax(1) == acts["logits"].argmax(1)))
    info["eval_classes"] = eval_classes.tolist()
    results["fooled"] = info
    log(f"trust reports: {len(eval_classes)} fooled class logits")
    reports["fooled_logits"], images["fooled_logits"] = judged(
        fooled, "logits", eval_classes, k_logits, nat_fooled, logit_criteria, sc)
    log(f"trust reports: the same {len(eval_classes)} class logits, original model")
    reports["original_logits"], images["original_logits"] = judged(
        model, "logits", eval_classes, k_logits, nat_logits, logit_criteria, sc)
  else:
    results["fooled"] = "skipped (--fooled off)"

  summary = {name: describe(reps) for name, reps in reports.items()}
  results["reports"] = {name: [r.to_dict() for r in reps] for name, reps in reports.items()}
  results["runtime_s"] = time.time() - t0
  write_json(os.path.join(args.out, "config.json"), cfg)
  write_json(os.path.join(args.out, "results.json"),
             {"summary": summary, **results})
  plot_trust(reports, criteria, os.path.join(args.out, "fig_trust.png"))
  plot_examples(reports, images, photos.images, os.path.join(args.out, "fig_examples.png"))
  print(json.dumps(jsonable({k: {m: v[m] for m in ("flagged", "drive", "silent",
                                                    "unexplained", "units")}
                             for k, v in summary.items()}), indent=2))
  log(f"wrote {args.out} in {time.time() - t0:.0f} s")


STYLE = {"original_units": ("tab:blue", "o", "original, leaky_re_lu_12 units"),
         "silent_units": ("tab:red", "o", "silent units added (part 2)"),
         "original_logits": ("tab:green", "s", "original, class logits"),
         "fooled_logits": ("tab:purple", "s", "fooling circuit (part 1), class logits")}


SHORT = {"original_units": "original", "silent_units": "silent units",
         "original_logits": "original", "fooled_logits": "fooled"}


def plot_trust(reports, criteria, path):
  fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
  for ax, (field, limit, xlabel) in zip(axes[:2], [
      ("drive", criteria.max_drive,
       "drive: (visualization - natural median) / natural range"),
      ("unexplained", criteria.max_unexplained,
       "|unexplained|: activation a natural-data read-out does not predict")]):
    for name, reps in reports.items():
      color, marker, label = STYLE[name]
      x = np.abs(np.array([getattr(r, field) for r in reps], np.float64))
      sim = np.array([r.path_similarity_mean for r in reps])
      flagged = np.array([r.flagged for r in reps])
      exact = np.array([r.readout_exact for r in reps])
      if field == "unexplained":
        label += " (exact read-out)" if exact.all() else " (read-out not exact: not judged)"
      ax.scatter(np.clip(x, 1e-3, 1e5), sim, c=color, marker=marker, s=22,
                 label=f"{label}: {100 * flagged.mean():.0f}% flagged", alpha=0.8,
                 edgecolors="k", linewidths=np.where(flagged, 1.0, 0.0))
    ax.axvline(limit, color="0.3", ls="--", lw=1)
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("path similarity (deepest layers; 0.5 = chance)", fontsize=8)
    ax.legend(fontsize=6.5, loc="lower left")
  axes[0].set_title("per unit: dashed = flag threshold, black edge = flagged", fontsize=9)
  axes[1].set_title("fooling-circuit check (judged only where the read-out is exact)",
                    fontsize=9)
  ax = axes[2]
  names = list(reports)
  crits = ["drive", "silent", "unexplained", "flagged"]
  width = 0.8 / len(crits)
  for j, crit in enumerate(crits):
    vals = [100 * trust.flag_rate(reports[n])[crit] for n in names]
    ax.bar(np.arange(len(names)) + (j - 1.5) * width, vals, width, label=crit)
  ax.set_xticks(np.arange(len(names)))
  ax.set_xticklabels([STYLE[n][2].replace(", ", ",\n").replace(" (", "\n(") for n in names],
                     fontsize=7.5)
  ax.set_ylabel("% of units")
  ax.set_title("flag rate, overall and by criterion", fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_examples(reports, images, photos, path, per_group=4):
  """For a few units of each group: the visualization (titled with the verdict) and the
  unit's top natural photo."""
  groups = list(reports)
  fig, axes = plt.subplots(2 * len(groups), per_group, figsize=(2.3 * per_group,
                                                                 2.5 * 2 * len(groups)),
                           squeeze=False)
  for g, name in enumerate(groups):
    for i in range(per_group):
      a_vis, a_nat = axes[2 * g, i], axes[2 * g + 1, i]
      a_vis.axis("off")
      a_nat.axis("off")
      if i >= len(reports[name]):
        continue
      r = reports[name][i]
      a_vis.imshow(np.clip(images[name][i], 0, 1))
      verdict = "FLAGGED" if r.flagged else "ok"
      a_vis.set_title(f"{SHORT[name]} {r.layer}:{r.unit}\n{verdict}: drive "
                      f"{r.drive:.3g}, unexpl. {r.unexplained:.2g}",
                      fontsize=7, color="tab:red" if r.flagged else "k")
      a_nat.imshow(np.clip(photos[r.top_images[0]], 0, 1))
      a_nat.set_title("top natural photo", fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


if __name__ == "__main__":
  main()
