"""Lipschitz upper bounds per layer (L2 norm), after Szegedy et al. 2014, section 4.3.

A network ``phi = phi_K o ... o phi_1`` is Lipschitz with constant at most the product of its
layers' constants, ``||phi(x) - phi(x + r)|| <= (prod_k L_k) ||r||``. Per layer:

* fully connected: the largest singular value of the weight matrix (exact SVD);
* convolution: its linear part only (a bias cancels). Two numbers. (a) The singular values of
  the *circular* convolution on an ``n x n`` grid are exactly those of the ``c_in x c_out``
  matrices ``K_hat[u, v]`` of the kernel's 2-D DFT, one per frequency (Sedghi, Gupta & Long
  2019); a zero-padded ("SAME") convolution on ``h x w`` inputs is a crop of the circular one
  on a ``(h + kh - 1) x (w + kw - 1)`` grid applied to the zero-embedded input, so the
  largest of those is a rigorous bound (a stride only subsamples the output: it can only
  lower the norm). (b) Power iteration on the layer's real operator (its padding and
  stride), ``v <- A^T A v`` with ``A^T`` from `jax.linear_transpose`: a lower estimate that
  converges to the true operator norm;
* batch norm at inference is an affine map per channel, folded into the preceding
  convolution (kernel scaled by ``scale / sqrt(var + eps)`` per output channel);
* ReLU, LeakyReLU (slope <= 1) and max pooling with non-overlapping windows: 1; sigmoid:
  1/4; global average pooling over ``h x w``: ``1 / sqrt(h w)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError

PADDINGS = ("SAME", "VALID", "CIRCULAR")


class LayerBound(NamedTuple):
  """One layer's Lipschitz upper bound.

  name: the layer's name; kind: ``"conv"``, ``"dense"`` or a description of a fixed bound.
  kernel: the kernel shape (``[kh, kw, c_in, c_out]`` or ``[d_in, d_out]``; ``()`` otherwise).
  stride: the convolution stride (1 otherwise).
  input_shape: the activation shape the layer takes (``(h, w, c)``, ``(d,)`` or ``()``).
  bound: the upper bound used in products (rigorous).
  circular: the operator norm of the circular convolution on the ``h x w`` input grid
    (Sedghi et al.); None for non-convolutions.
  power: power-iteration estimate of the real operator's norm (None where not computed).
  output: the name of the activation where this layer ends (to measure against), if any.
  """
  name: str
  kind: str
  kernel: tuple[int, ...]
  stride: int
  input_shape: tuple[int, ...]
  bound: float
  circular: float | None
  power: float | None
  output: str | None


# -- dense and convolution ------------------------------------------------------------------
def dense_bound(kernel) -> float:
  """The largest singular value of a weight matrix ``[d_in, d_out]``."""
  k = np.asarray(kernel, np.float64)
  if k.ndim != 2:
    raise FvjaxError(f"a dense kernel must be [d_in, d_out], got shape {k.shape}")
  return float(np.linalg.svd(k, compute_uv=False)[0])


def _check_kernel(kernel) -> np.ndarray:
  k = np.asarray(kernel, np.float64)
  if k.ndim != 4:
    raise FvjaxError(f"a conv kernel must be [kh, kw, c_in, c_out], got shape {k.shape}")
  return k


def _grid(size) -> tuple[int, int]:
  h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
  if h < 1 or w < 1:
    raise FvjaxError(f"grid size must be positive, got {size!r}")
  return int(h), int(w)


def conv_singular_values(kernel, size) -> np.ndarray:
  """All singular values of the circular convolution by ``kernel`` on an ``n x n`` grid.

  Args:
    kernel: ``[kh, kw, c_in, c_out]`` (cross-correlation or convolution: the same values).
    size: ``n`` or ``(h, w)``, the grid of the (periodic) input; taps beyond it wrap around.

  Returns:
    ``[h, w, min(c_in, c_out)]``: per frequency ``(u, v)``, the singular values of the
    ``c_in x c_out`` matrix ``sum_{p, q} K[p, q] exp(-2 pi i (u p / h + v q / w))``; together
    they are the ``h w min(c_in, c_out)`` singular values of the ``(h w c_in) x (h w c_out)``
    operator (Sedghi et al. 2019, Theorem 6).
  """
  k = _check_kernel(kernel)
  h, w = _grid(size)
  folded = np.zeros((h, w) + k.shape[2:], np.float64)
  for p in range(k.shape[0]):  # taps beyond the grid wrap around
    for q in range(k.shape[1]):
      folded[p % h, q % w] += k[p, q]
  transform = np.fft.fft2(folded, axes=(0, 1))
  return np.linalg.svd(transform, compute_uv=False)


def conv_bound_fft(kernel, input_hw, *, padding: str = "SAME") -> float:
  """A rigorous upper bound on the norm of a convolution on ``input_hw`` inputs.

  ``"CIRCULAR"``: the exact norm on the ``h x w`` torus. ``"SAME"``/``"VALID"`` (zero
  padding): the norm of the circular convolution on the ``(h + kh - 1) x (w + kw - 1)``
  grid, of which the zero-padded operator is a restriction.
  """
  k = _check_kernel(kernel)
  padding = padding.upper()
  if padding not in PADDINGS:
    raise FvjaxError(f"padding must be one of {PADDINGS}, got {padding!r}")
  h, w = _grid(input_hw)
  if padding != "CIRCULAR":
    h, w = h + k.shape[0] - 1, w + k.shape[1] - 1
  return float(conv_singular_values(k, (h, w)).max())


def operator_norm(fn: Callable[[jax.Array], jax.Array], input_shape: Sequence[int], *,
                  key: jax.Array, iters: int = 100) -> tuple[float, jax.Array]:
  """Power iteration for the operator norm of a linear ``fn``.

  ``v <- A^T A v / ||A^T A v||`` with ``A^T`` = `jax.linear_transpose` of ``fn``, from a
  Gaussian ``v`` drawn with ``key``. Returns ``(||A v||, v)``: a lower estimate of ``||A||``
  that converges to it (geometrically in the ratio of the two largest singular values
  squared), and the estimated top right-singular vector ``v`` (unit norm, ``input_shape``).
  """
  shape = tuple(int(s) for s in input_shape)
  return _power(fn, shape, key, int(iters))


def _power_iterate(fn, shape, key, iters):
  """Traceable power iteration on ``A^T A``: ``(||A v||, v)`` after ``iters`` steps."""
  transpose = jax.linear_transpose(fn, jax.ShapeDtypeStruct(shape, jnp.float32))
  v = jax.random.normal(key, shape, jnp.float32)
  v = v / jnp.linalg.norm(v)

  def body(_, v):
    w = transpose(fn(v))[0]
    return w / jnp.maximum(jnp.linalg.norm(w), 1e-30)

  v = jax.lax.fori_loop(0, iters, body, v)
  return jnp.linalg.norm(fn(v)), v


def _power(fn, shape, key, iters):
  sigma, v = jax.jit(lambda key: _power_iterate(fn, shape, key, iters))(key)
  return float(sigma), v


def conv_operator(kernel, *, stride: int = 1, padding: str = "SAME") -> Callable:
  """The linear map ``x [h, w, c_in] -> [h', w', c_out]`` of a convolution (no bias)."""
  padding = padding.upper()
  if padding not in PADDINGS:
    raise FvjaxError(f"padding must be one of {PADDINGS}, got {padding!r}")
  k = jnp.asarray(kernel, jnp.float32)

  def fn(x):
    x = x[None]
    if padding == "CIRCULAR":
      ph, pw = k.shape[0] - 1, k.shape[1] - 1
      x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)),
                  mode="wrap")
    out = jax.lax.conv_general_dilated(
        x, k, (stride, stride), "VALID" if padding == "CIRCULAR" else padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out[0]

  return fn


@functools.partial(jax.jit, static_argnames=("shape", "stride", "padding", "iters"))
def _conv_power(kernel, key, *, shape, stride, padding, iters):
  """`_power_iterate` on a convolution with a traced kernel: one compile per shape."""
  fn = conv_operator(kernel, stride=stride, padding=padding)
  return _power_iterate(fn, shape, key, iters)[0]


def conv_operator_norm(kernel, input_hw, *, stride: int = 1, padding: str = "SAME",
                       key: jax.Array, iters: int = 100) -> float:
  """Power-iteration estimate of the norm of a convolution on ``input_hw`` inputs, with its
  real padding and stride (see `operator_norm`)."""
  k = _check_kernel(kernel)
  h, w = _grid(input_hw)
  return float(_conv_power(jnp.asarray(k, jnp.float32), key, shape=(h, w, k.shape[2]),
                           stride=int(stride), padding=padding.upper(), iters=int(iters)))


def fold_batchnorm(kernel, scale, var, *, epsilon: float) -> np.ndarray:
  """The kernel of ``conv`` followed by inference batch norm (linear part): each output
  channel scaled by ``scale / sqrt(var + epsilon)``; the shift is a bias and cancels."""
  k = np.asarray(kernel, np.float64)
  gain = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + epsilon)
  if gain.shape != (k.shape[-1],):
    raise FvjaxError(f"batch norm has {gain.shape} channels, kernel {k.shape} outputs")
  return k * gain


# -- layer tables ----------------------------------------------------------------------------
def dense_layer(name: str, kernel, *, output: str | None = None) -> LayerBound:
  """A fully connected layer's bound (its largest singular value)."""
  k = np.asarray(kernel)
  b = dense_bound(k)
  return LayerBound(name, "dense", tuple(k.shape), 1, (k.shape[0],), b, None, b, output)


