"""Helpers shared by the experiment scripts: JSON output, logging, the shared photo folder."""

from __future__ import annotations

import json
import math
import os
import sys
import pathlib
import time
from typing import Any

import jax
import numpy as np

# <repo>/fvjax/_src/experiment.py -> <repo>/..
_REPO_PARENT = pathlib.Path(__file__).resolve().parents[3]


def jsonable(x: Any, *, digits: int | None = None) -> Any:
  """``x`` as plain JSON types: dicts (keys made ``str``), lists/tuples, NumPy and JAX arrays
  and NumPy scalars become dicts, lists, ``float``, ``int`` and ``bool``. Non-finite floats
  become ``None``; finite floats are rounded to ``digits`` decimals when given. Anything else
  is returned unchanged."""
  if isinstance(x, dict):
    return {str(k): jsonable(v, digits=digits) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v, digits=digits) for v in x]
  if isinstance(x, (np.ndarray, jax.Array)):
    return jsonable(np.asarray(x).tolist(), digits=digits)
  if isinstance(x, (bool, np.bool_)):
    return bool(x)
  if isinstance(x, np.integer):
    return int(x)
  if isinstance(x, (float, np.floating)):
    x = float(x)
    if not math.isfinite(x):
      return None
    return x if digits is None else round(x, digits)
  return x


def write_json(path: str | os.PathLike, obj: Any, *, digits: int | None = None) -> None:
  """Write ``jsonable(obj, digits=digits)`` to ``path`` (indent 2, trailing newline), creating
  the parent directory."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w") as f:
    json.dump(jsonable(obj, digits=digits), f, indent=2)
    f.write("\n")


def log(msg: str) -> None:
  """Print ``[HH:MM:SS] msg`` (local time) and flush."""
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def shared_photos_dir() -> pathlib.Path:
  """The shared ImageNet photo folder (1000 photos, one per class): ``$FVJAX_PHOTOS`` if set,
  else ``$FVJAX_SHARED_PHOTOS`` (older name), else ``$FVJAX_SHARED/data/imagenet-sample``,
  else ``shared/data/imagenet-sample`` beside the repository (the checkout holding this
  package). The folder may not exist."""
  for var in ("FVJAX_PHOTOS", "FVJAX_SHARED_PHOTOS"):
    if os.environ.get(var):
      return pathlib.Path(os.environ[var])
  shared = os.environ.get("FVJAX_SHARED") or _REPO_PARENT / "shared"
  return pathlib.Path(shared) / "data" / "imagenet-sample"


def require_photos(path: str | os.PathLike) -> None:
  """Exit with a message naming ``path`` when the shared photo folder is not there."""
  if not os.path.isdir(path):
    sys.exit(f"needs the shared ImageNet photos at {path} (set FVJAX_PHOTOS)")
