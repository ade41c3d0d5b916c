"""Named render settings: ``fvjax.render(model, objective, key=key, **preset("lucid", 128))``."""

from __future__ import annotations

from fvjax._src import optvis
from fvjax._src import param as param_lib
from fvjax._src import transforms as transforms_lib
from fvjax._src.errors import FvjaxError

PRESETS = {
    "lucid": "Lucid's defaults: Fourier basis (1/f, sd 0.01), decorrelated colour, sigmoid; "
             "Lucid's standard transforms; Adam(0.05); 512 steps",
    "maco": "MACO (Fel et al. 2023): phase-only Fourier with the natural ImageNet magnitude "
            "spectrum, per-image standardization, sigmoid; Lucid's standard transforms; "
            "Adam(0.2) on the phase; 256 steps",
}


def preset(name: str, size: int, *, batch: int = 1) -> dict:
  """Keyword arguments for `fvjax.render` (``param``, ``transforms``, ``optimizer``,
  ``steps``) of the preset ``name`` for ``size``-pixel images, ``batch`` per unit."""
  if name == "lucid":
    return dict(param=param_lib.image(size, batch=batch), transforms=transforms_lib.standard(),
                optimizer=optvis.Adam(0.05), steps=512)
  if name == "maco":
    return dict(param=param_lib.maco(size, batch=batch), transforms=transforms_lib.standard(),
                optimizer=optvis.Adam(0.2), steps=256)
  raise FvjaxError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
