"""`map_batches`: a function over the leading axis of arrays, in equal-size batches.

Every batched inference in fvjax (classifying images, a detector's logits, a layer's
activations, attribution maps ...) runs through `map_batches`: the arrays are cut into
batches of ``batch_size`` rows and the last, short batch is padded by repeating its last
row, so every call of ``fn`` sees the same shapes and a jitted ``fn`` compiles once for the
whole dataset. The padded rows are dropped from the result.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from fvjax._src.errors import FvjaxError

__all__ = ["map_batches", "check_batch_size"]


def check_batch_size(batch_size: Any, name: str = "batch_size") -> int:
  """``batch_size`` as an int; `FvjaxError` naming it unless it is a positive integer."""
  if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
      or batch_size < 1):
    raise FvjaxError(f"{name} must be a positive integer, got {batch_size!r}")
  return int(batch_size)


def _pad(chunk, rows: int):
  """``chunk`` ``[b, ...]`` followed by ``rows`` copies of its last row."""
  if isinstance(chunk, np.ndarray):
    return np.concatenate([chunk, np.repeat(chunk[-1:], rows, axis=0)])
  return jnp.concatenate([chunk, jnp.repeat(chunk[-1:], rows, axis=0)])


def map_batches(fn: Callable[..., Any], *arrays: Any, batch_size: int,
                progress: bool = False, desc: str | None = None) -> Any:
  """``fn(*arrays)`` computed in batches along the leading axis, as NumPy arrays.

  Args:
    fn: takes one batch of each array, ``[B, ...]`` (in the order given), and returns an
      array ``[B, ...]`` or a pytree of them (a tuple, a dict ...), row ``i`` of each
      output belonging to row ``i`` of the inputs. Usually jitted.
    *arrays: one or more arrays ``[N, ...]`` (NumPy or JAX) with the same ``N``. NumPy
      batches are passed to ``fn`` as NumPy, JAX ones as JAX.
    batch_size: rows per call, ``B = min(batch_size, N)``; a positive integer. The last
      batch is padded to ``B`` rows by repeating its last row, so every call has the same
      shapes (one compilation of a jitted ``fn``); the padded rows are dropped.
    progress: show a tqdm progress bar over the batches.
    desc: the progress bar's label.

  Returns:
    ``fn``'s output structure with every leaf a NumPy array ``[N, ...]``: the batches'
    outputs concatenated. For ``N == 0``, empty arrays of the shapes and dtypes ``fn``
    would return (found with `jax.eval_shape`, so ``fn`` is not run).

  Raises:
    FvjaxError: for a bad ``batch_size``, no arrays, arrays of different lengths, or an
      output whose leading axis is not the batch.
  """
  batch_size = check_batch_size(batch_size)
  if not arrays:
    raise FvjaxError("map_batches needs at least one array to batch")
  lengths = [len(a) for a in arrays]
  if len(set(lengths)) != 1:
    raise FvjaxError(f"map_batches needs arrays of one length along axis 0, got {lengths}")
  n = lengths[0]
  if n == 0:
    shapes = jax.eval_shape(fn, *arrays)
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  size = min(batch_size, n)
  outs = []
  starts = range(0, n, size)
  for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
    chunk = [a[start:start + size] for a in arrays]
    real = len(chunk[0])
    if real < size:
      chunk = [_pad(c, size - real) for c in chunk]
    out = fn(*chunk)

    def keep(x, real=real):
      x = np.asarray(x)
      if x.ndim == 0 or x.shape[0] != size:
        raise FvjaxError(f"map_batches: fn returned shape {x.shape} for a batch of {size}; "
                         "every output needs the batch as its leading axis")
      return x[:real]

    outs.append(jax.tree.map(keep, out))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
