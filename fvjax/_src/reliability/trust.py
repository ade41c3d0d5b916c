"""Trust reports: should you believe a unit's feature visualization?

Part 5 of the "Don't trust your eyes" issue (Geirhos et al. 2023): a per-unit check that
combines the paper's two warnings into numbers and a verdict.

* **Path similarity** (paper part 3): is the visualization processed like the natural
  images that activate the unit most? Layer by layer, the Spearman correlation between the
  visualization's (spatially averaged) activations and those of the unit's top-k natural
  images, normalised so the top-k images among themselves score 1 and top-k vs. other
  natural images score 0 (`fvjax._src.reliability.paths`).
* **Out-of-range drive** (paper part 2, silent units): how hard the visualization drives the
  unit compared with natural data (``activation_ratio`` = visualization activation / the
  largest natural activation, both the spatial mean the channel objective maximises), and on
  what fraction of natural images the unit fires at all (``fire_fraction``: its maximum over
  positions exceeds ``fire_threshold``).

A unit is flagged when the visualization drives it more than ``max_ratio`` times its natural
maximum, when it is (near) silent on natural data (``fire_fraction < min_fire_fraction``)
yet the visualization activates it, or when the visualization's path is no more like the
unit's top natural images than other natural images are (mean normalised path similarity
below ``min_path_similarity``). Each flag comes with a sentence saying why.

Conventions: images ``[N, H, W, 3]`` in [0, 1]; natural images at the model's own
resolution; visualizations at any size (activations are spatial means). Random draws take an
explicit ``jax.random`` key.
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

__all__ = ["TrustCriteria", "TrustReport", "NaturalStatistics", "natural_statistics",
           "trust_report", "trust_reports", "flag_rate"]


@dataclasses.dataclass(frozen=True)
class TrustCriteria:
  """Thresholds of the verdict (see the module docstring).

  max_ratio: flag if visualization activation > max_ratio x natural maximum (> 0).
  min_fire_fraction: flag if the unit fires on fewer natural images than this (in [0, 1]).
  fire_threshold: the unit "fires" on an image if its max over positions exceeds this;
    None skips the silence test (e.g. for logits, which have no natural zero).
  min_path_similarity: flag if the mean normalised path similarity is below this.
  """
  max_ratio: float = 10.0
  min_fire_fraction: float = 0.01
  fire_threshold: float | None = 0.0
  min_path_similarity: float = 0.0


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
  activation_ratio: visualization_activation / natural_max (inf when natural_max <= 0).
  fire_fraction: fraction of natural images on which the unit fires (NaN if not tested).
  path_similarity: ``{layer: normalised similarity}`` of the visualization to the top-k
    natural images (1 = like one of them, 0 = like any other natural image).
  path_similarity_mean: the mean over those layers.
  top_images: indices of the top-k natural images.
  flagged: the verdict; reasons: one sentence per triggered criterion.
  """
  layer: str
  unit: int
  visualization_activation: float
  natural_max: float
  natural_p99: float
  natural_median: float
  activation_ratio: float
  fire_fraction: float
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
  out = {}
  k = len(top)
  for layer, acts in natural.path.items():
    top_acts = acts[top]
    rho_tt = paths.spearman_matrix(top_acts, top_acts)
    same = float(np.nanmean(rho_tt[~np.eye(k, dtype=bool)]))
    diff = float(np.nanmean(paths.spearman_matrix(top_acts, acts[reference])))
    vis = float(np.nanmean(paths.spearman_matrix(vis_path[layer], top_acts)))
    out[layer] = (vis - diff) / (same - diff) if same > diff else float("nan")
  return out


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
  units = np.asarray(units, np.int64).reshape(-1)
  channels = model.layer_shape(layer)[-1]
  if units.size == 0 or units.min() < 0 or units.max() >= channels:
    raise FvjaxError(f"units must be in 0..{channels - 1} for layer {layer!r}, got "
                     f"{units.tolist()}")
  if natural is None:
    if natural_images is None:
      raise FvjaxError("trust_reports needs natural_images or precomputed natural statistics")
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
    finite = [v for v in sims.values() if math.isfinite(v)]
    sim_mean = float(np.mean(finite)) if finite else float("nan")
    v_act = float(vis["__mean"][i, unit])
    n_max = float(nat_mean.max())
    ratio = v_act / n_max if n_max > 0 else (math.inf if v_act > 0 else float("nan"))
    if criteria.fire_threshold is None:
      fire = float("nan")
    else:
      fire = float(np.mean(natural.unit_max[:, unit] > criteria.fire_threshold))
    reasons = []
    if math.isfinite(ratio) and ratio > criteria.max_ratio or ratio == math.inf:
      reasons.append(f"the visualization drives the unit {ratio:.3g}x its largest natural "
                     f"activation (limit {criteria.max_ratio:g}x)")
    if math.isfinite(fire) and fire < criteria.min_fire_fraction and v_act > 0:
      reasons.append(f"the unit fires on only {100 * fire:.2g}% of {n} natural images "
                     f"(limit {100 * criteria.min_fire_fraction:g}%) but the visualization "
                     "activates it")
    if math.isfinite(sim_mean) and sim_mean < criteria.min_path_similarity:
      reasons.append(f"the visualization's path is unlike the unit's top-{top_k} natural "
                     f"images (mean normalised similarity {sim_mean:.2f} < "
                     f"{criteria.min_path_similarity:g})")
    reports.append(TrustReport(
        layer=layer, unit=int(unit), visualization_activation=v_act, natural_max=n_max,
        natural_p99=float(np.quantile(nat_mean, 0.99)),
        natural_median=float(np.median(nat_mean)), activation_ratio=float(ratio),
        fire_fraction=fire, path_similarity={k: float(v) for k, v in sims.items()},
        path_similarity_mean=sim_mean, top_images=tuple(int(t) for t in top),
        flagged=bool(reasons), reasons=tuple(reasons)))
  return reports


def trust_report(model: Model, layer: str, unit: int, natural_images=None, *,
                 key: jax.Array, **kwargs) -> TrustReport:
  """The `TrustReport` of one unit; see `trust_reports` for the arguments."""
  if "visualizations" in kwargs and kwargs["visualizations"] is not None:
    v = np.asarray(kwargs["visualizations"])
    kwargs["visualizations"] = v[None] if v.ndim == 3 else v
  return trust_reports(model, layer, [unit], natural_images, key=key, **kwargs)[0]


def flag_rate(reports: Sequence[TrustReport]) -> dict[str, float]:
  """Fraction of reports flagged, overall and per criterion (``ratio``, ``silent``, ``path``)."""
  n = len(reports)
  if n == 0:
    raise FvjaxError("no reports")
  def frac(word):
    return sum(any(word in r for r in rep.reasons) for rep in reports) / n
  return {"flagged": sum(r.flagged for r in reports) / n,
          "ratio": frac("largest natural activation"),
          "silent": frac("fires on only"),
          "path": frac("path is unlike"), "units": n}
