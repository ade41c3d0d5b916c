"""Transformation robustness: pure functions ``(key, images) -> images`` with static shapes.

Images are ``[B, H, W, C]``; every image of the batch gets the same random draw (as in
Lucid). Each transform is a frozen dataclass, so equal settings compare equal and reuse one
compiled render. Scale and rotation resample bilinearly about the centre at the input size,
repeating edge pixels, so output shapes never depend on the random draw.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

from fvjax._src.errors import FvjaxError


class Transform:
  """``transform(key, images, strength=1.0)``: ``strength`` (may be traced) scales the
  random range (jitter offsets, scale deviation, rotation angle); shapes never change."""

  def __call__(self, key: jax.Array, images: jax.Array, strength=1.0) -> jax.Array:
    raise NotImplementedError

  def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
    """Spatial size of the output for an input of ``size``."""
    return size


@dataclasses.dataclass(frozen=True)
class Pad(Transform):
  """Pad ``width`` pixels on every side with ``value`` (``mode="constant"``) or by
  ``"reflect"`` / ``"edge"``."""
  width: int
  value: float = 0.5
  mode: str = "constant"

  def __call__(self, key, images, strength=1.0):
    pad = ((0, 0), (self.width, self.width), (self.width, self.width), (0, 0))
    if self.mode == "constant":
      return jnp.pad(images, pad, constant_values=self.value)
    return jnp.pad(images, pad, mode=self.mode)

  def output_size(self, size):
    return size[0] + 2 * self.width, size[1] + 2 * self.width


@dataclasses.dataclass(frozen=True)
class Jitter(Transform):
  """Random crop of ``H - d`` by ``W - d`` pixels (Lucid's jitter: offsets 0..d)."""
  d: int

  def __call__(self, key, images, strength=1.0):
    b, h, w, c = images.shape
    if isinstance(strength, (int, float)) and strength == 1.0:
      oy, ox = jax.random.randint(key, (2,), 0, self.d + 1)
    else:  # offsets in 0 .. strength * d, centred so strength 0 crops the middle
      u = jax.random.uniform(key, (2,))
      offsets = (self.d / 2) + (u - 0.5) * jnp.clip(strength, 0.0, 1.0) * (self.d + 1)
      oy, ox = jnp.clip(jnp.floor(offsets), 0, self.d).astype(jnp.int32)
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


@dataclasses.dataclass(frozen=True)
class RandomScale(Transform):
  """Zoom about the centre by a factor drawn uniformly from ``scales``."""
  scales: tuple[float, ...]

  def __call__(self, key, images, strength=1.0):
    scale = jax.random.choice(key, jnp.asarray(self.scales, jnp.float32))
    return _resample(images, 1.0 + strength * (scale - 1.0), jnp.float32(0.0))


@dataclasses.dataclass(frozen=True)
class RandomRotate(Transform):
  """Rotate about the centre by an angle in degrees drawn uniformly from ``angles``."""
  angles: tuple[float, ...]

  def __call__(self, key, images, strength=1.0):
    angle = jax.random.choice(key, jnp.asarray(self.angles, jnp.float32)) * (math.pi / 180)
    return _resample(images, jnp.float32(1.0), strength * angle)


@dataclasses.dataclass(frozen=True)
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


def pad(width: int, *, value: float = 0.5, mode: str = "constant") -> Pad:
  if mode not in ("constant", "reflect", "edge"):
    raise FvjaxError(f"unknown pad mode {mode!r}; valid: constant, reflect, edge")
  return Pad(int(width), float(value), mode)


def jitter(d: int) -> Jitter:
  if d < 0:
    raise FvjaxError(f"jitter must be >= 0 pixels, got {d}")
  return Jitter(int(d))


def random_scale(scales: Sequence[float]) -> RandomScale:
  return RandomScale(tuple(float(s) for s in scales))


def random_rotate(angles: Sequence[float]) -> RandomRotate:
  return RandomRotate(tuple(float(a) for a in angles))


def compose(*transforms: Transform) -> Compose:
  if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
    transforms = tuple(transforms[0])
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
