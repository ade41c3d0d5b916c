"""Evaluating attribution maps: the deletion (minimality) game of Fong & Vedaldi (2017) and the
cascading-randomisation sanity check of Adebayo et al. (2018)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from fvjax._src.attribution import _common
from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.0, 1.0, 0.05), 2))
FLAX_COLLECTIONS = ("params", "batch_stats")


# -- deletion game ------------------------------------------------------------------------
class DeletionResult(NamedTuple):
  """What `deletion_game` returns (NumPy).

  thresholds: ``[T]`` levels in [0, 1] of the min-max normalised map.
  boxes: ``[N, T, 4]`` tight bounding box ``(top, left, bottom, right)`` (exclusive ends) of
    the pixels at or above each level.
  areas: ``[N, T]`` box area as a fraction of the image, in [0, 1].
  normalized: ``[N, T]`` ``(s - s_blur) / (s0 - s_blur)``: 1 = score untouched, 0 = as low
    as blurring the whole image.
  base: ``[N]`` ``s0``, the score of the image.
  blurred: ``[N]`` ``s_blur``, the score of the fully blurred image.
  """
  thresholds: np.ndarray
  boxes: np.ndarray
  areas: np.ndarray
  normalized: np.ndarray
  base: np.ndarray
  blurred: np.ndarray


def bounding_boxes(maps: Any, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> np.ndarray:
  """``[N, T, 4]`` tight boxes ``(top, left, bottom, right)`` of ``map >= t`` for each level
  ``t`` of the per-map min-max normalised ``maps`` ``[N, H, W]`` (a constant map is all 1)."""
  maps = np.asarray(maps, np.float64)
  lo = maps.min(axis=(1, 2), keepdims=True)
  span = maps.max(axis=(1, 2), keepdims=True) - lo
  unit = np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 1.0)
  boxes = np.zeros((len(maps), len(thresholds), 4), np.int32)
  for i, m in enumerate(unit):
    for j, t in enumerate(thresholds):
      rows = np.flatnonzero((m >= t).any(axis=1))
      cols = np.flatnonzero((m >= t).any(axis=0))
      boxes[i, j] = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
  return boxes


@functools.partial(jax.jit, static_argnames=("score",))
def _box_scores(model: Model, image, blurred, cls, boxes, score: str):
  h, w = image.shape[:2]
  ys = jnp.arange(h)[:, None]
  xs = jnp.arange(w)[None, :]

  def one(box):
    inside = (ys >= box[0]) & (ys < box[2]) & (xs >= box[1]) & (xs < box[3])
    return jnp.where(inside[..., None], blurred, image)

  batch = jax.vmap(one)(boxes)
  return _common.class_scores(model.apply, model.params, batch, jnp.full((len(boxes),), cls),
                              score)


@functools.partial(jax.jit, static_argnames=("sigma", "score"))
def _base_scores(model: Model, images, classes, sigma: float, score: str):
  blurred = _common.gaussian_blur(images, sigma)
  s0 = _common.class_scores(model.apply, model.params, images, classes, score)
  sb = _common.class_scores(model.apply, model.params, blurred, classes, score)
  return blurred, s0, sb


def deletion_game(model: Model, images: Any, target: Any, maps: Any, *,
                  thresholds: Sequence[float] = DEFAULT_THRESHOLDS, blur_sigma: float = 10.0,
                  score: str = "probability", batch_size: int = 32) -> DeletionResult:
  """Blur the tight box around each thresholded map and record the normalised score.

  Fong & Vedaldi (2017), section 5.3: each map is min-max normalised, thresholded at every
  level of ``thresholds``, the bounding box of the pixels above the level is blurred
  (Gaussian, ``blur_sigma`` px) and the class score ``s`` is normalised as
  ``(s - s_blur) / (s0 - s_blur)``. See `minimal_deletion_area` for the summary.

  Args:
    model: a classifier `fvjax.Model`.
    images: ``[N, H, W, 3]`` in [0, 1].
    target: the class (one index or ``[N]``).
    maps: ``[N, H, W]`` attribution maps, higher = more important (any range).
    thresholds: levels in [0, 1]; level 0 selects the whole image.
    blur_sigma: the blur of the deleted box, pixels.
    score: ``"probability"`` (softmax, default), ``"logit"`` or ``"log_probability"``.
    batch_size: boxed images per compiled call.
  """
  _common.check_model(model, "deletion_game")
  _common.check_choice(score, _common.SCORES, "score")
  _common.check_positive(blur_sigma, "blur_sigma")
  images = _common.check_images(model, images, "deletion_game")
  classes = _common.check_targets(model, target, len(images), "deletion_game")
  maps = np.asarray(maps)
  if maps.shape != images.shape[:3]:
    raise FvjaxError(f"deletion_game needs one map [H, W] per image: maps have shape "
                     f"{maps.shape}, images {tuple(images.shape)}")
  thresholds = np.asarray(thresholds, np.float64)
  if thresholds.ndim != 1 or not len(thresholds) or thresholds.min() < 0 or thresholds.max() > 1:
    raise FvjaxError(f"thresholds must be levels in [0, 1], got {thresholds.tolist()}")
  boxes = bounding_boxes(maps, thresholds)
  blurred, s0, sb = _base_scores(model, images, classes, float(blur_sigma), score)
  scores = np.stack([
      map_batches(lambda b, image=image, blur=blur, cls=cls: _box_scores(
          model, image, blur, cls, b, score), jnp.asarray(box), batch_size=batch_size)
      for image, blur, cls, box in zip(images, blurred, classes, boxes)])
  s0, sb = np.asarray(s0), np.asarray(sb)
  normalized = (scores - sb[:, None]) / (s0 - sb)[:, None]
  h, w = images.shape[1:3]
  areas = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]) / (h * w)
  return DeletionResult(thresholds, boxes, areas, normalized, s0, sb)


def minimal_deletion_area(result: DeletionResult, level: float = 0.01) -> np.ndarray:
  """``[N]`` the smallest box area (fraction of the image) whose blurring brings the
  normalised score to ``level`` or below (Fong & Vedaldi: 0.01, a 99% drop); 1.0 where no
  level does (blurring the whole image always does, by definition)."""
  ok = result.normalized <= level
  return np.where(ok, result.areas, 1.0).min(axis=1)


# -- sanity check: cascading randomisation ---------------------------------------------------
def _keys(path) -> tuple[str, ...]:
  out = []
  for k in path:
    out.append(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))))
  return tuple(out)


def _module(keys: tuple[str, ...]) -> str:
  if len(keys) > 2 and keys[0] in FLAX_COLLECTIONS:
    return keys[1]
  return keys[0]


def layer_groups(model: Model) -> list[tuple[str, tuple[str, ...]]]:
  """The model's parameter groups in forward order, as ``(name, modules)``.

  Modules are the top-level entries of the params (of each Flax collection); a module holding
  a ``kernel``/``weight``/``w`` starts a group and the following modules without one (e.g. its
  BatchNorm) join it. The order follows the model's layer table where names match.
  """
  leaves = jax.tree_util.tree_flatten_with_path(model.params)[0]
  modules: dict[str, bool] = {}
  for path, _ in leaves:
    keys = _keys(path)
    name = _module(keys)
    modules[name] = modules.get(name, False) or keys[-1] in ("kernel", "weight", "w")
  layer_order = list(model.layers)

  def position(name):
    for i, layer in enumerate(layer_order):
      if layer == name or layer.startswith(name + "/"):
        return (i, 0)
    return (len(layer_order), list(modules).index(name))

  groups: list[tuple[str, list[str]]] = []
  for name in sorted(modules, key=position):
    if modules[name] or not groups:
      groups.append((name, [name]))
    else:
      groups[-1][1].append(name)
  return [(name, tuple(members)) for name, members in groups]


def _reinit(key, name: str, leaf):
  leaf = jnp.asarray(leaf)
  if not jnp.issubdtype(leaf.dtype, jnp.floating):
    return leaf
  if name in ("kernel", "weight", "w") and leaf.ndim >= 2:
    fan_in = int(np.prod(leaf.shape[:-1]))
    return jax.random.normal(key, leaf.shape, leaf.dtype) * np.sqrt(2.0 / fan_in)
  if name in ("bias", "mean", "b", "beta"):
    return jnp.zeros_like(leaf)
  if name in ("scale", "var", "gamma"):
    return jnp.ones_like(leaf)
  return jax.random.normal(key, leaf.shape, leaf.dtype) * jnp.std(leaf) + jnp.mean(leaf)


def randomize(key: jax.Array, model: Model, modules: Sequence[str]) -> Model:
  """A copy of ``model`` with the parameters of ``modules`` re-initialised: kernels He-normal
  (std ``sqrt(2 / fan_in)``), biases and BatchNorm means 0, BatchNorm scales and variances 1,
  anything else Gaussian with the original's mean and std. Leaf i uses ``fold_in(key, i)``."""
  modules = set(modules)
  leaves, treedef = jax.tree_util.tree_flatten_with_path(model.params)
  known = {_module(_keys(p)) for p, _ in leaves}
  unknown = sorted(modules - known)
  if unknown:
    raise FvjaxError(f"unknown module(s) {unknown} for model {model.name!r}; valid: "
                     f"{', '.join(sorted(known))}")
  new = []
  for i, (path, leaf) in enumerate(leaves):
    keys = _keys(path)
    if _module(keys) in modules:
      leaf = _reinit(jax.random.fold_in(key, i), keys[-1], leaf)
    new.append(leaf)
  return model.replace(params=jax.tree.unflatten(jax.tree.structure(model.params), new))


