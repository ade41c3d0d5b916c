"""Image parameterizations: pairs of pure functions ``init(key) -> params`` and
``to_image(params) -> images [B, H, W, 3]`` with values in [0, 1].

`image` chains a spatial basis (pixels, or a Fourier basis scaled by 1/f^decay), an optional
colour decorrelation (Lucid's ImageNet colour-correlation square root) and a squashing
(sigmoid) to [0, 1]. Each parameterization is a pytree (`fvjax._src.pytree.dataclass`): its
sizes and switches are static structure, its numbers (``sd``, ``decay``) traced leaves, so two
parameterizations built afresh with the same sizes share one compiled loop and a swept
``decay`` never recompiles.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src import pytree
from fvjax._src.errors import FvjaxError

# Square root of ImageNet's colour correlation (Lucid), its columns' largest norm, and the
# normalised matrix that maps decorrelated colour coordinates to RGB.
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
MAX_NORM_SVD_SQRT = np.float32(0.4619524)
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / MAX_NORM_SVD_SQRT
FOURIER_OUTPUT_DIVISOR = 4.0  # Lucid divides the inverse FFT by 4


class ImageParam:
  """Base class of image parameterizations: ``init(key) -> params`` and
  ``to_image(params) -> [B, H, W, 3]`` in [0, 1]. Subclasses are `pytree.dataclass`es with
  static ``size`` ``(H, W)`` and ``batch`` (B)."""

  def init(self, key: jax.Array) -> Any:
    raise NotImplementedError

  def to_image(self, params: Any) -> jax.Array:
    raise NotImplementedError

  def penalty(self, params: Any) -> jax.Array:
    """A penalty on the raw parameters that the optimization subtracts from the objective
    (a scalar, summed over the batch); 0 for Lucid's parameterizations."""
    del params
    return jnp.float32(0.0)


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


@pytree.dataclass
class Image(ImageParam):
  """Lucid's image parameterization (see `image`); ``sd`` and ``decay`` are traced."""
  size: tuple[int, int] = pytree.static()
  batch: int = pytree.static(1)
  fft: bool = pytree.static(True)
  decorrelate: bool = pytree.static(True)
  shared: bool = pytree.static(False)
  sd: Any = np.float32(0.01)
  decay: Any = np.float32(1.0)

  def init(self, key: jax.Array):
    """Raw parameters: ``[B, 3, H, W//2+1, 2]`` (Fourier) or ``[B, H, W, 3]`` (pixels); with
    ``shared``, a dict of a ``"separate"`` array and a ``"shared"`` one with batch axis 1."""
    h, w = self.size
    shape = (3, h, w // 2 + 1, 2) if self.fft else (h, w, 3)
    if not self.shared:
      return self.sd * jax.random.normal(key, (self.batch, *shape), jnp.float32)
    k1, k2 = jax.random.split(key)
    return {"separate": self.sd * jax.random.normal(k1, (self.batch, *shape), jnp.float32),
            "shared": self.sd * jax.random.normal(k2, (1, *shape), jnp.float32)}

  def to_raw(self, params) -> jax.Array:
    """Unconstrained image ``[B, H, W, 3]`` before colour mapping and squashing; a shared
    component is added to every image of the batch."""
    if isinstance(params, dict):
      return self.to_raw(params["separate"]) + self.to_raw(params["shared"])
    if not self.fft:
      return params
    h, w = self.size
    freqs = np.maximum(rfft2d_freqs(h, w), 1.0 / max(w, h)).astype(np.float32)
    scale = np.float32(np.sqrt(w * h)) / jnp.asarray(freqs) ** self.decay
    spectrum = jax.lax.complex(params[..., 0], params[..., 1]) * scale
    spatial = jnp.fft.irfft2(spectrum, s=(h, w), axes=(-2, -1))  # [B, 3, H, W]
    return jnp.moveaxis(spatial, 1, -1) / FOURIER_OUTPUT_DIVISOR

  def to_image(self, params) -> jax.Array:
    raw = self.to_raw(params)
    if self.decorrelate:
      raw = decorrelate_colors(raw)
    return jax.nn.sigmoid(raw)


# The largest image side: 8192 px is 0.75 GiB per float32 RGB image, and the activations of
# a vision model on it are tens of GiB (checked against the memory by `optvis.check`).
MAX_SIDE = 8192


def _size(size) -> tuple[int, int]:
  """``size`` (an int or ``(height, width)``) as a pair of positive ints, else `FvjaxError`."""
  pair = (size, size) if isinstance(size, (int, np.integer)) else size
  if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(
      isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in pair)):
    raise FvjaxError(f"image size must be a positive int or (height, width), got {size!r}")
  if max(pair) > MAX_SIDE:
    raise FvjaxError(f"image size {size!r} is above fvjax's limit of {MAX_SIDE} px per side "
                     f"(one {pair[0]}x{pair[1]} RGB float32 image alone is "
                     f"{pair[0] * pair[1] * 12 / 2**30:.1f} GiB, before any activations)")
  return int(pair[0]), int(pair[1])


