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

from fvjax._src.errors import FvjaxError

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
  """

  apply: ApplyFn
  params: Any
  layers: Mapping[str, tuple[int, ...]]
  input_size: tuple[int, int] = (224, 224)
  min_size: int = 1
  labels: tuple[str, ...] | None = None
  name: str = "model"

  def __call__(self, images: jax.Array) -> Activations:
    """Activations of ``images`` ``[B, H, W, 3]`` in [0, 1]."""
    return dict(self.apply(self.params, images))

  # -- pytree protocol: params traced, the rest static ---------------------------------
  def tree_flatten(self):
    static = (self.apply, tuple(self.layers.items()), self.input_size, self.min_size,
              self.labels, self.name)
    return (self.params,), static

  @classmethod
  def tree_unflatten(cls, static, children):
    apply, layers, input_size, min_size, labels, name = static
    return cls(apply, children[0], dict(layers), input_size, min_size, labels, name)

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
    if size < self.min_size:
      raise FvjaxError(
          f"image size {size} is smaller than model {self.name!r} can take "
          f"(minimum {self.min_size}, trained at {self.input_size[0]})")

  # -- constructors ---------------------------------------------------------------------
  @classmethod
  def from_fn(cls, fn: ApplyFn, params: Any, *, input_size: tuple[int, int] = (224, 224),
              min_size: int = 1, labels: Sequence[str] | None = None,
              name: str = "model") -> "Model":
    """Wrap a pure ``fn(params, images) -> {layer: activation}``.

    The layer table is read from ``jax.eval_shape`` at ``input_size`` (no FLOPs spent).
    """
    labels = None if labels is None else tuple(labels)
    if (not isinstance(input_size, (tuple, list)) or len(input_size) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
               for v in input_size)):
      raise FvjaxError(f"input_size must be (height, width), two positive integers, got "
                       f"{input_size!r}")
    input_size = (int(input_size[0]), int(input_size[1]))
    layers = _layer_shapes(fn, params, input_size)
    if labels is not None and "logits" in layers and layers["logits"][-1] != len(labels):
      raise FvjaxError(f"model {name!r} has {layers['logits'][-1]} logits but "
                       f"{len(labels)} labels")
    return cls(fn, params, layers, tuple(input_size), min_size, labels, name)

  @classmethod
  def from_flax(cls, module, variables: Any, *, input_size: tuple[int, int] = (224, 224),
                min_size: int = 1, labels: Sequence[str] | None = None,
                name: str | None = None, logits: bool = True, **apply_kwargs) -> "Model":
    """Wrap a Flax linen ``module`` and its ``variables``.

    Every submodule's output is captured (``capture_intermediates``) under its path
    joined by ``/`` (e.g. ``"block1/conv"``), values sown into ``"intermediates"`` under
    their own names, and the module's output as ``"logits"`` when ``logits`` is true.
    ``apply_kwargs`` are passed to every call (e.g. ``train=False`` so BatchNorm uses its
    running statistics).
    """

    if not hasattr(module, "apply") or not callable(module.apply):
      raise FvjaxError(f"from_flax takes a Flax linen module, got {type(module).__name__}")
    apply = FlaxApply(module, bool(logits), tuple(sorted(apply_kwargs.items())))
    return cls.from_fn(apply, variables, input_size=input_size, min_size=min_size,
                       labels=labels, name=name or type(module).__name__)


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


def _flatten_intermediates(tree: Mapping[str, Any], prefix: str = "") -> Activations:
  acts: Activations = {}
  for key, value in tree.items():
    if key == "__call__":
      acts[prefix[:-1]] = value[0]
    elif isinstance(value, Mapping):
      acts.update(_flatten_intermediates(value, f"{prefix}{key}/"))
    else:  # a sown tuple of values: keep the last one under the key's own name
      acts[f"{prefix}{key}"] = value[-1]
  acts.pop("", None)  # the top-level module's own output is "logits"
  return acts


def _layer_shapes(fn: ApplyFn, params: Any, input_size: tuple[int, int]):
  """Layer name -> activation shape, in the order ``fn`` produces them (pytrees sort keys)."""
  order: list[str] = []

  def record_order(params, images):
    acts = fn(params, images)
    order.extend(acts)
    return dict(acts)

  images = jax.ShapeDtypeStruct((1, *input_size, 3), jnp.float32)
  shapes = jax.eval_shape(record_order, params, images)
  return {name: tuple(shapes[name].shape[1:]) for name in order}
