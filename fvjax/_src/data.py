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


def _check_size(size) -> tuple[int, int] | None:
  if size is None:
    return None
  pair = (size, size) if isinstance(size, (int, np.integer)) else size
  if (not isinstance(pair, (tuple, list)) or len(pair) != 2
      or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
             for v in pair)):
    raise FvjaxError(f"image size must be a positive integer or (height, width) of positive "
                     f"integers, got {size!r}")
  return int(pair[0]), int(pair[1])


def _check_background(background) -> np.ndarray | None:
  if background is None:
    return None
  value = np.asarray(background, np.float64) if not isinstance(background, str) else None
  if value is None or value.shape not in ((), (3,)) or not np.all(np.isfinite(value)) \
      or value.min() < 0 or value.max() > 1:
    raise FvjaxError(f"background must be a grey level in [0, 1] or an RGB triple in [0, 1] "
                     f"(e.g. 1.0 for white), got {background!r}")
  return np.broadcast_to(value, (3,)).astype(np.float32)


def _check_jpeg(path: str) -> None:
  """Decode a JPEG strictly (libjpeg-turbo via simplejpeg): the corrupt-data warnings that
  Pillow ignores (a damaged middle decodes to garbage) become an `FvjaxError`."""
  import simplejpeg
  with open(path, "rb") as f:
    data = f.read()
  if data[:2] != b"\xff\xd8":
    return
  try:
    simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
  except ValueError as err:
    if "colorspace" in str(err).lower() or "color space" in str(err).lower():
      return  # e.g. CMYK: not convertible to GRAY by libjpeg-turbo; Pillow decodes it
    raise FvjaxError(f"cannot read image {path!r}: corrupt JPEG data ({err})") from None


def _pixels(img: Image.Image, path: str, background: np.ndarray | None) -> np.ndarray | None:
  """Float ``[H, W, 3]`` in [0, 1] for 16-bit and transparent images; None for plain 8-bit
  opaque images (read by the 8-bit path)."""
  mode = img.mode
  if mode.startswith("I;16") or (mode == "I" and img.format == "PNG"):
    gray = np.asarray(img, np.float32) / 65535.0  # PNG's 16-bit grey: scale by the bit depth
    return np.repeat(gray[..., None], 3, axis=-1)
  if mode in ("I", "F"):
    raise FvjaxError(f"cannot read image {path!r}: its pixels are {mode!r} ("
                     f"{'32-bit integers' if mode == 'I' else 'floats'}) with no stated range; "
                     "convert it to an 8- or 16-bit PNG")
  if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
    rgba = np.asarray(img.convert("RGBA"), np.float32) / 255.0
    alpha = rgba[..., 3:]
    if alpha.min() == 1.0:
      return None
    if background is None:
      raise FvjaxError(f"image {path!r} is transparent ({float((alpha < 1).mean()):.0%} of its "
                       "pixels); pass background= (e.g. background=1.0 for white, 0.0 for "
                       "black) to composite it, or drop the alpha channel")
    return rgba[..., :3] * alpha + background * (1.0 - alpha)
  return None


def _resize_float(pixels: np.ndarray, h: int, w: int, crop: bool) -> np.ndarray:
  """`load_image`'s resize (bilinear, optional centre crop) for float pixels, per channel."""
  height, width = pixels.shape[:2]

  def resize(arr, size):
    return np.stack([np.asarray(Image.fromarray(arr[..., c], "F").resize(size, Image.BILINEAR))
                     for c in range(3)], axis=-1)

  if not crop:
    return np.clip(resize(pixels, (w, h)), 0.0, 1.0)
  scale = max(h / height, w / width)
  nw, nh = max(w, round(width * scale)), max(h, round(height * scale))
  out = resize(pixels, (nw, nh))
  left, top = (nw - w) // 2, (nh - h) // 2
  return np.clip(out[top:top + h, left:left + w], 0.0, 1.0)


def load_image(path: str, size: int | tuple[int, int] | None = None, *,
               crop: bool = False, background: float | tuple[float, float, float] | None = None
               ) -> np.ndarray:
  """One RGB image as float32 ``[H, W, 3]`` in [0, 1].

  ``size``: resize (bilinear) to ``size x size`` (or ``(H, W)``); with ``crop=True`` the
  shorter side is resized to ``size`` and the centre is cropped, keeping the aspect ratio.

  Pixels are scaled by their bit depth: 8-bit by 255, 16-bit PNGs by 65535. A transparent
  image (alpha below 1 anywhere) is refused unless ``background`` (a grey level or an RGB
  triple in [0, 1]) is given, on which it is composited: ``rgb * alpha + background *
  (1 - alpha)``; fully opaque alpha channels are simply dropped. A file Pillow cannot decode
  completely (truncated) or a JPEG whose data libjpeg reports as corrupt is an `FvjaxError`
  naming the file; so are 32-bit integer and float images (no stated range).
  """
  hw = _check_size(size)
  background = _check_background(background)
  if os.path.isdir(path):
    raise FvjaxError(f"image {path!r} is a folder; use image_folder() for a folder of images")
  try:
    if path.lower().endswith((".jpg", ".jpeg")) or _is_jpeg(path):
      _check_jpeg(path)
    with Image.open(path) as img:
      img.load()  # decodes everything now: a truncated file raises here
      pixels = _pixels(img, path, background)
      if pixels is not None:
        return pixels if hw is None else _resize_float(pixels, *hw, crop).astype(np.float32)
      img = img.convert("RGB")
      if hw is not None:
        h, w = hw
        if crop:
          scale = max(h / img.height, w / img.width)
          img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                           Image.BILINEAR)
          left, top = (img.width - w) // 2, (img.height - h) // 2
          img = img.crop((left, top, left + w, top + h))
        else:
          img = img.resize((w, h), Image.BILINEAR)
      return np.asarray(img, np.float32) / 255.0
  except (OSError, SyntaxError, Image.DecompressionBombError) as err:
    raise FvjaxError(f"cannot read image {path!r}: {err}") from err


def _is_jpeg(path: str) -> bool:
  with open(path, "rb") as f:
    return f.read(2) == b"\xff\xd8"


def image_folder(folder: str, size: int = 224, *, crop: bool = False, limit: int | None = None,
                 files: Sequence[str] | None = None,
                 background: float | tuple[float, float, float] | None = None) -> ImageSet:
  """All images of ``folder`` (sorted by name), resized to ``size``; see `load_image`.

  ``limit``: None for all images, or a positive integer: the first ``limit`` files.
  """
  _check_size(size)
  _check_background(background)
  if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                            or limit < 1):
    raise FvjaxError(f"limit must be None (all images) or a positive integer, got {limit!r}")
  if os.path.isfile(folder):
    raise FvjaxError(f"image folder {folder!r} is a file, not a folder; use load_image() for "
                     "one image")
  if not os.path.isdir(folder):
    raise FvjaxError(f"image folder {folder!r} does not exist")
  if files is None:
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
  files = list(files)[:limit]
  if not files:
    raise FvjaxError(f"image folder {folder!r} has no images ({', '.join(IMAGE_EXTENSIONS)})")
  images = np.stack([load_image(os.path.join(folder, f), size, crop=crop,
                                background=background) for f in files])
  labels = tuple(os.path.splitext(f)[0].split("_")[0] for f in files)
  return ImageSet(images, tuple(files), labels)
