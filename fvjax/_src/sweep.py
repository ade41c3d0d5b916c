"""`sweep`: a grid of settings as one more batch axis of `render`.

Every point of the grid (any numeric setting of `fvjax.optvis.Settings` by name: learning
rate, Fourier decay, transform strength, penalty weights, dotted paths; ``seed``; and any
value the objective is built from) is rendered for every unit, S settings x K units vmapped
together in one compiled loop per chunk of settings. A sweep point is the same computation as
`render` with that setting and key. With ``out``, each finished chunk is written to disk at
once, and a re-run loads the chunks already there (after checking they belong to the same
sweep) instead of recomputing them.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src import multihost
from fvjax._src import objectives as objectives_lib
from fvjax._src import optvis
from fvjax._src import render as render_lib
from fvjax._src import stored as stored_lib
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

class SweepResult(NamedTuple):
  """settings: the S grid points (dicts). images ``[S, K, H, W, 3]`` in [0, 1]
  (``[S, K, B, H, W, 3]`` with ``batch``); trace ``[S, K, steps]``; final ``[S, K]``;
  computed / loaded: the chunk indices optimized in this call / read back from ``out``."""
  settings: list[dict[str, Any]]
  images: np.ndarray
  trace: np.ndarray
  final: np.ndarray
  computed: list[int]
  loaded: list[int]


def grid_settings(grid: dict[str, Sequence]) -> list[dict[str, Any]]:
  """The cartesian product of ``grid``'s values, in its key order (last key fastest)."""
  names = list(grid)
  for name in names:
    if len(grid[name]) == 0:
      raise FvjaxError(f"sweep grid entry {name!r} has no values")
  return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def sweep(model: Model, objective: objectives_lib.Objective | Callable[[dict], Any], *,
          key: jax.Array, grid: dict[str, Sequence], steps: int = 512, size: int = 128,
          batch: int | None = None, param=None, transforms=None, optimizer=None,
          settings: optvis.Settings | None = None, settings_per_chunk: int | None = None,
          out: str | None = None, progress: bool = True, mesh=None,
          on_chunk: Callable[[int], None] | None = None) -> SweepResult:
  """Render ``objective`` under every setting of ``grid``.

  Args:
    objective: an objective (one unit or batched over K units), or a function of a setting
      dict returning one (for grid values that live in the objective); every setting's
      objective must have the same structure.
    grid: name -> values. Names: any of `fvjax.optvis.setting_names` of the settings
      (``learning_rate``, ``decay``, ``sd``, ``transform_strength``, ``l1``,
      ``total_variation``, ``blur``, dotted paths such as ``optimizer.b1``); ``seed`` (unit
      keys ``split(fold_in(key, seed), K)``; without it ``split(key, K)`` as in `render`);
      any other name is only passed to an ``objective`` function.
    size, batch, param, transforms, optimizer, settings: as in `render` (same defaults).
    settings_per_chunk: settings optimized together (default all); the last chunk is padded
      so every chunk reuses one compiled loop.
    out: folder for finished chunks (``sweep_chunks/chunk_0000.npz`` ...) to resume from.
    on_chunk: called with each chunk index once that chunk is on disk.
    mesh: as in `render`. A mesh spanning several processes: every process calls `sweep`
      with the same arguments and receives the whole result; with ``out`` every process
      writes the same chunk files (a shared folder or each its own), and a chunk is loaded
      only if every process finds it, else recomputed everywhere.

  Unit k of setting s is the computation of ``render(model, objective_s[k], key=...,
  settings=base settings with s's values)``.
  """
  base = render_lib.settings_from(size=size, batch=batch, param=param, transforms=transforms,
                                  optimizer=optimizer, settings=settings)
  points = grid_settings(grid)
  is_factory = not isinstance(objective, objectives_lib.Objective)
  valid = optvis.setting_names(base)
  numeric = [n for n in grid if n in valid]
  unknown = [n for n in grid if n not in valid and n != "seed"]
  if unknown and not is_factory:
    raise FvjaxError(f"unknown sweep grid names {unknown}; valid: seed, {', '.join(valid)} "
                     "(other names need an objective function of the setting)")
  if isinstance(settings_per_chunk, bool) or (settings_per_chunk is not None and (
      not isinstance(settings_per_chunk, (int, np.integer)) or settings_per_chunk < 1)):
    raise FvjaxError(f"settings_per_chunk must be a positive integer, got {settings_per_chunk!r}")
  per_chunk = settings_per_chunk or len(points)
  key = optvis.as_key(key)
  chunks = [points[i:i + per_chunk] for i in range(0, len(points), per_chunk)]
  weights = None if out is None else stored_lib.digest(model.params)  # only resumable sweeps check it

  results, computed, loaded = [], [], []
  for index, chunk in enumerate(chunks):
    padded = chunk + [chunk[-1]] * (per_chunk - len(chunk))
    count, stacked, keys, unit_settings = _chunk_inputs(objective, padded, key, base, numeric)
    if index == 0:  # bad input fails before anything is optimized or loaded
      render_lib.validate(model, stacked, base, steps)
    path = None if out is None else os.path.join(out, "sweep_chunks", f"chunk_{index:04d}.npz")
    fingerprint = None if path is None else _fingerprint(model, weights, stacked, keys,
                                                         unit_settings, steps, padded)
    stored = stored_lib.load(path, fingerprint)
    if mesh is not None and not multihost.everywhere(stored is not None):
      stored = None  # a process that lacks the chunk makes every process recompute it
    if stored is not None:
      loaded.append(index)
    else:
      result = render_lib.optimize_units(
          model, stacked, keys, unit_settings, steps=steps,
          keep_batch=batch is not None or getattr(base.param, "batch", 1) > 1,
          progress=progress, mesh=mesh, desc=f"sweep chunk {index + 1}/{len(chunks)}")
      stored = {"images": result.images, "trace": result.trace, "final": result.final}
      if path is not None:
        stored_lib.save(path, fingerprint, stored, chunk)
      computed.append(index)
    units = count // len(padded)
    results.append({k: v.reshape(len(padded), units, *v.shape[1:])[:len(chunk)]
                    for k, v in stored.items()})
    if on_chunk is not None:
      on_chunk(index)
  joined = {k: np.concatenate([r[k] for r in results]) for k in ("images", "trace", "final")}
  return SweepResult(points, joined["images"], joined["trace"], joined["final"], computed,
                     loaded)