def image(size: int | tuple[int, int], *, batch: int = 1, fft: bool = True,
          decorrelate: bool = True, sd: float = 0.01, decay: float = 1.0,
          shared: bool = False) -> Image:
  """Lucid's ``param.image``: Fourier basis with 1/f^decay scaling, decorrelated colour,
  sigmoid; ``fft=False`` gives pixels, ``decorrelate=False`` plain RGB.

  Parameters are drawn from ``N(0, sd^2)``. The image is ``[batch, H, W, 3]`` in [0, 1].
  ``shared=True`` adds one component shared by the whole batch to each image's own one (as
  in Lucid's interpolation figures), so a strip of images varies smoothly.
  """
  return Image(_size(size), _batch(batch), bool(fft), bool(decorrelate), bool(shared),
               pytree.number(sd, "sd"), pytree.number(decay, "decay"))


def _batch(batch) -> int:
  if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
    raise FvjaxError(f"batch (images per unit) must be a positive integer, got {batch!r}")
  return int(batch)


def pixel(size: int | tuple[int, int], *, batch: int = 1, sd: float = 0.01,
          decorrelate: bool = False) -> Image:
  """Plain pixel parameterization squashed by a sigmoid."""
  return image(size, batch=batch, fft=False, decorrelate=decorrelate, sd=sd)


def fourier(size: int | tuple[int, int], *, batch: int = 1, sd: float = 0.01,
            decay: float = 1.0, decorrelate: bool = True) -> Image:
  """Fourier parameterization with 1/f^decay scaling (and decorrelated colour)."""
  return image(size, batch=batch, fft=True, decorrelate=decorrelate, sd=sd, decay=decay)


# -- MACO: phase-only optimization under a natural magnitude spectrum ----------------------
MAGNITUDE_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "weights",
                              "imagenet_magnitude.npz")


