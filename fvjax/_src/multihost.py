"""Helpers for meshes that span several processes (`jax.distributed`)."""

from __future__ import annotations

import json

import jax
import numpy as np

from fvjax._src.errors import FvjaxError


def process_units(mesh: jax.sharding.Mesh, count: int) -> np.ndarray:
  """The indices (``[n]`` int64, ascending) of the units, among ``count`` rendered by
  `fvjax.render` / `fvjax.sweep` with ``mesh=mesh``, that this process's devices computed.

  `render` pads the K units to a multiple of the mesh's first axis and gives device row i of
  that axis the i-th equal block; this returns the real (unpadded) units of the blocks whose
  devices belong to `jax.process_index()`. The union over all processes is ``0..count-1``
  (a unit replicated over a second mesh axis on several processes is listed by each).
  """
  if not isinstance(mesh, jax.sharding.Mesh):
    raise FvjaxError(f"process_units needs a jax.sharding.Mesh, got {type(mesh).__name__}")
  if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
    raise FvjaxError(f"count must be a positive integer (units), got {count!r}")
  axis = mesh.axis_names[0]
  padded = -(-int(count) // mesh.shape[axis]) * mesh.shape[axis]
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(axis))
  return np.asarray(sorted(u for u in addressable_rows(sharding, padded) if u < count), np.int64)


def addressable_rows(sharding: jax.sharding.Sharding, length: int) -> set[int]:
  """The rows of a leading axis of ``length``, placed with ``sharding``, that this process's
  devices hold."""
  rows = set()
  for index in sharding.addressable_devices_indices_map((length,)).values():
    rows.update(range(*index[0].indices(length)))
  return rows


def everywhere(flag: bool) -> bool:
  """True when ``flag`` is true on every process (a collective: every process calls it at the
  same point); ``flag`` itself with one process."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils
  return bool(np.asarray(multihost_utils.process_allgather(np.int32(bool(flag)))).all())


def spans_processes(mesh) -> bool:
  """Whether ``mesh`` has devices of another process than this one."""
  return any(d.process_index != jax.process_index() for d in np.asarray(mesh.devices).flat)


def fetch(x) -> np.ndarray:
  """``x`` as a NumPy array on this process. An array spread over several processes' devices
  (a mesh spanning hosts) is gathered from all of them with
  `jax.experimental.multihost_utils.process_allgather`: a collective, which every process
  calls at the same point (they run the same driver on the same inputs)."""
  if getattr(x, "is_fully_addressable", True) or getattr(x, "is_fully_replicated", False):
    return np.asarray(x)
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def gather(x) -> np.ndarray:
  """This process's NumPy array ``x`` (the same shape on every process) from every process:
  ``[processes, *x.shape]`` (a collective)."""
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(np.asarray(x)))


def gather_json(value) -> list:
  """A JSON-serializable ``value`` of every process, in process order (a collective)."""
  data = np.frombuffer(json.dumps(value).encode(), np.uint8)
  lengths = gather(np.int64(len(data)))
  padded = np.zeros(int(lengths.max()), np.uint8)
  padded[:len(data)] = data
  return [json.loads(row[:n].tobytes().decode()) for row, n in zip(gather(padded), lengths)]
