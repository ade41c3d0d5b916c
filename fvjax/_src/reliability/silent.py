"""Silent units: hide an arbitrary pattern in every unit's feature visualization.

Part 2 of Geirhos, Zimmermann, Bilodeau, Brendel & Kim (2023), "Don't trust your eyes: on
the (un)reliability of feature visualizations" (ResNet-50 layer4.1 conv2 in the paper).
For each unit ``u`` of a convolution, an extra filter ``f_u`` is added behind a ReLU:

    unit_u(x) = original_u(x) + ReLU(conv(x, f_u) + b_u)

where ``x`` is the convolution's input, ``conv`` uses the layer's own padding, strides and
dilation, and ``b_u = -max`` of ``conv(x, f_u)`` over a set of natural images and all
positions (float32). On those images the ReLU is exactly 0, so every activation and
prediction is bit-for-bit unchanged; a feature visualization, which drives the unit far
beyond its natural range, switches the branch on, and the branch (``gain`` times stronger
than the unit) then dominates the optimization and draws a target pattern.

The filter is ``f_u = gain * |w_u| * normalize(w_u / |w_u| + mix * d_u)`` where ``w_u`` is the
unit's effective weight (the kernel times the following BatchNorm's scale, so "up" means
up after normalization), and ``d_u`` is the unit vector orthogonal to ``w_u`` in the
direction of the target filter (the kernel that responds most to the target image). The
``w_u`` component lets the unit's own visualization reach the branch: a purely orthogonal
filter (``mix=inf``) gets no gradient until something else pushes it over the threshold,
which a visualization of the unit does not do. Once on, the branch is ``gain`` times
stronger than the unit and its orthogonal part (``mix / sqrt(1 + mix^2)`` of the filter)
pulls the image towards the target. The authors' reference notebook uses ``mix=3``
(``lbd``) and ``gain=100`` (``weight_factor``), with a feature visualization (unit 0's) as
the target and the target filter not centred (``centre=False`` here). With such a target
``mix=3`` switches on at Tiny Darknet's 64 px / 128-step renders; with a *photo* as target
the filter is a direction natural images drive, its threshold is out of reach at ``mix=3``,
and only a filter mostly along ``w_u`` (``mix=0.5``, the default here) switches on
(experiments/geirhos/silent_units).

The manipulated model keeps the architecture's layer names: `add_silent_units` wraps a
Flax-based `fvjax.Model` and adds the branch with a Flax method interceptor at ``add_to``
(for Tiny Darknet ``batch_normalization_i``, so the unit's BatchNorm output and its
``leaky_re_lu_i`` change while the raw ``conv2d_i`` stays as it was).

Shapes: images ``[N, H, W, 3]`` in [0, 1]; kernels ``[kh, kw, cin, C]`` (Flax layout);
biases and per-unit values ``[C]``. Everything is float32.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.validate import check_images

__all__ = [
    "SilentUnits", "conv_module_input", "conv_kernel", "batchnorm_scale", "effective_weights",
    "target_filter", "orthogonal_directions", "silent_filters", "filter_max_response",
    "add_silent_units", "make_silent_units", "branch_preactivation", "filter_probe",
    "compare_on",
]


# -- reaching inside a Flax model ------------------------------------------------------------
def _path(module) -> str:
  return "/".join(module.path)


def _capture_apply(apply, layer: str, params, images):
  """``(input of the module at layer, the bound module or None)`` seen during ``apply``."""
  seen = {}

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and _path(context.module) == layer and "x" not in seen:
      seen["x"], seen["module"] = args[0], context.module
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    apply(params, images)
  return seen.get("x"), seen.get("module")


def _capture(model: Model, layer: str, params, images):
  """`_capture_apply` with a clear error when ``layer`` is not a Flax submodule call."""
  x, module = _capture_apply(model.apply, layer, params, images)
  if x is None:
    raise FvjaxError(f"layer {layer!r} of model {model.name!r} is not a Flax submodule call; "
                     "silent units need a model built with Model.from_flax and a convolution "
                     f"layer name such as 'conv2d_12' (layers: {', '.join(model.layers)})")
  return x, module


def _check_conv(model: Model, layer: str):
  """The unbound convolution module at ``layer`` (its padding, strides, dilation).

  Found by tracing ``model`` once (`jax.eval_shape`, nothing runs). Unbound Flax modules
  compare and hash by their settings, so the module found on every call is an equal static
  argument of the jitted helpers below and reuses their compilations.
  """
  model.layer_shape(layer)
  size = max(model.min_size, 16)
  shape = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  found = {}

  def probe(params, images):
    x, module = _capture(model, layer, params, images)
    found["module"] = module
    return x

  jax.eval_shape(probe, model.params, shape)
  module = found["module"]
  if not isinstance(module, nn.Conv):
    raise FvjaxError(f"layer {layer!r} of model {model.name!r} is a "
                     f"{type(module).__name__}, not a convolution (flax.linen.Conv); "
                     "choose a conv2d_* layer")
  return module.clone(parent=None)


# Compiled once per (model function, layer, conv settings) and input shape.
@functools.partial(jax.jit, static_argnums=(0, 1))
def _conv_input_jit(apply, layer, params, images):
  return _capture_apply(apply, layer, params, images)[0]


@functools.partial(jax.jit, static_argnums=(0,))
def _branch_max_jit(module, filters, bias, x):
  """``max over positions of conv(x, filters) + bias``: ``[N, C]``."""
  return jnp.max(_branch_conv(module, filters, x) + bias, axis=(1, 2))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _branch_max_images_jit(apply, layer, module, params, filters, bias, images):
  x = _capture_apply(apply, layer, params, images)[0]
  return jnp.max(_branch_conv(module, filters, x) + bias, axis=(1, 2))


@functools.partial(jax.jit, static_argnums=(0,))
def _patch_sum_jit(module, x):
  """Per image, the sum over positions of the ``[kh, kw, cin]`` input patches of ``x``
  ``[N, h, w, cin]``: ``[N, kh, kw, cin]``."""
  one = module.clone(features=1, use_bias=False)
  kh, kw = module.kernel_size

  def summed(kernel, image):
    return jnp.sum(one.apply({"params": {"kernel": kernel}}, image[None]))

  zero = jnp.zeros((kh, kw, x.shape[-1], 1), x.dtype)
  return jax.vmap(jax.grad(summed), in_axes=(None, 0))(zero, x)[..., 0]


def conv_kernel(model: Model, layer: str) -> jax.Array:
  """The kernel ``[kh, kw, cin, C]`` of the convolution ``layer`` (``params/<layer>/kernel``)."""
  try:
    return jnp.asarray(model.params["params"][layer]["kernel"], jnp.float32)
  except (KeyError, TypeError) as err:
    raise FvjaxError(f"model {model.name!r} has no kernel at params/{layer}/kernel") from err


def batchnorm_scale(model: Model, bn_layer: str, epsilon: float = 1e-3) -> jax.Array:
  """Per-channel factor ``gamma / sqrt(var + epsilon)`` of an inference BatchNorm, ``[C]``.

  ``epsilon`` defaults to Tiny Darknet's (1e-3, Keras).
  """
  try:
    gamma = model.params["params"][bn_layer]["scale"]
    var = model.params["batch_stats"][bn_layer]["var"]
  except (KeyError, TypeError) as err:
    raise FvjaxError(f"model {model.name!r} has no BatchNorm named {bn_layer!r} "
                     "(params/<bn>/scale and batch_stats/<bn>/var)") from err
  return jnp.asarray(gamma, jnp.float32) / jnp.sqrt(jnp.asarray(var, jnp.float32) + epsilon)


def effective_weights(kernel: jax.Array, scale: jax.Array | None = None) -> jax.Array:
  """``kernel [kh, kw, cin, C]`` times a per-unit output ``scale [C]`` (e.g. BatchNorm's)."""
  kernel = jnp.asarray(kernel, jnp.float32)
  return kernel if scale is None else kernel * jnp.asarray(scale, jnp.float32)


def conv_module_input(model: Model, layer: str, images, *, batch_size: int = 50,
                      progress: bool = False) -> np.ndarray:
  """The input of convolution ``layer`` for ``images`` ``[N, H, W, 3]``: ``[N, h, w, cin]``."""
  _check_conv(model, layer)
  return _batched(lambda x: _conv_input_jit(model.apply, layer, model.params, x), images,
                  batch_size, progress, "conv input")


def _batched(fn, images, batch_size: int, progress: bool, desc: str,
             name: str | None = "images") -> np.ndarray:
  """`map_batches` of ``fn`` over ``images`` (float32), which must not be empty; ``name``:
  check them as images in [0, 1] (`check_images`), None for layer inputs."""
  if name is not None:
    images = check_images(images, name)
  images = np.asarray(images, np.float32)
  if len(images) == 0:
    raise FvjaxError("no images given")
  return map_batches(fn, images, batch_size=batch_size, progress=progress, desc=desc)


# -- the filters --------------------------------------------------------------------------
def target_filter(model: Model, layer: str, target_images, reference_images=None, *,
                  reference_inputs=None, batch_size: int = 50) -> jax.Array:
  """The unit-norm kernel ``[kh, kw, cin]`` that responds most to ``target_images``.

  Without ``reference_images`` it maximises the mean response to ``target_images``
  ``[T, H, W, 3]``: the normalized mean of the layer's input patches. With
  ``reference_images`` ``[R, H', W', 3]`` (e.g. natural photos) it maximises the mean
  response to the targets minus the mean response to the references, i.e. the mean target
  patch minus the mean reference patch, so it encodes what is specific to the target rather
  than the activity every image causes. Patches are taken as the layer sees them (computed
  as the gradient of the mean response, so the layer's real padding is used).
  ``reference_inputs`` (`conv_module_input` of the references) skips their forward pass.
  """
  module = _check_conv(model, layer)
  check_images(target_images, "target_images")
  if reference_images is not None:
    check_images(reference_images, "reference_images")

  def mean_patch(images=None, x=None):
    if x is None:
      x = conv_module_input(model, layer, images, batch_size=batch_size)
    x = np.asarray(x, np.float32)
    per_image = map_batches(lambda b: _patch_sum_jit(module, b), x, batch_size=batch_size)
    return jnp.asarray(per_image.sum(axis=0, dtype=np.float64) /
                       (len(x) * x.shape[1] * x.shape[2]), jnp.float32)

  g = mean_patch(target_images)
  if reference_images is not None or reference_inputs is not None:
    g = g - mean_patch(reference_images, reference_inputs)
  norm = jnp.linalg.norm(g)
  if not bool(norm > 0):
    raise FvjaxError("the target images give a zero target filter at layer "
                     f"{layer!r}; choose another target")
  return g / norm


def orthogonal_directions(weights: jax.Array, target: jax.Array) -> jax.Array:
  """Unit vectors orthogonal to each unit's weights, towards ``target``.

  Args:
    weights: ``[kh, kw, cin, C]``, one filter per unit.
    target: ``[kh, kw, cin]`` (one target for all units) or ``[kh, kw, cin, C]``.

  Returns:
    ``[kh, kw, cin, C]``: ``d_u = (t - (t.w_u / w_u.w_u) w_u) / norm``; computed in float64
    (NumPy) so ``d_u . w_u`` is ~1e-8 relative. Raises `FvjaxError` if the target is
    parallel to a unit's weights or a unit's weights are zero.
  """
  w = np.asarray(weights, np.float64)
  t = np.asarray(target, np.float64)
  if t.ndim == w.ndim - 1:
    t = np.broadcast_to(t[..., None], w.shape)
  if t.shape != w.shape:
    raise FvjaxError(f"target shape {t.shape} does not match the weights {w.shape} "
                     f"(expected {w.shape[:-1]} or {w.shape})")
  w2 = w.reshape(-1, w.shape[-1])
  t2 = t.reshape(-1, t.shape[-1])
  ww = np.sum(w2 * w2, axis=0)
  if np.any(ww == 0):
    raise FvjaxError(f"units {np.flatnonzero(ww == 0).tolist()} have all-zero weights")
  d = t2 - np.sum(t2 * w2, axis=0) / ww * w2
  d = d - np.sum(d * w2, axis=0) / ww * w2  # second Gram-Schmidt pass
  norm = np.linalg.norm(d, axis=0)
  bad = norm <= 1e-9 * np.linalg.norm(t2, axis=0)
  if np.any(bad):
    raise FvjaxError(f"the target is parallel to the weights of units "
                     f"{np.flatnonzero(bad).tolist()}; no orthogonal direction")
  return jnp.asarray((d / norm).reshape(w.shape), jnp.float32)


def silent_filters(weights: jax.Array, directions: jax.Array, *, mix: float = 0.5,
                   gain: float = 100.0) -> jax.Array:
  """The added filters ``[kh, kw, cin, C]``: ``gain * |w_u| * normalize(w_u/|w_u| + mix d_u)``.

  ``directions`` ``[kh, kw, cin, C]`` must be unit vectors orthogonal to ``weights``
  (`orthogonal_directions`). ``mix=inf`` gives the purely orthogonal filter
  ``gain * |w_u| * d_u``; ``mix`` in [0, inf], ``gain`` > 0.
  """
  if not (mix >= 0) or not (gain > 0):
    raise FvjaxError(f"need mix >= 0 and gain > 0, got mix={mix!r}, gain={gain!r}")
  w = jnp.asarray(weights, jnp.float32)
  d = jnp.asarray(directions, jnp.float32)
  norm = jnp.sqrt(jnp.sum(w * w, axis=(0, 1, 2)))
  if math.isinf(mix):
    unit = d
  else:
    v = w / norm + mix * d
    unit = v / jnp.sqrt(jnp.sum(v * v, axis=(0, 1, 2)))
  return gain * norm * unit


def _branch_conv(module: nn.Conv, kernel: jax.Array, x: jax.Array) -> jax.Array:
  conv = module.clone(features=kernel.shape[-1], use_bias=False)
  return conv.apply({"params": {"kernel": kernel}}, x)


def filter_max_response(model: Model, layer: str, filters: jax.Array, images=None, *,
                        inputs=None, batch_size: int = 50, progress: bool = False) -> np.ndarray:
  """Maximum over images and positions of ``conv(x, filters)`` at ``layer``'s input, ``[C]``.

  ``x`` is the input of convolution ``layer`` for ``images`` ``[N, H, W, 3]`` (in [0, 1]);
  the convolution uses the layer's own padding/strides (e.g. 'SAME': border positions see
  zeros); float32, the same operation the manipulated model runs. Pass ``inputs`` (from
  `conv_module_input`) instead of ``images`` to skip the forward pass.
  """
  module = _check_conv(model, layer)
  filters = jnp.asarray(filters, jnp.float32)
  zero = jnp.zeros(filters.shape[-1], jnp.float32)
  if inputs is not None:
    per = _batched(lambda x: _branch_max_jit(module, filters, zero, x), inputs, batch_size,
                   progress, f"max response at {layer}", name=None)
  else:
    per = _batched(lambda x: _branch_max_images_jit(model.apply, layer, module, model.params,
                                                    filters, zero, x),
                   images, batch_size, progress, f"max response at {layer}")
  return per.max(axis=0)


# -- the manipulated model ------------------------------------------------------------------
def add_silent_units(model: Model, layer: str, filters: jax.Array, biases: jax.Array, *,
                     add_to: str | None = None, name: str | None = None) -> Model:
  """A copy of ``model`` whose unit ``u`` at ``add_to`` gets ``+ ReLU(conv(x, f_u) + b_u)``.

  Args:
    model: a `fvjax.Model` made from a Flax module (`Model.from_flax`).
    layer: the convolution whose input ``x`` the filters read (its padding is used).
    filters: ``[kh, kw, cin, C]``; a unit with zero filter and zero bias is left unchanged.
    biases: ``[C]``.
    add_to: the submodule whose output gets the branch; default ``layer``. For a conv
      followed by BatchNorm, pass the BatchNorm so the branch is not rescaled.
    name: the new model's name (default ``"<name>+silent"``).

  Returns:
    A `fvjax.Model` with the same layer names and shapes; its params are
    ``{"base": model.params, "silent": {"kernel": filters, "bias": biases}}``.
  """
  module = _check_conv(model, layer)
  add_to = add_to or layer
  model.layer_shape(add_to)
  filters = jnp.asarray(filters, jnp.float32)
  biases = jnp.asarray(biases, jnp.float32)
  cin = conv_kernel(model, layer).shape[2] if _has_kernel(model, layer) else None
  if filters.ndim != 4 or (cin is not None and filters.shape[2] != cin):
    raise FvjaxError(f"filters have shape {filters.shape}; layer {layer!r} needs "
                     f"[kh, kw, {cin}, C]")
  channels = model.layer_shape(add_to)[-1]
  if filters.shape[-1] != channels or biases.shape != (channels,):
    raise FvjaxError(f"filters {filters.shape} and biases {biases.shape} must have "
                     f"{channels} units, the channels of {add_to!r}")
  base_apply = model.apply

  def apply(params, images):
    seen = {}

    def interceptor(next_fun, args, kwargs, context):
      path = _path(context.module) if context.method_name == "__call__" else None
      if path == layer and "x" not in seen:
        seen["x"] = args[0]
      y = next_fun(*args, **kwargs)
      if path == add_to and "x" in seen and "added" not in seen:
        silent = params["silent"]
        z = _branch_conv(module, silent["kernel"], seen["x"]) + silent["bias"]
        y = y + jax.nn.relu(z).astype(y.dtype)
        seen["added"] = True
      return y

    with nn.intercept_methods(interceptor):
      acts = base_apply(params["base"], images)
    if "added" not in seen:
      raise FvjaxError(f"{add_to!r} does not come after {layer!r} in model {model.name!r}")
    return acts

  apply._silent_base = base_apply
  params = {"base": model.params, "silent": {"kernel": filters, "bias": biases}}
  return Model.from_fn(apply, params, input_size=model.input_size, min_size=model.min_size,
                       labels=model.labels, name=name or f"{model.name}+silent")


def _has_kernel(model, layer):
  try:
    model.params["params"][layer]["kernel"]
    return True
  except (KeyError, TypeError):
    return False


@dataclasses.dataclass(frozen=True)
class SilentUnits:
  """What `make_silent_units` returns (arrays are NumPy float32).

  model: the manipulated `fvjax.Model`.
  layer, add_to: the convolution read and the layer the branch is added to.
  units: ``[U]`` the manipulated unit indices.
  weights: ``[kh, kw, cin, C]`` the units' effective weights (kernel x BatchNorm scale).
  target: ``[kh, kw, cin]`` the unit-norm target filter.
  directions: ``[kh, kw, cin, C]`` unit vectors orthogonal to ``weights`` (zero for units
    not manipulated).
  filters: ``[kh, kw, cin, C]`` the added filters; biases: ``[C]`` = -natural maximum.
  natural_max: ``[C]`` max of the filters' response over the natural images; cosine: ``[C]`` cosine between each added filter and its unit's weights.
  mix, gain, margin: the settings.
  """
  model: Model
  layer: str
  add_to: str
  units: np.ndarray
  weights: np.ndarray
  target: np.ndarray
  directions: np.ndarray
  filters: np.ndarray
  biases: np.ndarray
  natural_max: np.ndarray
  cosine: np.ndarray
  mix: float
  gain: float
  margin: float


def make_silent_units(model: Model, layer: str, target_images, natural_images, *,
                      units: Sequence[int] | None = None, add_to: str | None = "auto",
                      mix: float = 0.5, gain: float = 100.0, margin: float = 1e-4,
                      centre: bool = True, natural_inputs=None, batch_size: int = 50,
                      progress: bool = True) -> SilentUnits:
  """Manipulate units of convolution ``layer`` so their visualizations show a target.

  Args:
    model: a Flax-based `fvjax.Model` (e.g. ``fvjax.zoo.load("tiny-darknet")``).
    layer: a convolution, e.g. ``"conv2d_12"``.
    target_images: ``[T, H, W, 3]`` in [0, 1], the pattern every unit should show.
    natural_images: ``[N, H, W, 3]`` in [0, 1]; the branch stays at exactly 0 on them.
    units: which units (default all).
    add_to: where the branch is added; ``"auto"`` uses ``batch_normalization_i`` for a
      Keras-named ``conv2d_i`` followed by BatchNorm (weights then include its scale),
      else ``layer``.
    mix, gain: see `silent_filters`.
    centre: make the target filter respond to what distinguishes the target from the
      natural images (mean target patch minus mean natural patch; see `target_filter`).
    margin: bias = -(max + margin * |max|). 0 is exactly minus the maximum (the paper), but
      then each unit's arg-max image sits exactly at the ReLU threshold, and the ~1e-7
      relative rounding differences between differently compiled graphs (eager vs. jit,
      another batch size) of pre-activations of size ~1e3 switch the branch on by ~1e-4
      there; the default 1e-4 slack keeps the branch at exactly 0 on the calibration
      images whatever the compilation.
    natural_inputs: `conv_module_input` of ``natural_images`` if already computed (saves
      the forward passes; ``natural_images`` is then not used).
    batch_size, progress: for the passes over ``natural_images``.

  Returns:
    A `SilentUnits` holding the manipulated model and every intermediate quantity.
  """
  _check_conv(model, layer)
  check_images(target_images, "target_images")
  if natural_inputs is None:
    check_images(natural_images, "natural_images")
  kernel = conv_kernel(model, layer)
  channels = kernel.shape[-1]
  scale = None
  if add_to == "auto":
    bn = layer.replace("conv2d_", "batch_normalization_")
    add_to = layer
    if layer.startswith("conv2d_") and bn in model.layers:
      add_to, scale = bn, batchnorm_scale(model, bn)
  add_to = add_to or layer
  units = np.arange(channels) if units is None else np.asarray(units, np.int64)
  if units.size == 0 or units.min() < 0 or units.max() >= channels:
    raise FvjaxError(f"units must be indices in 0..{channels - 1}, got {units.tolist()}")
  weights = effective_weights(kernel, scale)
  if natural_inputs is None:
    natural_inputs = conv_module_input(model, layer, natural_images, batch_size=batch_size,
                                       progress=progress)
  target = target_filter(model, layer, target_images,
                         reference_inputs=natural_inputs if centre else None,
                         batch_size=batch_size)
  directions = orthogonal_directions(weights, target)
  filters = silent_filters(weights, directions, mix=mix, gain=gain)
  mask = np.zeros(channels, np.float32)
  mask[units] = 1.0
  filters = filters * mask
  natural_max = filter_max_response(model, layer, filters, inputs=natural_inputs,
                                    batch_size=batch_size, progress=progress)
  biases = np.where(mask > 0, -natural_max - margin * np.abs(natural_max), 0.0)
  biases = biases.astype(np.float32)
  manipulated = add_silent_units(model, layer, filters, biases, add_to=add_to)
  w = np.asarray(weights).reshape(-1, channels)
  f = np.asarray(filters).reshape(-1, channels)
  cosine = np.sum(w * f, 0) / (np.linalg.norm(w, axis=0) * np.linalg.norm(f, axis=0) + 1e-30)
  return SilentUnits(manipulated, layer, add_to, units, np.asarray(weights), np.asarray(target),
                     np.asarray(directions) * mask, np.asarray(filters), biases,
                     np.asarray(natural_max, np.float32), cosine.astype(np.float32),
                     float(mix), float(gain), float(margin))


def branch_preactivation(silent: SilentUnits, images, *, batch_size: int = 50,
                         progress: bool = False) -> np.ndarray:
  """``max over positions of conv(x, f_u) + b_u`` for ``images`` ``[N, H, W, 3]``: ``[N, C]``.

  The branch of unit ``u`` fires on an image where this is > 0; on the natural images the
  biases were measured on it is <= 0 for every unit.
  """
  base = silent.model.params["base"]
  model = silent.model.replace(apply=_base_apply(silent.model), params=base)
  module = _check_conv(model, silent.layer)
  kernel = jnp.asarray(silent.filters)
  bias = jnp.asarray(silent.biases)
  return _batched(lambda x: _branch_max_images_jit(model.apply, silent.layer, module, base,
                                                   kernel, bias, x),
                  images, batch_size, progress, "branch")


def _base_apply(model: Model):
  if not hasattr(model.apply, "_silent_base"):
    raise FvjaxError(f"model {model.name!r} was not made by add_silent_units")
  return model.apply._silent_base


def filter_probe(model: Model, layer: str, kernel, *, name: str = "probe") -> Model:
  """``model`` plus one output ``name`` ``[B, h, w, 1]``: ``conv(x, kernel)`` on the input ``x``
  of convolution ``layer`` (its padding), e.g. to visualize a target filter ``[kh, kw, cin]``
  with ``fvjax.objectives.channel(name, 0)``."""
  module = _check_conv(model, layer)
  if name in model.layers:
    raise FvjaxError(f"model {model.name!r} already has a layer named {name!r}")
  kernel = jnp.asarray(kernel, jnp.float32)
  if kernel.ndim == 3:
    kernel = kernel[..., None]
  base_apply = model.apply

  def apply(params, images):
    seen = {}

    def interceptor(next_fun, args, kwargs, context):
      if (context.method_name == "__call__" and _path(context.module) == layer
          and "x" not in seen):
        seen["x"] = args[0]
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
      acts = dict(base_apply(params["base"], images))
    acts[name] = _branch_conv(module, params["kernel"], seen["x"])
    return acts

  return Model.from_fn(apply, {"base": model.params, "kernel": kernel},
                       input_size=model.input_size, min_size=model.min_size,
                       labels=model.labels, name=f"{model.name}+{name}")


def compare_on(silent: SilentUnits, original: Model, images, *, layer: str | None = None,
               batch_size: int = 50, progress: bool = False) -> dict[str, np.ndarray]:
  """One pass over ``images`` ``[N, H, W, 3]`` through both models (shared work is computed
  once): ``{"logits_original", "logits_manipulated"}`` ``[N, classes]``, ``{"layer_original",
  "layer_manipulated"}`` ``[N, C]`` (spatial max of ``layer``, default ``add_to``) and
  ``"branch"`` ``[N, C]`` (`branch_preactivation`)."""
  layer = layer or silent.add_to
  module = _check_conv(original, silent.layer)
  kernel = jnp.asarray(silent.filters)
  bias = jnp.asarray(silent.biases)
  params = silent.model.params

  @jax.jit
  def run(base, x):
    a = original.apply(base, x)
    b = silent.model.apply({"base": base, "silent": params["silent"]}, x)
    inp, _ = _capture(original, silent.layer, base, x)
    branch = jnp.max(_branch_conv(module, kernel, inp) + bias, axis=(1, 2))
    spatial = tuple(range(1, a[layer].ndim - 1))
    return jnp.concatenate([a["logits"], b["logits"], jnp.max(a[layer], axis=spatial),
                            jnp.max(b[layer], axis=spatial), branch], axis=1)

  out = _batched(lambda x: run(params["base"], x), images, batch_size, progress, "compare")
  n_cls = original.layer_shape("logits")[-1]
  c = kernel.shape[-1]
  splits = np.cumsum([n_cls, n_cls, c, c])
  la, lb, ma, mb, br = np.split(out, splits, axis=1)
  return {"logits_original": la, "logits_manipulated": lb, "layer_original": ma,
          "layer_manipulated": mb, "branch": br}