@functools.lru_cache(maxsize=None)
def natural_magnitude(size: tuple[int, int]) -> np.ndarray:
  """Mean magnitude spectrum of natural photos, ``[3, H, W//2+1]``, for images of ``size``.

  Vendored at 224x224 (``scripts/natural_spectrum.py`` computed it from the 1000 shared
  ImageNet photos). Smaller sizes keep the frequencies an ideal low-pass resize keeps (the
  same cycles per image), scaled by the pixel-count ratio; sizes above 224 are not supported.
  """
  h, w = size
  with np.load(MAGNITUDE_FILE) as f:
    full = f["magnitude"].astype(np.float32)  # [3, 224, 113]
  fh, fw = full.shape[1], 2 * (full.shape[2] - 1)
  if h > fh or w > fw:
    raise FvjaxError(f"MACO's natural spectrum is stored at {fh}x{fw}; size {h}x{w} is larger")
  rows = np.r_[0:(h + 1) // 2, fh - h // 2:fh]  # cycles per image -h/2 .. h/2, fft order
  cropped = full[:, rows, : w // 2 + 1]
  return (cropped * (h * w) / (fh * fw)).astype(np.float32)


def _hermitian_phase(phase: jax.Array, w: int) -> jax.Array:
  """Make the phase of the real-FFT columns that must be Hermitian (kx = 0 and, for even
  ``w``, kx = w/2) antisymmetric in ky, so ``irfft2`` keeps every magnitude exactly."""
  flip = jnp.roll(jnp.flip(phase, axis=-2), 1, axis=-2)  # value at -ky
  cols = [0] + ([w // 2] if w % 2 == 0 else [])
  for c in cols:
    phase = phase.at[..., c].set((phase[..., c] - flip[..., c]) / 2)
  return phase


@pytree.dataclass
class Maco(ImageParam):
  """MACO (Fel et al. 2023): only the Fourier phase ``[B, 3, H, W//2+1]`` is optimized; the
  magnitude is the natural-image spectrum of `natural_magnitude`. The spatial image is
  standardized per image and squashed by a sigmoid into [0, 1]."""
  size: tuple[int, int] = pytree.static()
  batch: int = pytree.static(1)

  def init(self, key: jax.Array) -> jax.Array:
    h, w = self.size
    return jax.random.uniform(key, (self.batch, 3, h, w // 2 + 1), jnp.float32, -np.pi, np.pi)

  def to_spatial(self, phase: jax.Array) -> jax.Array:
    """The image before standardization, ``[B, H, W, 3]``; its magnitude spectrum is fixed."""
    h, w = self.size
    phase = _hermitian_phase(phase, w)
    spectrum = natural_magnitude(self.size) * jnp.exp(1j * phase.astype(jnp.complex64))
    return jnp.moveaxis(jnp.fft.irfft2(spectrum, s=(h, w), axes=(-2, -1)), 1, -1)

  def to_image(self, phase: jax.Array) -> jax.Array:
    x = self.to_spatial(phase)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = x.std(axis=(1, 2, 3), keepdims=True)
    return jax.nn.sigmoid((x - mean) / (std + 1e-5))


def maco(size: int | tuple[int, int], *, batch: int = 1) -> Maco:
  """MACO phase-only parameterization with a natural magnitude spectrum (see `Maco`)."""
  return Maco(_size(size), _batch(batch))


# -- CPPN ------------------------------------------------------------------------------------
def _composite_activation(x: jax.Array) -> jax.Array:
  """Lucid's CPPN activation: ``atan`` and its square, normalised; doubles the channels."""
  x = jnp.arctan(x)
  return jnp.concatenate([x / 0.67, (x * x) / 0.6], axis=-1)


@pytree.dataclass
class Cppn(ImageParam):
  """Lucid's CPPN: per image, an MLP of ``layers`` 1x1 layers of ``hidden`` channels with the
  composite atan activation maps pixel coordinates ``(x, y)`` (std 1) to RGB through a
  sigmoid; the output layer starts at zero (a grey image). Lucid trains it with Adam(0.005).
  """
  size: tuple[int, int] = pytree.static()
  batch: int = pytree.static(1)
  hidden: int = pytree.static(24)
  layers: int = pytree.static(8)

  def init(self, key: jax.Array):
    def one(key):
      params, fan_in = [], 2
      for k in jax.random.split(key, self.layers):
        kw, kb = jax.random.split(k)
        params.append((jax.random.normal(kw, (fan_in, self.hidden)) / np.sqrt(fan_in),
                       0.1 * jax.random.normal(kb, (self.hidden,))))
        fan_in = 2 * self.hidden
      params.append((jnp.zeros((fan_in, 3)), jnp.zeros((3,))))
      return params
    return jax.vmap(one)(jax.random.split(key, self.batch))

  def to_image(self, params) -> jax.Array:
    h, w = self.size
    r = 3.0 ** 0.5
    y, x = jnp.meshgrid(jnp.linspace(-r, r, h), jnp.linspace(-r, r, w), indexing="ij")
    coords = jnp.stack([x, y], axis=-1)

    def one(params):
      net = coords
      for weight, bias in params[:-1]:
        net = _composite_activation(net @ weight + bias)
      weight, bias = params[-1]
      return jax.nn.sigmoid(net @ weight + bias)

    return jax.vmap(one)(params)


def cppn(size: int | tuple[int, int], *, batch: int = 1, hidden: int = 24,
         layers: int = 8) -> Cppn:
  """Lucid's CPPN parameterization (see `Cppn`)."""
  for name, value in (("hidden", hidden), ("layers", layers)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise FvjaxError(f"cppn {name} must be a positive integer, got {value!r}")
  return Cppn(_size(size), _batch(batch), int(hidden), int(layers))
