"""The functional core of feature visualization: pure ``init`` / ``step`` / ``images``.

Everything is a pytree whose structure is static and whose numbers are traced: the `Model`
(weights traced), the objective (unit indices, vectors, factors traced), the `Settings`
(image parameterization, transforms, optimizer, penalty weights) and the `State`. So
``jax.jit(step)`` needs no static arguments, settings built afresh with equal structure reuse
the compiled program, and a user can ``vmap`` over units or settings, ``lax.scan`` over steps
and ``shard_map`` over devices::

    settings = fvjax.optvis.Settings(size=128)
    state = fvjax.optvis.init(key, model, objective, settings)
    state, score = jax.jit(fvjax.optvis.step)(state, model, objective, settings)
    pictures = fvjax.optvis.images(state, settings)   # [B, H, W, 3] in [0, 1]

`fvjax.render`, `fvjax.sweep`, `class_model` and `meaningful_perturbation` are drivers of
these functions (batching over units, chunks, progress, snapshots, the NaN check).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fvjax._src import objectives as objectives_lib
from fvjax._src import param as param_lib
from fvjax._src import pytree
from fvjax._src import transforms as transforms_lib
from fvjax._src.errors import FvjaxError, first_line, without_jax_notes
from fvjax._src.model import Model


# -- optimizers: pytrees whose hyperparameters are traced ------------------------------------
class Optimizer:
  """Base class: ``init(params) -> opt_state``; ``update(grads, opt_state, params) ->
  (updates, opt_state)`` (optax's signature)."""

  def transformation(self) -> optax.GradientTransformation:
    raise NotImplementedError

  def init(self, params):
    return self.transformation().init(params)

  def update(self, grads, opt_state, params=None):
    return self.transformation().update(grads, opt_state, params)


@pytree.dataclass
class Adam(Optimizer):
  """``optax.adam`` with traced hyperparameters (Lucid's default is Adam(0.05))."""
  learning_rate: Any = np.float32(0.05)
  b1: Any = np.float32(0.9)
  b2: Any = np.float32(0.999)
  eps: Any = np.float32(1e-8)

  def __post_init__(self):
    for f in dataclasses.fields(self):
      object.__setattr__(self, f.name, pytree.number(getattr(self, f.name), f"Adam {f.name}"))

  def transformation(self):
    return optax.adam(self.learning_rate, self.b1, self.b2, self.eps)


@pytree.dataclass
class SGD(Optimizer):
  """``optax.sgd`` with a traced learning rate and momentum (None: plain SGD)."""
  learning_rate: Any = np.float32(1.0)
  momentum: Any = None

  def __post_init__(self):
    object.__setattr__(self, "learning_rate", pytree.number(self.learning_rate,
                                                            "SGD learning_rate"))
    object.__setattr__(self, "momentum", pytree.number(self.momentum, "SGD momentum"))

  def transformation(self):
    return optax.sgd(self.learning_rate, self.momentum)


@pytree.dataclass
class Optax(Optimizer):
  """Any optax transformation, as given. It is static structure compared by identity: reuse
  one object to reuse the compiled loop; its hyperparameters cannot be swept (use `Adam` or
  `SGD`, whose numbers are traced)."""
  wrapped: optax.GradientTransformation = pytree.static()

  def transformation(self):
    return self.wrapped


def as_optimizer(optimizer) -> Optimizer:
  """An `Optimizer` from an `Optimizer` or an optax transformation."""
  if isinstance(optimizer, Optimizer):
    return optimizer
  if isinstance(optimizer, optax.GradientTransformation):
    return Optax(optimizer)
  raise FvjaxError(f"optimizer must be fvjax.optvis.Adam(...), SGD(...) or an optax "
                   f"GradientTransformation, got {optimizer!r}")


# -- projections: applied to the parameters after each update -------------------------------
@pytree.dataclass
class Projection:
  """``fn(params, **values) -> params`` applied after every optimizer update (clipping a
  mask to [0, 1], blurring, a norm ball); ``values`` are traced, ``fn`` is static. With
  ``context=True`` it is called as ``fn(params, grads=grads, step=step, **values)``: the
  gradient of the loss that made the update and the 1-based count of updates so far (for
  regularizers applied every n steps or weighted by the gradient)."""
  fn: Callable[..., Any] = pytree.static()
  values: dict[str, Any] = dataclasses.field(default_factory=dict)
  context: bool = pytree.static(False)

  def __call__(self, params, grads=None, step=None):
    if self.context:
      return self.fn(params, grads=grads, step=step, **self.values)
    return self.fn(params, **self.values)


# -- settings --------------------------------------------------------------------------------
@pytree.dataclass
class Settings:
  """How images are optimized. Defaults are Lucid's ``render_vis``.

  Attributes:
    size: image side in pixels (int) or ``(H, W)``; static.
    batch: images per unit B (static); the default parameterization makes B images.
    param: an `fvjax.param.ImageParam`; default ``param.image(size, batch=batch)`` (Fourier
      basis, 1/f, sd 0.01, decorrelated colour, sigmoid).
    transforms: an `fvjax.transforms.Transform`; default Lucid's ``standard()``.
    optimizer: an `Optimizer` (or an optax transformation, wrapped in `Optax`); default
      ``Adam(0.05)``.
    transform_strength: scales every transform's random range (traced; 1 = as given, 0 =
      deterministic).
    l1, total_variation, blur: weights of penalties on the images (traced), subtracted from
      the objective: mean |x - 0.5|, total variation, Lucid's blur_input_each_step
      (`fvjax.objectives.blur_penalty`). None (the default) leaves a penalty out of the
      program.
    projection: a `Projection` (or a function ``params -> params``) applied after each
      update; None for none.
  """
  size: Any = pytree.static(128)
  batch: int = pytree.static(1)
  param: Any = None
  transforms: Any = None
  optimizer: Any = None
  transform_strength: Any = np.float32(1.0)
  l1: Any = None
  total_variation: Any = None
  blur: Any = None
  projection: Any = None

  def __post_init__(self):
    if isinstance(self.size, list):
      object.__setattr__(self, "size", tuple(self.size))
    if self.param is None:
      object.__setattr__(self, "param", param_lib.image(self.size, batch=self.batch))
    if self.transforms is None:
      object.__setattr__(self, "transforms", transforms_lib.standard())
    if self.optimizer is None:
      object.__setattr__(self, "optimizer", Adam())
    elif isinstance(self.optimizer, optax.GradientTransformation):
      object.__setattr__(self, "optimizer", Optax(self.optimizer))
    if self.projection is not None and not isinstance(self.projection, Projection) and callable(
        self.projection):
      object.__setattr__(self, "projection", Projection(self.projection))
    for name in ("transform_strength", "l1", "total_variation", "blur"):
      value = getattr(self, name)
      if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        object.__setattr__(self, name, np.float32(value))


class State(NamedTuple):
  """The optimization state of one unit: image ``params``, ``opt_state``, the PRNG ``key``
  for the next step's transforms and the ``step`` count."""
  params: Any
  opt_state: Any
  key: jax.Array
  step: jax.Array


def as_key(key) -> jax.Array:
  """A typed PRNG key from a typed key (``jax.random.key``) or a raw ``uint32[2]`` one
  (``jax.random.PRNGKey``); batches of either kind keep their leading axes."""
  if isinstance(key, (int, np.integer, str, bytes, float)) or key is None:
    raise FvjaxError(f"key must be a JAX PRNG key (jax.random.key(seed)), got {key!r}")
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key
  if key.dtype != jnp.uint32 or key.shape[-1:] != (2,):
    raise FvjaxError(f"key must be a JAX PRNG key (jax.random.key(seed) or PRNGKey(seed)), "
                     f"got an array of {key.dtype} {key.shape}")
  return jax.random.wrap_key_data(key)


def _acts(model: Model, seen: jax.Array) -> dict[str, jax.Array]:
  acts = dict(model(seen))
  acts["input"] = seen
  return acts


def penalty(params, pictures: jax.Array, settings: Settings) -> jax.Array:
  """The parameterization's own ``param.penalty(params)`` plus the weighted penalties
  (``l1``, ``total_variation``, ``blur``) of ``pictures`` ``[B, H, W, 3]``, summed over the
  B images; 0 when there are none."""
  total = settings.param.penalty(params)
  acts = {"input": pictures}
  for weight, objective in ((settings.l1, objectives_lib.l1()),
                            (settings.total_variation, objectives_lib.total_variation()),
                            (settings.blur, objectives_lib.blur_penalty())):
    if weight is not None:
      total = total + weight * jnp.sum(objective(acts))
  return total


def _loss(params, model, objective, settings, key):
  pictures = settings.param.to_image(params)
  seen = settings.transforms(key, pictures, settings.transform_strength)
  score = jnp.sum(objective(_acts(model, seen)))
  return penalty(params, pictures, settings) - score, score


def init(key: jax.Array, model: Model, objective, settings: Settings) -> State:
  """The initial `State` of one unit: parameters drawn from ``split(key)[0]``, the loop's
  keys from ``split(key)[1]``. ``model`` and ``objective`` are unused (kept so that
  ``init`` and ``step`` take the same arguments)."""
  del model, objective
  init_key, loop_key = jax.random.split(as_key(key))
  params = settings.param.init(init_key)
  return State(params, settings.optimizer.init(params), loop_key, jnp.zeros((), jnp.int32))


def step(state: State, model: Model, objective, settings: Settings) -> tuple[State, jax.Array]:
  """One optimization step: ``(new state, score)``, the score being the objective summed
  over the B images as seen through this step's random transforms (before the update)."""
  key, sub = jax.random.split(state.key)
  grads, score = jax.grad(_loss, has_aux=True)(state.params, model, objective, settings, sub)
  updates, opt_state = settings.optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  if settings.projection is not None:
    params = settings.projection(params, grads, state.step + 1)
  return State(params, opt_state, key, state.step + 1), score


def images(state: State, settings: Settings) -> jax.Array:
  """The images of ``state``, ``[B, H, W, 3]`` in [0, 1]."""
  return settings.param.to_image(state.params)


def score(state: State, model: Model, objective, settings: Settings) -> jax.Array:
  """The objective of ``state``'s images summed over B, seen through the transforms at
  strength 0 (deterministic: padding and centre crops, no scale or rotation), so it sees
  activations of the same shape as the loop; penalties not included."""
  pictures = images(state, settings)
  seen = settings.transforms(jax.random.key(0), pictures, jnp.float32(0.0))
  return jnp.sum(objective(_acts(model, seen)))


def run(key: jax.Array, model: Model, objective, settings: Settings, steps: int
        ) -> tuple[State, jax.Array]:
  """``init`` then ``steps`` steps under ``lax.scan``: ``(final state, scores [steps])``."""
  def body(state, _):
    return step(state, model, objective, settings)
  return jax.lax.scan(body, init(key, model, objective, settings), None, length=steps)


# -- named numeric settings (sweep axes, per-unit hyperparameters) ---------------------------
SHORTHANDS = {"learning_rate": "optimizer.learning_rate", "decay": "param.decay",
              "sd": "param.sd"}


def _numeric_paths(value, prefix: str = "") -> list[str]:
  paths = []
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    for f in dataclasses.fields(value):
      if f.metadata.get("static"):
        continue
      paths += _numeric_paths(getattr(value, f.name), f"{prefix}{f.name}.")
  elif isinstance(value, (tuple, list)):
    for i, v in enumerate(value):
      paths += _numeric_paths(v, f"{prefix}{i}.")
  elif isinstance(value, dict):
    for k, v in value.items():
      paths += _numeric_paths(v, f"{prefix}{k}.")
  elif isinstance(value, (np.ndarray, np.generic, jax.Array)) and np.ndim(value) == 0:
    paths.append(prefix[:-1])
  return paths


def setting_names(settings: Settings) -> list[str]:
  """The names `setting` accepts for ``settings``: every traced scalar by its dotted path
  (``optimizer.learning_rate``, ``param.decay``, ``transforms.transforms.0.value``...), the
  shorthands ``learning_rate``, ``decay``, ``sd`` where they apply, and the penalty weights
  ``l1``, ``total_variation``, ``blur`` (off by default)."""
  paths = _numeric_paths(settings)
  names = [short for short, path in SHORTHANDS.items() if path in paths]
  extra = [n for n in ("l1", "total_variation", "blur") if n not in paths]
  return names + paths + extra


def setting(settings: Settings, name: str, value) -> Settings:
  """A copy of ``settings`` with the numeric setting ``name`` (see `setting_names`) set to
  ``value`` (a number, or an array such as ``[K]`` values for K units)."""
  valid = setting_names(settings)
  if name not in valid:
    raise FvjaxError(f"unknown setting {name!r} for these settings (parameterization "
                     f"{type(settings.param).__name__}, optimizer "
                     f"{type(settings.optimizer).__name__}); valid: {', '.join(valid)}")
  path = SHORTHANDS.get(name, name).split(".")
  if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
    value = np.float32(value)
  return _replace_path(settings, path, value)


def _replace_path(node, path: list[str], value):
  if not path:
    return value
  head, rest = path[0], path[1:]
  if isinstance(node, (tuple, list)):
    i = int(head)
    items = list(node)
    items[i] = _replace_path(items[i], rest, value)
    return type(node)(items)
  if isinstance(node, dict):
    return {**node, head: _replace_path(node[head], rest, value)}
  return dataclasses.replace(node, **{head: _replace_path(getattr(node, head), rest, value)})


def broadcast(settings: Settings, count: int, values: dict[str, Any] | None = None
              ) -> Settings:
  """``settings`` with every traced leaf given a leading axis of ``count`` units, for
  ``vmap`` over units; ``values`` maps setting names (see `setting_names`) to ``[count]``
  arrays, one value per unit."""
  values = dict(values or {})
  for name in values:  # give settings that are off (None) a leaf, and check every name
    settings = setting(settings, name, np.float32(0.0))
  batched = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (count, *np.shape(x))),
                         settings)
  for name, value in values.items():
    if isinstance(value, (str, bytes)) or value is None:
      raise FvjaxError(f"setting {name!r} must be a number or [{count}] numbers, got {value!r}")
    if not isinstance(value, jax.core.Tracer):
      with np.errstate(over="ignore"):
        concrete = np.asarray(value, np.float32)
      if not np.all(np.isfinite(concrete)):
        raise FvjaxError(f"setting {name!r} must be finite (within float32), got {value!r}")
    value = jnp.asarray(value, jnp.float32)
    if value.ndim == 0:
      value = jnp.broadcast_to(value, (count,))
    if value.shape != (count,):
      raise FvjaxError(f"setting {name!r} has shape {value.shape}; expected a number or "
                       f"[{count}] (one value per unit)")
    batched = _replace_path(batched, SHORTHANDS.get(name, name).split("."), value)
  return batched


