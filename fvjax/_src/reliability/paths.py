"""Path similarity: are feature visualizations processed like natural images?

Part 3 of Geirhos, Zimmermann, Bilodeau, Brendel & Kim (2023), "Don't trust your eyes"
(their Fig. 5, Inception-V1). For a class ``c`` compare, layer by layer, the activations
caused by the class-``c`` visualization (logit objective) with those caused by class-``c``
natural images, by Spearman rank correlation; normalise per layer so that two natural
images of the same class score 1 and natural images of different classes score 0:

    normalized_l = (rho_l(vis_c, nat_c) - rho_l(different)) / (rho_l(same) - rho_l(different))

Each image's activation at a layer is reduced to one value per channel (the spatial mean,
``[C]``), so images of any size compare and the layer's channels are the "path".
A score near 1 means the visualization travels the network like a natural class-``c``
image; near 0, no more like one than a natural image of another class.

Conventions: images ``[N, H, W, 3]`` in [0, 1]; reduced activations ``[N, C]`` per layer
(float32); Spearman correlations in [-1, 1], computed in float64 with average ranks for
ties. Every random draw takes an explicit ``jax.random`` key.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from scipy import stats

from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.validate import check_images

__all__ = [
    "PathSimilarity", "path_layers", "reduce_activation", "layer_activations", "rankdata",
    "spearman_matrix", "spearman_pairs", "normalize_similarity", "natural_views",
    "same_different_baselines", "path_similarity",
]


# -- activations ----------------------------------------------------------------------------
def path_layers(model: Model, prefixes: Sequence[str] = ("leaky_re_lu_", "max_pooling2d_"),
                *, up_to: str | None = None, logits: bool = True) -> list[str]:
  """Layers of ``model`` (in network order) whose names start with one of ``prefixes``,
  up to and including ``up_to`` (default: all), plus ``"logits"`` when ``logits`` is true
  and ``up_to`` is None. For Tiny Darknet: leaky_re_lu_1..15, max_pooling2d_1..4, logits."""
  names = list(model.layers)
  if up_to is not None:
    model.layer_shape(up_to)
    names = names[:names.index(up_to) + 1]
  chosen = [n for n in names if n.startswith(tuple(prefixes)) or n == up_to]
  if logits and up_to is None and "logits" in model.layers:
    chosen.append("logits")
  if not chosen:
    raise FvjaxError(f"no layer of model {model.name!r} starts with {list(prefixes)}; "
                     f"layers: {', '.join(model.layers)}")
  return chosen


def reduce_activation(a: jax.Array, how: str = "mean") -> jax.Array:
  """``[B, ...spatial, C]`` -> ``[B, C]`` by the spatial ``"mean"`` or ``"max"``."""
  if a.ndim == 2:
    return a
  axes = tuple(range(1, a.ndim - 1))
  if how == "mean":
    return jnp.mean(a, axis=axes)
  if how == "max":
    return jnp.max(a, axis=axes)
  raise FvjaxError(f"unknown reduction {how!r}; valid: 'mean', 'max'")


def layer_activations(model: Model, images, layers: Sequence[str], *, how: str = "mean",
                      batch_size: int = 50, progress: bool = False,
                      extra: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
  """Reduced activations ``{layer: [N, C]}`` of ``images`` ``[N, H, W, 3]`` (float32).

  ``extra`` maps output keys to ``"layer:how"`` for more reductions in the same pass, e.g.
  ``{"leaky_re_lu_12/max": "leaky_re_lu_12:max"}``. Images are run in equal batches (the
  last padded) so one compiled function serves them all.
  """
  images = np.asarray(check_images(images, "images"), np.float32)
  for layer in layers:
    model.layer_shape(layer)
  specs = {layer: (layer, how) for layer in layers}
  for key, spec in (extra or {}).items():
    layer, _, kind = spec.partition(":")
    model.layer_shape(layer)
    specs[key] = (layer, kind or how)
  for _, kind in specs.values():
    if kind not in ("mean", "max"):
      raise FvjaxError(f"unknown reduction {kind!r}; valid: 'mean', 'max'")
  frozen = tuple((k, l, h) for k, (l, h) in specs.items())

  def run(params, x):
    return _reduced_jit(model.apply, frozen, params, x)

  out = map_batches(lambda x: run(model.params, x), images, batch_size=batch_size,
                    progress=progress, desc="activations")
  return {k: v.astype(np.float32) for k, v in out.items()}


@functools.partial(jax.jit, static_argnums=(0, 1))
def _reduced_jit(apply, specs, params, x):
  acts = apply(params, x)
  return {k: reduce_activation(acts[l], h) for k, l, h in specs}


# -- Spearman ---------------------------------------------------------------------------------
def rankdata(x, axis: int = -1) -> np.ndarray:
  """Ranks along ``axis`` (1 = smallest), ties get their average rank (float64)."""
  return stats.rankdata(np.asarray(x, np.float64), axis=axis)


def _standardized_ranks(x) -> np.ndarray:
  x = np.atleast_2d(np.asarray(x, np.float64))
  r = rankdata(x, axis=-1)
  r = r - r.mean(axis=-1, keepdims=True)
  norm = np.linalg.norm(r, axis=-1, keepdims=True)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(norm > 0, r / norm, np.nan)


def spearman_matrix(a, b) -> np.ndarray:
  """Spearman correlation of every row of ``a`` ``[N, C]`` with every row of ``b``
  ``[M, C]``: ``[N, M]`` in [-1, 1] (NaN where a row is constant)."""
  a, b = np.atleast_2d(a), np.atleast_2d(b)
  if a.shape[-1] != b.shape[-1]:
    raise FvjaxError(f"rows have different lengths: {a.shape[-1]} and {b.shape[-1]}")
  return np.clip(_standardized_ranks(a) @ _standardized_ranks(b).T, -1.0, 1.0)


def spearman_pairs(a, b) -> np.ndarray:
  """Spearman correlation of row ``i`` of ``a`` with row ``i`` of ``b`` (``[N, C]`` each): ``[N]``."""
  a, b = np.atleast_2d(a), np.atleast_2d(b)
  if a.shape != b.shape:
    raise FvjaxError(f"shapes differ: {a.shape} and {b.shape}")
  return np.clip(np.sum(_standardized_ranks(a) * _standardized_ranks(b), axis=-1), -1.0, 1.0)


def normalize_similarity(score, same, different):
  """``(score - different) / (same - different)``: 1 at ``same``, 0 at ``different``.

  Broadcasts; raises `FvjaxError` if ``same <= different`` anywhere (no scale to normalise by).
  """
  same = np.asarray(same, np.float64)
  different = np.asarray(different, np.float64)
  gap = same - different
  if np.any(~(gap > 0)):
    raise FvjaxError(f"same-class similarity must exceed different-class similarity; got "
                     f"same={np.round(same, 4).tolist()} different="
                     f"{np.round(different, 4).tolist()}")
  return (np.asarray(score, np.float64) - different) / gap


# -- natural views of one photo ----------------------------------------------------------------
def natural_views(key: jax.Array, image, size: int, count: int, *,
                  min_scale: float = 0.6) -> np.ndarray:
  """``count`` natural views of one photo ``[H, W, 3]`` (in [0, 1]), ``[count, size, size, 3]``.

  View 0 is the centre square crop; the others are random square crops whose side is a
  uniform fraction in ``[min_scale, 1]`` of the shorter side, at a uniform position, each
  flipped left-right with probability 1/2 (view 1 is always the flipped centre crop when
  ``count >= 2``). All draws come from ``key``; resizing is bilinear (PIL).
  """
  image = np.asarray(check_images(image, "natural_views image", rank=3), np.float32)
  if count < 1 or not 0 < min_scale <= 1:
    raise FvjaxError(f"need count >= 1 and 0 < min_scale <= 1, got {count}, {min_scale}")
  h, w = image.shape[:2]
  side0 = min(h, w)
  k1, k2, k3, k4 = jax.random.split(key, 4)
  scale = np.array(jax.random.uniform(k1, (count,), minval=min_scale, maxval=1.0))
  fy = np.array(jax.random.uniform(k2, (count,)))
  fx = np.array(jax.random.uniform(k3, (count,)))
  flip = np.array(jax.random.bernoulli(k4, 0.5, (count,)))
  scale[:2], fy[:2], fx[:2] = 1.0, 0.5, 0.5
  flip[0] = False
  if count > 1:
    flip[1] = True
  pil = Image.fromarray(np.clip(np.round(image * 255), 0, 255).astype(np.uint8))
  views = []
  for i in range(count):
    side = max(1, int(round(scale[i] * side0)))
    top = int(round(fy[i] * (h - side)))
    left = int(round(fx[i] * (w - side)))
    crop = pil.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    if flip[i]:
      crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    views.append(np.asarray(crop, np.float32) / 255.0)
  return np.stack(views)


# -- the measurement ------------------------------------------------------------------------
def same_different_baselines(views: np.ndarray) -> tuple[float, float]:
  """Mean Spearman of same-class and of different-class natural pairs at one layer.

  ``views``: ``[K, V, C]`` reduced activations, V >= 2 natural views of each of K >= 2
  classes. Same: all pairs of distinct views of one class; different: all pairs of views of
  two different classes. Returns ``(same, different)``.
  """
  views = np.asarray(views, np.float64)
  k, v, c = views.shape
  if k < 2 or v < 2:
    raise FvjaxError(f"need >= 2 classes and >= 2 views per class, got {k} and {v}")
  rho = spearman_matrix(views.reshape(k * v, c), views.reshape(k * v, c))
  cls = np.repeat(np.arange(k), v)
  same = (cls[:, None] == cls[None, :]) & ~np.eye(k * v, dtype=bool)
  diff = cls[:, None] != cls[None, :]
  return float(np.nanmean(rho[same])), float(np.nanmean(rho[diff]))


@dataclasses.dataclass(frozen=True)
class PathSimilarity:
  """Layer-by-layer similarity of visualizations to natural images (NumPy arrays).

  layers: the L layer names. same, different: ``[L]`` mean Spearman of same-class and
  different-class natural pairs. raw: ``[K, L]`` mean Spearman of class c's visualization
  with class c's natural views. raw_other: ``[K, L]`` the same against the other classes'
  views. normalized, normalized_other: ``[K, L]`` those mapped so same = 1, different = 0.
  natural: ``[K, L]`` each class's own mean same-class natural similarity, normalized (the
  spread of the natural reference itself).
  """
  layers: tuple[str, ...]
  same: np.ndarray
  different: np.ndarray
  raw: np.ndarray
  raw_other: np.ndarray
  normalized: np.ndarray
  normalized_other: np.ndarray
  natural: np.ndarray


def path_similarity(vis_acts: Mapping[str, np.ndarray], view_acts: Mapping[str, np.ndarray],
                    layers: Sequence[str] | None = None) -> PathSimilarity:
  """Path similarity from reduced activations.

  Args:
    vis_acts: ``{layer: [K, C]}``, the visualization of each of K classes (or ``[K, B, C]``
      for B visualizations per class, averaged over B in the score).
    view_acts: ``{layer: [K, V, C]}``, V natural views of each class's photo(s).
    layers: which layers, in order (default: the keys of ``vis_acts``).

  Returns:
    A `PathSimilarity`.
  """
  layers = tuple(layers or vis_acts)
  same, diff, raw, raw_other, natural = [], [], [], [], []
  for layer in layers:
    vis = np.asarray(vis_acts[layer], np.float64)
    views = np.asarray(view_acts[layer], np.float64)
    if vis.ndim == 2:
      vis = vis[:, None]
    k, b, c = vis.shape
    if views.shape[0] != k or views.shape[-1] != c:
      raise FvjaxError(f"layer {layer!r}: visualizations {vis.shape} and views {views.shape} "
                       "must have the same classes and channels")
    v = views.shape[1]
    s, d = same_different_baselines(views)
    same.append(s)
    diff.append(d)
    rho = spearman_matrix(vis.reshape(k * b, c), views.reshape(k * v, c)).reshape(k, b, k, v)
    per_class = rho.mean(axis=(1, 3))  # [K vis, K classes]
    raw.append(np.diag(per_class))
    off = ~np.eye(k, dtype=bool)
    raw_other.append(np.array([per_class[i][off[i]].mean() for i in range(k)]))
    nat = spearman_matrix(views.reshape(k * v, c), views.reshape(k * v, c)).reshape(k, v, k, v)
    iu = np.triu_indices(v, 1)
    natural.append(np.array([nat[i, :, i][iu].mean() for i in range(k)]))
  same, diff = np.asarray(same), np.asarray(diff)
  raw, raw_other, natural = (np.stack(x, axis=1) for x in (raw, raw_other, natural))
  return PathSimilarity(layers, same, diff, raw, raw_other,
                        normalize_similarity(raw, same, diff),
                        normalize_similarity(raw_other, same, diff),
                        normalize_similarity(natural, same, diff))
