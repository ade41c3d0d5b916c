"""Shared pieces of the attribution experiments: photos, class indices, methods, output files."""

from __future__ import annotations

import os
import pathlib
import platform
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import fvjax
from fvjax import attribution as A
from fvjax import experiment

REPO = pathlib.Path(__file__).resolve().parents[2]
PHOTOS = experiment.shared_photos_dir()
LABELS_TSV = REPO / "fvjax" / "weights" / "tiny_darknet_labels.tsv"


def synset_indices(synsets) -> np.ndarray:
  """Model-order class index of each WordNet synset (from the vendored labels file)."""
  with open(LABELS_TSV) as f:
    order = {line.split("\t")[0]: i for i, line in enumerate(f) if line.strip()}
  return np.asarray([order[s] for s in synsets], np.int32)


def correct_photos(model: fvjax.Model, n: int, *, seed: int, folder=PHOTOS, size: int = 224,
                   chunk: int = 32) -> tuple[fvjax.data.ImageSet, np.ndarray, int]:
  """The first ``n`` photos (in a seeded random order of the folder) that ``model`` classifies
  correctly (top-1). Returns the photos, their class indices and how many were tried."""
  if not pathlib.Path(folder).is_dir():
    raise SystemExit(f"the shared photos are missing: {folder} (set FVJAX_PHOTOS)")
  files = sorted(f for f in os.listdir(folder) if f.lower().endswith(".jpg"))
  files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
  predict = jax.jit(lambda params, x: model.apply(params, x)["logits"].argmax(-1))
  kept_images, kept_names, kept_labels, tried = [], [], [], 0
  for start in range(0, len(files), chunk):
    photos = fvjax.data.image_folder(str(folder), size, files=files[start:start + chunk])
    labels = synset_indices(photos.labels)
    pred = np.asarray(predict(model.params, jnp.asarray(photos.images)))
    for i in np.flatnonzero(pred == labels):
      if len(kept_names) < n:
        kept_images.append(photos.images[i])
        kept_names.append(photos.names[i])
        kept_labels.append(photos.labels[i])
        tried = start + i + 1
    if len(kept_names) >= n:
      break
  images = np.stack(kept_images)
  return (fvjax.data.ImageSet(images, tuple(kept_names), tuple(kept_labels)),
          synset_indices(kept_labels), tried)


def method_table(cfg: dict) -> dict[str, Callable]:
  """Method name -> ``fn(key, model, images, classes) -> maps [N, H, W]`` (high = important)."""
  mp = cfg.get("mask", {})
  occ = cfg.get("occlusion", {})
  return {
      "mask": lambda key, model, x, c: A.meaningful_perturbation(key, model, x, c, **mp).saliency,
      "gradient": lambda key, model, x, c: A.saliency(model, x, c),
      "gradient x input": lambda key, model, x, c: A.gradient_x_input(model, x, c),
      "guided backprop": lambda key, model, x, c: A.guided_backprop(model, x, c),
      "deconvnet": lambda key, model, x, c: A.deconvnet(model, x, c),
      "occlusion": lambda key, model, x, c: A.occlusion(model, x, c, **occ),
  }


def timed(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
  start = time.time()
  out = fn(*args, **kwargs)
  return out, time.time() - start


def write_json(path, value) -> None:
  """`fvjax.experiment.write_json` with floats rounded to 6 digits."""
  experiment.write_json(path, value, digits=6)


def environment() -> dict:
  return {"jax": jax.__version__, "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()], "cpu_count": os.cpu_count(),
          "python": platform.python_version()}