def check(model: Model, objective, settings: Settings) -> None:
  """Raise `FvjaxError` when ``objective`` or ``settings`` do not fit ``model`` (layers,
  unit indices, image and transformed sizes), before anything is compiled."""
  if not isinstance(model, Model):
    raise FvjaxError(f"expected an fvjax.Model, got {type(model).__name__}")
  if not isinstance(settings, Settings):
    raise FvjaxError(f"settings must be fvjax.optvis.Settings(...), got {settings!r}")
  if not isinstance(settings.param, param_lib.ImageParam):
    raise FvjaxError(f"param must be an fvjax.param parameterization, got {settings.param!r}")
  if not isinstance(settings.transforms, transforms_lib.Transform):
    raise FvjaxError(f"transforms must be an fvjax transform, got {settings.transforms!r}")
  if not isinstance(settings.optimizer, Optimizer):
    as_optimizer(settings.optimizer)
  shape = jax.eval_shape(settings.param.to_image,
                         jax.eval_shape(settings.param.init, jax.random.key(0))).shape
  size = tuple(shape[1:3])
  model.check_size(min(size))
  seen = settings.transforms.output_size(size)
  if min(seen) < model.min_size and not model.fixed_size:
    raise FvjaxError(f"the transforms turn {size[0]}x{size[1]} images into {seen[0]}x{seen[1]}, "
                     f"smaller than model {model.name!r} can take (minimum {model.min_size})")
  units, stacked, _ = objectives_lib.stack(objective)
  stacked.check(model)
  # The objective meets the model's activations at the size the loop feeds it (abstract
  # evaluation, no FLOPs): checks that depend on it (a neuron's position) fail here. The
  # model is traced once; only when this fails is it traced alone, so that a model that
  # cannot take these images gets its own message rather than the objective's.
  seen_images = jax.ShapeDtypeStruct((shape[0], *seen, 3), jnp.float32)
  try:
    _, acts = check_traced(
        lambda m, o, x: (jax.vmap(lambda one: one(_acts(m, x)), axis_size=units)(o),
                         _acts(m, x)),
        model, stacked, seen_images, what=f"the objective on model {model.name!r}")
  except FvjaxError:
    check_input(model, seen, f"the {seen[0]}x{seen[1]} images the transforms make of "
                             f"{size[0]}x{size[1]} renders")
    raise
  check_memory(model, acts, units, size)


