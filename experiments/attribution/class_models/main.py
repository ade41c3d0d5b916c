"""Simonyan et al. (2014) class models on Tiny Darknet: the L2-regularised version (no blur,
no clipping), with a learning-rate / weight-decay grid to find a setting whose image moves
and shows structure, then that setting at 224 px.

`fvjax.attribution.class_model` maximises ``S_c(mean + I) - lambda ||I||^2`` by plain gradient
ascent from ``I = 0``. For each grid cell and class it records the logit gain, the standard
deviation of ``I`` (how far the image moved, in [0, 1] pixel units) and the fraction of the
centred image's power at spatial frequencies below 1/8 of Nyquist (``low_freq``: about 0.016
for white noise, near 1 for smooth images), the measure of "grey noise" used here. The chosen
cell maximises ``low_freq`` among cells whose image moved (std > 0.05) and whose logit rose;
it is then run at the model's 224 px for more classes and steps. Images are shown three ways:
min-max normalised (what `class_model` returns), stretched between the 1st and 99th
percentile, and as the model saw them (``mean + I`` clipped to [0, 1]).

    python experiments/attribution/class_models/main.py \
        --out experiments/attribution/class_models/results --seed 0

Writes config.json, results.json, fig_grid.png and fig_class_models.png to --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402

import fvjax  # noqa: E402
from fvjax import attribution as A  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Tiny Darknet's own class order (fvjax/weights/tiny_darknet_labels.tsv)
SCALES = {
    "default": dict(grid_size=128, grid_steps=100, grid_classes=(130, 300),
                    learning_rates=(0.1, 1.0, 10.0), weight_decays=(1e-3, 1e-1),
                    size=224, steps=200, classes=(130, 300, 500, 950)),
    "paper": dict(grid_size=224, grid_steps=300, grid_classes=(130, 300, 500, 950),
                  learning_rates=(0.01, 0.1, 1.0, 10.0, 100.0),
                  weight_decays=(1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                  size=224, steps=500, classes=tuple(range(0, 1000, 100))),
    "smoke": dict(grid_size=64, grid_steps=5, grid_classes=(130,), learning_rates=(1.0,),
                  weight_decays=(1e-3,), size=64, steps=5, classes=(130,)),
}


def low_freq_fraction(raw: np.ndarray) -> np.ndarray:
  """``[K, H, W, 3]`` -> ``[K]``: power of the centred image below 1/8 of Nyquist / total."""
  x = raw - raw.mean(axis=(1, 2), keepdims=True)
  p = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2
  fy = np.abs(np.fft.fftfreq(x.shape[1]))[:, None]
  fx = np.abs(np.fft.fftfreq(x.shape[2]))[None, :]
  low = (np.maximum(fy, fx) < 0.5 / 8)[None, :, :, None]
  return (p * low).sum(axis=(1, 2, 3)) / np.maximum(p.sum(axis=(1, 2, 3)), 1e-30)


def stretch(raw: np.ndarray) -> np.ndarray:
  lo = np.percentile(raw, 1, axis=(1, 2, 3), keepdims=True)
  hi = np.percentile(raw, 99, axis=(1, 2, 3), keepdims=True)
  return np.clip((raw - lo) / np.maximum(hi - lo, 1e-12), 0, 1)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=tuple(SCALES), default="default")
  args = parser.parse_args(argv)
  cfg = SCALES[args.scale]
  os.makedirs(args.out, exist_ok=True)
  start = time.time()
  model = fvjax.zoo.load("tiny-darknet")
  names = model.labels
  common.write_json(os.path.join(args.out, "config.json"), dict(
      args=vars(args), scale=cfg, method="class_model: SGD on I, L2 penalty lambda ||I||^2, "
      "no blur, no clipping, from I = 0 (the ImageNet mean colour)",
      environment=common.environment()))
  grid, grid_images = [], []
  for lr in cfg["learning_rates"]:
    for wd in cfg["weight_decays"]:
      t0 = time.time()
      r = A.class_model(model, list(cfg["grid_classes"]), size=cfg["grid_size"],
                        steps=cfg["grid_steps"], learning_rate=lr, weight_decay=wd)
      centred = r.raw - np.asarray(A_mean())
      row = dict(learning_rate=lr, weight_decay=wd, initial=r.initial, final=r.scores,
                 gain=float(np.mean(r.scores - r.initial)),
                 finite=bool(np.isfinite(r.raw).all()),
                 std=float(np.mean(centred.std(axis=(1, 2, 3)))),
                 low_freq=float(np.mean(low_freq_fraction(r.raw))),
                 seconds=time.time() - t0)
      grid.append(row)
      grid_images.append((lr, wd, r))
      print({k: v for k, v in row.items() if k not in ("initial", "final")}, flush=True)
  ok = [g for g in grid if g["finite"] and g["std"] > 0.05 and g["gain"] > 0]
  best = max(ok, key=lambda g: g["low_freq"]) if ok else max(grid, key=lambda g: g["gain"])
  t0 = time.time()
  final = A.class_model(model, list(cfg["classes"]), size=cfg["size"], steps=cfg["steps"],
                        learning_rate=best["learning_rate"], weight_decay=best["weight_decay"])
  final_seconds = time.time() - t0
  figures(grid_images, final, cfg, names, args.out, best)
  results = dict(grid=grid, chosen=dict(learning_rate=best["learning_rate"],
                                        weight_decay=best["weight_decay"]),
                 final=dict(classes=list(cfg["classes"]),
                            names=[names[c] for c in cfg["classes"]],
                            initial=final.initial, final=final.scores,
                            std=(final.raw - np.asarray(A_mean())).std(axis=(1, 2, 3)),
                            low_freq=low_freq_fraction(final.raw),
                            top1=[int(np.argmax(v)) for v in np.asarray(
                                model(np.clip(final.raw, 0, 1))["logits"])],
                            seconds=final_seconds),
                 white_noise_low_freq=float(low_freq_fraction(np.random.default_rng(
                     args.seed).normal(size=(1, cfg["size"], cfg["size"], 3)))[0]),
                 total_seconds=time.time() - start)
  common.write_json(os.path.join(args.out, "results.json"), results)
  print(results["final"], results["white_noise_low_freq"])


def A_mean():  # noqa: N802 (the ImageNet mean class_model adds)
  return (0.485, 0.456, 0.406)


def figures(grid_images, final, cfg, names, out, best):
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  k = len(cfg["grid_classes"])
  fig, axes = plt.subplots(len(grid_images), k, figsize=(1.9 * k, 1.9 * len(grid_images)),
                           squeeze=False)
  for r, (lr, wd, res) in enumerate(grid_images):
    for c in range(k):
      axes[r, c].imshow(stretch(res.raw)[c])
      axes[r, c].set_xticks([])
      axes[r, c].set_yticks([])
      if c == 0:
        axes[r, c].set_ylabel(f"lr {lr:g}\nλ {wd:g}", fontsize=7)
      if r == 0:
        axes[r, c].set_title(names[cfg["grid_classes"][c]][:18], fontsize=7)
  fig.suptitle(f"class models, {cfg['grid_steps']} steps at {cfg['grid_size']} px "
               "(1-99 percentile stretch)", fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "fig_grid.png"), dpi=100)
  plt.close(fig)
  views = (("min-max", final.images), ("1-99 % stretch", stretch(final.raw)),
           ("model input, clipped", np.clip(final.raw, 0, 1)))
  n = len(cfg["classes"])
  fig, axes = plt.subplots(len(views), n, figsize=(2.2 * n, 2.3 * len(views)), squeeze=False)
  for r, (what, ims) in enumerate(views):
    for c in range(n):
      axes[r, c].imshow(ims[c])
      axes[r, c].set_xticks([])
      axes[r, c].set_yticks([])
      if c == 0:
        axes[r, c].set_ylabel(what, fontsize=8)
      if r == 0:
        axes[r, c].set_title(names[cfg["classes"][c]][:20], fontsize=8)
  fig.suptitle(f"Simonyan class models (L2 only): lr {best['learning_rate']:g}, "
               f"λ {best['weight_decay']:g}, {cfg['steps']} steps at {cfg['size']} px",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "fig_class_models.png"), dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  main()
