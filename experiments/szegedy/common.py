"""Shared helpers of the Szegedy et al. 2014 experiments: JSON, Markdown tables, timing."""

from __future__ import annotations

import math
import os
import platform
import time
from typing import Any, Sequence

import numpy as np

from fvjax.experiment import jsonable, write_json  # noqa: F401 (used by the scripts)


def fmt(x: Any, spec: str = ".3g") -> str:
  if x is None:
    return "-"
  if isinstance(x, str):
    return x
  if isinstance(x, (float, np.floating)) and not math.isfinite(float(x)):
    return "nan" if math.isnan(float(x)) else "inf"
  return format(x, spec)


def pct(x: Any) -> str:
  return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A Markdown table (cells already formatted or formatted with `fmt`)."""
  cells = [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in cells]
  return "\n".join(lines)


def machine() -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  return {"platform": platform.platform(), "python": platform.python_version(),
          "jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
          "cpu_count": os.cpu_count()}


class Timer:
  """Elapsed seconds per named phase."""

  def __init__(self):
    self.start = time.time()
    self.phases: dict[str, float] = {}
    self._t = self.start

  def lap(self, name: str) -> float:
    now = time.time()
    self.phases[name] = round(now - self._t, 2)
    self._t = now
    print(f"[{now - self.start:7.1f}s] {name} done ({self.phases[name]:.1f}s)", flush=True)
    return self.phases[name]

  def total(self) -> float:
    return round(time.time() - self.start, 2)
