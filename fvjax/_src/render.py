"""`render`: optimize K images for K objectives in one compiled, vmapped `lax.scan` loop.

Each of the K units is an independent optimization (its own image parameters, optimizer
state and random key); the loop over steps is a `lax.scan` compiled once per setting and
run in chunks so a progress bar can advance and snapshots can be kept. Unit indices,
direction vectors and factors are traced, so rendering another unit reuses the compiled
loop (see `trace_count`).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from fvjax._src import objectives as objectives_lib
from fvjax._src import param as param_lib
from fvjax._src import transforms as transforms_lib
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

DEFAULT_OPTIMIZER = optax.adam(0.05)
DEFAULT_TRANSFORMS = transforms_lib.standard()
_TRACES: collections.Counter = collections.Counter()


def trace_count(name: str = "chunk") -> int:
  """How many times render's optimization loop (``"chunk"``) has been traced (compiled)."""
  return _TRACES[name]


class RenderResult(NamedTuple):
  """What `render` returns (NumPy arrays).

  images: ``[K, H, W, 3]`` in [0, 1] (``[K, B, H, W, 3]`` when ``batch`` was given).
  trace: ``[K, steps]``, the objective (summed over the B images) at each step, as seen
    through the random transforms of that step.
  final: ``[K]``, the objective of the final images without transforms.
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


@dataclasses.dataclass(frozen=True)
class _Setting:
  """Everything static about a render: equal settings share one compiled loop."""
  apply: Any
  param: param_lib.ImageParam
  transforms: Any
  optimizer: optax.GradientTransformation
  chunk: int
  unroll: bool = False  # unroll the chunk's steps (no XLA while loop; see `_chunk_length`)


# Per-unit hyperparameters render understands besides the optimizer's own (see `render`).
PARAM_HYPERPARAMS = ("decay",)
TRANSFORM_HYPERPARAMS = ("transform_strength",)


def _to_image(setting, image_params, hyper):
  kwargs = {k: hyper[k] for k in PARAM_HYPERPARAMS if k in hyper}
  return setting.param.to_image(image_params, **kwargs)


def _loss(setting, model_params, image_params, objective, hyper, key):
  images = _to_image(setting, image_params, hyper)
  if "transform_strength" in hyper:
    seen = setting.transforms(key, images, strength=hyper["transform_strength"])
  else:
    seen = setting.transforms(key, images)
  acts = dict(setting.apply(model_params, seen))
  acts["input"] = seen
  score = jnp.sum(objective(acts))
  return -score, score


def _init(setting: _Setting, keys: jax.Array, hyper):
  def one(key, hyper):
    init_key, loop_key = jax.random.split(key)
    image_params = setting.param.init(init_key)
    opt_state = setting.optimizer.init(image_params)
    optimizer_hyper = {k: v for k, v in hyper.items()
                       if k not in PARAM_HYPERPARAMS + TRANSFORM_HYPERPARAMS}
    if optimizer_hyper:
      opt_state.hyperparams.update(
          {k: jnp.asarray(v, opt_state.hyperparams[k].dtype) for k, v in optimizer_hyper.items()})
    return image_params, opt_state, loop_key
  return jax.vmap(one)(keys, hyper)


def _run_chunk(setting: _Setting, model_params, state, objective, hyper):
  _TRACES["chunk"] += 1
  grad_fn = jax.grad(_loss, argnums=2, has_aux=True)

  def one(state, objective, hyper):
    def step(state, _):
      image_params, opt_state, key = state
      key, sub = jax.random.split(key)
      grads, score = grad_fn(setting, model_params, image_params, objective, hyper, sub)
      updates, opt_state = setting.optimizer.update(grads, opt_state, image_params)
      return (optax.apply_updates(image_params, updates), opt_state, key), score
    if not setting.unroll:
      return jax.lax.scan(step, state, None, length=setting.chunk)
    scores = []  # a Python loop: even a one-step lax.scan is an XLA while loop
    for _ in range(setting.chunk):
      state, score = step(state, None)
      scores.append(score)
    return state, jnp.stack(scores)

  return jax.vmap(one)(state, objective, hyper)


def _final(setting: _Setting, model_params, image_params, objective, hyper):
  def one(image_params, objective, hyper):
    images = _to_image(setting, image_params, hyper)
    acts = dict(setting.apply(model_params, images))
    acts["input"] = images
    return images, jnp.sum(objective(acts))
  return jax.vmap(one)(image_params, objective, hyper)


_init_jit = jax.jit(_init, static_argnums=0)
_run_chunk_jit = jax.jit(_run_chunk, static_argnums=0, donate_argnums=2)
_final_jit = jax.jit(_final, static_argnums=0)
_to_images_jit = jax.jit(lambda setting, p, hyper: jax.vmap(
    lambda p, h: _to_image(setting, p, h))(p, hyper), static_argnums=0)


# XLA's CPU backend runs a while-loop body about 1.7x slower than the same ops unrolled
# (measured on InceptionV1 and Tiny Darknet, jax 0.10): on CPU a chunk's steps are unrolled and
# a chunk is at most this many steps, which bounds the compile time.
MAX_UNROLLED_CHUNK = 8


def _unroll() -> bool:
  return jax.default_backend() == "cpu"


def _chunk_length(steps: int, snapshots: Sequence[int], *, unroll: bool = False) -> int:
  """The largest divisor of gcd(steps, snapshots) giving at least ~16 progress updates (and
  at most `MAX_UNROLLED_CHUNK` steps when unrolled)."""
  g = math.gcd(steps, *snapshots) if snapshots else steps
  target = max(1, math.ceil(steps / 16))
  if unroll:
    target = min(target, MAX_UNROLLED_CHUNK)
  return max(d for d in range(1, g + 1) if g % d == 0 and d <= target)


def render(model: Model, objective, *, key: jax.Array, steps: int = 512, size: int = 128,
           batch: int | None = None, param: param_lib.ImageParam | None = None,
           transforms: transforms_lib.Transform | None = None,
           optimizer: optax.GradientTransformation | None = None,
           snapshots: Sequence[int] = (), progress: bool = True,
           hyperparams: dict[str, Any] | None = None,
           mesh: jax.sharding.Mesh | None = None) -> RenderResult:
  """Optimize images to maximise ``objective`` on ``model``.

  Args:
    model: a `fvjax.Model`.
    objective: one objective, one objective batched over K units (e.g.
      ``channel(layer, jnp.arange(K))``), or a list of K objectives of the same structure.
    key: PRNG key. Unit i of a batch uses ``jax.random.split(key, K)[i]``; a single
      unbatched objective uses ``key`` itself, so each batched unit equals its own render.
    steps: optimization steps.
    size: image side in pixels (ignored when ``param`` is given).
    batch: images per unit (B); None means one image per unit and drops the B axis.
    param: an `fvjax.param.ImageParam`; default ``param.image(size, batch=B)`` (Fourier,
      decorrelated colour, sigmoid).
    transforms: ``(key, images) -> images``; default Lucid's standard transforms.
    optimizer: an optax transformation; default Adam(0.05). Reuse one object across calls
      to reuse the compiled loop.
    snapshots: steps (0..steps) after which to keep the images.
    progress: show a progress bar over chunks of steps.
    hyperparams: per-unit hyperparameters, each a scalar or ``[K]`` (a sweep is one more
      batch axis): ``"decay"`` (Fourier decay power of `param.image`),
      ``"transform_strength"`` (multiplies the jitter, scale and rotation ranges; 1 is the
      transforms as given) and any hyperparameter of an optimizer built with
      ``optax.inject_hyperparams`` (e.g. ``"learning_rate"``).
    mesh: a `jax.sharding.Mesh`; the K units are sharded over its first axis (K padded to
      a multiple of its size), the model's weights replicated. Results equal the unsharded
      run.

  Returns:
    A `RenderResult`. Raises `FvjaxError` for bad input before anything runs, and
    `RenderDiverged` (with the step and the last good result) if the objective turns NaN.
  """
  count, stacked, batched = objectives_lib.stack(objective)
  per_unit = 1 if batch is None else int(batch)
  param = param or param_lib.image(size, batch=per_unit)
  transforms = DEFAULT_TRANSFORMS if transforms is None else transforms
  optimizer = optimizer or DEFAULT_OPTIMIZER
  snapshots = sorted(set(int(s) for s in snapshots))
  _validate(model, stacked, param, transforms, steps, snapshots)
  hyper = _hyperparams(hyperparams or {}, count, optimizer, param)

  keys = jax.random.split(key, count) if batched else key[None]
  return optimize_units(model, stacked, keys, steps=steps, batch=batch, param=param,
                        transforms=transforms, optimizer=optimizer, snapshots=snapshots,
                        progress=progress, hyper=hyper, mesh=mesh)


def optimize_units(model: Model, stacked, keys: jax.Array, *, steps: int, batch: int | None,
                   param, transforms, optimizer, snapshots: Sequence[int], progress: bool,
                   hyper: dict[str, jax.Array], mesh=None) -> RenderResult:
  """The loop behind `render` for already-validated input: K stacked objectives, their K
  keys and ``[K]`` hyperparameters (used by `fvjax.sweep` too)."""
  count = keys.shape[0]
  model_params = model.params
  if mesh is not None:
    keys, stacked, hyper, model_params = _shard(mesh, keys, stacked, hyper, model_params)
  unroll = _unroll()
  setting = _Setting(model.apply, param, transforms, optimizer,
                     _chunk_length(steps, snapshots, unroll=unroll), unroll)
  state = _init_jit(setting, keys, hyper)
  kept: dict[int, np.ndarray] = {}
  traces: list[np.ndarray] = []
  if 0 in snapshots:
    kept[0] = np.asarray(_to_images_jit(setting, state[0], hyper))[:count]

  def result_so_far(image_params):
    images, final = _final_jit(setting, model_params, image_params, stacked, hyper)
    squeeze = (lambda x: x[:, 0]) if batch is None else (lambda x: x)
    return RenderResult(squeeze(np.asarray(images)[:count]),
                        np.concatenate(traces, axis=1) if traces else np.zeros((count, 0)),
                        np.asarray(final)[:count], {s: squeeze(v) for s, v in kept.items()},
                        jax.tree.map(lambda x: x[:count], image_params))

  done = 0
  with tqdm(total=steps, desc=f"render {count} unit{'s' * (count > 1)}", unit="step",
            disable=not progress, leave=False) as bar:
    while done < steps:
      last_good = jax.tree.map(jnp.copy, state[0])
      state, trace = _run_chunk_jit(setting, model_params, state, stacked, hyper)
      trace = np.asarray(trace)[:count]
      bad = ~np.isfinite(trace)
      if bad.any():
        step = done + int(np.argmax(bad.any(axis=0))) + 1
        units = np.flatnonzero(bad.any(axis=1)).tolist()
        partial = result_so_far(last_good) if done else None
        raise RenderDiverged(
            f"the objective became NaN/inf at step {step} (units {units}); "
            f"the result up to step {done} is kept in the exception's .result", step, partial)
      traces.append(trace)
      done += setting.chunk
      bar.update(setting.chunk)
      bar.set_postfix(objective=f"{float(trace[:, -1].mean()):.3g}")
      if done in snapshots:
        kept[done] = np.asarray(_to_images_jit(setting, state[0], hyper))[:count]
  return result_so_far(state[0])


def _hyperparams(hyperparams: dict, count: int, optimizer, param) -> dict[str, jax.Array]:
  """Per-unit hyperparameters as float32 ``[K]`` arrays, checked against what uses them."""
  optimizer_names = ()
  probe = jax.eval_shape(optimizer.init, jax.eval_shape(param.init, jax.random.key(0)))
  if hasattr(probe, "hyperparams"):
    optimizer_names = tuple(probe.hyperparams)
  valid = PARAM_HYPERPARAMS + TRANSFORM_HYPERPARAMS + optimizer_names
  out = {}
  for name, value in hyperparams.items():
    if name not in valid:
      hint = "" if optimizer_names else (" (optimizer hyperparameters need an optimizer built "
                                         "with optax.inject_hyperparams)")
      raise FvjaxError(f"unknown hyperparameter {name!r}; valid: {', '.join(valid)}{hint}")
    value = jnp.asarray(value, jnp.float32)
    if value.ndim == 0:
      value = jnp.broadcast_to(value, (count,))
    if value.shape != (count,):
      raise FvjaxError(f"hyperparameter {name!r} has shape {value.shape}; expected a scalar or "
                       f"[{count}] (one value per unit)")
    out[name] = value
  return out


def _shard(mesh, keys, stacked, hyper, model_params):
  """Pad the unit axis to a multiple of the mesh's first axis and place it sharded over it;
  replicate the model's weights."""
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
  keys = jax.device_put(pad(jax.random.key_data(keys)), units)
  keys = jax.random.wrap_key_data(keys)
  stacked = jax.tree.map(place, stacked)
  hyper = jax.tree.map(place, hyper)
  model_params = jax.device_put(model_params, NamedSharding(mesh, PartitionSpec()))
  return keys, stacked, hyper, model_params


def _validate(model, objective, param, transforms, steps, snapshots):
  if not isinstance(model, Model):
    raise FvjaxError(f"render needs an fvjax.Model, got {type(model).__name__}")
  if not isinstance(steps, (int, np.integer)) or steps < 1:
    raise FvjaxError(f"steps must be a positive integer, got {steps!r}")
  bad = [s for s in snapshots if not 0 <= s <= steps]
  if bad:
    raise FvjaxError(f"snapshot steps {bad} are outside 0..{steps}")
  shape = jax.eval_shape(param.to_image, jax.eval_shape(param.init, jax.random.key(0))).shape
  size = tuple(shape[1:3])
  model.check_size(min(size))
  seen = transforms.output_size(size) if hasattr(transforms, "output_size") else size
  if min(seen) < model.min_size:
    raise FvjaxError(f"the transforms turn {size[0]}x{size[1]} images into {seen[0]}x{seen[1]}, "
                     f"smaller than model {model.name!r} can take (minimum {model.min_size})")
  objective.check(model)