def _chunk_inputs(objective, points, key, base, numeric):
  """Stacked objectives, keys and settings of ``len(points) * K`` units."""
  objectives, keys, values = [], [], {n: [] for n in numeric}
  structure = None
  for point in points:
    obj = objective if isinstance(objective, objectives_lib.Objective) else objective(point)
    count, stacked, batched = objectives_lib.stack(obj)
    if structure is None:
      structure = jax.tree.structure(stacked)
    elif jax.tree.structure(stacked) != structure:
      raise FvjaxError(f"the objective for setting {point} has a different structure from "
                       "the first setting's; a sweep varies values, not structure")
    if "seed" in point:
      seed = point["seed"]
      if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
          0 <= seed < 2 ** 32):
        raise FvjaxError(f"sweep seeds must be integers in 0..2**32-1, got {seed!r}")
      unit_key = jax.random.fold_in(key, int(seed))
    else:
      unit_key = key
    keys.append(jax.random.split(unit_key, count) if batched else unit_key[None])
    objectives.append(stacked)
    for name in numeric:
      values[name].append(np.full(count, point[name], np.float32))
  stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs), *objectives)
  keys = jnp.concatenate(keys)
  total = keys.shape[0]
  unit_settings = optvis.broadcast(base, total, {n: np.concatenate(v) for n, v in values.items()})
  return total, stacked, keys, unit_settings


def _fingerprint(model, weights, stacked, keys, unit_settings, steps, points) -> dict[str, Any]:
  """Everything that determines a chunk, part by part (so a mismatch can say which part);
  ``weights`` is `stored.digest` of the model's weights, computed once per sweep."""
  return {"model": model.name, "weights": weights, "steps": int(steps),
          "grid points": json.loads(json.dumps(points, default=str)),
          "objective": stored_lib.digest(stacked), "keys": stored_lib.digest(keys),
          "settings (parameterization, transforms, optimizer, penalties)":
              stored_lib.digest(unit_settings)}


