"""A browsable atlas of a model's units: a static site that opens from the file system.

``fvjax.atlas.build(model, layers, images, out, key=...)`` (``fvjax atlas`` on the command
line) renders every chosen unit in compiled batches, finds its dataset examples, judges it
with the trust report and writes ``out/index.html``, ``out/<layer>/index.html`` and
``out/<layer>/<unit>.html``; a killed build resumes from ``out/_build``."""

from fvjax._src.atlas.build import (AtlasResult, AtlasUnit, build, parse_units, step_flops,
                                    unit_key)
from fvjax._src.atlas.pages import histogram_svg

__all__ = ["build", "AtlasResult", "AtlasUnit", "parse_units", "unit_key", "step_flops",
           "histogram_svg"]
