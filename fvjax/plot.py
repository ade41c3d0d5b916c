"""Plots saved as PNG (see `fvjax._src.plot`, `fvjax._src.plot_examples`)."""

from fvjax._src.plot import image_grid, interpolation_strip, objective_curves, snapshot_strip
from fvjax._src.plot_examples import dataset_examples_panel

__all__ = ["image_grid", "snapshot_strip", "interpolation_strip", "objective_curves",
           "dataset_examples_panel"]
