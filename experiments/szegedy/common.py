"""Shared helpers of the Szegedy et al. 2014 experiments: JSON, Markdown tables, timing."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from typing import Any, Sequence

import numpy as np


def jsonable(x: Any) -> Any:
  """``x`` with NumPy/JAX scalars and arrays turned into plain Python (NaN -> None)."""
  if isinstance(x, dict):
    return {str(k): jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
    return jsonable(x.tolist())
  if isinstance(x, float):
    return None if math.isnan(x) else (str(x) if math.isinf(x) else x)
  if isinstance(x, (np.bool_,)):
    return bool(x)
  return x


def write_json(path: str, value: Any) -> None:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    json.dump(jsonable(value), f, indent=1)
    f.write("\n")


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
