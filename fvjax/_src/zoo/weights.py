"""Safe weight files: flat safetensors with ``/``-joined keys, checked against a template."""

from __future__ import annotations

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


def load(path: str, template: Any) -> dict:
  """Read ``path`` and check every tensor against ``template`` (arrays or shape structs).

  Raises `FvjaxError` naming the file and the tensor when the file is unreadable, a tensor
  is missing or extra, or a shape differs (both shapes given).
  """
  from safetensors import SafetensorError
  from safetensors.numpy import load_file
  try:
    flat = load_file(path)
  except (OSError, SafetensorError, ValueError) as err:
    raise FvjaxError(f"cannot read weights file {path!r} as safetensors: {err}") from err
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
  return unflatten(flat)
