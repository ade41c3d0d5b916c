"""Plots saved as PNG (see `fvjax._src.plot`)."""

from fvjax._src.plot import image_grid, interpolation_strip, objective_curves, snapshot_strip

__all__ = ["image_grid", "snapshot_strip", "interpolation_strip", "objective_curves"]
