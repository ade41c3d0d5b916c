"""Pictures of results: labelled image grids, as PNG files or as figures.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot, no backend switch:
importing fvjax leaves matplotlib's backend as it was). Given a ``path`` it writes a PNG there
and returns the path; with ``path=None`` it returns the figure, which Jupyter shows as an
image (`Figure._repr_png_`).
"""

from __future__ import annotations

import io
import math
import os
from typing import Sequence

import matplotlib.figure
import numpy as np

DPI = 100


class Figure(matplotlib.figure.Figure):
  """A `matplotlib.figure.Figure` that IPython shows as a PNG (what ``savefig`` writes),
  whatever the matplotlib backend and whether or not pyplot was imported."""

  def _repr_png_(self) -> bytes:
    buffer = io.BytesIO()
    self.savefig(buffer, format="png", dpi=self.dpi)
    return buffer.getvalue()


def figure(figsize: tuple[float, float], dpi: float = DPI) -> Figure:
  """A new figure, not registered with pyplot (nothing to close; garbage collected)."""
  return Figure(figsize=figsize, dpi=dpi)


def _subplots(nrows: int, ncols: int, figsize: tuple[float, float], **kwargs):
  fig = figure(figsize)
  return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)


def _save(fig: Figure, path: str | None, *, layout: bool = True) -> str | Figure:
  """Write ``fig`` to ``path`` (PNG; folders are created) and return the path, or return the
  figure when ``path`` is None."""
  if layout:
    fig.tight_layout()
  if path is None:
    return fig
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=fig.dpi)
  return path


def image_grid(images: np.ndarray, path: str | None = None, *,
               labels: Sequence[str] | None = None, ncols: int | None = None,
               title: str | None = None, tile_inches: float = 1.6, cmap: str | None = None,
               label_fontsize: float = 7) -> str | Figure:
  """``images`` as a grid, one labelled tile each: a PNG at ``path`` (returns the path), or
  the figure when ``path`` is None.

  ``images``: ``[N, H, W, 3]`` in [0, 1] (clipped), or with ``cmap`` single-channel maps
  ``[N, H, W]`` of any range, each tile on its own colour scale.
  """
  images = np.asarray(images)
  if cmap is None:
    images = np.clip(images, 0.0, 1.0)
  n = len(images)
  ncols = ncols or min(n, max(1, math.ceil(math.sqrt(n))))
  nrows = math.ceil(n / ncols)
  # Each tile is placed in inches: its label's lines above it, the title's lines on top, so
  # that labels never run into the row above (tight_layout does not ensure it with imshow).
  label_lines = max((str(l).count("\n") + 1 for l in labels), default=0) if labels else 0
  label_inches = label_lines * label_fontsize * 1.5 / 72 + (0.05 if label_lines else 0.0)
  title_inches = 0.1 + (title.count("\n") + 1) * 9 * 1.5 / 72 if title else 0.05
  row_inches = tile_inches + label_inches
  width, height = tile_inches * ncols, row_inches * nrows + title_inches
  fig = figure((width, height))
  side = 0.94 * tile_inches
  for i in range(n):
    r, c = divmod(i, ncols)
    bottom = height - title_inches - r * row_inches - label_inches - side
    ax = fig.add_axes(((c * tile_inches + 0.03 * tile_inches) / width, bottom / height,
                       side / width, side / height))
    ax.axis("off")
    ax.imshow(images[i], cmap=cmap, interpolation="nearest")
    if labels is not None:
      ax.set_title(labels[i], fontsize=label_fontsize, pad=2)
  if title:
    fig.suptitle(title, fontsize=9, y=1 - 0.05 / height, va="top")
  return _save(fig, path, layout=False)


def snapshot_strip(snapshots: dict[int, np.ndarray], path: str | None = None, *,
                   labels: Sequence[str] | None = None,
                   tile_inches: float = 1.6) -> str | Figure:
  """One row per unit, one column per snapshot step (e.g. 32 / 128 / 512).

  ``snapshots``: step -> images ``[K, H, W, 3]`` (or ``[K, B, H, W, 3]``: the first image of
  each unit is shown).
  """
  steps = sorted(snapshots)
  stacks = [np.asarray(snapshots[s]) for s in steps]
  stacks = [s[:, 0] if s.ndim == 5 else s for s in stacks]
  k = len(stacks[0])
  fig, axes = _subplots(k, len(steps), (tile_inches * len(steps), tile_inches * k))
  for row in range(k):
    for col, step in enumerate(steps):
      ax = axes[row, col]
      ax.imshow(np.clip(stacks[col][row], 0, 1), interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if row == 0:
        ax.set_title(f"step {step}", fontsize=8)
      if col == 0 and labels is not None:
        ax.set_ylabel(labels[row], fontsize=7)
  return _save(fig, path)


def interpolation_strip(images: np.ndarray, path: str | None = None, *, start: str = "",
                        end: str = "", tile_inches: float = 1.4) -> str | Figure:
  """A row of ``images [B, H, W, 3]`` interpolating from ``start`` to ``end`` (labels)."""
  images = np.asarray(images)
  fig, axes = _subplots(1, len(images), (tile_inches * len(images), tile_inches + 0.3))
  for i, ax in enumerate(axes[0]):
    ax.imshow(np.clip(images[i], 0, 1), interpolation="nearest")
    ax.axis("off")
  axes[0, 0].set_title(start, fontsize=8)
  axes[0, -1].set_title(end, fontsize=8)
  return _save(fig, path)


def objective_curves(traces: dict[str, np.ndarray], path: str | None = None, *,
                     title: str = "", ylabel: str = "objective") -> str | Figure:
  """Objective per step: ``traces`` maps a name to ``[steps]`` (or ``[K, steps]``, mean
  with the min-max band)."""
  fig = figure((5, 3.2))
  ax = fig.subplots()
  for name, trace in traces.items():
    trace = np.atleast_2d(np.asarray(trace))
    steps = np.arange(1, trace.shape[1] + 1)
    ax.plot(steps, trace.mean(0), label=name)
    if len(trace) > 1:
      ax.fill_between(steps, trace.min(0), trace.max(0), alpha=0.2)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return _save(fig, path)
