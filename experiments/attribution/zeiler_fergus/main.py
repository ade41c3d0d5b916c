"""Zeiler & Fergus (2014), Fig. 2 on Tiny Darknet: for a few channels of three layers, the
top-9 activations over the shared photos projected back to pixel space by the deconvnet,
beside the image patches around them.

For each layer, channels are drawn with the seed (not chosen by eye). `fvjax.dataset_examples`
ranks the photos by each channel's peak activation (``reduce="max"``) and crops a patch of the
unit's receptive field around the peak; `fvjax.attribution.project_activation` projects that
single activation (all others zeroed) to the input through the deconvnet (rectifiers pass only
positive signal, max-pooling uses its switches, convolutions their transposes). The
projection is cropped with the same box as the patch.

    python experiments/attribution/zeiler_fergus/main.py \
        --out experiments/attribution/zeiler_fergus/results --seed 0

Writes config.json, results.json and fig_<layer>.png (projections | patches per channel) and
fig_all.png to --out.
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
from fvjax import objectives as obj  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Receptive fields of Tiny Darknet's layers (3x3 'same' convolutions, 1x1 convolutions,
# 2x2/2 max pooling after leaky_re_lu_1, _2, _6, _10): side in input pixels, stride, and the
# padding offset P, so that cell i sees input pixels i*stride - P .. i*stride - P + side - 1.
RECEPTIVE = {"leaky_re_lu_4": (18, 4, 7), "leaky_re_lu_8": (46, 8, 19),
             "leaky_re_lu_12": (126, 16, 55)}
SCALES = {
    "default": dict(size=224, photos=1000, layers=tuple(RECEPTIVE), channels=4, top=9,
                    batch_size=16),
    "paper": dict(size=224, photos=1000, layers=tuple(RECEPTIVE), channels=9, top=9,
                  batch_size=32),
    "smoke": dict(size=224, photos=40, layers=tuple(RECEPTIVE), channels=2, top=9,
                  batch_size=8),
}


def montage(tiles: np.ndarray, rows: int = 3) -> np.ndarray:
  """``[k, h, w, 3]`` -> one ``[rows*(h+1)-1, cols*(w+1)-1, 3]`` image (white gaps)."""
  k, h, w, _ = tiles.shape
  cols = -(-k // rows)
  out = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, 3), np.float32)
  for i in range(k):
    r, c = divmod(i, cols)
    out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tiles[i]
  return out


def show_projection(signal: np.ndarray) -> np.ndarray:
  """A signed projection ``[h, w, 3]`` scaled for display: 0.5 + 0.5 * s / m, clipped, with
  m the 99th percentile of the nonzero |s| (a few extreme pixels would hide the rest)."""
  a = np.abs(signal)
  m = np.percentile(a[a > 0], 99) if (a > 0).any() else 1.0
  return np.clip(0.5 + 0.5 * signal / (m if m > 0 else 1.0), 0, 1)


def crop(image: np.ndarray, box) -> np.ndarray:
  """``image[top:bottom, left:right]`` padded with 0.5 where the box leaves the image."""
  top, left, bottom, right = (int(v) for v in box)
  h, w = image.shape[:2]
  out = np.full((bottom - top, right - left, image.shape[-1]), 0.5, np.float32)
  t, l, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
  out[t - top:b - top, l - left:r - left] = image[t:b, l:r]
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=tuple(SCALES), default="default")
  parser.add_argument("--photos", default=str(common.PHOTOS))
  args = parser.parse_args(argv)
  cfg = SCALES[args.scale]
  os.makedirs(args.out, exist_ok=True)
  start = time.time()
  model = fvjax.zoo.load("tiny-darknet")
  photos = fvjax.data.image_folder(args.photos, cfg["size"], limit=cfg["photos"])
  rng = np.random.default_rng(args.seed)
  chosen = {layer: sorted(int(c) for c in rng.choice(model.layers[layer][-1], cfg["channels"],
                                                     replace=False))
            for layer in cfg["layers"]}
  common.write_json(os.path.join(args.out, "config.json"), dict(
      args=vars(args), scale=cfg, channels=chosen, receptive_fields=RECEPTIVE,
      photos=len(photos.images), model=model.name, environment=common.environment()))
  results, seconds, panels = {}, {}, {}
  for layer in cfg["layers"]:
    side, stride, pad = RECEPTIVE[layer]
    t0 = time.time()
    ex = fvjax.dataset_examples(model, obj.channel(layer, np.asarray(chosen[layer])), photos,
                                k=cfg["top"], bottom=False, crop=side, reduce="max",
                                batch_size=cfg["batch_size"], progress=False).top
    seconds[f"{layer} examples"] = time.time() - t0
    t0 = time.time()
    idx = ex.indices.reshape(-1)
    chans = np.repeat(np.asarray(chosen[layer]), cfg["top"])
    proj = A.project_activation(model, photos.images[idx], layer, chans,
                                batch_size=cfg["batch_size"])
    seconds[f"{layer} projections"] = time.time() - t0
    boxes = ex.boxes.reshape(-1, 4)
    rows = []
    inside, nonzero, peak_match = [], [], []
    for j, (sig, box, pos) in enumerate(zip(proj.signal, boxes, proj.positions)):
      energy = np.abs(sig).sum()
      top_, left_ = pos[0] * stride - pad, pos[1] * stride - pad
      rf = np.zeros(sig.shape[:2], bool)
      rf[max(top_, 0):max(top_ + side, 0), max(left_, 0):max(left_ + side, 0)] = True
      inside.append(float(np.abs(sig)[rf].sum() / energy) if energy > 0 else float("nan"))
      nonzero.append(bool(energy > 0))
      rows.append(show_projection(crop(sig, box)))
    # the projected peak is the one dataset_examples ranked by (same cell, same value)
    for j, pos in enumerate(proj.positions):
      k_, i_ = divmod(j, cfg["top"])
      centre = ex.positions[k_, i_]
      peak_match.append(bool(np.allclose(centre, (pos + 0.5) * stride, atol=stride)))
    proj_tiles = np.stack(rows).reshape(len(chosen[layer]), cfg["top"], side, side, 3)
    panels[layer] = [(c, montage(proj_tiles[i]), montage(ex.images[i]))
                     for i, c in enumerate(chosen[layer])]
    results[layer] = {
        "channels": chosen[layer], "receptive_field_px": side,
        "photos": [list(n) for n in ex.names], "scores": ex.scores,
        "projected_values": proj.values.reshape(len(chosen[layer]), -1),
        "positions": proj.positions.reshape(len(chosen[layer]), cfg["top"], 2),
        "fraction_inside_receptive_field": float(np.nanmin(inside)),
        "nonzero_projections": int(np.sum(nonzero)), "projections": len(nonzero),
        "peak_matches_dataset_examples": float(np.mean(peak_match)),
        "value_matches_score": float(np.max(np.abs(proj.values.reshape(ex.scores.shape)
                                                   - ex.scores))),
    }
    print(layer, {k: v for k, v in results[layer].items()
                  if k in ("fraction_inside_receptive_field", "nonzero_projections",
                           "peak_matches_dataset_examples", "value_matches_score")},
          flush=True)
  figures(panels, args.out)
  results["seconds"] = seconds
  results["total_seconds"] = time.time() - start
  common.write_json(os.path.join(args.out, "results.json"), results)


def figures(panels, out):
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  for layer, items in panels.items():
    fig, axes = plt.subplots(1, 2 * len(items), figsize=(3.3 * len(items), 1.95))
    for i, (c, proj, patch) in enumerate(items):
      for ax, im, what in ((axes[2 * i], proj, "deconvnet"), (axes[2 * i + 1], patch, "patches")):
        ax.imshow(im)
        ax.set_title(f"ch {c}: {what}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"Tiny Darknet {layer}: top-9 activations projected by the deconvnet | "
                 "their patches", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"fig_{layer}.png"), dpi=110)
    plt.close(fig)
  n = max(len(v) for v in panels.values())
  fig, axes = plt.subplots(len(panels), 2 * n, figsize=(3.0 * n, 1.75 * len(panels)),
                           squeeze=False)
  for r, (layer, items) in enumerate(panels.items()):
    for i, (c, proj, patch) in enumerate(items):
      for ax, im in ((axes[r, 2 * i], proj), (axes[r, 2 * i + 1], patch)):
        ax.imshow(im)
        ax.axis("off")
      axes[r, 2 * i].set_title(f"{layer} ch {c}", fontsize=7)
  fig.suptitle("Tiny Darknet: deconvnet projections of the top-9 activations (left), "
               "their patches (right)", fontsize=9)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "fig_all.png"), dpi=110)
  plt.close(fig)


if __name__ == "__main__":
  main()
