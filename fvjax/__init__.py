"""fvjax: optimization-based interpretability of vision models in JAX."""

from fvjax import (adversarial, atlas, attribution, data, digits, experiment, lipschitz,
                   objectives, optvis, param, plot, presets, pytree, reliability, transforms, zoo)
from fvjax._src.compiles import CompileLog, count_compiles
from fvjax._src.dataset_examples import DatasetExamples, Examples, dataset_examples
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.multihost import process_units
from fvjax._src.render import RenderDiverged, RenderResult, render
from fvjax._src.sweep import SweepResult, grid_settings, sweep

__version__ = "0.1.0"

__all__ = [
    "Model", "render", "RenderResult", "RenderDiverged", "FvjaxError",
    "count_compiles", "CompileLog",
    "sweep", "SweepResult", "grid_settings", "dataset_examples", "DatasetExamples", "Examples",
    "process_units",
    "objectives", "optvis", "param", "pytree", "presets", "transforms", "zoo", "data", "plot",
    "experiment",
    "atlas", "attribution", "digits", "reliability", "adversarial", "lipschitz",
]
