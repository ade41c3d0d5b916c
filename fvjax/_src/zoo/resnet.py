"""ResNet-50 (torchvision's ``resnet50``, "v1.5": stride 2 in the 3x3 convolution) in Flax.

Input RGB ``[B, H, W, 3]`` in [0, 1]; the module applies torchvision's ImageNet
normalisation ``(x - mean) / std`` itself. Trained at 224x224; 1000 ImageNet classes in
torchvision's order (sorted WordNet ids). BatchNorm always uses its running statistics.

Layer names are torchvision's module names with ``.`` replaced by ``/``: ``conv1``,
``bn1``, ``relu`` (the stem's), ``maxpool``, ``layer1/0/conv1``, ``layer1/0/bn1``, ...,
``layer1/0/downsample/0`` (the shortcut's convolution), ``layer1/0/downsample/1`` (its
BatchNorm), ``layer1/0`` (a bottleneck's output after the residual sum and ReLU), ``layer1``
(a stage's output), ..., ``layer4``, ``avgpool`` ``[1, 1, 2048]``, ``fc`` (the logits, also
returned as ``logits``). Parameters carry the same names, so torchvision's state-dict key
``layer1.0.bn1.running_mean`` is the variable ``batch_stats/layer1/0/bn1/mean``.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.zoo.inception_v1 import max_pool

NUM_CLASSES = 1000
INPUT_SIZE = (224, 224)
MIN_SIZE = 1  # every stride-2 step keeps at least one pixel
IMAGENET_MEAN = np.asarray([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.asarray([0.229, 0.224, 0.225], np.float32)
BN_EPSILON = 1e-5
# (bottleneck width, blocks, stride of the first block) of layer1 .. layer4.
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
EXPANSION = 4


def _conv(features, k, stride, name):
  pad = (k - 1) // 2
  return nn.Conv(features, (k, k), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                 use_bias=False, name=name)


def _bn(name):
  return nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name=name)


class Downsample(nn.Module):
  """The shortcut projection: ``0`` a strided 1x1 convolution, ``1`` its BatchNorm."""
  features: int
  stride: int

  @nn.compact
  def __call__(self, x):
    return _bn("1")(_conv(self.features, 1, self.stride, "0")(x))


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (strided) -> 1x1 convolutions with BatchNorm, plus the shortcut, then ReLU."""
  width: int
  stride: int = 1
  downsample: bool = False

  @nn.compact
  def __call__(self, x):
    out = nn.relu(_bn("bn1")(_conv(self.width, 1, 1, "conv1")(x)))
    out = nn.relu(_bn("bn2")(_conv(self.width, 3, self.stride, "conv2")(out)))
    out = _bn("bn3")(_conv(self.width * EXPANSION, 1, 1, "conv3")(out))
    shortcut = x
    if self.downsample:
      shortcut = Downsample(self.width * EXPANSION, self.stride, name="downsample")(x)
    return nn.relu(out + shortcut)


class Stage(nn.Module):
  """``blocks`` bottlenecks named ``0``, ``1``, ...; the first one strides and projects."""
  width: int
  blocks: int
  stride: int

  @nn.compact
  def __call__(self, x):
    for i in range(self.blocks):
      x = Bottleneck(self.width, self.stride if i == 0 else 1, downsample=i == 0,
                     name=str(i))(x)
    return x


class ResNet50(nn.Module):
  """torchvision's ResNet-50 as a Flax module; see the module docstring for names."""
  num_classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, images):
    x = (images - IMAGENET_MEAN) / IMAGENET_STD
    x = _bn("bn1")(_conv(64, 7, 2, "conv1")(x))
    x = nn.relu(x)
    self.sow("intermediates", "relu", x)
    x = max_pool(x, 2, ((1, 1), (1, 1)))
    self.sow("intermediates", "maxpool", x)
    for i, (width, blocks, stride) in enumerate(STAGES, start=1):
      x = Stage(width, blocks, stride, name=f"layer{i}")(x)
    x = jnp.mean(x, axis=(1, 2), keepdims=True)
    self.sow("intermediates", "avgpool", x)
    return nn.Dense(self.num_classes, name="fc")(x.reshape(x.shape[0], -1))


@functools.lru_cache(maxsize=None)
def template(num_classes: int = NUM_CLASSES):
  """The variables' shapes (``jax.ShapeDtypeStruct``s) of `ResNet50`."""
  module = ResNet50(num_classes)
  return jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, *INPUT_SIZE, 3)))


def imagenet_labels() -> tuple[str, ...]:
  """The 1000 ImageNet class names in torchvision's order (sorted WordNet ids), from the
  label file vendored with Tiny Darknet."""
  import os
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "weights",
                      "tiny_darknet_labels.tsv")
  with open(path) as f:
    pairs = sorted(line.rstrip("\n").split("\t") for line in f if line.strip())
  return tuple(name for _, name in pairs)


def resnet50(weights=None):
  """ResNet-50 as an `fvjax.Model` from torchvision's ``resnet50`` weights.

  Args:
    weights: a ``.safetensors`` / ``.npz`` / ``.pth`` file (see `fvjax._src.zoo.
      torch_weights`) or an in-memory state dict with torchvision's key names
      (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...); None looks in the weights cache
      where `download_weights("resnet50")` puts them and raises `FvjaxError` saying how to
      get them when they are not there.

  Returns:
    An `fvjax.Model` named ``"resnet50"`` taking [0, 1] images (normalised inside), trained
    at 224x224, 1000 logits with ImageNet class names.
  """
  from fvjax._src.errors import FvjaxError
  from fvjax._src.model import Model
  from fvjax._src.zoo import torch_weights
  if weights is None:
    weights = torch_weights.default_path("resnet50")
    if weights is None:
      raise FvjaxError(torch_weights.missing_weights_message("resnet50"))
  variables = jax.tree.map(jnp.asarray, torch_weights.load(weights, template()))
  return Model.from_flax(ResNet50(), variables, input_size=INPUT_SIZE, min_size=MIN_SIZE,
                         labels=imagenet_labels(), name="resnet50")