def conv_layer(name: str, kernel, input_hw, *, stride: int = 1, padding: str = "SAME",
               key: jax.Array, iters: int = 100, output: str | None = None,
               kind: str = "conv") -> LayerBound:
  """A convolution's bound: the rigorous FFT bound (`conv_bound_fft`), with the circular
  norm on the input grid and the power-iteration estimate of the real operator."""
  k = _check_kernel(kernel)
  h, w = _grid(input_hw)
  circular = float(conv_singular_values(k, (h, w)).max())
  bound = conv_bound_fft(k, (h, w), padding=padding)
  power = (conv_operator_norm(k, (h, w), stride=stride, padding=padding, key=key, iters=iters)
           if iters > 0 else None)
  return LayerBound(name, kind, tuple(k.shape), int(stride), (h, w, k.shape[2]), bound,
                    circular, power, output)


def fixed_layer(name: str, kind: str, bound: float, *, output: str | None = None,
                input_shape: tuple[int, ...] = ()) -> LayerBound:
  """A layer with a known constant (ReLU 1, sigmoid 1/4, max pool 1, ...)."""
  return LayerBound(name, kind, (), 1, tuple(input_shape), float(bound), None, None, output)


def network_bound(layers: Sequence[LayerBound]) -> float:
  """The product of the layers' bounds: a Lipschitz constant of the whole network."""
  return float(np.prod([layer.bound for layer in layers]))


