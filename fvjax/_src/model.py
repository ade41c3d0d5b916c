"""The model value: a pure function of (params, images) returning named activations.

A `Model` is a pytree whose only traced child is `params`; the apply function, the layer
table, the input size and the labels are static. Calling a model on images
``[B, H, W, 3]`` with values in ``[0, 1]`` returns ``{layer_name: activation}``, NHWC for
convolutional layers, plus ``"logits"`` ``[B, num_classes]`` for classifiers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError, first_line, without_jax_notes

Activations = dict[str, jax.Array]
ApplyFn = Callable[[Any, jax.Array], Mapping[str, jax.Array]]


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class Model:
  """A vision model as a pure function with its metadata.

  Attributes:
    apply: ``apply(params, images) -> {layer: activation}``; images ``[B, H, W, 3]`` in [0, 1].
    params: the weights (a pytree of arrays); the only traced part of the model.
    layers: layer name -> activation shape without the batch axis, at ``input_size``.
    input_size: the ``(H, W)`` the model was trained on.
    min_size: the smallest square input side the model accepts.
    labels: class names in the order of ``logits``, or None for non-classifiers.
    name: a short name used in messages and result files.
    fixed_size: the model takes only ``input_size`` images; ``apply`` resizes every image
      to it (bilinear), so any image size and the default transforms work.
  """

  apply: ApplyFn
  params: Any
  layers: Mapping[str, tuple[int, ...]]
  input_size: tuple[int, int] = (224, 224)
  min_size: int = 1
  labels: tuple[str, ...] | None = None
  name: str = "model"
  fixed_size: bool = False

  def __call__(self, images: jax.Array) -> Activations:
    """Activations of ``images`` ``[B, H, W, 3]`` in [0, 1]."""
    return dict(self.apply(self.params, images))

  # -- pytree protocol: params traced, the rest static ---------------------------------
  def tree_flatten(self):
    static = (self.apply, tuple(self.layers.items()), self.input_size, self.min_size,
              self.labels, self.name, self.fixed_size)
    return (self.params,), static

  @classmethod
  def tree_unflatten(cls, static, children):
    apply, layers, input_size, min_size, labels, name, fixed_size = static
    return cls(apply, children[0], dict(layers), input_size, min_size, labels, name,
               fixed_size)

  def replace(self, **changes) -> "Model":
    return dataclasses.replace(self, **changes)

  @property
  def num_classes(self) -> int | None:
    shape = self.layers.get("logits")
    return None if shape is None else shape[-1]

  def layer_shape(self, layer: str) -> tuple[int, ...]:
    """Activation shape of ``layer`` (no batch axis); a clear error lists the valid names."""
    if layer not in self.layers:
      raise FvjaxError(
          f"unknown layer {layer!r} for model {self.name!r}; valid layers: "
          + ", ".join(self.layers))
    return tuple(self.layers[layer])

  def check_size(self, size: int) -> None:
    if size < self.min_size and not self.fixed_size:
      raise FvjaxError(
          f"image size {size} is smaller than model {self.name!r} can take "
          f"(minimum {self.min_size}, trained at {self.input_size[0]})")

  # -- constructors ---------------------------------------------------------------------
  @classmethod
  def from_fn(cls, fn: ApplyFn, params: Any, *, input_size: tuple[int, int] = (224, 224),
              min_size: int = 1, labels: Sequence[str] | None = None,
              name: str = "model", layout: str = "NHWC", fixed_size: bool = False
              ) -> "Model":
    """Wrap a pure ``fn(params, images) -> {layer: activation}``.

    ``images`` are ``[B, H, W, 3]`` in [0, 1]; ``fn`` must return a dict (a ``Mapping``)
    from string names to arrays whose first axis is the batch B. What it returns is checked
    here with ``jax.eval_shape`` (no FLOPs spent): the layer table is read at ``input_size``,
    and an output that is not such a dict raises `FvjaxError` naming what it is.

    Args:
      layout: ``"NHWC"`` (the default) or ``"NCHW"``: with ``"NCHW"`` every 4-D activation
        ``[B, C, H, W]`` is transposed to ``[B, H, W, C]``. With ``"NHWC"`` a 4-D activation
        that looks NCHW is refused (see `nchw_like`), suggesting ``layout="NCHW"``.
      fixed_size: the model takes only ``input_size`` images (e.g. a ``Dense`` layer after a
        flatten): every image it is given is resized to ``input_size`` first
        (``jax.image.resize``, bilinear, antialiased when shrinking), in the optimization
        loop, the final evaluation and everywhere else the model is applied, so any render
        size and the default transforms work (Lucent's ``fixed_image_size``).
    """
    if layout not in ("NHWC", "NCHW"):
      raise FvjaxError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
    if not isinstance(fixed_size, bool):
      raise FvjaxError(f"fixed_size must be True or False, got {fixed_size!r}")
    if not callable(fn):
      raise FvjaxError(f"from_fn takes a function fn(params, images) -> {{layer: activation}}, "
                       f"got {type(fn).__name__}")
    input_size = _size_pair(input_size)
    labels = None if labels is None else tuple(labels)
    apply = fn
    if layout == "NCHW" or fixed_size:
      apply = Adapted(fn, layout == "NCHW", input_size if fixed_size else None)
    layers = _layer_shapes(apply, params, input_size, name)
    if layout == "NHWC":
      _check_layout(fn, params, input_size, layers, name)
    if labels is not None and "logits" in layers and layers["logits"][-1] != len(labels):
      raise FvjaxError(f"model {name!r} has {layers['logits'][-1]} logits but "
                       f"{len(labels)} labels")
    return cls(apply, params, layers, input_size, min_size, labels, name, fixed_size)

  @classmethod
  def from_flax(cls, module, variables: Any, *, input_size: tuple[int, int] = (224, 224),
                min_size: int = 1, labels: Sequence[str] | None = None,
                name: str | None = None, logits: bool = True, layout: str = "NHWC",
                fixed_size: bool = False, **apply_kwargs) -> "Model":
    """Wrap a Flax linen ``module`` and its ``variables``.

    Every submodule's output is captured (``capture_intermediates``) under its path
    joined by ``/`` (e.g. ``"block1/conv"``), values sown into ``"intermediates"`` under
    their own names, and the module's output as ``"logits"`` when ``logits`` is true;
    captured values that are not arrays (a submodule returning a tuple) are left out.
    ``apply_kwargs`` are passed to every call (e.g. ``train=False`` so BatchNorm uses its
    running statistics). ``layout`` and ``fixed_size`` are as in `from_fn`. A ``flax.nnx``
    module raises `FvjaxError` pointing to `from_nnx`.
    """
    if _is_nnx(module):
      raise FvjaxError(f"{type(module).__name__} is a flax.nnx module; from_flax takes a "
                       f"linen module and its variables: use fvjax.Model.from_nnx(module, "
                       f"input_size=...) for nnx")
    if not hasattr(module, "apply") or not callable(module.apply):
      raise FvjaxError(f"from_flax takes a Flax linen module, got {type(module).__name__}")
    apply = FlaxApply(module, bool(logits), tuple(sorted(apply_kwargs.items())))
    return cls.from_fn(apply, variables, input_size=input_size, min_size=min_size,
                       labels=labels, name=name or type(module).__name__, layout=layout,
                       fixed_size=fixed_size)

  @classmethod
  def from_nnx(cls, module, *, input_size: tuple[int, int] = (224, 224), min_size: int = 1,
               labels: Sequence[str] | None = None, name: str | None = None,
               logits: bool = True, layout: str = "NHWC", fixed_size: bool = False
               ) -> "Model":
    """Wrap a ``flax.nnx`` module called as ``module(images)``, in inference mode.

    The module is viewed with ``deterministic=True`` and ``use_running_average=True`` on
    every submodule that has them (``nnx.view``: Dropout off, BatchNorm on its running
    statistics; the module you pass is not changed) and split into a graph definition
    (static) and its state: the parameters and batch statistics are the Model's traced
    ``params`` (an ``nnx.State``), RNG streams are left out (a submodule drawing random
    numbers at inference gets a fixed key). Each call captures (``nnx.capture``) every
    submodule's output under its attribute path joined by ``/`` (``"conv1"``,
    ``"block2/conv"``, ``"layers/0"``), another public method's output as ``path/method``,
    values sown with ``self.sow(nnx.Intermediate, name, value)`` as ``path/name`` (the last
    one sown), and the module's output as ``"logits"`` when ``logits`` is true. ``layout``
    and ``fixed_size`` are as in `from_fn`.
    """
    from fvjax._src import nnx as nnx_lib
    apply, params = nnx_lib.split(module, logits=bool(logits))
    return cls.from_fn(apply, params, input_size=input_size, min_size=min_size,
                       labels=labels, name=name or type(module).__name__, layout=layout,
                       fixed_size=fixed_size)


def _is_nnx(module) -> bool:
  try:
    from flax import nnx
  except ImportError:  # pragma: no cover - flax is a dependency
    return False
  return isinstance(module, nnx.Module)


def _size_pair(size) -> tuple[int, int]:
  """``(H, W)``, two positive integers (bools and floats refused), as a tuple of ints."""
  if (not isinstance(size, (tuple, list)) or len(size) != 2
      or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
             for v in size)):
    raise FvjaxError(f"input_size must be (height, width), two positive integers, got "
                     f"{size!r}")
  pair = (int(size[0]), int(size[1]))
  return pair


@dataclasses.dataclass(frozen=True)
class Adapted:
  """``fn`` with its images resized to ``resize_to`` (fixed-size models) and its 4-D
  activations transposed from NCHW to NHWC (``nchw``); compared by value."""
  fn: ApplyFn
  nchw: bool = False
  resize_to: tuple[int, int] | None = None

  def __call__(self, params, images):
    if self.resize_to is not None and tuple(images.shape[1:3]) != self.resize_to:
      images = jax.image.resize(images, (images.shape[0], *self.resize_to, images.shape[3]),
                                "bilinear")
    acts = self.fn(params, images)
    if not self.nchw or not isinstance(acts, Mapping):
      return acts
    return {k: jnp.transpose(v, (0, 2, 3, 1)) if getattr(v, "ndim", 0) == 4 else v
            for k, v in acts.items()}


@dataclasses.dataclass(frozen=True)
class FlaxApply:
  """``apply(variables, images) -> activations`` of a linen module, compared by value (the
  module's fields, the keyword arguments): two wrappers of equal modules share one compiled
  loop."""
  module: Any
  logits: bool = True
  apply_kwargs: tuple[tuple[str, Any], ...] = ()

  def __call__(self, variables, images):
    out, state = self.module.apply(variables, images, capture_intermediates=True,
                                   mutable=["intermediates"], **dict(self.apply_kwargs))
    acts = _flatten_intermediates(state["intermediates"])
    if self.logits:
      acts["logits"] = out
    return acts


def _flatten_intermediates(tree: Mapping[str, Any], prefix: str = "",
                           call: str = "__call__") -> Activations:
  """``{path/name: array}`` of a tree of captured values: a module's ``call`` output under
  its path (the first call), a sown tuple under its own name (the last value); values
  that are not arrays are left out."""
  acts: Activations = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      acts.update(_flatten_intermediates(value, f"{prefix}{key}/", call))
      continue
    value = value[0] if key == call else value[-1]
    if isinstance(value, (jax.Array, np.ndarray)):
      acts[prefix[:-1] if key == call else f"{prefix}{key}"] = value
  acts.pop("", None)  # the top-level module's own output is "logits"
  return acts


# -- what a model function returns -------------------------------------------------------
def _layer_shapes(fn: ApplyFn, params: Any, input_size: tuple[int, int], name: str):
  """Layer name -> activation shape (no batch axis) at ``input_size``, in the order ``fn``
  produces them (pytrees sort keys); `FvjaxError` unless ``fn`` returns a dict of arrays
  with string keys whose first axis is the batch (checked on a batch of 2)."""
  order: list[str] = []
  problems: list[str] = []  # raised after tracing (an error raised inside gets JAX's notes)

  def record_order(params, images):
    acts = fn(params, images)
    problem = _output_problem(acts, name)
    if problem:
      problems.append(problem)
      return {}
    order.extend(acts)
    return dict(acts)

  images = jax.ShapeDtypeStruct((2, *input_size, 3), jnp.float32)
  try:
    shapes = jax.eval_shape(record_order, params, images)
  except FvjaxError as e:  # without the notes JAX appends to an error raised while tracing
    raise FvjaxError(without_jax_notes(e)) from None
  except Exception as e:  # the model's own error, at its own input size
    raise FvjaxError(f"model {name!r} fails on [2, {input_size[0]}, {input_size[1]}, 3] "
                     f"images (its input_size): {type(e).__name__}: {first_line(e)}") from e
  if problems:
    raise FvjaxError(problems[0])
  for key in order:
    if shapes[key].ndim == 0 or shapes[key].shape[0] != 2:
      raise FvjaxError(f"model {name!r}: activation {key!r} has shape "
                       f"{tuple(shapes[key].shape)} for a batch of 2 images; its first axis "
                       f"must be the batch")
  return {key: tuple(shapes[key].shape[1:]) for key in order}


def _output_problem(acts, name: str) -> str | None:
  """What is wrong with a model function's output ``acts`` (None: a dict of arrays with
  string keys)."""
  if not isinstance(acts, Mapping):
    kind = type(acts).__name__
    count = f" of {len(acts)} items" if isinstance(acts, (list, tuple)) else ""
    if isinstance(acts, (jax.Array, np.ndarray)):
      kind, count = "single array", f" of shape {tuple(acts.shape)}"
    return (f"model {name!r}: the function must return a dict {{layer name: activation}}, "
            f"got a {kind}{count}; e.g. return dict(zip(names, outputs))")
  bad = [k for k in acts if not isinstance(k, str)]
  if bad:
    return f"model {name!r}: layer names must be strings, got {bad[0]!r}"
  for key, value in acts.items():
    if not isinstance(value, (jax.Array, np.ndarray)):
      return (f"model {name!r}: activation {key!r} must be an array [B, ...], got a "
              f"{type(value).__name__}")
  return None


def nchw_like(shape: Sequence[int], input_size: tuple[int, int],
              doubled: Sequence[int] | None = None) -> bool | None:
  """Whether a 4-D activation of ``shape`` ``(a, b, c)`` (no batch axis) at ``input_size``
  ``(H, W)`` looks NCHW.

  A pair of axes "has the input's aspect" when ``round(first * W / H) == second`` (for a
  square input: the two are equal). When exactly one of the pairs ``(a, b)`` and ``(b, c)``
  has it, that pair is the spatial one: NCHW when it is ``(b, c)`` (e.g. ``(8, 32, 32)``,
  ``(512, 1, 1)``), NHWC when it is ``(a, b)``. When both or neither have it (e.g.
  ``(8, 8, 8)``), ``doubled``, the activation's shape at ``(2H, 2W)``, decides: spatial axes
  change with the input, so NCHW when ``c`` changes and ``a`` does not. Returns None when
  ``doubled`` is needed but not given (the caller then evaluates it), and False (NHWC
  assumed) when nothing changes or the model does not run at ``(2H, 2W)``
  (``doubled=()``).
  """
  a, b, c = shape
  h, w = input_size
  first, last = round(a * w / h) == b, round(b * w / h) == c
  if first != last:
    return last
  if doubled is None:
    return None
  if len(doubled) != 3:
    return False
  return doubled[2] != c and doubled[0] == a


def _check_layout(fn, params, input_size, layers, name) -> None:
  four = {k: v for k, v in layers.items() if len(v) == 3}
  verdicts = {k: nchw_like(v, input_size) for k, v in four.items()}
  if any(v is None for v in verdicts.values()):  # ambiguous shapes: run at twice the size
    big = (2 * input_size[0], 2 * input_size[1])
    try:
      doubled = jax.eval_shape(lambda p, x: dict(fn(p, x)), params,
                               jax.ShapeDtypeStruct((2, *big, 3), jnp.float32))
      doubled = {k: tuple(v.shape[1:]) for k, v in doubled.items()}
    except Exception:  # e.g. a fixed-size model: the shapes at input_size are all there is
      doubled = {}
    verdicts = {k: nchw_like(four[k], input_size, doubled.get(k, ())) if v is None else v
                for k, v in verdicts.items()}
  for key, looks_nchw in verdicts.items():
    if looks_nchw:
      raise FvjaxError(
          f"model {name!r}: activation {key!r} has shape {four[key]} (no batch axis) for "
          f"{input_size[0]}x{input_size[1]} images, which looks like NCHW [B, C, H, W] (its "
          f"last axis is spatial, its first is not); fvjax reads [B, H, W, C]: pass "
          f"layout='NCHW' to transpose every 4-D activation, or transpose in the function")
