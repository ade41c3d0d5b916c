"""Views for attribution: first-layer filters, activation maps, saliency overlays, the
methods panel, sanity-check curves and deletion-area bars.

Each view writes a PNG at ``path`` and returns the path, or returns a
`matplotlib.figure.Figure` (shown as an image in Jupyter) when ``path`` is None; none of them
uses pyplot or changes matplotlib's backend (see `fvjax._src.plot`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib
import numpy as np

from fvjax._src.attribution import _common
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.plot import Figure, _save, _subplots, figure, image_grid


def _find_kernel(params: Any, layer: str | None):
  """The first 4-D ``kernel`` leaf (``[kh, kw, 3, C]``) of ``layer`` (or of the model)."""
  import jax
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  names = []
  for path, leaf in leaves:
    keys = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
    if np.ndim(leaf) == 4 and keys[-1] in ("kernel", "weight", "w"):
      names.append("/".join(k for k in keys[:-1] if k != "params"))
      if layer is None or layer in keys:
        return np.asarray(leaf)
  raise FvjaxError(f"no convolution kernel for layer {layer!r}; layers with kernels: "
                   f"{', '.join(names)}")


def first_layer_filters(model: Model, layer: str | None = None) -> np.ndarray:
  """The filters of the first convolution (or of ``layer``) as RGB images
  ``[C, kh, kw, 3]`` in [0, 1], each scaled by the largest ``|weight|`` of the layer around
  grey 0.5 (so the relative strength of the filters shows)."""
  kernel = _find_kernel(model.params, layer)
  if kernel.shape[2] != 3:
    raise FvjaxError(f"layer {layer!r} has {kernel.shape[2]} input channels; the filter grid "
                     "draws RGB filters of a first layer")
  filters = np.moveaxis(kernel, -1, 0)
  return 0.5 + 0.5 * filters / max(float(np.abs(filters).max()), 1e-12)


def filter_grid(model: Model, path: str | None = None, *, layer: str | None = None,
                ncols: int | None = None, title: str | None = None,
                tile_inches: float = 0.9) -> str | Figure:
  """The first-layer filters (see `first_layer_filters`) as a grid: a PNG at ``path``, or the
  figure when ``path`` is None."""
  filters = first_layer_filters(model, layer)
  return image_grid(filters, path, labels=[str(i) for i in range(len(filters))], ncols=ncols,
                    tile_inches=tile_inches, label_fontsize=6,
                    title=title or f"{model.name}: first-layer filters "
                                   f"({filters.shape[1]}x{filters.shape[2]})")


def activation_grid(model: Model, image: Any, layer: str, path: str | None = None, *,
                    ncols: int | None = None, title: str | None = None,
                    cmap: str = "viridis", tile_inches: float = 1.0) -> str | Figure:
  """The activation map of every channel of ``layer`` for one ``image`` ``[H, W, 3]`` in
  [0, 1] as a grid (each channel on its own colour scale, its max in the title): a PNG at
  ``path``, or the figure when ``path`` is None."""
  shape = model.layer_shape(layer)
  if len(shape) != 3:
    raise FvjaxError(f"layer {layer!r} has activation shape {shape}; activation maps need a "
                     "convolutional layer [H, W, C]")
  image = np.asarray(image, np.float32)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise FvjaxError(f"activation_grid needs one image [H, W, 3], got shape {image.shape}")
  acts = np.moveaxis(np.asarray(model(image[None])[layer][0]), -1, 0)
  return image_grid(acts, path, labels=[f"{i}: {a.max():.2g}" for i, a in enumerate(acts)],
                    ncols=ncols, tile_inches=tile_inches, cmap=cmap, label_fontsize=5,
                    title=title or f"{model.name}: {layer} ({len(acts)} channels)")


def overlay(images: Any, maps: Any, *, alpha: float = 0.6, cmap: str = "jet",
            percentile: float = 99.5) -> np.ndarray:
  """Saliency overlays ``[N, H, W, 3]`` in [0, 1]: each map (``[N, H, W]``, normalised by
  `normalize`) coloured by ``cmap`` and blended over a grey copy of its image, more opaque
  where the map is high."""
  images = np.asarray(images, np.float32)
  maps = _common.normalize(maps, percentile=percentile)
  if images.shape[:3] != maps.shape:
    raise FvjaxError(f"overlay needs one map per image: images {images.shape}, maps "
                     f"{maps.shape}")
  grey = images.mean(-1, keepdims=True) * np.ones(3, np.float32)
  colours = matplotlib.colormaps[cmap](maps)[..., :3]
  weight = alpha * maps[..., None]
  return np.clip((1 - weight) * (0.3 + 0.7 * grey) + weight * colours, 0, 1)


def attribution_panel(images: Any, maps: Mapping[str, Any], path: str | None = None, *,
                      labels: Sequence[str] | None = None, overlay_maps: bool = False,
                      cmap: str = "inferno", title: str | None = None,
                      tile_inches: float = 1.7, percentile: float = 99.5) -> str | Figure:
  """A panel: one row per image, the photo first, then one column per method; a PNG at
  ``path``, or the figure when ``path`` is None.

  ``maps`` maps a method name to ``[N, H, W]`` maps (higher = more important), or to
  ``[N, H, W, 3]`` images in [0, 1] shown as they are (e.g. a guided-backprop
  reconstruction). Maps are normalised per image (`normalize`), drawn with ``cmap`` or, with
  ``overlay_maps``, blended over the photo (`overlay`).
  """
  images = np.asarray(images, np.float32)
  n = len(images)
  columns = ["image", *maps]
  fig, axes = _subplots(n, len(columns), (tile_inches * len(columns), tile_inches * n + 0.5))
  for c, name in enumerate(columns):
    if name == "image":
      shown = images
    else:
      value = np.asarray(maps[name])
      if value.shape[:1] != (n,):
        raise FvjaxError(f"maps[{name!r}] has {value.shape[0]} entries for {n} images")
      if value.ndim == 4:
        shown = np.clip(value, 0, 1)
      elif overlay_maps:
        shown = overlay(images, value, percentile=percentile)
      else:
        shown = _common.normalize(value, percentile=percentile)
    for r in range(n):
      ax = axes[r, c]
      ax.set_xticks([])
      ax.set_yticks([])
      ax.imshow(shown[r], cmap=None if shown[r].ndim == 3 else cmap, vmin=0, vmax=1,
                interpolation="nearest")
      if r == 0:
        ax.set_title(name, fontsize=8)
      if c == 0 and labels is not None:
        ax.set_ylabel(labels[r], fontsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  return _save(fig, path)


def sanity_curves(correlations: Mapping[str, Any], stages: Sequence[str],
                  path: str | None = None, *, title: str = "",
                  ylabel: str = "Spearman rank correlation") -> str | Figure:
  """The cascading-randomisation curves (a PNG at ``path``, or the figure when ``path`` is
  None): ``correlations`` maps a method to ``[S]`` (or
  ``[N, S]``: mean with a +-1 std band) rank correlations with the original maps, one per
  stage in ``stages`` (e.g. ``["original", "conv2d_16", ...]``)."""
  fig = figure((max(5, 0.38 * len(stages) + 2), 3.6))
  ax = fig.subplots()
  x = np.arange(len(stages))
  for name, values in correlations.items():
    values = np.atleast_2d(np.asarray(values, np.float64))
    mean = values.mean(0)
    ax.plot(x, mean, marker="o", markersize=3, label=name)
    if len(values) > 1:
      std = values.std(0)
      ax.fill_between(x, mean - std, mean + std, alpha=0.15)
  ax.set_xticks(x)
  ax.set_xticklabels(stages, rotation=60, ha="right", fontsize=7)
  ax.set_ylim(-0.3, 1.05)
  ax.axhline(0, color="k", lw=0.5)
  ax.set_xlabel("randomised from the top down to")
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  return _save(fig, path)


def deletion_bars(areas: Mapping[str, Any], path: str | None = None, *, title: str = "",
                  ylabel: str = "smallest deleted box (% of image)") -> str | Figure:
  """A bar chart of the mean (+- standard error) smallest deletion box per method (a PNG at
  ``path``, or the figure when ``path`` is None); ``areas`` maps a method to ``[N]``
  fractions in [0, 1]."""
  fig = figure((max(4, 0.9 * len(areas) + 1.5), 3.4))
  ax = fig.subplots()
  names = list(areas)
  values = [100 * np.asarray(areas[n], np.float64) for n in names]
  means = [v.mean() for v in values]
  errs = [v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0 for v in values]
  ax.bar(names, means, yerr=errs, capsize=3, color="tab:blue")
  for i, m in enumerate(means):
    ax.text(i, m + 1, f"{m:.1f}", ha="center", fontsize=8)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=9)
  ax.tick_params(axis="x", labelsize=8)
  ax.grid(axis="y", alpha=0.3)
  return _save(fig, path)
