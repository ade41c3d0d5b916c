"""`render`: optimize K images for K objectives with the functional core, vmapped over units.

A thin driver of `fvjax.optvis`: each of the K units is an independent optimization (its own
parameters, optimizer state and key) of ``optvis.step``, vmapped over units and scanned over
the steps of a chunk; the chunks let a progress bar advance, snapshots be kept and a NaN be
caught early. Model, objective and settings are pytrees, so another unit, another learning
rate or a freshly built equal setting reuses the compiled loop.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from fvjax._src import objectives as objectives_lib
from fvjax._src import optvis
from fvjax._src.errors import FvjaxError
from fvjax._src.multihost import fetch as _fetch
from fvjax._src.model import Model


class RenderResult(NamedTuple):
  """What `render` returns (NumPy arrays).

  images: ``[K, H, W, 3]`` in [0, 1] (``[K, B, H, W, 3]`` when ``batch`` was given).
  trace: ``[K, steps]``, the objective (summed over the B images) at each step, as seen
    through the random transforms of that step.
  final: ``[K]``, the objective of the final images seen through the transforms at strength
    0 (`fvjax.optvis.score`: padding and centre crops, no scale or rotation).
  snapshots: step -> images shaped like ``images``, for each requested snapshot step.
  params: the final raw image parameters, leading axis K.
  """
  images: np.ndarray
  trace: np.ndarray
  final: np.ndarray
  snapshots: dict[int, np.ndarray]
  params: Any


class RenderDiverged(FloatingPointError):
  """The objective became NaN/inf; ``step`` says when, ``result`` holds the last good chunk."""

  def __init__(self, message: str, step: int, result: RenderResult | None):
    super().__init__(message)
    self.step = step
    self.result = result


# -- the compiled programs: vmapped over units, nothing static but loop lengths ---------------
def _pin(tree, units):
  """``tree`` (every leaf with a leading unit axis) constrained to the ``units`` sharding, so
  the state a step returns is placed like the state it was given (one compilation)."""
  if units is None:
    return tree
  return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, units), tree)


@functools.partial(jax.jit, static_argnames=("units",))
def _init_all(keys, model, objective, settings, *, units=None):
  return _pin(jax.vmap(optvis.init, in_axes=(0, None, 0, 0))(keys, model, objective, settings),
              units)


@functools.partial(jax.jit, static_argnames=("length", "units"), donate_argnums=(0,))
def _run_all(state, model, objective, settings, *, length: int, units=None):
  """``length`` steps of every unit: ``(state, scores [K, length])``. One step is a plain
  vmapped `optvis.step` (no loop); more steps are a `lax.scan`. The state is donated;
  ``units`` (a sharding of the unit axis, or None) pins where the new state lives."""
  def one(state, objective, settings):
    if length == 1:
      state, score = optvis.step(state, model, objective, settings)
      return state, score[None]
    def body(state, _):
      return optvis.step(state, model, objective, settings)
    return jax.lax.scan(body, state, None, length=length)
  return _pin(jax.vmap(one, in_axes=(0, 0, 0))(state, objective, settings), units)


@jax.jit
def _images_all(state, settings):
  return jax.vmap(optvis.images)(state, settings)


@jax.jit
def _final_all(state, model, objective, settings):
  pictures = jax.vmap(optvis.images)(state, settings)
  final = jax.vmap(optvis.score, in_axes=(0, None, 0, 0))(state, model, objective, settings)
  return pictures, final


# XLA's CPU backend runs the body of a while loop (a `lax.scan`) about 1.7x slower than the
# same operations outside a loop, and unrolling the loop multiplies the compile time. On CPU
# render therefore compiles one step (no loop) and dispatches it once per step: JAX's
# asynchronous dispatch keeps the device busy while Python queues the next step, and the host
# waits only every `_chunk_length` steps (progress, snapshots, the NaN check). Measured on Tiny
# Darknet, 128 px, K = 1 (2 cores, jax 0.10.2): 55.6 unit-steps/s and 7.0 s compile for the
# one-step program against 35.4 unit-steps/s and 18.6 s for 8 unrolled steps; K = 8: 26.4 vs
# 26.3 unit-steps/s, 6.5 s vs 15.8 s compile. Accelerators run a whole chunk as one scan.
def _steps_per_call(chunk: int) -> int:
  return 1 if jax.default_backend() == "cpu" else chunk


def _chunk_length(steps: int, snapshots: Sequence[int]) -> int:
  """The largest divisor of gcd(steps, snapshots) giving at least ~16 progress updates."""
  g = math.gcd(steps, *snapshots) if snapshots else steps
  target = max(1, math.ceil(steps / 16))
  return max(d for d in range(1, g + 1) if g % d == 0 and d <= target)


def settings_from(*, size=128, batch: int | None = None, param=None, transforms=None,
                  optimizer=None, settings: optvis.Settings | None = None) -> optvis.Settings:
  """The `optvis.Settings` of render's keyword arguments (``settings`` or the others)."""
  if settings is not None:
    if param is not None or transforms is not None or optimizer is not None:
      raise FvjaxError("give either settings= or param=/transforms=/optimizer=, not both")
    if not isinstance(settings, optvis.Settings):
      raise FvjaxError(f"settings must be fvjax.optvis.Settings(...), got {settings!r}")
    return settings
  if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer))
                            or batch < 1):
    raise FvjaxError(f"batch (images per unit) must be a positive integer or None, got {batch!r}")
  return optvis.Settings(size=size,
                         batch=1 if batch is None else int(batch), param=param,
                         transforms=transforms,
                         optimizer=None if optimizer is None else optvis.as_optimizer(optimizer))


