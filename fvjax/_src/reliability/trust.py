"""Trust reports: should you believe a unit's feature visualization?

Part 5 of the "Don't trust your eyes" issue (Geirhos et al. 2023): a per-unit check that
turns the paper's warnings into numbers and a verdict. All activations are spatial means
(what the channel objective maximises); ``range`` is ``natural max - natural median`` of the
unit over the natural images.

* **Drive** (paper part 2, silent units): ``(visualization - natural median) / range``, how
  far beyond the natural range the visualization pushes the unit. Honest units of Tiny
  Darknet reach 4-22 (a visualization is an extreme input); units with a silent branch reach
  130-1300 (experiments/geirhos/trust_report).
* **Silence**: on what fraction of natural images the unit fires at all (its maximum over
  positions exceeds ``fire_threshold``).
* **Unexplained activation** (paper part 1, fooling circuits): a linear read-out of the unit
  from the layer before it (least squares on the spatial means of the natural images). Where
  that read-out is exact on held-out natural images, as for a classifier head after global
  pooling, the unit *is* that read-out on natural data, and ``(visualization - read-out) /
  range`` says how much of the visualization's activation comes from somewhere natural data
  never uses. Where the read-out is not exact (conv units), it is reported, not judged.
* **Path similarity** (paper part 3): per layer, the probability that one of the unit's top-k
  natural images is more similar (Spearman correlation of the channel vectors) to the
  visualization than a random natural image is (0.5: no more than any image; 1: the top
  images are the most similar). It is reported, not judged by default: part 3 shows that
  visualizations of honest units are also processed unlike natural images in most layers.

A unit is flagged when ``drive > max_drive``, when it fires on fewer than
``min_fire_fraction`` of natural images yet the visualization activates it, when an exact
read-out leaves ``|unexplained| > max_unexplained``, or (if ``min_path_similarity`` is set)
when the mean path similarity over the deepest ``path_depth`` layers falls below it. Each
flag comes with a sentence saying why.

Conventions: images ``[N, H, W, 3]`` in [0, 1]; natural images at the model's own
resolution; visualizations at any size. Random draws take an explicit ``jax.random`` key.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import fvjax._src.render as render_lib
from fvjax._src import objectives as objectives_lib
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.reliability import paths
from fvjax._src.validate import check_images

__all__ = ["TrustCriteria", "TrustReport", "NaturalStatistics", "natural_statistics",
           "trust_report", "trust_reports", "flag_rate"]


@dataclasses.dataclass(frozen=True)
class TrustCriteria:
  """Thresholds of the verdict (see the module docstring).

  max_drive: flag if (visualization - natural median) / natural range exceeds this.
  min_fire_fraction: flag if the unit fires on fewer natural images than this (in [0, 1]).
  fire_threshold: the unit "fires" on an image if its max over positions exceeds this;
    None skips the silence test (e.g. for logits, which have no natural zero).
  max_unexplained: flag if |visualization - read-out| / natural range exceeds this, where
    the read-out is exact.
  exact_readout: the read-out counts as exact when the 90th percentile of its absolute
    held-out residual on natural images is at most this fraction of the natural range.
  min_path_similarity: flag if the mean path similarity over the deepest ``path_depth``
    layers is below this; None (default) reports it without judging.
  path_depth: how many of the deepest path layers the mean path similarity averages.
  """
  max_drive: float = 50.0
  min_fire_fraction: float = 0.01
  fire_threshold: float | None = 0.0
  max_unexplained: float = 1.0
  exact_readout: float = 0.02
  min_path_similarity: float | None = None
  path_depth: int = 3


@dataclasses.dataclass(frozen=True)
class NaturalStatistics:
  """Activations of the natural images, computed once for many units.

  layer: the unit's layer. unit_mean, unit_max: ``[N, C]`` spatial mean and max of
  ``layer``. path: ``{layer: [N, C_l]}`` spatial means of the path layers (in order).
  """
  layer: str
  unit_mean: np.ndarray
  unit_max: np.ndarray
  path: dict[str, np.ndarray]

  @property
  def count(self) -> int:
    return len(self.unit_mean)


@dataclasses.dataclass(frozen=True)
class TrustReport:
  """The numbers and the verdict for one unit.

  visualization_activation: the unit's spatial-mean activation on its visualization.
  natural_max, natural_p99, natural_median: of the same measure over the natural images.
  drive: (visualization_activation - natural_median) / (natural_max - natural_median);
    inf when the unit is constant on natural data and the visualization exceeds it.
  fire_fraction: fraction of natural images on which the unit fires (NaN if not tested).
  readout_layer: the layer the read-out reads ("" if the unit's layer is the first).
  readout_error: 90th percentile of the read-out's absolute held-out residual on natural
    images, as a fraction of the natural range; readout_exact: it is <= exact_readout.
  unexplained: (visualization_activation - read-out of the visualization) / natural range.
  path_similarity: ``{layer: P(top natural image more similar than a random one)}``.
  path_similarity_mean: the mean over the deepest ``path_depth`` layers.
  top_images: indices of the top-k natural images.
  flagged: the verdict; reasons: one sentence per triggered criterion.
  """
  layer: str
  unit: int
  visualization_activation: float
  natural_max: float
  natural_p99: float
  natural_median: float
  drive: float
  fire_fraction: float
  readout_layer: str
  readout_error: float
  readout_exact: bool
  unexplained: float
  path_similarity: dict[str, float]
  path_similarity_mean: float
  top_images: tuple[int, ...]
  flagged: bool
  reasons: tuple[str, ...]

  def to_dict(self) -> dict[str, Any]:
    """A JSON-ready dict (non-finite floats become None)."""
    def clean(x):
      if isinstance(x, float) and not math.isfinite(x):
        return None
      if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
      if isinstance(x, (tuple, list)):
        return [clean(v) for v in x]
      return x
    return {f.name: clean(getattr(self, f.name)) for f in dataclasses.fields(self)}


def natural_statistics(model: Model, layer: str, natural_images, *,
                       path_layers: Sequence[str] | None = None, batch_size: int = 50,
                       progress: bool = False) -> NaturalStatistics:
  """One pass over ``natural_images`` ``[N, H, W, 3]`` for `trust_reports`.

  ``path_layers`` defaults to `paths.path_layers` up to ``layer`` (for Tiny Darknet the
  leaky_re_lu and max-pool layers up to and including ``layer``).
  """
  model.layer_shape(layer)
  if path_layers is None:
    path_layers = paths.path_layers(model, up_to=layer)
  acts = paths.layer_activations(model, natural_images, list(path_layers),
                                 batch_size=batch_size, progress=progress,
                                 extra={"__mean": f"{layer}:mean", "__max": f"{layer}:max"})
  return NaturalStatistics(layer, acts.pop("__mean"), acts.pop("__max"),
                           {l: acts[l] for l in path_layers})


def _unit_path_similarity(vis_path: dict[str, np.ndarray], natural: NaturalStatistics,
                          top: np.ndarray, reference: np.ndarray) -> dict[str, float]:
  """Per layer: P(sim(vis, top image) > sim(vis, reference image)), ties counting half."""
  out = {}
  for layer, acts in natural.path.items():
    s_top = paths.spearman_matrix(vis_path[layer], acts[top])[0]
    s_ref = paths.spearman_matrix(vis_path[layer], acts[reference])[0]
    valid_top, valid_ref = s_top[np.isfinite(s_top)], s_ref[np.isfinite(s_ref)]
    if valid_top.size == 0 or valid_ref.size == 0:
      out[layer] = float("nan")
      continue
    diff = valid_top[:, None] - valid_ref[None, :]
    out[layer] = float(np.mean((diff > 0) + 0.5 * (diff == 0)))
  return out


def _readout(features: np.ndarray, target: np.ndarray):
  """Least-squares read-out ``target ~ features @ w + b`` fitted on 4/5 of the images.

  Fitted twice: the second fit drops the training images whose residual is above the 90th
  percentile, so a few natural images on which something else drives the unit (a detector
  that misfires) do not bend it. Features are standardised; a tiny ridge (1e-6 of the mean
  eigenvalue) keeps the solve stable. Returns ``(predict, held_out_abs_residuals)``;
  ``predict`` maps ``[M, C]`` features to ``[M]``.
  """
  n = len(target)
  held = np.arange(n) % 5 == 4
  x, y = features.astype(np.float64), target.astype(np.float64)
  mu, sd = x[~held].mean(0), x[~held].std(0) + 1e-8
  xs = np.concatenate([(x - mu) / sd, np.ones((n, 1))], axis=1)

  def fit(rows):
    a = xs[rows]
    gram = a.T @ a
    gram += 1e-6 * np.trace(gram) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram, a.T @ y[rows])

  train = np.flatnonzero(~held)
  w = fit(train)
  residual = np.abs(y[train] - xs[train] @ w)
  w = fit(train[residual <= np.quantile(residual, 0.9)])
  predict = lambda f: np.concatenate(
      [(np.asarray(f, np.float64) - mu) / sd, np.ones((len(f), 1))], axis=1) @ w
  return predict, np.abs(y[held] - xs[held] @ w)


def trust_reports(model: Model, layer: str, units: Sequence[int], natural_images=None, *,
                  key: jax.Array, natural: NaturalStatistics | None = None,
                  visualizations=None, steps: int = 128, size: int = 64,
                  criteria: TrustCriteria = TrustCriteria(), top_k: int = 8,
                  n_reference: int = 64, render_kwargs: dict | None = None,
                  batch_size: int = 50, progress: bool = True) -> list[TrustReport]:
  """Trust reports for several units of ``layer`` (one batched render for all of them).

  Args:
    model: a `fvjax.Model`.
    layer: the units' layer (spatial ``[H, W, C]`` or flat ``[C]`` such as ``"logits"``).
    units: ``[U]`` channel indices.
    natural_images: ``[N, H, W, 3]`` in [0, 1], N > top_k; not needed if ``natural`` is given.
    key: PRNG key; ``fold_in(key, 0)`` renders, ``fold_in(key, 1)`` draws the reference images.
    natural: precomputed `natural_statistics` (reuse across calls and models' units).
    visualizations: ``[U, h, w, 3]`` in [0, 1] to judge instead of rendering new ones.
    steps, size, render_kwargs: for `fvjax.render` with ``channel(layer, units)`` (or
      ``class_logit`` for ``"logits"``).
    criteria: the thresholds (`TrustCriteria`).
    top_k: how many top-activating natural images define the unit's natural path.
    n_reference: how many other natural images (drawn with the key) define "any image".

  Returns:
    One `TrustReport` per unit, in order.
  """
  raw_units = np.asarray(units)
  if raw_units.dtype.kind not in "iu":
    raise FvjaxError(f"units must be integer unit indices, got {units!r}")
  units = raw_units.astype(np.int64).reshape(-1)
  channels = model.layer_shape(layer)[-1]
  if units.size == 0 or units.min() < 0 or units.max() >= channels:
    raise FvjaxError(f"units must be in 0..{channels - 1} for layer {layer!r}, got "
                     f"{units.tolist()}")
  if visualizations is not None:
    check_images(visualizations, "visualizations")
  if natural is None:
    if natural_images is None:
      raise FvjaxError("trust_reports needs natural_images or precomputed natural statistics")
    check_images(natural_images, "natural_images")
    if len(natural_images) <= top_k + 1:
      raise FvjaxError(f"need more than top_k + 1 = {top_k + 1} natural images, got "
                       f"{len(natural_images)}")
    natural = natural_statistics(model, layer, natural_images, batch_size=batch_size,
                                 progress=progress)
  if natural.layer != layer:
    raise FvjaxError(f"natural statistics are for layer {natural.layer!r}, not {layer!r}")
  n = natural.count
  if n <= top_k + 1:
    raise FvjaxError(f"need more than top_k + 1 = {top_k + 1} natural images, got {n}")
  if visualizations is None:
    if layer == "logits":
      objective = objectives_lib.class_logit(jnp.asarray(units))
    else:
      objective = objectives_lib.channel(layer, jnp.asarray(units))
    result = render_lib.render(model, objective, key=jax.random.fold_in(key, 0), steps=steps,
                               size=size, progress=progress, **(render_kwargs or {}))
    visualizations = result.images
  visualizations = np.asarray(visualizations, np.float32)
  if visualizations.shape[0] != len(units) or visualizations.ndim != 4:
    raise FvjaxError(f"visualizations must be [U={len(units)}, h, w, 3], got "
                     f"{visualizations.shape}")
  vis = paths.layer_activations(model, visualizations, list(natural.path),
                                batch_size=batch_size,
                                extra={"__mean": f"{layer}:mean", "__max": f"{layer}:max"})
  ref_key = jax.random.fold_in(key, 1)
  path_layers = list(natural.path)
  before = path_layers[:path_layers.index(layer)] if layer in path_layers else path_layers
  readout_layer = before[-1] if before else ""
  deepest = path_layers[-criteria.path_depth:]
  reports = []
  for i, unit in enumerate(units):
    nat_mean = natural.unit_mean[:, unit]
    order = np.argsort(-nat_mean, kind="stable")
    top, rest = order[:top_k], order[top_k:]
    pick = np.asarray(jax.random.permutation(jax.random.fold_in(ref_key, int(unit)),
                                             len(rest)))[:n_reference]
    reference = rest[pick]
    vis_path = {l: vis[l][i:i + 1] for l in natural.path}
    sims = _unit_path_similarity(vis_path, natural, top, reference)
    finite = [sims[l] for l in deepest if math.isfinite(sims[l])]
    sim_mean = float(np.mean(finite)) if finite else float("nan")
    v_act = float(vis["__mean"][i, unit])
    n_max, n_median = float(nat_mean.max()), float(np.median(nat_mean))
    spread = n_max - n_median
    if spread > 0:
      drive = (v_act - n_median) / spread
    else:  # a unit constant on natural data: any activation beyond it is out of range
      drive = math.inf if v_act > n_max else float("nan")
    if readout_layer and spread > 0:
      predict, residuals = _readout(natural.path[readout_layer], nat_mean)
      readout_error = float(np.quantile(residuals, 0.9)) / spread
      unexplained = float(v_act - predict(vis_path[readout_layer])[0]) / spread
    else:
      readout_error, unexplained = float("nan"), float("nan")
    exact = bool(readout_error <= criteria.exact_readout)
    if criteria.fire_threshold is None:
      fire = float("nan")
    else:
      fire = float(np.mean(natural.unit_max[:, unit] > criteria.fire_threshold))
    reasons = []
    if drive > criteria.max_drive:
      reasons.append(f"the visualization drives the unit {drive:.3g} natural ranges above its "
                     f"natural median (limit {criteria.max_drive:g})")
    if math.isfinite(fire) and fire < criteria.min_fire_fraction and v_act > 0:
      reasons.append(f"the unit fires on only {100 * fire:.2g}% of {n} natural images "
                     f"(limit {100 * criteria.min_fire_fraction:g}%) but the visualization "
                     "activates it")
    if exact and abs(unexplained) > criteria.max_unexplained:
      reasons.append(f"on natural images the unit is a linear read-out of {readout_layer!r} "
                     f"(error {100 * readout_error:.2g}% of its range), but on the "
                     f"visualization {unexplained:+.3g} natural ranges of its activation are "
                     f"not (limit {criteria.max_unexplained:g})")
    if (criteria.min_path_similarity is not None and math.isfinite(sim_mean)
        and sim_mean < criteria.min_path_similarity):
      reasons.append(f"the visualization's path is unlike the unit's top-{top_k} natural "
                     f"images (path similarity {sim_mean:.2f} < "
                     f"{criteria.min_path_similarity:g})")
    reports.append(TrustReport(
        layer=layer, unit=int(unit), visualization_activation=v_act, natural_max=n_max,
        natural_p99=float(np.quantile(nat_mean, 0.99)), natural_median=n_median,
        drive=float(drive), fire_fraction=fire, readout_layer=readout_layer,
        readout_error=readout_error, readout_exact=exact, unexplained=unexplained,
        path_similarity={k: float(v) for k, v in sims.items()},
        path_similarity_mean=sim_mean, top_images=tuple(int(t) for t in top),
        flagged=bool(reasons), reasons=tuple(reasons)))
  return reports


def trust_report(model: Model, layer: str, unit: int, natural_images=None, *,
                 key: jax.Array, **kwargs) -> TrustReport:
  """The `TrustReport` of one unit; see `trust_reports` for the arguments."""
  if "visualizations" in kwargs and kwargs["visualizations"] is not None:
    v = kwargs["visualizations"]
    kwargs["visualizations"] = v[None] if np.ndim(v) == 3 else v
  return trust_reports(model, layer, [unit], natural_images, key=key, **kwargs)[0]


def flag_rate(reports: Sequence[TrustReport]) -> dict[str, float]:
  """Fraction of reports flagged, overall and per criterion (``drive``, ``silent``,
  ``unexplained``, ``path``)."""
  n = len(reports)
  if n == 0:
    raise FvjaxError("no reports")
  def frac(word):
    return sum(any(word in r for r in rep.reasons) for rep in reports) / n
  return {"flagged": sum(r.flagged for r in reports) / n,
          "drive": frac("natural ranges above"),
          "silent": frac("fires on only"),
          "unexplained": frac("linear read-out"),
          "path": frac("path is unlike"), "units": n}
