"""`sweep`: a hyperparameter grid as one more batch axis of `render`.

Every setting of the grid (learning rate, Fourier decay, transform strength, seed, and any
value the objective is built from, such as a regularizer weight) is rendered for every unit,
S settings x K units vmapped together in one compiled loop per chunk of settings. With
``out``, each finished chunk is written to disk at once, and a re-run loads the chunks
already there (after checking they belong to the same sweep) instead of recomputing them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fvjax._src import objectives as objectives_lib
from fvjax._src import param as param_lib
from fvjax._src import render as render_lib
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

DEFAULT_SWEEP_OPTIMIZER = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)
GRID_KEYS = ("learning_rate", "decay", "transform_strength", "seed")


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
          batch: int | None = None, param: param_lib.ImageParam | None = None,
          transforms=None, optimizer: optax.GradientTransformation | None = None,
          settings_per_chunk: int | None = None, out: str | None = None,
          progress: bool = True, mesh=None,
          on_chunk: Callable[[int], None] | None = None) -> SweepResult:
  """Render ``objective`` under every setting of ``grid``.

  Args:
    objective: an objective (one unit or batched over K units), or a function of a setting
      dict returning one (for grid values that live in the objective, e.g.
      ``lambda s: channel(l, units) - s["tv"] * total_variation()``); every setting's
      objective must have the same structure.
    grid: name -> values. Understood names: ``learning_rate`` (needs an optimizer built
      with ``optax.inject_hyperparams``; the default is Adam), ``decay`` (Fourier decay of
      `param.image`), ``transform_strength`` (scales the transforms' random ranges),
      ``seed`` (unit keys ``split(fold_in(key, seed), K)``; without it, ``split(key, K)``
      as in `render`); any other name is only passed to an ``objective`` function.
    settings_per_chunk: settings optimized together (default all); the last chunk is padded
      so every chunk reuses one compiled loop.
    out: folder for finished chunks (``sweep_chunks/chunk_0000.npz`` ...) to resume from.
    on_chunk: called with each chunk index once that chunk is on disk.

  Unit k of setting s equals ``render(model, objective_s[k], key=..., optimizer=...)`` with
  that setting's values (to float tolerance).
  """
  settings = grid_settings(grid)
  is_factory = not isinstance(objective, objectives_lib.Objective)
  unknown = [n for n in grid if n not in GRID_KEYS and not is_factory]
  if unknown:
    raise FvjaxError(f"unknown sweep grid names {unknown}; valid: {', '.join(GRID_KEYS)} "
                     "(other names need an objective function of the setting)")
  per_chunk = settings_per_chunk or len(settings)
  if per_chunk < 1:
    raise FvjaxError(f"settings_per_chunk must be >= 1, got {settings_per_chunk}")
  per_unit = 1 if batch is None else int(batch)
  param = param or param_lib.image(size, batch=per_unit)
  transforms = render_lib.DEFAULT_TRANSFORMS if transforms is None else transforms
  optimizer = optimizer or DEFAULT_SWEEP_OPTIMIZER
  chunks = [settings[i:i + per_chunk] for i in range(0, len(settings), per_chunk)]

  results, computed, loaded = [], [], []
  for index, chunk in enumerate(chunks):
    padded = chunk + [chunk[-1]] * (per_chunk - len(chunk))
    count, stacked, keys, hyper = _chunk_inputs(model, objective, padded, key, optimizer,
                                                param)
    if index == 0:  # bad input fails before anything is optimized or loaded
      render_lib._validate(model, stacked, param, transforms, steps, ())
    path = None if out is None else os.path.join(out, "sweep_chunks", f"chunk_{index:04d}.npz")
    fingerprint = _fingerprint(model, stacked, keys, hyper, steps, param, transforms, padded)
    stored = _load_chunk(path, fingerprint)
    if stored is not None:
      loaded.append(index)
    else:
      result = render_lib.optimize_units(
          model, stacked, keys, steps=steps, batch=batch, param=param, transforms=transforms,
          optimizer=optimizer, snapshots=(), progress=progress, hyper=hyper, mesh=mesh)
      stored = {"images": result.images, "trace": result.trace, "final": result.final}
      if path is not None:
        _save_chunk(path, fingerprint, stored, chunk)
      computed.append(index)
    units = count // len(padded)
    results.append({k: v.reshape(len(padded), units, *v.shape[1:])[:len(chunk)]
                    for k, v in stored.items()})
    if on_chunk is not None:
      on_chunk(index)
  joined = {k: np.concatenate([r[k] for r in results]) for k in ("images", "trace", "final")}
  return SweepResult(settings, joined["images"], joined["trace"], joined["final"], computed,
                     loaded)


def _chunk_inputs(model, objective, settings, key, optimizer, param):
  """Stacked objectives, keys and hyperparameters of ``len(settings) * K`` units."""
  objectives, keys, hyper = [], [], {n: [] for n in GRID_KEYS[:3] if n in settings[0]}
  structure = None
  for setting in settings:
    obj = objective if isinstance(objective, objectives_lib.Objective) else objective(setting)
    count, stacked, batched = objectives_lib.stack(obj)
    if structure is None:
      structure = jax.tree.structure(stacked)
    elif jax.tree.structure(stacked) != structure:
      raise FvjaxError(f"the objective for setting {setting} has a different structure from "
                       "the first setting's; a sweep varies values, not structure")
    base = jax.random.fold_in(key, int(setting["seed"])) if "seed" in setting else key
    keys.append(jax.random.split(base, count) if batched else base[None])
    objectives.append(stacked)
    for name in hyper:
      hyper[name].append(np.full(count, setting[name], np.float32))
  stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs), *objectives)
  keys = jnp.concatenate(keys)
  total = keys.shape[0]
  hyper = render_lib._hyperparams({n: np.concatenate(v) for n, v in hyper.items()}, total,
                                  optimizer, param)
  return total, stacked, keys, hyper


def _fingerprint(model, stacked, keys, hyper, steps, param, transforms, settings) -> str:
  digest = hashlib.sha256()
  digest.update(json.dumps({"model": model.name, "steps": steps, "param": repr(param.init),
                            "transforms": repr(transforms), "settings": settings,
                            "objective": str(jax.tree.structure(stacked))},
                           sort_keys=True, default=str).encode())
  for leaf in jax.tree.leaves((stacked, jax.random.key_data(keys), hyper)):
    digest.update(np.asarray(leaf).tobytes())
  return digest.hexdigest()


def _load_chunk(path, fingerprint):
  if path is None or not os.path.exists(path):
    return None
  with np.load(path) as f:
    if str(f["fingerprint"]) != fingerprint:
      raise FvjaxError(f"{path} holds a chunk of a different sweep (other settings, units, "
                       "seed or model); use another --out folder or delete it")
    return {k: f[k] for k in ("images", "trace", "final")}


def _save_chunk(path, fingerprint, stored, settings):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  partial = path + ".partial.npz"  # written whole, then renamed: a crash leaves no half file
  np.savez_compressed(partial, fingerprint=fingerprint,
                      settings=json.dumps(settings, default=str), **stored)
  os.replace(partial, path)
