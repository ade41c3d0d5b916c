"""Image loading: files and folders of photos as float arrays ``[N, H, W, 3]`` in [0, 1]."""

from __future__ import annotations

import os
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image

from fvjax._src.errors import FvjaxError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ImageSet(NamedTuple):
  """Images ``[N, H, W, 3]`` float32 in [0, 1], their file names and their label strings
  (the file-name stem before the first ``_``, e.g. a WordNet synset ``n01440764``)."""
  images: np.ndarray
  names: tuple[str, ...]
  labels: tuple[str, ...]


def load_image(path: str, size: int | tuple[int, int] | None = None, *,
               crop: bool = False) -> np.ndarray:
  """One RGB image as float32 ``[H, W, 3]`` in [0, 1].

  ``size``: resize (bilinear) to ``size x size`` (or ``(H, W)``); with ``crop=True`` the
  shorter side is resized to ``size`` and the centre is cropped, keeping the aspect ratio.
  """
  try:
    with Image.open(path) as img:
      img = img.convert("RGB")
      if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        if crop:
          scale = max(h / img.height, w / img.width)
          img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                           Image.BILINEAR)
          left, top = (img.width - w) // 2, (img.height - h) // 2
          img = img.crop((left, top, left + w, top + h))
        else:
          img = img.resize((w, h), Image.BILINEAR)
      return np.asarray(img, np.float32) / 255.0
  except OSError as err:
    raise FvjaxError(f"cannot read image {path!r}: {err}") from err


def image_folder(folder: str, size: int = 224, *, crop: bool = False, limit: int | None = None,
                 files: Sequence[str] | None = None) -> ImageSet:
  """All images of ``folder`` (sorted by name), resized to ``size``; see `load_image`."""
  if not os.path.isdir(folder):
    raise FvjaxError(f"image folder {folder!r} does not exist")
  if files is None:
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
  files = list(files)[:limit]
  if not files:
    raise FvjaxError(f"image folder {folder!r} has no images ({', '.join(IMAGE_EXTENSIONS)})")
  images = np.stack([load_image(os.path.join(folder, f), size, crop=crop) for f in files])
  labels = tuple(os.path.splitext(f)[0].split("_")[0] for f in files)
  return ImageSet(images, tuple(files), labels)
