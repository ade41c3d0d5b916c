"""Shared helpers of `fvjax.attribution`: input checks, class scores, blur."""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src import validate
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

SCORES = ("logit", "probability", "log_probability")


def check_model(model: Any, what: str) -> Model:
  if not isinstance(model, Model):
    raise FvjaxError(f"{what} needs an fvjax.Model, got {type(model).__name__}")
  if model.num_classes is None:
    raise FvjaxError(f"{what} needs a classifier: model {model.name!r} has no 'logits' layer "
                     f"(its layers: {', '.join(model.layers)})")
  return model


def check_images(model: Model, images: Any, what: str) -> jax.Array:
  """``images`` as a float32 ``[N, H, W, 3]`` array; a single ``[H, W, 3]`` image is refused."""
  images = validate.check_images(images, f"{what}: images")
  model.check_size(min(np.shape(images)[1:3]))
  return jnp.asarray(images, jnp.float32)


def check_targets(model: Model, target: Any, count: int, what: str) -> jax.Array:
  """Class indices ``[count]`` (int32) from one index or one per image, range-checked."""
  values = np.asarray(target)
  if values.dtype.kind not in "iu":
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
      values = values.astype(np.int64)
    else:
      raise FvjaxError(f"{what}: class index must be an integer or one integer per image, got "
                       f"{target!r}")
  if values.ndim == 0:
    values = np.full((count,), values)
  if values.shape != (count,):
    raise FvjaxError(f"{what}: got {values.size} class indices for {count} images; pass one "
                     "index or one per image")
  classes = model.num_classes
  bad = values[(values < 0) | (values >= classes)]
  if bad.size:
    raise FvjaxError(f"{what}: class index {int(bad[0])} is out of range for model "
                     f"{model.name!r}, which has {classes} classes (valid: 0..{classes - 1})")
  return jnp.asarray(values, jnp.int32)


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
  if value not in choices:
    raise FvjaxError(f"unknown {name} {value!r}; valid: {', '.join(map(str, choices))}")
  return value


def check_positive(value: Any, name: str, *, integer: bool = False, zero: bool = False) -> None:
  ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float,
                                                                               np.number))
  if not ok or isinstance(value, bool) or not (value >= 0 if zero else value > 0):
    kind = "integer" if integer else "number"
    raise FvjaxError(f"{name} must be a {'non-negative' if zero else 'positive'} {kind}, "
                     f"got {value!r}")


def class_scores(apply: Callable, params: Any, images: jax.Array, classes: jax.Array,
                 score: str = "logit") -> jax.Array:
  """Score ``[B]`` of class ``classes[b]`` for image b: its logit, softmax probability or
  log-probability."""
  logits = dict(apply(params, images))["logits"]
  if score == "probability":
    logits = jax.nn.softmax(logits, axis=-1)
  elif score == "log_probability":
    logits = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take_along_axis(logits, classes[:, None], axis=-1)[:, 0]


@functools.lru_cache(maxsize=64)
def _blur_matrix_np(n: int, sigma: float) -> np.ndarray:
  i = np.arange(n, dtype=np.float64)
  w = np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
  return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def blur_matrix(n: int, sigma: float) -> np.ndarray:
  """``[n, n]`` Gaussian smoothing matrix with rows summing to 1 (normalised at borders)."""
  return _blur_matrix_np(int(n), float(sigma))


def gaussian_blur(images: jax.Array, sigma: float) -> jax.Array:
  """Separable Gaussian blur of images ``[..., H, W, C]`` with standard deviation ``sigma``
  pixels; the kernel is renormalised at the borders, so a constant image stays constant.
  ``sigma <= 0`` returns the images unchanged."""
  if sigma <= 0:
    return images
  h, w = images.shape[-3], images.shape[-2]
  bh, bw = jnp.asarray(blur_matrix(h, sigma)), jnp.asarray(blur_matrix(w, sigma))
  out = jnp.einsum("ij,...jkc->...ikc", bh, images)
  return jnp.einsum("kl,...ilc->...ikc", bw, out)


def traced_blur_matrix(n: int, sigma) -> jax.Array:
  """`blur_matrix` with a ``sigma`` that may be traced (computed in float32 under jit)."""
  i = jnp.arange(n, dtype=jnp.float32)
  d = (i[:, None] - i[None, :]) / jnp.maximum(jnp.asarray(sigma, jnp.float32), 1e-6)
  w = jnp.exp(-0.5 * d * d)
  return w / w.sum(axis=1, keepdims=True)


def traced_gaussian_blur(images: jax.Array, sigma) -> jax.Array:
  """`gaussian_blur` with a ``sigma`` that may be traced (a setting of a compiled loop, so
  another value does not recompile); ``sigma <= 0`` returns the images unchanged."""
  h, w = images.shape[-3], images.shape[-2]
  out = jnp.einsum("ij,...jkc->...ikc", traced_blur_matrix(h, sigma), images)
  out = jnp.einsum("kl,...ilc->...ikc", traced_blur_matrix(w, sigma), out)
  return jnp.where(jnp.asarray(sigma) > 0, out, images)


def normalize(maps: Any, *, percentile: float = 99.5, signed: bool = False) -> np.ndarray:
  """Heatmaps ``[N, H, W]`` scaled per map for display: ``[0, 1]`` (values below 0 clipped),
  or ``[-1, 1]`` with ``signed=True``; the ``percentile`` of ``|map|`` maps to 1."""
  maps = np.asarray(maps, np.float32)
  flat = np.abs(maps).reshape(len(maps), -1)
  top = np.percentile(flat, percentile, axis=1).reshape(-1, *([1] * (maps.ndim - 1)))
  scaled = maps / np.maximum(top, 1e-12)
  return np.clip(scaled, -1.0 if signed else 0.0, 1.0)