def render(model: Model, objective, *, key: jax.Array, steps: int = 512, size: int = 128,
           batch: int | None = None, param=None, transforms=None, optimizer=None,
           settings: optvis.Settings | None = None, snapshots: Sequence[int] = (),
           progress: bool = True, hyperparams: dict[str, Any] | None = None,
           mesh: jax.sharding.Mesh | None = None) -> RenderResult:
  """Optimize images to maximise ``objective`` on ``model``.

  Args:
    model: a `fvjax.Model`.
    objective: one objective, one objective batched over K units (e.g.
      ``channel(layer, jnp.arange(K))``), or a list of K objectives of the same structure.
    key: PRNG key (``jax.random.key`` or ``PRNGKey``). Unit i of a batch uses
      ``jax.random.split(key, K)[i]``; a single unbatched objective uses ``key`` itself.
    steps: optimization steps.
    size: image side in pixels (ignored when ``param`` is given).
    batch: images per unit (B); None means one image per unit and drops the B axis.
    param: an `fvjax.param` parameterization; default ``param.image(size, batch=B)``.
    transforms: an `fvjax.transforms` transform; default Lucid's standard transforms.
    optimizer: ``fvjax.optvis.Adam(...)`` / ``SGD(...)`` (hyperparameters traced) or any optax
      transformation (compared by identity); default Adam(0.05).
    settings: an `fvjax.optvis.Settings` instead of ``param``/``transforms``/``optimizer``
      (``size`` and ``batch`` then come from it; ``batch`` here only keeps the B axis).
    snapshots: steps (0..steps) after which to keep the images.
    progress: show a progress bar over chunks of steps.
    hyperparams: per-unit numeric settings, each a number or ``[K]`` values: any name of
      `fvjax.optvis.setting_names` (``learning_rate``, ``decay``, ``sd``,
      ``transform_strength``, ``l1``, ``total_variation``, ``blur``, dotted paths).
    mesh: a `jax.sharding.Mesh`; the K units are sharded over its first axis (K padded to
      a multiple of its size), the model's weights replicated. The mesh may span several
      processes (`jax.distributed`): every process then calls `render` with the same
      arguments, and every process receives the whole result (gathered from all of them);
      `fvjax.process_units` says which units this process's devices computed.

  Returns:
    A `RenderResult`. Raises `FvjaxError` for bad input before anything runs, and
    `RenderDiverged` (with the step and the last good result) if the objective turns NaN.
  """
  count, stacked, batched = objectives_lib.stack(objective)
  settings = settings_from(size=size, batch=batch, param=param, transforms=transforms,
                           optimizer=optimizer, settings=settings)
  snapshots = sorted(set(int(s) for s in snapshots))
  validate(model, stacked, settings, steps, snapshots)
  key = optvis.as_key(key)
  unit_settings = optvis.broadcast(settings, count, hyperparams)
  keys = jax.random.split(key, count) if batched else key[None]
  return optimize_units(model, stacked, keys, unit_settings, steps=steps,
                        keep_batch=batch is not None or getattr(settings.param, "batch", 1) > 1,
                        snapshots=snapshots, progress=progress, mesh=mesh)


