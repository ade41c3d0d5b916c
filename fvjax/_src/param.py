"""Image parameterizations: pairs of pure functions ``init(key) -> params`` and
``to_image(params) -> images [B, H, W, 3]`` with values in [0, 1].

`image` chains a spatial basis (pixels, or a Fourier basis scaled by 1/f^decay), an optional
colour decorrelation (Lucid's ImageNet colour-correlation square root) and a squashing
(sigmoid) to [0, 1]. Each parameterization is a frozen dataclass whose bound methods form
the `ImageParam` pair; equal settings give the same pair and so reuse one compiled render.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError

# Square root of ImageNet's colour correlation (Lucid), its columns' largest norm, and the
# normalised matrix that maps decorrelated colour coordinates to RGB.
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
MAX_NORM_SVD_SQRT = np.float32(0.4619524)
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / MAX_NORM_SVD_SQRT
FOURIER_OUTPUT_DIVISOR = 4.0  # Lucid divides the inverse FFT by 4


class ImageParam(NamedTuple):
  """``init(key) -> params`` and ``to_image(params) -> [B, H, W, 3]`` in [0, 1]."""
  init: Callable[[jax.Array], Any]
  to_image: Callable[[Any], jax.Array]


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
  """Spatial frequency magnitude (cycles/pixel) of each ``rfft2`` coefficient, ``[h, w//2+1]``."""
  fy = np.fft.fftfreq(h)[:, None]
  fx = np.fft.rfftfreq(w)[None, :]
  return np.sqrt(fx * fx + fy * fy)


def fourier_scale(h: int, w: int, decay: float = 1.0) -> np.ndarray:
  """Lucid's spectrum scaling: ``1 / max(f, 1/max(h, w))**decay * sqrt(h*w)``, ``[h, w//2+1]``."""
  freqs = rfft2d_freqs(h, w)
  return (np.sqrt(w * h) / np.maximum(freqs, 1.0 / max(w, h)) ** decay).astype(np.float32)


def decorrelate_colors(raw: jax.Array) -> jax.Array:
  """Map decorrelated colour coordinates ``[..., 3]`` to (unsquashed) RGB ``[..., 3]``."""
  return raw @ jnp.asarray(COLOR_CORRELATION_NORMALIZED).T


@dataclasses.dataclass(frozen=True)
class Image:
  """The settings of an image parameterization (see `image`)."""
  size: tuple[int, int]
  batch: int = 1
  fft: bool = True
  decorrelate: bool = True
  sd: float = 0.01
  decay: float = 1.0

  def init(self, key: jax.Array) -> jax.Array:
    """Raw parameters: ``[B, 3, H, W//2+1, 2]`` (Fourier) or ``[B, H, W, 3]`` (pixels)."""
    h, w = self.size
    shape = (self.batch, 3, h, w // 2 + 1, 2) if self.fft else (self.batch, h, w, 3)
    return self.sd * jax.random.normal(key, shape, jnp.float32)

  def to_raw(self, params: jax.Array) -> jax.Array:
    """Unconstrained image ``[B, H, W, 3]`` before colour mapping and squashing."""
    if not self.fft:
      return params
    h, w = self.size
    spectrum = jax.lax.complex(params[..., 0], params[..., 1]) * fourier_scale(h, w, self.decay)
    spatial = jnp.fft.irfft2(spectrum, s=(h, w), axes=(-2, -1))  # [B, 3, H, W]
    return jnp.moveaxis(spatial, 1, -1) / FOURIER_OUTPUT_DIVISOR

  def to_image(self, params: jax.Array) -> jax.Array:
    raw = self.to_raw(params)
    if self.decorrelate:
      raw = decorrelate_colors(raw)
    return jax.nn.sigmoid(raw)

  def as_param(self) -> ImageParam:
    return _as_param(self)


@functools.lru_cache(maxsize=None)
def _as_param(settings) -> ImageParam:
  """One `ImageParam` per distinct setting: bound methods compare by identity of their
  object, so equal settings must share an object for jit to reuse its compiled loop."""
  return ImageParam(settings.init, settings.to_image)


def _size(size) -> tuple[int, int]:
  h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
  if h < 1 or w < 1:
    raise FvjaxError(f"image size must be positive, got {size!r}")
  return int(h), int(w)


def image(size: int | tuple[int, int], *, batch: int = 1, fft: bool = True,
          decorrelate: bool = True, sd: float = 0.01, decay: float = 1.0) -> ImageParam:
  """Lucid's ``param.image``: Fourier basis with 1/f^decay scaling, decorrelated colour,
  sigmoid; ``fft=False`` gives pixels, ``decorrelate=False`` plain RGB.

  Parameters are drawn from ``N(0, sd^2)``. The image is ``[batch, H, W, 3]`` in [0, 1].
  """
  return Image(_size(size), int(batch), bool(fft), bool(decorrelate), float(sd),
               float(decay)).as_param()


def pixel(size: int | tuple[int, int], *, batch: int = 1, sd: float = 0.01,
          decorrelate: bool = False) -> ImageParam:
  """Plain pixel parameterization squashed by a sigmoid."""
  return image(size, batch=batch, fft=False, decorrelate=decorrelate, sd=sd)


def fourier(size: int | tuple[int, int], *, batch: int = 1, sd: float = 0.01,
            decay: float = 1.0, decorrelate: bool = True) -> ImageParam:
  """Fourier parameterization with 1/f^decay scaling (and decorrelated colour)."""
  return image(size, batch=batch, fft=True, decorrelate=decorrelate, sd=sd, decay=decay)
