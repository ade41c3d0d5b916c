"""The functional core: pure ``init`` / ``step`` / ``images`` (see `fvjax._src.optvis`)."""

from fvjax._src.optvis import (SGD, SHORTHANDS, Adam, Optax, Optimizer, Projection, Settings,
                               State, as_key, as_optimizer, broadcast, check, images, init,
                               penalty, run, score, setting, setting_names, step)

__all__ = [
    "Settings", "State", "init", "step", "images", "score", "run", "penalty", "check",
    "Optimizer", "Adam", "SGD", "Optax", "as_optimizer", "Projection", "as_key",
    "setting", "setting_names", "broadcast", "SHORTHANDS",
]
