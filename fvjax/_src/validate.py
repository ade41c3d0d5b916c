"""Input checks shared by every public entry point that takes images.

`check_images` refuses, with one `FvjaxError` naming the value and the fix, what would
otherwise be read wrongly without a word: integer pixels (uint8 / uint16 taken as [0, 1]),
non-finite pixels (a NaN image ranks first everywhere), floats outside the valid range
(0-255 floats, [-1, 1] normalised images) and arrays of the wrong rank. It runs before any
work, on concrete arrays only: inside a traced function (``jit``, ``grad``, ``vmap``) the
values are unknown and the check is skipped.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError

# Float slack on the range: a value computed in float32 as e.g. ``x * a / a`` can land one or
# two ulps above 1 (ulp(1) = 1.2e-7); anything further out is not a rounding artefact.
RANGE_SLACK = 1e-5


def _fix(lo: float, hi: float, dtype) -> str:
  """The conversion that maps integer / wide-range pixels into [0, 1]."""
  if dtype is not None and np.dtype(dtype) == np.uint16:
    return "images / 65535 (16-bit pixels)"
  if dtype is not None or (lo >= 0 and 25 < hi <= 255):  # 0..255 pixels: some above 25
    return "images / 255 (8-bit pixels)"
  if -1 - RANGE_SLACK <= lo < 0 and hi <= 1 + RANGE_SLACK:
    return "(images + 1) / 2 for images in [-1, 1]"
  if lo >= 0 and 255 < hi <= 65535:
    return "images / 65535 for 16-bit pixels, or images / images.max()"
  return "np.clip(images, 0, 1) if the excess is noise, or rescale them into [0, 1]"


def check_images(images: Any, name: str = "images", *, rank: int | None = 4,
                 channels: int | None = 3, low: float | None = 0.0,
                 high: float | None = 1.0, allow_empty: bool = False) -> Any:
  """``images`` checked: a float array with finite values in ``[low, high]`` (default [0, 1];
  None skips the range check, e.g. for the inputs of an arbitrary ``logits_fn``).

  ``rank`` (default 4, ``[N, H, W, C]``) and ``channels`` (default 3, RGB) are checked unless
  None; N must be at least 1 unless ``allow_empty`` (for functions that map N images to N
  results, where zero images give zero results). Returns the input as an array (a NumPy array
  for lists and NumPy input, the same `jax.Array` for JAX input, unchanged for tracers).
  Raises `FvjaxError` naming ``name``, the bad value and the fix (``images / 255`` for 0-255
  pixels).
  """
  if isinstance(images, jax.core.Tracer):
    return images  # values unknown under jit / grad / vmap
  if isinstance(images, (str, bytes)) or images is None:
    raise FvjaxError(f"{name} must be an image array, got {type(images).__name__} "
                     f"{images!r:.60}")
  if not isinstance(images, jax.Array):
    try:
      images = np.asarray(images)
    except (ValueError, TypeError) as err:
      raise FvjaxError(f"{name} is not an array of images ({err})") from None
  shape, dtype = tuple(images.shape), np.dtype(images.dtype)
  c = channels or "C"
  what = {4: f"[N, H, W, {c}]", 3: f"[H, W, {c}]"}.get(rank, f"{rank}-d")
  if rank is not None and len(shape) != rank:
    extra = " (add a leading axis for one image: images[None])" if len(shape) == rank - 1 \
        and rank == 4 else ""
    raise FvjaxError(f"{name} must be {what}, got shape {shape}" + extra)
  if channels is not None and (not shape or shape[-1] != channels):
    raise FvjaxError(f"{name} must have {channels} channels in its last axis, got shape "
                     f"{shape}" + (" (channels first? use images.transpose(0, 2, 3, 1))"
                                   if len(shape) == 4 and shape[1] == channels else ""))
  if rank == 4 and shape[0] == 0 and not allow_empty:
    raise FvjaxError(f"{name} holds no images (shape {shape})")
  span = "values" if low is None or high is None else f"images in [{low:g}, {high:g}]"
  if dtype.kind in "iub":
    if dtype.kind == "b":
      raise FvjaxError(f"{name} has dtype bool; fvjax takes float {span}: pass "
                       "images.astype(np.float32)")
    raise FvjaxError(f"{name} has integer dtype {dtype} (pixels 0..{np.iinfo(dtype).max}); "
                     f"fvjax takes float {span}: pass {_fix(0, np.iinfo(dtype).max, dtype)}")
  if dtype.kind != "f":
    raise FvjaxError(f"{name} has dtype {dtype}; fvjax takes float {span}")
  if images.size == 0:
    if allow_empty:
      return images
    raise FvjaxError(f"{name} is empty (shape {shape})")
  xp = jnp if isinstance(images, jax.Array) else np
  finite = xp.isfinite(images)
  if not bool(xp.all(finite)):
    bad = np.argwhere(~np.asarray(finite))
    count = len(bad)
    first = tuple(int(i) for i in bad[0])
    raise FvjaxError(f"{name} has {count} non-finite pixel value(s) (NaN or inf), the first "
                     f"at index {first}; fvjax takes finite {span}")
  if low is None or high is None:
    return images
  lo, hi = float(xp.min(images)), float(xp.max(images))
  if lo < low - RANGE_SLACK or hi > high + RANGE_SLACK:
    fix = _fix(lo, hi, None) if (low, high) == (0.0, 1.0) else "clip or rescale them"
    raise FvjaxError(f"{name} has values in [{lo:g}, {hi:g}], outside [{low:g}, {high:g}]; "
                     f"fvjax takes float images in [{low:g}, {high:g}]: pass {fix}")
  return images

