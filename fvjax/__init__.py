"""fvjax: optimization-based interpretability of vision models in JAX."""

from fvjax import data, objectives, param, plot, transforms, zoo
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.render import RenderDiverged, RenderResult, render, trace_count

__version__ = "0.1.0"

__all__ = [
    "Model", "render", "RenderResult", "RenderDiverged", "trace_count", "FvjaxError",
    "objectives", "param", "transforms", "zoo", "data", "plot",
]
