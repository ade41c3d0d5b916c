"""Named render recipes (see `fvjax._src.presets`)."""

from fvjax._src.presets import PRESETS, preset

__all__ = ["PRESETS", "preset"]
