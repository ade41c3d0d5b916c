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
               ) -> str:
  """Save ``images`` ``[N, H, W, 3]`` in [0, 1] as a grid PNG, one labelled tile each."""
  images = np.clip(np.asarray(images), 0.0, 1.0)
  n = len(images)
  ncols = ncols or min(n, max(1, math.ceil(math.sqrt(n))))
  nrows = math.ceil(n / ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(tile_inches * ncols, tile_inches * nrows + 0.4),
                           squeeze=False)
  for i, ax in enumerate(axes.flat):
    ax.axis("off")
    if i < n:
      ax.imshow(images[i], interpolation="nearest")
      if labels is not None:
        ax.set_title(labels[i], fontsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
