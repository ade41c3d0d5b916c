"""Olah, Mordvintsev & Schubert (2017), "Feature Visualization" (Distill): the diversity,
neuron-interaction and regularization figures as measured experiments on Tiny Darknet.

    python experiments/distill/main.py --out experiments/distill/results --seed 0

(``--parts diversity`` re-runs one part and keeps the others' numbers in ``results.json``.)

Paper scale (GPU/TPU: 128 px, 512 steps, more units):

    python experiments/distill/main.py --scale paper --out experiments/distill/results_paper

Three parts, each a figure and numbers in ``results.json``:

- **Diversity**: a batch of 4 images per unit, ``channel + w * diversity`` for w = 0 (4
  independent random starts), 1, 10 and 100 (the article's objective, Lucid's weight, with
  fvjax's sign), all in one compiled batch. Measured: the mean pairwise cosine similarity of the images' Gram
  matrices at the unit's layer (the quantity the diversity term lowers), the mean pairwise
  RMS pixel distance, and each image's activation of the unit.
- **Neuron interaction**: interpolation strips between two units (``channel_interpolate`` +
  ``alignment``, ``param.image(..., shared=True)``, ``fvjax.plot.interpolation_strip``) and
  neuron addition (unit a, unit b, a + b). Measured: each frame's / image's spatial-mean
  activation of a and b.
- **Regularization** (the article's "frequency penalization vs transformation robustness vs
  preconditioning" figure): pixels with no regularization, with L1, total variation or blur
  penalties (no transforms); pixels with Lucid's standard transforms (transformation
  robustness); the decorrelated Fourier parameterization alone (preconditioning) and with the
  transforms (the article's combination). Measured: the unit's activation of the final image
  (no transforms) and its high-frequency energy: the fraction of the (mean-removed, grey)
  image's power spectrum at radial frequencies above 0.25 cycles/pixel (half Nyquist),
  beside the same number for shared photos resized to the same size.

Adam (lr 0.05) everywhere, the default of `fvjax.render`. Writes ``config.json``,
``results.json``, ``diversity.png``, ``interpolation_<a>_<b>.png``, ``addition.png`` and
``regularization.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import fvjax
from fvjax import experiment
from fvjax import objectives as O
from fvjax import param as P
from fvjax import transforms as T

SCALES = {
    "default": dict(size=64, steps=192, layer="leaky_re_lu_8", diversity_units=(3, 13),
                    pairs=((3, 13), (42, 77)), frames=6, regularization_units=(13, 42),
                    n_photos=32),
    "paper": dict(size=128, steps=512, layer="leaky_re_lu_8",
                  diversity_units=(3, 13, 42, 77, 100, 200), pairs=((3, 13), (42, 77), (100, 200)),
                  frames=8, regularization_units=(3, 13, 42, 77), n_photos=200),
}
DIVERSITY_WEIGHTS = (0.0, 1.0, 10.0, 100.0)  # 100: the article's (Lucid's) weight
PARTS = ("diversity", "interaction", "regularization")
ALIGNMENT_WEIGHT = 1e-1
# penalty weights of the frequency-penalization variants (those of notebooks/feature_vis)
PENALTIES = {"none": (0.0, 0.0, 0.0), "L1 (0.5)": (0.5, 0.0, 0.0),
             "total variation (2)": (0.0, 2.0, 0.0), "blur (20)": (0.0, 0.0, 20.0)}
HIGH_FREQUENCY = 0.25  # cycles / pixel
# the regularization figure's tile titles (the full names are results.json's keys)
SHORT = {"none": "none", "L1 (0.5)": "L1 0.5", "total variation (2)": "TV 2",
         "blur (20)": "blur 20", "transformation robustness": "transforms",
         "preconditioning only": "Fourier", "preconditioning + transformation robustness":
         "Fourier+transf."}


def high_frequency_fraction(images: np.ndarray, cutoff: float = HIGH_FREQUENCY) -> np.ndarray:
  """``[N]`` the fraction of each image's power spectrum (grey = RGB mean, mean removed) at
  radial frequencies above ``cutoff`` cycles/pixel; images ``[N, H, W, 3]`` in [0, 1]."""
  grey = np.asarray(images, np.float64).mean(axis=-1)
  grey = grey - grey.mean(axis=(1, 2), keepdims=True)
  power = np.abs(np.fft.fft2(grey)) ** 2
  fy = np.fft.fftfreq(grey.shape[1])[:, None]
  fx = np.fft.fftfreq(grey.shape[2])[None, :]
  high = np.sqrt(fx ** 2 + fy ** 2) > cutoff
  total = power.reshape(len(grey), -1).sum(axis=1)
  return power[:, high].sum(axis=1) / np.maximum(total, 1e-30)


def layer_forward(model, layer: str):
  """A compiled ``images [N, H, W, 3] -> activations of layer [N, h, w, C]``."""
  return jax.jit(lambda x: model(x)[layer])


def activations(forward, images: np.ndarray) -> np.ndarray:
  """``[N, C]`` spatial-mean activations (``forward`` from `layer_forward`)."""
  return np.asarray(forward(jnp.asarray(images)).mean(axis=(1, 2)))


def gram_similarity(forward, images: np.ndarray, layer: str) -> float:
  """Mean pairwise cosine similarity of the images' Gram matrices ``G_ij = sum_xy a_i a_j``
  at ``layer`` (1 = the same style statistics; the quantity `fvjax.objectives.diversity`
  lowers), computed here in NumPy (``forward`` from `layer_forward`)."""
  del layer  # the layer is ``forward``'s
  acts = np.asarray(forward(jnp.asarray(images)), np.float64)
  flat = acts.reshape(len(acts), -1, acts.shape[-1])
  grams = np.einsum("bpi,bpj->bij", flat, flat).reshape(len(acts), -1)
  grams /= np.maximum(np.linalg.norm(grams, axis=1, keepdims=True), 1e-30)
  cos = grams @ grams.T
  b = len(images)
  return float((cos.sum() - np.trace(cos)) / (b * (b - 1)))


def pixel_distance(images: np.ndarray) -> float:
  """Mean pairwise RMS difference between images ``[B, H, W, 3]`` (pixels in [0, 1])."""
  x = np.asarray(images, np.float64).reshape(len(images), -1)
  d = [np.sqrt(np.mean((x[i] - x[j]) ** 2)) for i in range(len(x)) for j in range(i + 1, len(x))]
  return float(np.mean(d))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="experiments/distill/results")
  parser.add_argument("--scale", default="default", choices=sorted(SCALES))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=None, help="override the scale's steps")
  parser.add_argument("--parts", default=",".join(PARTS),
                      help="comma-separated parts to run; the others' numbers are kept from "
                           "an existing results.json in --out")
  args = parser.parse_args(argv)
  parts = [p for p in args.parts.split(",") if p]
  if not parts or any(p not in PARTS for p in parts):
    parser.error(f"--parts must name some of {', '.join(PARTS)}, got {args.parts!r}")
  cfg = dict(SCALES[args.scale])
  if args.steps:
    cfg["steps"] = args.steps
  start = time.time()
  os.makedirs(args.out, exist_ok=True)
  model = fvjax.zoo.load("tiny-darknet")
  layer, size, steps = cfg["layer"], cfg["size"], cfg["steps"]
  key = jax.random.key(args.seed)
  forward = layer_forward(model, layer)
  results = {"seconds": {}}
  previous = os.path.join(args.out, "results.json")
  if len(parts) < len(PARTS) and os.path.exists(previous):
    with open(previous) as f:
      results = json.load(f)
  experiment.write_json(os.path.join(args.out, "config.json"), {
      "article": "Olah, Mordvintsev & Schubert (2017), Feature Visualization, Distill",
      "model": model.name, "scale": args.scale, "seed": args.seed, **cfg,
      "optimizer": "Adam(0.05)", "diversity_weights": DIVERSITY_WEIGHTS,
      "alignment_weight": ALIGNMENT_WEIGHT, "penalty_weights (l1, tv, blur)": PENALTIES,
      "high_frequency_cutoff_cycles_per_pixel": HIGH_FREQUENCY,
      "transforms": "none for the penalty variants and 'preconditioning only'; Lucid standard "
                    "elsewhere"})

  # -- diversity ------------------------------------------------------------------------
  if "diversity" in parts:
    t = time.time()
    units = cfg["diversity_units"]
    # every unit at every weight: one structure, so one compiled batch of K = units x weights
    objectives = [O.channel(layer, u) + w * O.diversity(layer)
                  for u in units for w in DIVERSITY_WEIGHTS]
    rendered = fvjax.render(model, objectives, key=key, steps=steps, size=size, batch=4,
                            progress=False).images
    div, tiles, labels = {}, [], []
    for i, unit in enumerate(units):
      for j, weight in enumerate(DIVERSITY_WEIGHTS):
        images = rendered[i * len(DIVERSITY_WEIGHTS) + j]
        acts = activations(forward, images)[:, unit]
        entry = {"gram_cosine_mean": gram_similarity(forward, images, layer),
                 "pixel_rms_distance_mean": pixel_distance(images),
                 "unit_activation": acts.tolist(), "unit_activation_mean": float(acts.mean())}
        div.setdefault(str(unit), {})[f"{weight:g}"] = entry
        tiles.extend(images)
        labels.extend([f"{layer}:{unit}, diversity x {weight:g}\nGram cos "
                       f"{entry['gram_cosine_mean']:.2f}, act {entry['unit_activation_mean']:.1f}",
                       "", "", ""])
    fvjax.plot.image_grid(np.stack(tiles), os.path.join(args.out, "diversity.png"), ncols=4,
                          labels=labels, title=f"Tiny Darknet, batch of 4 per unit, {steps} "
                          f"steps at {size} px: channel + w x diversity")
    results["diversity"] = {
        "weights": list(DIVERSITY_WEIGHTS), "per_unit": div,
        "gram_cosine_mean_by_weight": {f"{w:g}": float(np.mean(
            [div[str(u)][f"{w:g}"]["gram_cosine_mean"] for u in units]))
            for w in DIVERSITY_WEIGHTS},
        "unit_activation_mean_by_weight": {f"{w:g}": float(np.mean(
            [div[str(u)][f"{w:g}"]["unit_activation_mean"] for u in units]))
            for w in DIVERSITY_WEIGHTS}}
    results["seconds"]["diversity"] = time.time() - t
    print("diversity", results["diversity"]["gram_cosine_mean_by_weight"],
          results["diversity"]["unit_activation_mean_by_weight"], flush=True)

  # -- neuron interaction: interpolation and addition -------------------------------------
  if "interaction" in parts:
    t = time.time()
    n = cfg["frames"]
    interp = {}
    for a, b in cfg["pairs"]:
      objective = (O.channel_interpolate(layer, a, layer, b)
                   + ALIGNMENT_WEIGHT * O.alignment(layer))
      images = fvjax.render(model, objective, key=key, steps=steps, batch=n,
                            param=P.image(size, batch=n, shared=True), progress=False).images[0]
      fvjax.plot.interpolation_strip(images, os.path.join(args.out, f"interpolation_{a}_{b}.png"),
                                     start=f"{layer}:{a}", end=f"{layer}:{b}")
      acts = activations(forward, images)
      share = acts[:, b] / np.maximum(acts[:, a] + acts[:, b], 1e-6)
      interp[f"{a}-{b}"] = {
          "activation_a": acts[:, a].tolist(), "activation_b": acts[:, b].tolist(),
          "share_b": share.tolist(),
          "spearman_frame_vs_share_b": float(np.corrcoef(np.arange(n),
                                                         np.argsort(np.argsort(share)))[0, 1]),
          "neighbour_pixel_rms": [pixel_distance(images[i:i + 2]) for i in range(n - 1)]}
    results["interpolation"] = interp
    addition, tiles, labels = {}, [], []
    pairs = cfg["pairs"]
    weights = [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
    variants = [wa * O.channel(layer, a) + wb * O.channel(layer, b)
                for a, b in pairs for wa, wb in weights]
    images = fvjax.render(model, variants, key=key, steps=steps, size=size,
                          progress=False).images
    acts = activations(forward, images)
    for p, (a, b) in enumerate(pairs):
      rows = acts[3 * p:3 * p + 3]
      addition[f"{a}+{b}"] = {
          name: {"activation_a": float(r[a]), "activation_b": float(r[b])}
          for name, r in zip((f"{a}", f"{b}", f"{a} + {b}"), rows)}
      addition[f"{a}+{b}"]["sum_image_beats_the_other_single_image_on_both"] = bool(
          rows[2][a] > rows[1][a] and rows[2][b] > rows[0][b])
      tiles.extend(images[3 * p:3 * p + 3])
      labels.extend([f"{layer}:{a}\na {rows[0][a]:.1f}, b {rows[0][b]:.1f}",
                     f"{layer}:{b}\na {rows[1][a]:.1f}, b {rows[1][b]:.1f}",
                     f"{a} + {b}\na {rows[2][a]:.1f}, b {rows[2][b]:.1f}"])
    fvjax.plot.image_grid(np.stack(tiles), os.path.join(args.out, "addition.png"), ncols=3,
                          labels=labels, title="neuron addition: a, b, a + b "
                                               "(spatial-mean activations of a and b)")
    results["addition"] = addition
    results["seconds"]["interaction"] = time.time() - t
    print("interpolation share_b", {k: np.round(v["share_b"], 2).tolist()
                                    for k, v in interp.items()}, flush=True)

  # -- regularization ---------------------------------------------------------------------
  if "regularization" in parts:
    t = time.time()
    runits = cfg["regularization_units"]
    finals = {}
    penalised = [O.channel(layer, u) - l1 * O.l1() - tv * O.total_variation()
                 - blur * O.blur_penalty() for u in runits for l1, tv, blur in PENALTIES.values()]
    out = fvjax.render(model, penalised, key=key, steps=steps, param=P.pixel(size),
                       transforms=T.identity(), progress=False).images
    for i, u in enumerate(runits):
      for j, name in enumerate(PENALTIES):
        finals.setdefault(name, {})[u] = out[i * len(PENALTIES) + j]
    others = {"transformation robustness": (P.pixel(size), T.standard()),
              "preconditioning only": (P.image(size), T.identity()),
              "preconditioning + transformation robustness": (P.image(size), T.standard())}
    for name, (param, transforms) in others.items():
      images = fvjax.render(model, O.channel(layer, jnp.asarray(runits)), key=key, steps=steps,
                            param=param, transforms=transforms, progress=False).images
      finals[name] = {u: images[i] for i, u in enumerate(runits)}
    photos = fvjax.data.image_folder(str(experiment.shared_photos_dir()), size,
                                     limit=cfg["n_photos"]).images
    photo_hf = high_frequency_fraction(photos)
    reg, tiles, labels = {}, [], []
    for u in runits:
      for name, per_unit in finals.items():
        image = per_unit[u][None]
        hf = float(high_frequency_fraction(image)[0])
        act = float(activations(forward, image)[0, u])
        reg.setdefault(name, {})[str(u)] = {"unit_activation": act, "high_frequency_fraction": hf}
        tiles.append(image[0])
        labels.append(f"unit {u}: {SHORT[name]}\nact {act:.1f}, HF {100 * hf:.0f}%")
    fvjax.plot.image_grid(np.stack(tiles), os.path.join(args.out, "regularization.png"),
                          ncols=len(finals), labels=labels, label_fontsize=6,
                          title=f"regularization of {layer} units, {steps} Adam steps at {size} "
                                f"px; TV: total variation; transforms: transformation robustness;"
                                f"\nFourier: decorrelated Fourier parameterization "
                                f"(preconditioning); HF: power above {HIGH_FREQUENCY} cycles/px "
                                f"(photos {100 * photo_hf.mean():.1f}%)")
    results["regularization"] = {
        "per_variant": reg,
        "mean_high_frequency_fraction": {n: float(np.mean([v["high_frequency_fraction"]
                                                           for v in d.values()]))
                                         for n, d in reg.items()},
        "mean_unit_activation": {n: float(np.mean([v["unit_activation"] for v in d.values()]))
                                 for n, d in reg.items()},
        "photos": {"count": len(photos), "high_frequency_fraction_mean": float(photo_hf.mean()),
                   "high_frequency_fraction_min_max": [float(photo_hf.min()),
                                                       float(photo_hf.max())]}}
    results["seconds"]["regularization"] = time.time() - t
  results["seconds"]["total"] = time.time() - start
  experiment.write_json(os.path.join(args.out, "results.json"), results, digits=5)
  print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
  main()