def tiny_darknet_layers(model, *, key: jax.Array, iters: int = 100) -> list[LayerBound]:
  """Per-layer bounds of Tiny Darknet (`fvjax.zoo.load("tiny-darknet")`) at its input size.

  Each ``conv2d_i`` is folded with ``batch_normalization_i`` (output
  ``batch_normalization_i``), then LeakyReLU (1), the 2x2/2 max pools (1), the 1x1
  classifier ``conv2d_16`` and the global average pool (``1 / sqrt(h w)``, output
  ``logits``).
  """
  from fvjax._src.zoo import tiny_darknet as td  # pylint: disable=import-outside-toplevel
  params, stats = model.params["params"], model.params["batch_stats"]
  layers: list[LayerBound] = []
  pools = 0
  for i in range(1, len(td.BLOCKS) + 1):
    hw = model.layers[f"conv2d_{i}"][:2]  # stride 1, 'SAME': input grid = output grid
    bn = f"batch_normalization_{i}"
    kernel = fold_batchnorm(params[f"conv2d_{i}"]["kernel"], params[bn]["scale"],
                            stats[bn]["var"], epsilon=td.BN_EPSILON)
    key, sub = jax.random.split(key)
    layers.append(conv_layer(f"conv2d_{i}+bn", kernel, hw, key=sub, iters=iters, output=bn,
                             kind="conv+bn"))
    layers.append(fixed_layer(f"leaky_re_lu_{i}", f"LeakyReLU({td.LEAKY_ALPHA})", 1.0,
                              output=f"leaky_re_lu_{i}"))
    if i in td.POOL_AFTER:
      pools += 1
      layers.append(fixed_layer(f"max_pooling2d_{pools}", "max pool 2x2/2", 1.0,
                                output=f"max_pooling2d_{pools}"))
  hw = model.layers["conv2d_16"][:2]
  key, sub = jax.random.split(key)
  layers.append(conv_layer("conv2d_16", params["conv2d_16"]["kernel"], hw, key=sub,
                           iters=iters, output="conv2d_16"))
  layers.append(fixed_layer("global_average_pool", f"mean over {hw[0]}x{hw[1]}",
                            1.0 / math.sqrt(hw[0] * hw[1]), output="logits"))
  return layers


