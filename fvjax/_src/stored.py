"""Results stored on disk between runs: the resumable chunks of `sweep` and the batches of
the atlas.

A stored file is an ``.npz`` without pickles holding the arrays, a JSON ``fingerprint`` (every
input that determines them, part by part, so that a mismatch can name the part) and a JSON
``settings`` (for people reading the file). It is written whole and then renamed, so a killed
run leaves either the complete file or none. `digest` hashes the inputs a fingerprint refers
to (weights, objectives, keys) without memory addresses, so it is the same in every process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError

__all__ = ["digest", "load", "save", "output_folder"]

_META = ("fingerprint", "settings")


def _structure(tree) -> str:
  """A tree structure's text without memory addresses (stable across processes)."""
  return re.sub(r" at 0x[0-9a-f]+", "", str(jax.tree.structure(tree)))


def digest(*trees) -> str:
  """A 16-hex-digit SHA-256 of the trees' structures, dtypes, shapes and bytes (PRNG keys by
  their key data)."""
  hashed = hashlib.sha256()
  for tree in trees:
    hashed.update(_structure(tree).encode())
    for leaf in jax.tree.leaves(tree):
      if jnp.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
      leaf = np.asarray(leaf)
      hashed.update(str((leaf.dtype, leaf.shape)).encode())
      hashed.update(leaf.tobytes())
  return hashed.hexdigest()[:16]


def load(path: str | None, fingerprint: dict, *, overwrite: bool = False,
         remedy: str = "use another --out folder or delete it") -> dict[str, np.ndarray] | None:
  """The arrays stored at ``path`` if its fingerprint is ``fingerprint``.

  None (compute them) when there is no file, when it is unreadable or truncated (with a
  warning), or when it holds other settings and ``overwrite`` is set. Other settings without
  ``overwrite`` are an `FvjaxError` naming the parts that differ and ``remedy``.
  """
  if path is None or not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      stored = json.loads(str(f["fingerprint"]))
      arrays = {k: f[k] for k in f.files if k not in _META}
  except Exception as err:  # noqa: BLE001 - an unreadable file is recomputed, not trusted
    warnings.warn(f"{path} is unreadable ({type(err).__name__}: {err}); recomputing it",
                  stacklevel=3)
    return None
  if stored == fingerprint:
    return arrays
  if overwrite:
    return None
  differ = ([k for k in fingerprint if stored.get(k) != fingerprint[k]]
            if isinstance(stored, dict) else ["everything (an older format)"])
  raise FvjaxError(f"{path} holds results of other settings: its {', '.join(differ)} differ "
                   f"from this run's; {remedy}")


def save(path: str, fingerprint: dict, arrays: dict[str, np.ndarray], settings: dict) -> None:
  """Write ``arrays`` with their fingerprint and settings to ``path``, atomically. With a mesh
  over several processes every process writes the same (gathered) file, each through its own
  partial file."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  partial = path + f".partial{jax.process_index()}.npz"
  np.savez_compressed(partial, fingerprint=json.dumps(fingerprint),
                      settings=json.dumps(settings, default=str), **arrays)
  os.replace(partial, path)


def output_folder(path: str) -> None:
  """Create the folder ``path`` (an `FvjaxError` before any work if it is a file or cannot be
  written)."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise FvjaxError(f"--out {path!r} is a file; give a folder (it is created if missing)")
  try:
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, ".fvjax_write_check")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as err:
    raise FvjaxError(f"cannot write to --out {path!r}: {err.strerror or err}") from None