def cascading_randomization(key: jax.Array, model: Model, *,
                            groups: Sequence[tuple[str, Sequence[str]]] | None = None,
                            ) -> list[tuple[str, Model]]:
  """Adebayo et al. (2018): randomise the layers one group at a time from the top (logits)
  down, cumulatively. Returns ``[(group name, model with it and every group above it
  randomised), ...]``, top first; ``groups`` defaults to `layer_groups` (group i uses
  ``fold_in(key, i)``)."""
  groups = layer_groups(model) if groups is None else [(n, tuple(m)) for n, m in groups]
  stages = []
  current = model
  for i, (name, members) in enumerate(reversed(groups)):
    current = randomize(jax.random.fold_in(key, i), current, members)
    stages.append((name, current.replace(name=f"{model.name}[random to {name}]")))
  return stages


def rank_correlation(a: Any, b: Any, *, absolute: bool = True) -> np.ndarray:
  """Spearman rank correlation ``[N]`` between maps ``a`` and ``b`` (``[N, ...]``), pair by pair;
  ``absolute`` compares ``|a|`` with ``|b|`` (Adebayo et al.'s "ABS" variant). A constant map
  correlates 0."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape:
    raise FvjaxError(f"rank_correlation needs maps of equal shapes, got {a.shape} and {b.shape}")
  if absolute:
    a, b = np.abs(a), np.abs(b)
  out = []
  for x, y in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
      out.append(0.0)
    else:
      out.append(float(np.corrcoef(rx, ry)[0, 1]))
  return np.asarray(out)