def check_input(model: Model, size: tuple[int, int], what: str) -> None:
  """Raise `FvjaxError` when ``model`` fails on ``[B, *size, 3]`` images (``what`` says
  which images, for the message), suggesting ``fixed_size=True`` for a model that runs only
  at its ``input_size``. Traced with ``jax.eval_shape`` (no FLOPs, cached per shape)."""
  try:
    jax.eval_shape(model.apply, model.params,
                   jax.ShapeDtypeStruct((1, *size, 3), jnp.float32))
  except FvjaxError as e:
    raise FvjaxError(without_jax_notes(e)) from None
  except Exception as e:
    hint = (f"; a model that takes only its input size needs fixed_size=True "
            f"(fvjax.Model.from_fn / from_flax / from_nnx), which resizes every image it sees "
            f"to {model.input_size[0]}x{model.input_size[1]}" if not model.fixed_size else "")
    raise FvjaxError(f"model {model.name!r} (input size {model.input_size[0]}x"
                     f"{model.input_size[1]}) fails on {what}: {type(e).__name__}: "
                     f"{first_line(e)}{hint}") from e


def check_traced(fn: Callable[..., Any], *args, what: str, **kwargs) -> Any:
  """Trace ``fn(*args)`` (a jitted function: its trace is cached, so the call that follows
  reuses it; anything else: ``jax.eval_shape``, whose shapes are returned) and turn an error
  into one `FvjaxError` naming ``what`` failed, before anything runs."""
  try:
    return (fn.trace(*args, **kwargs) if hasattr(fn, "trace")
            else jax.eval_shape(fn, *args, **kwargs))
  except FvjaxError as e:
    raise FvjaxError(without_jax_notes(e)) from None
  except Exception as e:
    raise FvjaxError(f"{what} cannot be traced, so nothing was optimized: "
                     f"{type(e).__name__}: {first_line(e)}") from e


def memory_limit() -> tuple[int, str]:
  """``(bytes, what)``: this process's first device's memory limit, or the host's physical
  memory on CPU (``jax.local_devices``: another host's devices report nothing here)."""
  device = jax.local_devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"]), f"{device.device_kind} memory"
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "the host's memory"


def check_memory(model: Model, acts, units: int, size) -> None:
  """Refuse a render whose activations cannot fit: a lower bound of its memory is twice the
  activations of all K units' images (the forward pass kept for the backward pass, and their
  gradients); `FvjaxError` when that alone exceeds `memory_limit`."""
  per_unit = sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree.leaves(acts))
  need = 2 * units * per_unit
  limit, what = memory_limit()
  if need > limit:
    raise FvjaxError(
        f"image size {size[0]}x{size[1]} with {units} unit(s) needs at least "
        f"{need / 2**30:.1f} GiB for model {model.name!r}'s activations, more than "
        f"{what} ({limit / 2**30:.1f} GiB); use a smaller size or fewer units per call")
