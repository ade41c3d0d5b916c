"""A Distill-style panel: per unit, its feature visualization beside its dataset examples."""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np

from fvjax._src.dataset_examples import DatasetExamples
from fvjax._src.errors import FvjaxError
from fvjax._src.plot import Figure, _save, figure


def dataset_examples_panel(visualizations: np.ndarray | None, examples: DatasetExamples,
                           path: str | None = None, *, labels: Sequence[str] | None = None,
                           title: str | None = None, scores: bool = True,
                           tile_inches: float = 1.1, dpi: int = 100) -> str | Figure:
  """One row per unit: its optimized visualization, its top-k dataset examples and (when
  ``examples.bottom`` is set) its bottom-k examples, saved as a PNG at ``path`` (returns
  ``path``), or the figure when ``path`` is None.

  Args:
    visualizations: ``[K, H, W, 3]`` in [0, 1] (e.g. ``fvjax.render(...).images``; the first
      image of each unit is shown for ``[K, B, H, W, 3]``), or None for examples only.
    examples: what `fvjax.dataset_examples` returned for the same K units.
    path: the PNG file to write (folders are created); None returns the figure.
    labels: a row label per unit; default ``examples.units``.
    title: a figure title.
    scores: print each example's score under it.
  """
  top, bottom = examples.top, examples.bottom
  count, k = top.scores.shape
  if visualizations is not None:
    visualizations = np.asarray(visualizations)
    if visualizations.ndim == 5:
      visualizations = visualizations[:, 0]
    if visualizations.ndim != 4 or len(visualizations) != count:
      raise FvjaxError(f"visualizations have shape {visualizations.shape}; expected "
                       f"[{count}, H, W, 3], one per unit of the examples")
  labels = list(examples.units if labels is None else labels)
  if len(labels) != count:
    raise FvjaxError(f"{len(labels)} labels for {count} units")

  # columns: [visualization, gap], top k, [gap, bottom k]
  widths: list[float] = []
  if visualizations is not None:
    widths += [1.0, 0.15]
  first_top = len(widths)
  widths += [1.0] * k
  first_bottom = None
  if bottom is not None:
    widths.append(0.15)
    first_bottom = len(widths)
    widths += [1.0] * bottom.scores.shape[1]
  text = 0.18 if scores else 0.0
  width = tile_inches * sum(widths) + 0.6
  title_lines = textwrap.wrap(title, width=max(20, int(width * 13))) if title else []
  head = 0.35 + 0.17 * len(title_lines)
  fig = figure((width, tile_inches * (1 + text) * count + head + 0.2), dpi=dpi)
  grid = fig.add_gridspec(count, len(widths), width_ratios=widths, wspace=0.05,
                          hspace=0.08 + 1.1 * text, left=0.5 / width, right=0.995,
                          top=1 - head / fig.get_figheight(),
                          bottom=(0.05 + 0.15 * scores) / fig.get_figheight())

  def tile(row, col, image, caption=None, header=None):
    ax = fig.add_subplot(grid[row, col])
    ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if caption is not None:
      ax.set_xlabel(caption, fontsize=6, labelpad=1)
    if header is not None:
      ax.set_title(header, fontsize=8, loc="left")
    return ax

  for u in range(count):
    if visualizations is not None:
      ax = tile(u, 0, visualizations[u], header="visualization" if u == 0 else None)
      ax.set_ylabel(labels[u], fontsize=7)
    for which, first, word in ((top, first_top, "top"), (bottom, first_bottom, "bottom")):
      if which is None:
        continue
      for j in range(which.scores.shape[1]):
        caption = f"{which.scores[u, j]:.3g}" if scores else None
        header = (f"{word} {which.scores.shape[1]} dataset examples"
                  if u == 0 and j == 0 else None)
        ax = tile(u, first + j, which.images[u, j], caption, header)
        if visualizations is None and which is top and j == 0:
          ax.set_ylabel(labels[u], fontsize=7)
  if title_lines:
    fig.suptitle("\n".join(title_lines), fontsize=9, y=1 - 0.05 / fig.get_figheight(),
                 va="top")
  return _save(fig, path, layout=False)
