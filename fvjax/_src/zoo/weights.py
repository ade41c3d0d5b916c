"""Safe weight files: flat safetensors with ``/``-joined keys, checked against a template."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fvjax._src.errors import FvjaxError


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  """``{"params": {"conv": {"kernel": x}}}`` -> ``{"params/conv/kernel": x}`` (leaves kept)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict) or hasattr(value, "items"):
      flat.update(flatten(value, f"{prefix}{key}/"))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def unflatten(flat: dict[str, np.ndarray]) -> dict:
  tree: dict = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def save(path: str, variables: Any) -> None:
  from safetensors.numpy import save_file
  save_file({k: np.ascontiguousarray(v, np.float32) for k, v in flatten(variables).items()},
            path)


def check_tensors(flat: dict[str, Any], source: str) -> dict[str, np.ndarray]:
  """Every tensor as float32: float16 / bfloat16 / float64 are converted (a `UserWarning`
  names the lower-precision ones: the model then computes in float32, not at the file's
  precision); integer, boolean or non-finite tensors are an `FvjaxError` naming the tensor."""
  out, converted = {}, []
  for key, value in flat.items():
    arr = np.asarray(value)
    if arr.dtype.kind != "f" and arr.dtype.name != "bfloat16":
      raise FvjaxError(f"{source}: tensor {key!r} has dtype {arr.dtype}; weights must be "
                       "floating point (float32, or float16/bfloat16/float64, converted)")
    if arr.dtype != np.float32:
      if arr.dtype.itemsize < 4:
        converted.append(f"{key} ({arr.dtype})")
      arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
      raise FvjaxError(f"{source}: tensor {key!r} has {int((~finite).sum())} non-finite "
                       f"value(s) (NaN or inf) of {arr.size}; the weights are damaged")
    out[key] = arr
  if converted:
    import warnings
    warnings.warn(f"{source}: {len(converted)} tensor(s) converted to float32 (the model "
                  f"computes in float32): {', '.join(converted[:4])}"
                  + (", ..." if len(converted) > 4 else ""), UserWarning, stacklevel=3)
  return out


def read_flat(path: str) -> dict[str, np.ndarray]:
  """The tensors of a ``.safetensors`` file or of an ``.npz`` (read with
  ``allow_pickle=False``), by name; a missing path, a folder or an unreadable file is an
  `FvjaxError` naming the file and the formats."""
  import zipfile
  path = os.fspath(path)
  if os.path.isdir(path):
    raise FvjaxError(f"weights {path!r} is a folder; give a .safetensors or .npz file")
  if not os.path.isfile(path):
    raise FvjaxError(f"weights file {path!r} does not exist")
  if zipfile.is_zipfile(path):  # .npz (np.savez) is a zip archive; safetensors never is
    try:
      with np.load(path, allow_pickle=False) as data:
        if not hasattr(data, "files"):
          raise ValueError("not an .npz archive of named arrays")
        return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
      raise FvjaxError(f"cannot read weights file {path!r} as .npz (arrays only, no pickled "
                       f"objects): {err}") from err
  from safetensors import SafetensorError
  from safetensors.numpy import load_file
  try:
    return dict(load_file(path))
  except (OSError, SafetensorError, ValueError, TypeError) as err:
    raise FvjaxError(f"cannot read weights file {path!r} as safetensors (or .npz): "
                     f"{err}") from err


def load(path: str, template: Any) -> dict:
  """Read ``path`` (``.safetensors`` or ``.npz``) and check every tensor against
  ``template`` (arrays or shape structs).

  Raises `FvjaxError` naming the file and the tensor when the file is unreadable, a tensor
  is missing or extra, a shape differs (both shapes given), or a tensor is not floating
  point or holds NaN/inf. float16 / bfloat16 tensors are converted to float32 with a
  `UserWarning`.
  """
  flat = read_flat(path)
  expected = {k: tuple(v.shape) for k, v in flatten(template).items()}
  missing = sorted(set(expected) - set(flat))
  extra = sorted(set(flat) - set(expected))
  if missing or extra:
    raise FvjaxError(f"weights file {path!r} does not match the model: missing tensors "
                     f"{missing or 'none'}, unexpected tensors {extra or 'none'}")
  for key, shape in expected.items():
    if tuple(flat[key].shape) != shape:
      raise FvjaxError(f"weights file {path!r}: tensor {key!r} has shape "
                       f"{tuple(flat[key].shape)}, the model expects {shape}")
  return unflatten(check_tensors(flat, f"weights file {path!r}"))
