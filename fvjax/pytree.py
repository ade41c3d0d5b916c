"""Pytree dataclasses for your own parameterizations, transforms and objectives' parts (see
`fvjax._src.pytree`): ``@fvjax.pytree.dataclass`` with ``field: int = fvjax.pytree.static()``
for structure and plain fields for traced numbers."""

from fvjax._src.pytree import dataclass, equal, static

__all__ = ["dataclass", "static", "equal"]
