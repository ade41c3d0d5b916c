"""Frozen dataclasses that are pytrees: static fields are part of the structure, the rest
are traced leaves.

Equal static fields give equal tree structures, so two values built afresh with the same
settings reuse one compiled program, and changing a number (a leaf) never recompiles.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from fvjax._src.errors import FvjaxError


def static(default: Any = dataclasses.MISSING) -> Any:
  """A dataclass field that belongs to the structure (hashable; compared by value)."""
  return dataclasses.field(default=default, metadata={"static": True})


def dataclass(cls):
  """Class decorator: a frozen dataclass registered as a pytree; fields made with `static`
  are metadata, all others are children (arrays, numbers or nested pytrees)."""
  cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
  fields = dataclasses.fields(cls)
  meta = [f.name for f in fields if f.metadata.get("static")]
  data = [f.name for f in fields if not f.metadata.get("static")]
  jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)
  cls.replace = lambda self, **changes: dataclasses.replace(self, **changes)
  cls.__eq__ = equal
  cls.__hash__ = object.__hash__  # jit(callable value) needs a hash; identity is consistent enough
  return cls


def equal(a: Any, b: Any) -> bool:
  """Same tree structure (static fields by value) and equal leaves (concrete values)."""
  if type(a) is not type(b):
    return NotImplemented
  leaves_a, structure_a = jax.tree.flatten(a)
  leaves_b, structure_b = jax.tree.flatten(b)
  return structure_a == structure_b and all(
      np.shape(x) == np.shape(y) and bool(np.all(np.asarray(x) == np.asarray(y)))
      for x, y in zip(leaves_a, leaves_b))


def number(value: Any, name: str = "a numeric setting") -> Any:
  """A Python number as a float32 NumPy scalar (a strongly typed leaf, so a float and an
  array of the same value compile the same program); arrays and tracers pass unchanged.
  A bool, or a number that is NaN / inf (or overflows float32), is an `FvjaxError`."""
  if isinstance(value, (bool, np.bool_)):
    raise FvjaxError(f"{name} must be a number, got {value!r}")
  if isinstance(value, (int, float, np.integer, np.floating)):
    with np.errstate(over="ignore"):
      cast = np.float32(value)
    if not np.isfinite(cast):
      raise FvjaxError(f"{name} must be a finite number (within float32), got {value!r}")
    return cast
  return value


def numbers(values: Any) -> Any:
  """A sequence of numbers as a float32 NumPy array leaf (arrays and tracers unchanged)."""
  if isinstance(values, (list, tuple)):
    return np.asarray(values, np.float32)
  return values
