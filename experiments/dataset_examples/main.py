"""Feature visualizations beside dataset examples for channels of Tiny Darknet.

For 8 channels of ``leaky_re_lu_12`` (512 channels, stride 16 at 224 px) this renders a
feature visualization per channel (`fvjax.render`, 96 px, 256 steps, default Fourier/
decorrelated parameterization and Lucid's standard transforms) and finds the channel's
dataset examples among the 1000 shared ImageNet photos (centre-cropped to 224 px, streamed
from disk in batches): the top-9 96-px crops around each photo's peak activation (ranked by
the channel's max over positions), and the top-9 / bottom-9 whole photos (ranked by the
channel's mean, the objective the render maximises). It also scores the top crops with the
render's own objective at 96 px, to compare the visualization with its best natural crops.

Reproduce (CPU; 2.5-4 minutes on a busy 2-core machine, over half of it rendering):

    python experiments/dataset_examples/main.py \
        --out experiments/dataset_examples/results

``--scale paper`` (GPU/TPU) renders 64 channels (every 8th) at 224 px for 512 steps, the
Distill article's size and step count.

Writes to ``--out``: ``config.json``, ``results.json`` (per channel: scores, file names,
indices, peak positions; timings), ``panel_crops.png`` (visualization | top-9 crops),
``panel_whole.png`` (visualization | top-9 | bottom-9 whole photos).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import fvjax
from fvjax import objectives as obj
from fvjax.data import IMAGE_EXTENSIONS, image_folder
from fvjax.experiment import shared_photos_dir
from fvjax.plot import dataset_examples_panel

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUT = "experiments/dataset_examples/results"
DEFAULT_PHOTOS = shared_photos_dir()
# steps and render size; channels: how many, evenly spaced over the layer
SCALES = {"default": dict(steps=256, render_size=96, n_channels=8),
          "paper": dict(steps=512, render_size=224, n_channels=64)}


def photo_batches(folder: str, files: list[str], size: int, batch: int):
  """Stream the photos from disk as `ImageSet` batches (memory: one batch at a time)."""
  for start in range(0, len(files), batch):
    yield image_folder(folder, size, crop=True, files=files[start:start + batch])


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default=DEFAULT_OUT)
  ap.add_argument("--photos", default=str(DEFAULT_PHOTOS))
  ap.add_argument("--layer", default="leaky_re_lu_12")
  ap.add_argument("--channels", type=int, nargs="+", default=None,
                  help="default: the scale's count, evenly spaced over the layer")
  ap.add_argument("--scale", choices=sorted(SCALES), default="default")
  ap.add_argument("--steps", type=int, default=None, help="the scale's if unset")
  ap.add_argument("--render-size", type=int, default=None, help="the scale's if unset")
  ap.add_argument("--image-size", type=int, default=224)
  ap.add_argument("--crop", type=int, default=96)
  ap.add_argument("--k", type=int, default=9)
  ap.add_argument("--batch-size", type=int, default=32)
  ap.add_argument("--limit", type=int, default=None, help="use only the first N photos")
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args(argv)
  scale = SCALES[args.scale]
  if args.steps is None:
    args.steps = scale["steps"]
  if args.render_size is None:
    args.render_size = scale["render_size"]

  model = fvjax.zoo.load("tiny-darknet")
  depth = model.layer_shape(args.layer)[-1]
  channels = args.channels or np.linspace(0, depth - 1, scale["n_channels"]).round().astype(int).tolist()
  files = sorted(f for f in os.listdir(args.photos) if f.lower().endswith(IMAGE_EXTENSIONS))
  files = files[:args.limit]
  with open(REPO / "fvjax" / "weights" / "tiny_darknet_labels.tsv") as fh:
    labels = dict(line.rstrip("\n").split("\t")[:2] for line in fh if line.strip())
  config = dict(vars(args), channels=channels, model=model.name, photos_used=len(files),
                jax=jax.__version__, fvjax=fvjax.__version__,
                render="fvjax.render defaults: param.image (Fourier, decorrelated, sigmoid), "
                       "transforms.standard(), Adam(0.05)",
                photo_preprocessing=f"shorter side to {args.image_size}, centre crop "
                                    f"{args.image_size}x{args.image_size}, bilinear")
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "config.json"), "w") as fh:
    json.dump(config, fh, indent=2)
  units = jnp.asarray(channels)
  objective = obj.channel(args.layer, units)
  timings = {}

  t = time.time()
  rendered = fvjax.render(model, objective, key=jax.random.key(args.seed), steps=args.steps,
                          size=args.render_size)
  timings["render_s"] = time.time() - t

  t = time.time()
  crops = fvjax.dataset_examples(model, objective,
                                 photo_batches(args.photos, files, args.image_size, 50), args.k,
                                 batch_size=args.batch_size, crop=args.crop, reduce="max",
                                 bottom=False)
  timings["scan_crops_s"] = time.time() - t
  t = time.time()
  whole = fvjax.dataset_examples(model, objective,
                                 photo_batches(args.photos, files, args.image_size, 50), args.k,
                                 batch_size=args.batch_size, bottom=True)
  timings["scan_whole_s"] = time.time() - t

  # the render's own objective (channel mean at render size) on the top natural crops
  crop_images = jnp.asarray(crops.top.images.reshape(-1, args.crop, args.crop, 3))
  if args.crop != args.render_size:
    crop_images = jax.image.resize(crop_images, (len(crop_images), args.render_size,
                                                 args.render_size, 3), "bilinear")
  acts = model(crop_images)[args.layer].mean((1, 2))  # [K*k, C]
  crop_objective = np.asarray(acts).reshape(len(channels), args.k, -1)[
      np.arange(len(channels)), :, np.asarray(channels)]

  names = [f"{args.layer}:{c}" for c in channels]
  dataset_examples_panel(
      rendered.images, crops, os.path.join(args.out, "panel_crops.png"), labels=names,
      title=f"Tiny Darknet {args.layer}: visualization ({args.render_size} px, {args.steps} "
            f"steps) | top-{args.k} {args.crop}-px crops around the peak, of "
            f"{len(files)} photos (score: max over positions)")
  dataset_examples_panel(
      rendered.images, whole, os.path.join(args.out, "panel_whole.png"), labels=names,
      title=f"Tiny Darknet {args.layer}: visualization | top-{args.k} | bottom-{args.k} "
            f"whole photos of {len(files)} (score: channel mean at {args.image_size} px)",
      dpi=72)

  def synset_name(file):
    return labels.get(file.split("_")[0], "")

  results = {"channels": {}, "timings": timings, "photos": len(files)}
  for u, c in enumerate(channels):
    results["channels"][str(c)] = {
        "render_final_objective": float(rendered.final[u]),
        "render_trace_last": float(rendered.trace[u, -1]),
        "top_crops": {
            "scores_max": crops.top.scores[u].tolist(),
            "files": list(crops.top.names[u]),
            "classes": [synset_name(f) for f in crops.top.names[u]],
            "indices": crops.top.indices[u].tolist(),
            "peak_pixel_yx": crops.top.positions[u].tolist(),
            "crop_boxes": crops.top.boxes[u].tolist(),
            "render_objective_on_crops": crop_objective[u].tolist(),
        },
        "top_whole": {"scores_mean": whole.top.scores[u].tolist(),
                      "files": list(whole.top.names[u]),
                      "classes": [synset_name(f) for f in whole.top.names[u]]},
        "bottom_whole": {"scores_mean": whole.bottom.scores[u].tolist(),
                         "files": list(whole.bottom.names[u]),
                         "classes": [synset_name(f) for f in whole.bottom.names[u]]},
    }
  results["summary"] = {
      "render_final_objective_mean": float(np.mean(rendered.final)),
      "best_natural_crop_render_objective_mean": float(crop_objective.max(1).mean()),
      "visualization_beats_best_crop": int((rendered.final > crop_objective.max(1)).sum()),
  }
  with open(os.path.join(args.out, "results.json"), "w") as fh:
    json.dump(results, fh, indent=2)
  print(json.dumps({"timings": timings, **results["summary"],
                    "per_channel": {c: {"render": round(v["render_final_objective"], 3),
                                        "best_crop": round(max(
                                            v["top_crops"]["render_objective_on_crops"]), 3),
                                        "top_classes": v["top_whole"]["classes"][:3]}
                                    for c, v in results["channels"].items()}}, indent=2))


if __name__ == "__main__":
  main()
