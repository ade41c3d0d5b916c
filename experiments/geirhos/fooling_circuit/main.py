"""The fooling circuit: visualizations that show anything, natural behaviour unchanged.

Reproduces part 1 of Geirhos, Zimmermann, Bilodeau, Brendel & Kim (2023), "Don't trust your
eyes: on the (un)reliability of feature visualizations" on the vendored Tiny Darknet
(the paper: Inception-V1, last layer). A detector E (small CNN, hard threshold) trained to
tell natural photos from feature visualizations gates the unmodified model's logits with
ReLUs (k = 250, offset 100): on natural images the fooled model returns the original logits,
on visualizations it returns a target -- (a) the logit of class (i + 100) mod 1000, or
(b) a dot product of the input with a picture (skimage's public-domain astronaut photo).

Reproduce (2 CPU cores, about 6 minutes; ``--scale step4``, the fix
of issue 16 with results in results_step4/: 24 minutes on 2 shared cores):

    python experiments/geirhos/fooling_circuit/main.py \
        --out experiments/geirhos/fooling_circuit/results --seed 0

``--scale paper`` uses the paper's sizes (224 px, 512 steps, 15 snapshots from step 4, 800 classes x 4
seeds; for a GPU/TPU). Needs the 1000 shared photos (``../shared/data/imagenet-sample``, ``$FVJAX_PHOTOS``
or ``--photos``). Writes ``config.json``, ``results.json``, ``fig_permutation.png``,
``fig_picture.png``, ``fig_steps.png``, ``fig_detector.png`` and
``fig_detector_training.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import fvjax
from fvjax.experiment import jsonable, shared_photos_dir, write_json
from fvjax.reliability import fooling as fo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from config import SCALES  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]
DEFAULT_OUT = "experiments/geirhos/fooling_circuit/results"
LABELS_TSV = REPO / "fvjax" / "weights" / "tiny_darknet_labels.tsv"


def synset_indices(synsets) -> np.ndarray:
  """Model-order class index of each synset (from the vendored labels file)."""
  order = {}
  with open(LABELS_TSV) as f:
    for i, line in enumerate(l for l in f if l.strip()):
      order[line.split("\t")[0]] = i
  return np.asarray([order[s] for s in synsets])


def load_picture(name: str) -> np.ndarray:
  from skimage import data as skdata  # the picture ships with scikit-image; no download
  if name not in ("astronaut", "chelsea", "coffee", "rocket"):
    raise fvjax.FvjaxError(f"unknown picture {name!r}; valid: astronaut, chelsea, coffee, rocket")
  return getattr(skdata, name)()


def target_view(picture: np.ndarray, size: int, seen: int) -> np.ndarray:
  """What part of the template a rendered image of side ``size`` is compared with: the
  model sees it padded and jittered to side ``seen`` (centred on average), so the image
  lines up with the central ``size / seen`` of the template."""
  square = fo.picture_template(picture, 512)
  side = int(round(512 * size / seen))
  o = (512 - side) // 2
  return fo.picture_template(square[o:o + side, o:o + side], size)


RENDER_KEYS = ("model", "size", "steps", "snapshots", "units_per_call", "held_out_classes",
               "train_units", "train_seeds", "test_units", "picture_train_units",
               "picture_test_units", "picture_size", "picture_scale", "similarity")
TEST_PICTURES = ("astronaut", "chelsea", "coffee", "rocket")
CACHE_PARTS = ("train", "test", "train_pictures", "test_pictures")


def _render_pictures(templates, key, kw):
  """Snapshots of renders of `picture_target` for each template (one unit each)."""
  kw = dict(kw)
  model = fo.picture_model(templates, scale=kw.pop("scale"), similarity=kw.pop("similarity"))
  kw["units_per_call"] = len(templates)
  return fo.render_snapshots(model, np.arange(len(templates)), key=key, **kw)


def _combined(a, b):
  """E's accuracy over the union of two reports' test sets (same natural images)."""
  n_nat, n_a, n_b = a["n_natural"], a["n_synthetic"], b["n_synthetic"]
  syn = (a["synthetic_accuracy"] * n_a + b["synthetic_accuracy"] * n_b) / (n_a + n_b)
  nat = a["natural_accuracy"]
  return {"accuracy": (nat * n_nat + syn * (n_a + n_b)) / (n_nat + n_a + n_b),
          "balanced_accuracy": (nat + syn) / 2, "natural_accuracy": nat,
          "synthetic_accuracy": syn, "n_natural": n_nat, "n_synthetic": n_a + n_b}


def _load_cache(path, tag):
  """The rendered snapshots saved by an earlier run with the same settings, or None."""
  if not path or not os.path.exists(path):
    return None
  with np.load(path) as z:
    if str(z["tag"]) != tag:
      print(f"cache {path} has other settings; rendering again", flush=True)
      return None
    return tuple(fo.Snapshots(*(z[f"{p}_{f}"] for f in fo.Snapshots._fields))
                 for p in CACHE_PARTS)


def _save_cache(path, tag, *parts):
  if path:
    arrays = {f"{p}_{f}": getattr(s, f) for p, s in zip(CACHE_PARTS, parts)
              for f in fo.Snapshots._fields}
    np.savez(path, tag=tag, **arrays)


def main(argv=None):
  matplotlib.use("Agg")  # the script only saves figures
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default=DEFAULT_OUT)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--scale", choices=sorted(SCALES), default="default")
  ap.add_argument("--photos", default=str(shared_photos_dir()))
  ap.add_argument("--cache", default=None,
                  help="optional .npz file: reuse E's rendered training/test data from an "
                       "earlier run with the same settings, or save them there")
  args = ap.parse_args(argv)
  cfg = dict(SCALES[args.scale], seed=args.seed, scale=args.scale)
  os.makedirs(args.out, exist_ok=True)
  t_start = time.time()
  times = {}

  def lap(name, t0):
    times[name] = round(time.time() - t0, 1)
    print(f"[{name}] {times[name]} s", flush=True)

  key = jax.random.key(args.seed)
  k_split, k_train_r, k_test_r, k_det, k_test_aug, k_fig, k_pic = jax.random.split(key, 7)
  cfg["keys"] = ("key(seed) split into 7: class split, training renders, test renders, "
                 "E training, augmented test views, figure renders, picture renders")
  write_json(os.path.join(args.out, "config.json"), cfg)

  model = fvjax.zoo.load(cfg["model"])
  n_classes = model.num_classes

  # -- data: photos and the held-out split ------------------------------------------------
  t0 = time.time()
  photos = fvjax.data.image_folder(args.photos, cfg["eval_size"])
  labels = synset_indices(photos.labels)
  order = np.asarray(jax.random.permutation(k_split, n_classes))
  held_out = np.sort(order[:cfg["held_out_classes"]])
  train_classes = np.sort(order[cfg["held_out_classes"]:])
  photo_held = np.isin(labels, held_out)
  lap("load photos", t0)

  # -- visualizations with snapshots along the optimization -------------------------------
  t0 = time.time()
  train_units = np.asarray(jax.random.choice(k_train_r, train_classes, (cfg["train_units"],),
                                             replace=False))
  test_units = np.asarray(jax.random.choice(k_test_r, held_out, (cfg["test_units"],),
                                            replace=False))
  render_kw = dict(steps=cfg["steps"], size=cfg["size"], snapshots=cfg["snapshots"],
                   units_per_call=cfg["units_per_call"])
  # Picture-like visualizations: renders of `picture_target` for training photos (E's
  # training data) and for held-out photos and skimage's pictures, the target among them
  # (E's test data); E never sees the target picture.
  kp1, kp2, kp3, kp4 = jax.random.split(k_pic, 4)
  pic_train_idx = np.asarray(jax.random.choice(kp1, np.flatnonzero(~photo_held),
                                                (cfg["picture_train_units"],), replace=False))
  pic_test_idx = np.asarray(jax.random.choice(kp2, np.flatnonzero(photo_held),
                                              (cfg["picture_test_units"],), replace=False))
  templates = lambda ims: np.stack([fo.picture_template(im, cfg["picture_size"]) for im in ims])
  test_pictures = ([photos.names[i] for i in pic_test_idx]
                   + [f"skimage.data.{n}()" for n in TEST_PICTURES])
  pic_kw = dict(render_kw, scale=cfg["picture_scale"], similarity=cfg["similarity"])
  cache_tag = json.dumps(jsonable([cfg[k] for k in RENDER_KEYS] + [args.seed]))
  cached = _load_cache(args.cache, cache_tag)
  if cached:
    train_viz, test_viz, train_pic, test_pic = cached
  else:
    train_viz = fo.render_snapshots(model, train_units, key=k_train_r,
                                    seeds=cfg["train_seeds"], **render_kw)
    test_viz = fo.render_snapshots(model, test_units, key=k_test_r, seeds=1, **render_kw)
    train_pic = _render_pictures(templates(photos.images[pic_train_idx]), kp3, pic_kw)
    test_pic = _render_pictures(np.concatenate([
        templates(photos.images[pic_test_idx]),
        templates([load_picture(n) for n in TEST_PICTURES])]), kp4, pic_kw)
    _save_cache(args.cache, cache_tag, train_viz, test_viz, train_pic, test_pic)
  base_viz_logits = fo.classify(model, train_viz.images[train_viz.steps == cfg["steps"]])
  lap("render E's data", t0)

  # -- train E --------------------------------------------------------------------------
  t0 = time.time()
  detector = fo.Detector(tuple(cfg["detector_features"]), cfg["detector_input"])
  det_vars, losses, accs = fo.train_detector(
      k_det, photos.images[~photo_held], np.concatenate([train_viz.images, train_pic.images]),
      detector=detector,
      steps=cfg["detector_steps"], batch=cfg["detector_batch"],
      learning_rate=cfg["detector_lr"], min_scale=tuple(cfg["augment_min_scale"]),
      render_transforms=cfg["augment_render_transforms"])
  lap("train E", t0)

  t0 = time.time()
  held_report = fo.detector_report(det_vars, photos.images[photo_held], test_viz.images,
                                   test_viz.steps, detector=detector)
  pic_report = fo.detector_report(det_vars, photos.images[photo_held], test_pic.images,
                                  test_pic.steps, detector=detector)
  pic_logits = fo.detector_logits(det_vars, test_pic.images, detector=detector)
  pic_report["per_picture"] = {
      name: float((pic_logits[test_pic.classes == j] > 0).mean())
      for j, name in enumerate(test_pictures)}
  # The same held-out images as E meets them in use: random crops/flips and, half the time,
  # the render's transforms (grey padding, jitter, scale, rotation).
  v = cfg["test_augmented_views"]
  kn, ks = jax.random.split(k_test_aug)
  aug_nat = np.concatenate([np.asarray(fo.augment(
      jax.random.fold_in(kn, i), jnp.asarray(photos.images[photo_held]),
      cfg["detector_input"], min_scale=cfg["augment_min_scale"][0],
      render_transforms=cfg["augment_render_transforms"])) for i in range(v)])
  aug_syn = np.concatenate([np.asarray(fo.augment(
      jax.random.fold_in(ks, i), jnp.asarray(test_viz.images), cfg["detector_input"],
      min_scale=cfg["augment_min_scale"][1], render_transforms=cfg["augment_render_transforms"]))
      for i in range(v)])
  aug_report = fo.detector_report(det_vars, aug_nat, aug_syn, np.tile(test_viz.steps, v),
                                  detector=detector)
  photo_e = fo.detector_logits(det_vars, photos.images, detector=detector) > 0
  lap("test E", t0)
  print("E held-out:", json.dumps(jsonable(held_report)), flush=True)

  # -- the fooled models on natural photos -----------------------------------------------
  t0 = time.time()
  picture = load_picture(cfg["picture"])
  fooled_a = fo.fooled_model(model, det_vars, target="permutation", detector=detector,
                             shift=cfg["shift"], k=cfg["k"], offset=cfg["offset"])
  fooled_b = fo.fooled_model(model, det_vars, target="image", picture=picture,
                             detector=detector, k=cfg["k"], offset=cfg["offset"],
                             picture_size=cfg["picture_size"],
                             picture_scale=cfg["picture_scale"], similarity=cfg["similarity"])
  logits = {"original": fo.classify(model, photos.images, progress=True),
            "fooled_permutation": fo.classify(fooled_a, photos.images, progress=True),
            "fooled_image": fo.classify(fooled_b, photos.images, progress=True)}
  accuracy = {}
  for name, lg in logits.items():
    acc = {"top1": fo.topk_accuracy(lg, labels, 1), "top5": fo.topk_accuracy(lg, labels, 5),
           "top1_held_out_photos": fo.topk_accuracy(lg[photo_held], labels[photo_held], 1)}
    if name != "original":
      same = lg.argmax(1) == logits["original"].argmax(1)
      acc["prediction_unchanged"] = float(same.mean())
      acc["prediction_unchanged_held_out_photos"] = float(same[photo_held].mean())
      acc["max_abs_logit_change_where_E_is_0"] = float(
          np.abs(lg - logits["original"])[~photo_e].max())
    accuracy[name] = acc
  accuracy["E_fires_on_photos"] = {"all": float(photo_e.mean()),
                                   "held_out": float(photo_e[photo_held].mean()),
                                   "training": float(photo_e[~photo_held].mean()),
                                   "files": [photos.names[i] for i in np.flatnonzero(photo_e)]}
  lap("classify photos", t0)
  print("accuracy:", json.dumps(jsonable({k: {kk: vv for kk, vv in v.items() if kk != "files"}
                                           for k, v in accuracy.items()})), flush=True)

  # -- visualizations of the original and fooled models ---------------------------------
  t0 = time.time()
  units = np.sort(test_units[:cfg["figure_units"]])
  shown = fo.permutation_classes(n_classes, cfg["shift"])[units]
  fig_kw = dict(key=k_fig, steps=cfg["steps"], size=cfg["size"], snapshots=cfg["snapshots"])
  obj = fvjax.objectives.class_logit
  orig = fvjax.render(model, obj(units), **fig_kw)
  orig_shown = fvjax.render(model, obj(shown), **fig_kw)
  fool_a = fvjax.render(fooled_a, obj(units), **fig_kw)
  fool_b = fvjax.render(fooled_b, obj(units), **fig_kw)
  # The picture target's own visualization, with the same per-unit keys: a fooled unit's
  # render equals it exactly when E fired on every step.
  target_model = fo.picture_model(fo.picture_template(picture, cfg["picture_size"])[None],
                                  scale=cfg["picture_scale"], similarity=cfg["similarity"])
  target_viz = fvjax.render(target_model, obj(np.zeros(len(units), int)), **fig_kw)
  lap("render figures", t0)

  def e_along(result):
    """E on each snapshot [steps, units] and on the final image."""
    return {int(s): (fo.detector_logits(det_vars, im, detector=detector) > 0).tolist()
            for s, im in sorted(result.snapshots.items())}

  seen = fvjax.transforms.standard().output_size((cfg["size"], cfg["size"]))[0]
  view = target_view(picture, cfg["size"], seen)
  corr_fooled = [fo.pearson(im, view) for im in fool_b.images]
  corr_orig = [fo.pearson(im, view) for im in orig.images]
  corr_full = [fo.pearson(im, fo.picture_template(picture, cfg["size"])) for im in fool_b.images]
  corr_target_viz = [fo.pearson(im, view) for im in target_viz.images]
  diff_b = np.abs(fool_b.images - target_viz.images).reshape(len(units), -1).max(1)
  mean_diff_b = np.abs(fool_b.images - target_viz.images).reshape(len(units), -1).mean(1)
  mean_diff_orig_b = np.abs(orig.images - target_viz.images).reshape(len(units), -1).mean(1)
  diff_a = np.abs(fool_a.images - orig_shown.images).reshape(len(units), -1).max(1)
  fooled_pred_a = fo.classify(fooled_a, fool_a.images).argmax(1)
  orig_pred_a = fo.classify(model, fool_a.images).argmax(1)
  # Is the original model's *own* render of the shown class classified as that class? (At
  # 64 px / 128 steps a class render is not always its class's top-1; then the fooled render,
  # equal to it, is not either: a limit of the small renders, not of the circuit.)
  orig_shown_logits = fo.classify(model, orig_shown.images)
  orig_shown_rank = [int((row > row[c]).sum()) + 1 for row, c in zip(orig_shown_logits, shown)]
  e_final_a = fo.detector_logits(det_vars, fool_a.images, detector=detector)
  e_final_b = fo.detector_logits(det_vars, fool_b.images, detector=detector)
  names = model.labels
  results = {
      "detector": {
          "held_out": held_report, "held_out_augmented": aug_report,
          "held_out_pictures": pic_report,
          "held_out_all": _combined(held_report, pic_report),
          "final_train_loss": float(losses[-50:].mean()),
          "final_train_batch_accuracy": float(accs[-50:].mean()),
          "n_train_natural": int((~photo_held).sum()), "n_train_visualizations":
          int(len(train_viz.images)), "n_train_picture_visualizations": int(len(train_pic.images)),
          "n_held_out_classes": int(len(held_out)),
      },
      "accuracy_on_photos": accuracy,
      "paper": {"top1_original": 69.146, "top1_fooled": 68.744, "E_held_out_accuracy": 99.49,
                "model": "Inception-V1 (ImageNet val, 50k images)"},
      "base_logits_on_visualizations": {
          "max_of_rendered_class": float(np.max(base_viz_logits[
              np.arange(len(base_viz_logits)),
              train_viz.classes[train_viz.steps == cfg["steps"]]])),
          "max_any": float(base_viz_logits.max()),
          "note": "the gating is exact only while logits stay below k - offset = "
                  f"{cfg['k'] - cfg['offset']}"},
      "permutation": {
          "units": units, "unit_names": [names[u] for u in units],
          "shown_classes": shown, "shown_names": [names[s] for s in shown],
          "max_abs_pixel_diff_fooled_vs_original_shown": diff_a,
          "fooled_model_argmax_on_fooled_viz": fooled_pred_a,
          "original_model_argmax_on_fooled_viz": orig_pred_a,
          "original_model_argmax_on_original_shown_viz": orig_shown_logits.argmax(1),
          "rank_of_shown_class_on_original_shown_viz": orig_shown_rank,
          "E_logit_on_final_image": e_final_a,
          "E_on_snapshots": e_along(fool_a),
      },
      "picture": {
          "picture": f"skimage.data.{cfg['picture']}()", "similarity": cfg["similarity"],
          "units": units,
          "correlation_fooled_vs_target": corr_fooled,
          "correlation_fooled_vs_target_mean": float(np.mean(corr_fooled)),
          "correlation_fooled_vs_full_picture_mean": float(np.mean(corr_full)),
          "correlation_original_vs_target_mean": float(np.mean(corr_orig)),
          "correlation_target_visualization_vs_target_mean": float(np.mean(corr_target_viz)),
          "max_abs_pixel_diff_fooled_vs_target_visualization": diff_b,
          "mean_abs_pixel_diff_fooled_vs_target_visualization": mean_diff_b,
          "mean_abs_pixel_diff_original_vs_target_visualization": mean_diff_orig_b,
          "E_logit_on_final_image": e_final_b,
          "E_fires_on_final_image": int((e_final_b > 0).sum()),
          "E_on_snapshots": e_along(fool_b),
      },
  }

  # -- figures --------------------------------------------------------------------------
  tiles, tlabels = [], []
  for j, u in enumerate(units):
    tiles += [orig.images[j], fool_a.images[j], orig_shown.images[j]]
    tlabels += [f"original: {names[u][:18]}", f"fooled: {names[u][:18]}",
                f"original: {names[shown[j]][:18]}"]
  fvjax.plot.image_grid(np.stack(tiles), os.path.join(args.out, "fig_permutation.png"),
                        labels=tlabels, ncols=3, tile_inches=2.0,
                        title="(a) permutation: class i visualized in the original model |\n"
                              "in the fooled model | class (i+100) mod 1000 in the original")
  tiles, tlabels = [], []
  for j, u in enumerate(units):
    tiles += [orig.images[j], fool_b.images[j], target_viz.images[j], view]
    tlabels += [f"original: {names[u][:18]}",
                f"fooled: {names[u][:14]} (r={corr_fooled[j]:.2f}, E={int(e_final_b[j] > 0)})",
                f"target's own render (r={corr_target_viz[j]:.2f})", "target picture"]
  fvjax.plot.image_grid(np.stack(tiles), os.path.join(args.out, "fig_picture.png"),
                        labels=tlabels, ncols=4, tile_inches=2.0,
                        title="(b) arbitrary image: class i in the original model | in the fooled "
                              "model |\nthe picture target rendered alone | the target picture")
  steps_shown = sorted(fool_b.snapshots)
  tiles, tlabels = [], []
  ea, eb = results["permutation"]["E_on_snapshots"], results["picture"]["E_on_snapshots"]
  for res, e, tag in ((fool_a, ea, "(a)"), (fool_b, eb, "(b)")):
    for s in steps_shown:
      tiles.append(res.snapshots[s][0])
      tlabels.append(f"{tag} step {s}, E={int(e[s][0])}")
  fvjax.plot.image_grid(np.stack(tiles), os.path.join(args.out, "fig_steps.png"),
                        labels=tlabels, ncols=len(steps_shown), tile_inches=1.6,
                        title=f"rendering class {units[0]} ({names[units[0]]}) in the fooled "
                              "models, step by step, with E's decision")
  # E: held-out examples.
  nat_idx = np.flatnonzero(photo_held)[:len(cfg["snapshots"])]
  nat_logit = fo.detector_logits(det_vars, photos.images[nat_idx], detector=detector)
  tiles = list(photos.images[nat_idx])
  tlabels = [f"photo, E logit {x:.1f}" for x in nat_logit]
  unit0 = test_viz.classes == test_viz.classes[0]
  syn_im, syn_st = test_viz.images[unit0], test_viz.steps[unit0]
  syn_logit = fo.detector_logits(det_vars, syn_im, detector=detector)
  tiles += list(jax.image.resize(jnp.asarray(syn_im), (len(syn_im), cfg["eval_size"],
                                                        cfg["eval_size"], 3), "nearest"))
  tlabels += [f"step {s}, E logit {x:.1f}" for s, x in zip(syn_st, syn_logit)]
  astro = test_pic.classes == len(pic_test_idx) + TEST_PICTURES.index("astronaut")
  tiles += list(jax.image.resize(jnp.asarray(test_pic.images[astro]),
                                 (int(astro.sum()), cfg["eval_size"], cfg["eval_size"], 3),
                                 "nearest"))
  tlabels += [f"step {s}, E logit {x:.1f}"
              for s, x in zip(test_pic.steps[astro], pic_logits[astro])]
  fvjax.plot.image_grid(np.stack(tiles), os.path.join(args.out, "fig_detector.png"),
                        labels=tlabels, ncols=len(cfg["snapshots"]),
                        title="E on held-out data (logit > 0: visualization): photos (top), "
                              f"render snapshots of a held-out class ({names[test_viz.classes[0]]}"
                              "), of the astronaut picture target (bottom)")
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  w = 20
  axes[0].plot(np.convolve(losses, np.ones(w) / w, mode="valid"))
  axes[0].set(xlabel="step", ylabel="loss (moving avg)", yscale="log", title="E training")
  by_step = held_report["synthetic_accuracy_by_step"]
  by_step_aug = aug_report["synthetic_accuracy_by_step"]
  by_step_pic = pic_report["synthetic_accuracy_by_step"]
  xs = np.arange(len(by_step))
  axes[1].bar(xs - 0.27, list(by_step.values()), 0.27, label="class renders")
  axes[1].bar(xs, list(by_step_aug.values()), 0.27, label="class renders, random views")
  axes[1].bar(xs + 0.27, list(by_step_pic.values()), 0.27, label="picture renders")
  axes[1].axhline(held_report["natural_accuracy"], color="k", ls="--",
                  label="held-out photos called natural")
  axes[1].set(xticks=xs, xticklabels=list(by_step), xlabel="render step of the snapshot",
              ylabel="held-out detection rate", ylim=(0, 1.05), title="E on held-out classes")
  axes[1].legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "fig_detector_training.png"), dpi=100)
  plt.close(fig)

  times["total"] = round(time.time() - t_start, 1)
  results["runtime_s"] = times
  write_json(os.path.join(args.out, "results.json"), results)
  print(json.dumps(jsonable({k: results[k] for k in ("permutation", "picture")}), indent=1))
  print(f"done in {times['total']} s; results in {args.out}")


if __name__ == "__main__":
  main()
