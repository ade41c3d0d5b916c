"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a grey square over the image and record
how much the class score drops at each position."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.attribution import _common
from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

FILLS = ("grey", "mean")


class OcclusionResult(NamedTuple):
  """What `occlusion_grid` returns (NumPy).

  drops: ``[N, ny, nx]`` score drop ``s(x) - s(x occluded at (ty, tx))`` per window position.
  tops, lefts: ``[ny]``, ``[nx]`` pixel offsets of the windows.
  base: ``[N]`` the unoccluded score.
  """
  drops: np.ndarray
  tops: np.ndarray
  lefts: np.ndarray
  base: np.ndarray


def positions(size: int, window: int, stride: int) -> np.ndarray:
  """Window offsets along one axis: every ``stride`` pixels, plus one flush with the far
  edge when the stride does not land there, so every pixel is covered."""
  starts = list(range(0, size - window + 1, stride))
  if starts[-1] != size - window:
    starts.append(size - window)
  return np.asarray(starts, np.int32)


@functools.partial(jax.jit, static_argnames=("window", "score"))
def _occluded_scores(model: Model, image, cls, fill, tops, lefts, *, window: int, score: str):
  """Scores ``[P]`` of ``image`` ``[H, W, 3]`` with a ``window`` square of ``fill`` at each of
  the P positions (vmapped)."""
  h, w = image.shape[:2]
  ys = jnp.arange(h)[:, None]
  xs = jnp.arange(w)[None, :]

  def occlude(top, left):
    inside = (ys >= top) & (ys < top + window) & (xs >= left) & (xs < left + window)
    return jnp.where(inside[..., None], fill, image)

  batch = jax.vmap(occlude)(tops, lefts)
  return _common.class_scores(model.apply, model.params, batch,
                              jnp.full((len(tops),), cls), score)


def _check_window(images, window, stride):
  _common.check_positive(window, "occlusion window", integer=True)
  _common.check_positive(stride, "occlusion stride", integer=True)
  h, w = images.shape[1:3]
  if window > min(h, w):
    raise FvjaxError(f"occlusion window {window} is larger than the {h}x{w} images; "
                     f"valid windows: 1..{min(h, w)}")


def _fill_value(images: jax.Array, fill: Any) -> jax.Array:
  """``[N, 3]`` fill colour per image."""
  if isinstance(fill, str):
    _common.check_choice(fill, FILLS, "occlusion fill")
    if fill == "grey":
      return jnp.full((len(images), 3), 0.5)
    return images.mean(axis=(1, 2))
  value = np.asarray(fill, np.float32)
  if value.shape not in ((), (3,)):
    raise FvjaxError(f"occlusion fill must be 'grey', 'mean', a number or an RGB triple, "
                     f"got {fill!r}")
  return jnp.broadcast_to(jnp.asarray(value), (len(images), 3))


def occlusion_grid(model: Model, images: Any, target: Any, *, window: int = 32,
                   stride: int = 16, fill: Any = "grey", score: str = "probability",
                   batch_size: int = 64) -> OcclusionResult:
  """Score drop for every window position (Zeiler & Fergus 2014).

  Args:
    model: a classifier `fvjax.Model`.
    images: ``[N, H, W, 3]`` in [0, 1].
    target: the class (one index or ``[N]``).
    window: side of the occluding square in pixels (1..min(H, W)).
    stride: step between positions, pixels; a last position flush with the far edge is added.
    fill: ``"grey"`` (0.5), ``"mean"`` (the image's mean colour), a number or an RGB triple.
    score: ``"probability"`` (softmax, as Zeiler & Fergus plot), ``"logit"`` or
      ``"log_probability"``.
    batch_size: occluded images per compiled, vmapped call.
  """
  _common.check_model(model, "occlusion")
  _common.check_choice(score, _common.SCORES, "score")
  _common.check_positive(batch_size, "batch_size", integer=True)
  images = _common.check_images(model, images, "occlusion")
  _check_window(images, window, stride)
  classes = _common.check_targets(model, target, len(images), "occlusion")
  fills = _fill_value(images, fill)
  h, w = images.shape[1:3]
  tops, lefts = positions(h, window, stride), positions(w, window, stride)
  grid_t, grid_l = (a.ravel() for a in np.meshgrid(tops, lefts, indexing="ij"))
  base = map_batches(
      lambda x, c: _common.class_scores(model.apply, model.params, x, c, score),
      images, classes, batch_size=batch_size)
  drops = []
  for image, cls, fill_rgb, s0 in zip(images, classes, fills, base):
    scores = map_batches(
        lambda t, l, image=image, cls=cls, fill_rgb=fill_rgb: _occluded_scores(
            model, image, cls, fill_rgb, t, l, window=window, score=score),
        jnp.asarray(grid_t), jnp.asarray(grid_l), batch_size=batch_size)
    drops.append((s0 - scores).reshape(len(tops), len(lefts)))
  return OcclusionResult(np.stack(drops), tops, lefts, np.asarray(base))


def grid_to_pixels(result: OcclusionResult, size: tuple[int, int], window: int) -> np.ndarray:
  """Pixel heatmap ``[N, H, W]``: each pixel gets the mean drop of the windows covering it."""
  h, w = size
  total = np.zeros((len(result.drops), h, w), np.float32)
  count = np.zeros((h, w), np.float32)
  for i, top in enumerate(result.tops):
    for j, left in enumerate(result.lefts):
      total[:, top:top + window, left:left + window] += result.drops[:, i, j, None, None]
      count[top:top + window, left:left + window] += 1
  return total / np.maximum(count, 1)


def occlusion(model: Model, images: Any, target: Any, *, window: int = 32, stride: int = 16,
              fill: Any = "grey", score: str = "probability",
              batch_size: int = 64) -> np.ndarray:
  """Occlusion heatmap ``[N, H, W]``: the mean score drop (``s(x) - s(occluded x)``, positive
  where hiding the pixel hurts the class) over the windows covering each pixel. See
  `occlusion_grid` for the arguments; raises `FvjaxError` when ``window`` exceeds the image."""
  result = occlusion_grid(model, images, target, window=window, stride=stride, fill=fill,
                          score=score, batch_size=batch_size)
  return grid_to_pixels(result, np.shape(images)[1:3], window)
