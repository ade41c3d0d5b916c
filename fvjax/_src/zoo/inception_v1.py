"""InceptionV1 ("inception5h"), the GoogLeNet variant of Lucid and Lucent, as a Flax module.

This is the network of Lucid's ``InceptionV1`` model and torch-lucent's ``inceptionv1``
(ProGamerGov's port of ``inception5h.pb``), the model of the Circuits thread and of the
fooling-circuit experiments. The graph follows Lucent's ``InceptionV1.forward`` step by step:
asymmetric "SAME" paddings of the TensorFlow original, max-pools padded with -inf, local
response normalisation ``x / (1 + alpha / 9 * sum_{9 channels} x^2) ** 0.5`` (torch's
``F.local_response_norm(size=9, alpha=9.99999974738e-05, beta=0.5, k=1)``), 1008 classes.

Input RGB ``[B, H, W, 3]`` in [0, 1]; the module maps it to the range the network was
trained on, ``x * 255 - 117`` in [-117, 138], as Lucent's ``preprocess_inceptionv1`` does
before calling its model. Trained at 224x224.

Layer names are Lucent's hook names: ``conv2d0_pre_relu_conv`` (a convolution's output
before its ReLU), ``conv2d0`` (after the ReLU), ``maxpool0``, ``localresponsenorm0``,
``mixed3a_1x1`` ... ``mixed3a_pool`` (the branch max-pool), ``mixed3a_pool_reduce``,
``mixed3a`` (the concatenation), ..., ``maxpool4``, ``maxpool10``, ``mixed5b``,
``avgpool0`` ``[1, 1, 1024]``, ``softmax2_pre_activation_matmul`` (the logits, also
returned as ``logits``) and ``softmax2`` (the class probabilities).

One difference from Lucent: ``avgpool0`` is a global average, where Lucent uses a 7x7
window without padding. At 224x224 input (``mixed5b`` is 7x7) they are equal; at other sizes
Lucent's forward fails after ``mixed5b`` (Lucent's render catches that), while this module
still gives logits. ``redirected_relu=True`` gives every ReLU Lucent's default "redirected"
gradient (negative inputs pass 0.1 of the gradient); the forward values are unchanged.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

NUM_CLASSES = 1008
INPUT_SIZE = (224, 224)
MIN_SIZE = 32  # five stride-2 reductions: the smallest square input with every layer >= 1 px
LRN_SIZE = 9
LRN_ALPHA = 9.99999974738e-05
LRN_BETA = 0.5
LRN_K = 1.0

# name -> (1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce) output channels.
MIXED = (
    ("mixed3a", (64, 96, 128, 16, 32, 32)),
    ("mixed3b", (128, 128, 192, 32, 96, 64)),
    ("mixed4a", (192, 96, 204, 16, 48, 64)),
    ("mixed4b", (160, 112, 224, 24, 64, 64)),
    ("mixed4c", (128, 128, 256, 24, 64, 64)),
    ("mixed4d", (112, 144, 288, 32, 64, 64)),
    ("mixed4e", (256, 160, 320, 32, 128, 128)),
    ("mixed5a", (256, 160, 320, 48, 128, 128)),
    ("mixed5b", (384, 192, 384, 48, 128, 128)),
)
# The stride-2 max-pools between stages: (name, after which mixed block).
REDUCTIONS = {"mixed3b": "maxpool4", "mixed4e": "maxpool10"}


@jax.custom_vjp
def redirected_relu(x):
  """ReLU whose gradient at negative inputs is 0.1 of the incoming one (Lucent's
  ``RedirectedReLU``)."""
  return jnp.maximum(x, 0)


def _redirected_fwd(x):
  return jnp.maximum(x, 0), x


def _redirected_bwd(x, g):
  return (jnp.where(x < 0, 0.1 * g, g),)


redirected_relu.defvjp(_redirected_fwd, _redirected_bwd)


def _max_pool_forward(x, stride, pad):
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1),
                               ((0, 0), *pad, (0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool(x, stride: int, pad: tuple[tuple[int, int], tuple[int, int]]):
  """3x3 max-pool over ``x`` (NHWC) padded with -inf by ``pad`` (``((top, bottom), (left,
  right))``).

  The gradient is XLA's (each window's gradient goes to its first maximal input) computed
  with nine shifted masks instead of ``select_and_scatter``, which XLA's CPU backend runs
  5-20x slower.
  """
  return _max_pool_forward(x, stride, pad)


def _max_pool_fwd(x, stride, pad):
  y = _max_pool_forward(x, stride, pad)
  return y, (x, y)


def _max_pool_bwd(stride, pad, residuals, g):
  x, y = residuals
  xp = jnp.pad(x, ((0, 0), *pad, (0, 0)), constant_values=-jnp.inf)
  b, hp, wp, c = xp.shape
  _, oh, ow, _ = y.shape
  span_y, span_x = (oh - 1) * stride + 1, (ow - 1) * stride + 1
  taken = jnp.zeros(y.shape, bool)
  grad = jnp.zeros(xp.shape, g.dtype)
  zero = jnp.zeros((), g.dtype)
  for dy in range(3):
    for dx in range(3):
      window = jax.lax.slice(xp, (0, dy, dx, 0), (b, dy + span_y, dx + span_x, c),
                             (1, stride, stride, 1))
      hit = (window == y) & ~taken
      taken = taken | hit
      grad = grad + jax.lax.pad(jnp.where(hit, g, zero), zero,
                                ((0, 0, 0), (dy, hp - dy - span_y, stride - 1),
                                 (dx, wp - dx - span_x, stride - 1), (0, 0, 0)))
  (top, bottom), (left, right) = pad
  return (grad[:, top:hp - bottom, left:wp - right],)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def local_response_norm(x):
  """torch's ``F.local_response_norm`` over the channel axis (last) of NHWC ``x``."""
  half = LRN_SIZE // 2
  sq = jax.lax.reduce_window(x * x, 0.0, jax.lax.add, (1, 1, 1, LRN_SIZE), (1, 1, 1, 1),
                             ((0, 0), (0, 0), (0, 0), (half, (LRN_SIZE - 1) // 2)))
  return x / (LRN_K + (LRN_ALPHA / LRN_SIZE) * sq) ** LRN_BETA


class InceptionV1(nn.Module):
  """InceptionV1 (inception5h) as in Lucid / Lucent; see the module docstring for names."""
  num_classes: int = NUM_CLASSES
  redirected_relu: bool = False

  def _conv(self, x, name, features, k, stride=1, pad=None):
    pad = (k // 2, k // 2) if pad is None else pad
    x = nn.Conv(features, (k, k), strides=(stride, stride), padding=(pad, pad), use_bias=True,
                name=f"{name}_pre_relu_conv")(x)
    x = redirected_relu(x) if self.redirected_relu else nn.relu(x)
    self.sow("intermediates", name, x)
    return x

  def _sow(self, name, x):
    self.sow("intermediates", name, x)
    return x

  @nn.compact
  def __call__(self, images):
    x = images * 255.0 - 117.0
    x = self._conv(x, "conv2d0", 64, 7, stride=2, pad=(2, 3))
    x = self._sow("maxpool0", max_pool(x, 2, ((0, 1), (0, 1))))
    x = self._sow("localresponsenorm0", local_response_norm(x))
    x = self._conv(x, "conv2d1", 64, 1)
    x = self._conv(x, "conv2d2", 192, 3)
    x = self._sow("localresponsenorm1", local_response_norm(x))
    x = self._sow("maxpool1", max_pool(x, 2, ((0, 1), (0, 1))))
    for name, (c1, c3r, c3, c5r, c5, cp) in MIXED:
      b1 = self._conv(x, f"{name}_1x1", c1, 1)
      b3 = self._conv(x, f"{name}_3x3_bottleneck", c3r, 1)
      b5 = self._conv(x, f"{name}_5x5_bottleneck", c5r, 1)
      bp = self._sow(f"{name}_pool", max_pool(x, 1, ((1, 1), (1, 1))))
      bp = self._conv(bp, f"{name}_pool_reduce", cp, 1)
      b3 = self._conv(b3, f"{name}_3x3", c3, 3)
      b5 = self._conv(b5, f"{name}_5x5", c5, 5)
      x = self._sow(name, jnp.concatenate([b1, b3, b5, bp], axis=-1))
      if name in REDUCTIONS:
        x = self._sow(REDUCTIONS[name], max_pool(x, 2, ((0, 1), (0, 1))))
    x = self._sow("avgpool0", jnp.mean(x, axis=(1, 2), keepdims=True))
    logits = nn.Dense(self.num_classes, name="softmax2_pre_activation_matmul")(
        x.reshape(x.shape[0], -1))
    self.sow("intermediates", "softmax2", jax.nn.softmax(logits, axis=-1))
    return logits


@functools.lru_cache(maxsize=None)
def template(num_classes: int = NUM_CLASSES):
  """The variables' shapes (``jax.ShapeDtypeStruct``s) of `InceptionV1`."""
  module = InceptionV1(num_classes)
  return jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, *INPUT_SIZE, 3)))


def inception_v1(weights=None, *, redirected_relu: bool = False):
  """InceptionV1 as an `fvjax.Model` from torch-lucent's ``inceptionv1`` weights.

  Args:
    weights: a ``.safetensors`` / ``.npz`` / ``.pth`` file (see `fvjax._src.zoo.
      torch_weights`) or an in-memory state dict with the key names of torch-lucent's
      ``InceptionV1`` (``conv2d0_pre_relu_conv.weight``, ...); None looks in the weights
      cache where `download_weights("inception-v1")` puts them and raises `FvjaxError`
      saying how to get them when they are not there.
    redirected_relu: give the ReLUs Lucent's redirected gradient (as Lucent renders).

  Returns:
    An `fvjax.Model` named ``"inception-v1"`` taking [0, 1] images, trained at 224x224,
    1008 logits (no class names are attached).
  """
  from fvjax._src.errors import FvjaxError
  from fvjax._src.model import Model
  from fvjax._src.zoo import torch_weights
  if weights is None:
    weights = torch_weights.default_path("inception-v1")
    if weights is None:
      raise FvjaxError(torch_weights.missing_weights_message("inception-v1"))
  variables = jax.tree.map(jnp.asarray, torch_weights.load(weights, template()))
  return Model.from_flax(InceptionV1(redirected_relu=redirected_relu), variables,
                         input_size=INPUT_SIZE, min_size=MIN_SIZE, name="inception-v1")
