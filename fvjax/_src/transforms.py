"""Transformation robustness: pure functions ``(key, images) -> images`` with static shapes.

Images are ``[B, H, W, C]``; every image of the batch gets the same random draw (as in
Lucid). Each transform is a pytree (`fvjax._src.pytree.dataclass`): sizes in pixels are static,
the pad value and the scale and angle ranges are traced leaves, so equal transforms built
afresh share one compiled loop and a swept range never recompiles. Scale and rotation resample
bilinearly about the centre at the input size, repeating edge pixels, so output shapes never
depend on the random draw.

``strength`` (traced, in [0, 1]) scales every random range; at strength 0 each transform is
deterministic (jitter crops the centre, no scale, no rotation), which is what the final
evaluation of a render sees.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates

from fvjax._src import pytree
from fvjax._src.errors import FvjaxError


class Transform:
  """``transform(key, images, strength=1.0)``: ``strength`` (may be traced) scales the
  random range (jitter offsets, scale deviation, rotation angle); shapes never change."""

  def __call__(self, key: jax.Array, images: jax.Array, strength=1.0) -> jax.Array:
    raise NotImplementedError

  def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
    """Spatial size of the output for an input of ``size``."""
    return size


@pytree.dataclass
class Pad(Transform):
  """Pad ``width`` pixels on every side with ``value`` (``mode="constant"``) or by
  ``"reflect"`` / ``"edge"``."""
  width: int = pytree.static()
  mode: str = pytree.static("constant")
  value: Any = np.float32(0.5)

  def __call__(self, key, images, strength=1.0):
    pad = ((0, 0), (self.width, self.width), (self.width, self.width), (0, 0))
    if self.mode == "constant":
      return jnp.pad(images, pad, constant_values=self.value)
    return jnp.pad(images, pad, mode=self.mode)

  def output_size(self, size):
    return size[0] + 2 * self.width, size[1] + 2 * self.width


@pytree.dataclass
class Jitter(Transform):
  """Random crop of ``H - d`` by ``W - d`` pixels (Lucid's jitter: offsets 0..d, uniform).

  With ``strength`` s the offsets are uniform over ``span + 1`` values centred in 0..d,
  ``span = floor(s * d)``: all of 0..d at s = 1, the centre ``floor(d / 2)`` at s = 0. One
  code path for every strength, traced or not.
  """
  d: int = pytree.static()

  def __call__(self, key, images, strength=1.0):
    b, h, w, c = images.shape
    span = jnp.floor(jnp.clip(strength, 0.0, 1.0) * self.d + 1e-4)
    u = jax.random.uniform(key, (2,))
    offsets = jnp.floor((self.d - span) / 2) + jnp.floor(u * (span + 1))
    oy, ox = jnp.clip(offsets, 0, self.d).astype(jnp.int32)
    return jax.lax.dynamic_slice(images, (0, oy, ox, 0), (b, h - self.d, w - self.d, c))

  def output_size(self, size):
    return size[0] - self.d, size[1] - self.d


def _resample(images: jax.Array, scale: jax.Array, angle: jax.Array) -> jax.Array:
  """Zoom by ``scale`` and rotate by ``angle`` radians about the centre; same shape."""
  b, h, w, c = images.shape
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy,
                        jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij")
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  # Output pixel (y, x) reads the input at the inverse rotation (counter-clockwise on screen).
  src_y = (cos * yy + sin * xx) / scale + cy
  src_x = (-sin * yy + cos * xx) / scale + cx

  def one_channel(plane):
    return map_coordinates(plane, [src_y, src_x], order=1, mode="nearest")

  flat = jnp.moveaxis(images, -1, 1).reshape(b * c, h, w)
  out = jax.vmap(one_channel)(flat).reshape(b, c, h, w)
  return jnp.moveaxis(out, 1, -1)


@pytree.dataclass
class RandomScale(Transform):
  """Zoom about the centre by a factor drawn uniformly from ``scales`` ``[n]`` (traced)."""
  scales: Any

  def __call__(self, key, images, strength=1.0):
    scale = jax.random.choice(key, jnp.asarray(self.scales, jnp.float32))
    return _resample(images, 1.0 + strength * (scale - 1.0), jnp.float32(0.0))


@pytree.dataclass
class RandomRotate(Transform):
  """Rotate about the centre by an angle in degrees drawn uniformly from ``angles`` ``[n]``
  (traced)."""
  angles: Any

  def __call__(self, key, images, strength=1.0):
    angle = jax.random.choice(key, jnp.asarray(self.angles, jnp.float32)) * (math.pi / 180)
    return _resample(images, jnp.float32(1.0), strength * angle)


@pytree.dataclass
class Compose(Transform):
  """Apply ``transforms`` in order, each with its own key split from the one given."""
  transforms: tuple[Transform, ...]

  def __call__(self, key, images, strength=1.0):
    keys = jax.random.split(key, max(len(self.transforms), 1))
    for k, t in zip(keys, self.transforms):
      images = t(k, images, strength)
    return images

  def output_size(self, size):
    for t in self.transforms:
      size = t.output_size(size)
    return size


def _pixels(name: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
    raise FvjaxError(f"{name} must be a whole number of pixels >= 0, got {value!r}")
  return int(value)


def _choices(name: str, values: Sequence[float]) -> np.ndarray:
  if isinstance(values, (str, bytes)) or any(isinstance(v, (str, bytes)) for v in
                                              np.ravel(np.asarray(values, object))):
    raise FvjaxError(f"{name} takes a list of numbers, got {values!r}")
  try:
    with np.errstate(over="ignore"):
      array = np.asarray(values, np.float32).reshape(-1)
  except (TypeError, ValueError):
    raise FvjaxError(f"{name} takes a list of numbers, got {values!r}") from None
  if array.size == 0:
    raise FvjaxError(f"{name} needs at least one value to draw from, got {values!r}")
  if not np.all(np.isfinite(array)):
    raise FvjaxError(f"{name} values must be finite, got {values!r}")
  if name == "random_scale" and array.min() <= 0:
    raise FvjaxError(f"random_scale factors must be > 0 (1 keeps the size), got {values!r}")
  return array


def pad(width: int, *, value: float = 0.5, mode: str = "constant") -> Pad:
  if mode not in ("constant", "reflect", "edge"):
    raise FvjaxError(f"unknown pad mode {mode!r}; valid: constant, reflect, edge")
  return Pad(_pixels("pad width", width), mode, pytree.number(value, "pad value"))


def jitter(d: int) -> Jitter:
  return Jitter(_pixels("jitter", d))


def random_scale(scales: Sequence[float]) -> RandomScale:
  return RandomScale(_choices("random_scale", scales))


def random_rotate(angles: Sequence[float]) -> RandomRotate:
  return RandomRotate(_choices("random_rotate", angles))


def compose(*transforms: Transform) -> Compose:
  if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
    transforms = tuple(transforms[0])
  for t in transforms:
    if not isinstance(t, Transform):
      raise FvjaxError(f"compose takes fvjax transforms, got {t!r}")
  return Compose(tuple(transforms))


def standard() -> Compose:
  """Lucid's ``standard_transforms``: pad 12 with 0.5, jitter 8, scale 0.90..1.10 in steps of
  0.02, rotate -10..10 degrees (0 drawn 6 times in 26, as in Lucid), jitter 4."""
  return compose(pad(12, value=0.5), jitter(8),
                 random_scale([1 + (i - 5) / 50 for i in range(11)]),
                 random_rotate(list(range(-10, 11)) + 5 * [0]), jitter(4))


def identity() -> Compose:
  """No transformation."""
  return Compose(())