# -- measurement ---------------------------------------------------------------------------
class Measured(NamedTuple):
  """Measured ratios against the bounds, per segment ending at a layer with an ``output``.

  names: the output names; bounds: each segment's bound (product of its layers');
  cumulative_bounds: the product from the input up to each output;
  ratios: ``[S, N]`` ``||a_k(x) - a_k(x + r)|| / ||a_{k-1}(x) - a_{k-1}(x + r)||`` over the
  segment (``a_0`` the input); cumulative: ``[S, N]`` ``||a_k(x) - a_k(x + r)|| / ||r||``.
  """
  names: tuple[str, ...]
  bounds: np.ndarray
  cumulative_bounds: np.ndarray
  ratios: np.ndarray
  cumulative: np.ndarray


def measure(layers: Sequence[LayerBound], acts_x: Mapping[str, Any],
            acts_xr: Mapping[str, Any], r) -> Measured:
  """Ratios of output changes to input changes for a perturbation ``r`` ``[N, ...]``.

  ``acts_x``/``acts_xr``: activations (name -> ``[N, ...]``) of ``x`` and ``x + r``
  containing every ``output`` of ``layers``. Layers without an output are merged into the
  next segment that has one.
  """
  r = np.asarray(r, np.float64)
  n = r.shape[0]
  norm = lambda a: np.linalg.norm(np.asarray(a, np.float64).reshape(n, -1), axis=1)  # noqa
  prev = norm(r)
  names, bounds, cum_bounds, ratios, cums = [], [], [], [], []
  seg, total = 1.0, 1.0
  for layer in layers:
    seg *= layer.bound
    total *= layer.bound
    if layer.output is None:
      continue
    if layer.output not in acts_x or layer.output not in acts_xr:
      raise FvjaxError(f"activation {layer.output!r} of layer {layer.name!r} is missing; "
                       f"have: {', '.join(acts_x)}")
    d = norm(np.asarray(acts_x[layer.output], np.float64)
             - np.asarray(acts_xr[layer.output], np.float64))
    names.append(layer.output)
    bounds.append(seg)
    cum_bounds.append(total)
    ratios.append(np.where(prev > 0, d / np.maximum(prev, 1e-300), 0.0))
    cums.append(d / np.maximum(norm(r), 1e-300))
    prev, seg = d, 1.0
  return Measured(tuple(names), np.asarray(bounds), np.asarray(cum_bounds),
                  np.stack(ratios), np.stack(cums))