def optimize_units(model: Model, stacked, keys: jax.Array, settings: optvis.Settings, *,
                   steps: int, keep_batch: bool, snapshots: Sequence[int] = (),
                   progress: bool = True, mesh=None, desc: str | None = None) -> RenderResult:
  """The loop behind `render` for validated input: K stacked objectives, their K typed keys
  and settings whose every leaf has a leading axis of K (`optvis.broadcast`)."""
  count = keys.shape[0]
  units = None
  if mesh is not None:
    keys, stacked, settings, model, units = _shard(mesh, keys, stacked, settings, model)
  chunk = _chunk_length(steps, snapshots)
  per_call = _steps_per_call(chunk)
  state = _init_all(keys, model, stacked, settings, units=units)
  # Shape errors surface here, before any step runs (the traces are reused by the calls).
  optvis.check_traced(_run_all, state, model, stacked, settings, length=per_call, units=units,
                      what=f"one optimization step on model {model.name!r}")
  optvis.check_traced(_final_all, state, model, stacked, settings,
                      what=f"the final evaluation on model {model.name!r}")
  kept: dict[int, np.ndarray] = {}
  traces: list[np.ndarray] = []
  squeeze = (lambda x: x) if keep_batch else (lambda x: x[:, 0])
  if 0 in snapshots:
    kept[0] = squeeze(_fetch(_images_all(state, settings))[:count])

  def result_so_far(state):
    images, final = _final_all(state, model, stacked, settings)
    return RenderResult(squeeze(_fetch(images)[:count]),
                        np.concatenate(traces, axis=1) if traces else np.zeros((count, 0)),
                        _fetch(final)[:count], kept,
                        jax.tree.map(lambda x: _fetch(x)[:count], state.params))

  done = 0
  desc = desc or f"render {count} unit{'s' * (count > 1)}"
  starts: list[tuple[int, Any]] = []  # (step, state) at the start of the last two chunks
  with tqdm(total=steps, desc=desc, unit="step", disable=not progress, leave=False) as bar:
    while done < steps:
      starts = starts[-1:] + [(done, jax.tree.map(jnp.copy, state))]  # runs donate the state
      pending = []
      for _ in range(chunk // per_call):  # queued without waiting (asynchronous dispatch)
        state, scores = _run_all(state, model, stacked, settings, length=per_call, units=units)
        pending.append(scores)
      # Every process takes the same branch: the check is one replicated scalar, and the
      # trace is gathered from every process (a collective when the mesh spans several).
      finite = bool(_all_finite(pending))
      trace = _fetch(jnp.concatenate(pending, axis=1) if len(pending) > 1 else pending[0])
      trace = trace[:count]
      bad = ~np.isfinite(trace)
      if not finite:
        offset = int(np.argmax(bad.any(axis=0)))
        step = done + offset + 1
        units = np.flatnonzero(bad.any(axis=1)).tolist()
        # The score of a step is that of the parameters before its update: the state at this
        # chunk's start is good if the first bad score is not its own, else the one before.
        kept_step, kept_state = starts[-1] if offset > 0 else (
            starts[0] if len(starts) > 1 else (0, None))
        partial = None
        if kept_state is not None and kept_step > 0:
          traces[:] = [np.concatenate(traces, axis=1)[:, :kept_step]] if traces else []
          for s_ in [s_ for s_ in kept if s_ > kept_step]:
            del kept[s_]
          partial = result_so_far(kept_state)
        raise RenderDiverged(
            f"the objective became NaN/inf at step {step} (units {units}); "
            + (f"the result after step {kept_step} is kept in the exception's .result"
               if partial is not None else "no earlier finite result to keep"), step, partial)
      traces.append(trace)
      done += chunk
      bar.update(chunk)
      bar.set_postfix(objective=f"{float(trace[:, -1].mean()):.3g}")
      if done in snapshots:
        kept[done] = squeeze(_fetch(_images_all(state, settings))[:count])
  return result_so_far(state)


@jax.jit
def _all_finite(scores):
  """One boolean scalar (replicated on every device of a mesh): are all ``scores`` finite?"""
  return jnp.all(jnp.asarray([jnp.isfinite(s).all() for s in scores]))


def _shard(mesh, keys, stacked, settings, model):
  """Pad the unit axis to a multiple of the mesh's first axis and place it sharded over it;
  replicate the model's weights. Also returns the units' sharding."""
  from jax.sharding import Mesh, NamedSharding, PartitionSpec
  # Let XLA propagate the unit sharding through the vmapped loop (explicit-axis meshes, as
  # jax.make_mesh builds, would make every intermediate's sharding part of its type).
  mesh = Mesh(mesh.devices, mesh.axis_names)
  axis = mesh.axis_names[0]
  size = mesh.shape[axis]
  count = keys.shape[0]
  padded = -(-count // size) * size

  def pad(x):
    x = jnp.asarray(x)
    if padded == count:
      return x
    return jnp.concatenate([x, jnp.repeat(x[-1:], padded - count, axis=0)], axis=0)

  units = NamedSharding(mesh, PartitionSpec(axis))
  place = lambda x: jax.device_put(pad(x), units)
  keys = jax.random.wrap_key_data(jax.device_put(pad(jax.random.key_data(keys)), units))
  stacked = jax.tree.map(place, stacked)
  settings = jax.tree.map(place, settings)
  model = jax.device_put(model, NamedSharding(mesh, PartitionSpec()))
  return keys, stacked, settings, model, units


def validate(model, objective, settings: optvis.Settings, steps, snapshots=()):
  """Check ``model``, the stacked ``objective``, ``settings``, ``steps`` and ``snapshots``
  before anything is compiled (`FvjaxError` on bad input)."""
  if not isinstance(model, Model):
    raise FvjaxError(f"render needs an fvjax.Model, got {type(model).__name__}")
  if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
    raise FvjaxError(f"steps must be a positive integer, got {steps!r}")
  bad = [s for s in snapshots if not 0 <= s <= steps]
  if bad:
    raise FvjaxError(f"snapshot steps {bad} are outside 0..{steps}")
  optvis.check(model, objective, settings)
