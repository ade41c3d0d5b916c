"""Pictures of results: labelled image grids saved as PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import math
import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(images: np.ndarray, path: str, *, labels: Sequence[str] | None = None,
               ncols: int | None = None, title: str | None = None, tile_inches: float = 1.6,
               cmap: str | None = None, label_fontsize: float = 7) -> str:
  """Save ``images`` as a grid PNG, one labelled tile each.

  ``images``: ``[N, H, W, 3]`` in [0, 1] (clipped), or with ``cmap`` single-channel maps
  ``[N, H, W]`` of any range, each tile on its own colour scale.
  """
  images = np.asarray(images)
  if cmap is None:
    images = np.clip(images, 0.0, 1.0)
  n = len(images)
  ncols = ncols or min(n, max(1, math.ceil(math.sqrt(n))))
  nrows = math.ceil(n / ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(tile_inches * ncols, tile_inches * nrows + 0.4),
                           squeeze=False)
  for i, ax in enumerate(axes.flat):
    ax.axis("off")
    if i < n:
      ax.imshow(images[i], cmap=cmap, interpolation="nearest")
      if labels is not None:
        ax.set_title(labels[i], fontsize=label_fontsize)
  if title:
    fig.suptitle(title, fontsize=9)
  return _save(fig, path)


def snapshot_strip(snapshots: dict[int, np.ndarray], path: str, *,
                   labels: Sequence[str] | None = None, tile_inches: float = 1.6) -> str:
  """One row per unit, one column per snapshot step (e.g. 32 / 128 / 512).

  ``snapshots``: step -> images ``[K, H, W, 3]`` (or ``[K, B, H, W, 3]``: the first image of
  each unit is shown).
  """
  steps = sorted(snapshots)
  stacks = [np.asarray(snapshots[s]) for s in steps]
  stacks = [s[:, 0] if s.ndim == 5 else s for s in stacks]
  k = len(stacks[0])
  fig, axes = plt.subplots(k, len(steps), figsize=(tile_inches * len(steps), tile_inches * k),
                           squeeze=False)
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


def interpolation_strip(images: np.ndarray, path: str, *, start: str = "", end: str = "",
                        tile_inches: float = 1.4) -> str:
  """A row of ``images [B, H, W, 3]`` interpolating from ``start`` to ``end`` (labels)."""
  images = np.asarray(images)
  fig, axes = plt.subplots(1, len(images), figsize=(tile_inches * len(images), tile_inches + 0.3),
                           squeeze=False)
  for i, ax in enumerate(axes[0]):
    ax.imshow(np.clip(images[i], 0, 1), interpolation="nearest")
    ax.axis("off")
  axes[0, 0].set_title(start, fontsize=8)
  axes[0, -1].set_title(end, fontsize=8)
  return _save(fig, path)


def objective_curves(traces: dict[str, np.ndarray], path: str, *, title: str = "",
                     ylabel: str = "objective") -> str:
  """Objective per step: ``traces`` maps a name to ``[steps]`` (or ``[K, steps]``, mean
  with the min-max band)."""
  fig, ax = plt.subplots(figsize=(5, 3.2))
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


def _save(fig, path: str) -> str:
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
