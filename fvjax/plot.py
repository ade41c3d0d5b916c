"""Plots saved as PNG (see `fvjax._src.plot`)."""

from fvjax._src.plot import image_grid

__all__ = ["image_grid"]
