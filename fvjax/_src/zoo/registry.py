"""`fvjax.zoo.load`: pretrained models by name, weights vendored in the package."""

from __future__ import annotations

import functools
import os
from typing import Callable

import jax
import jax.numpy as jnp

from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model
from fvjax._src.zoo import weights as weights_io
from fvjax._src.zoo.tiny_darknet import TinyDarknet

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                           "weights")


def read_labels(path: str) -> tuple[str, ...]:
  """Class names from a ``synset<TAB>name`` file, in file order."""
  with open(path) as f:
    return tuple(line.rstrip("\n").split("\t")[-1] for line in f if line.strip())


def _tiny_darknet(weights: str | None) -> Model:
  module = TinyDarknet()
  template = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
  path = weights or os.path.join(WEIGHTS_DIR, "tiny_darknet.safetensors")
  variables = jax.tree.map(jnp.asarray, weights_io.load(path, template))
  labels = read_labels(os.path.join(WEIGHTS_DIR, "tiny_darknet_labels.tsv"))
  return Model.from_flax(module, variables, input_size=(224, 224), min_size=16,
                         labels=labels, name="tiny-darknet")


def _inception_v1(weights: str | None) -> Model:
  from fvjax._src.zoo.inception_v1 import inception_v1
  return inception_v1(weights)


def _resnet50(weights: str | None) -> Model:
  from fvjax._src.zoo.resnet import resnet50
  return resnet50(weights)


# tiny-darknet's weights are vendored; inception-v1 and resnet50 read the published weights
# from `weights=` or the cache that `fvjax.zoo.download_weights` fills.
_MODELS: dict[str, Callable[[str | None], Model]] = {
    "tiny-darknet": _tiny_darknet, "inception-v1": _inception_v1, "resnet50": _resnet50}


def names() -> tuple[str, ...]:
  """Names `load` accepts."""
  return tuple(_MODELS)


def load(name: str, *, weights: str | None = None) -> Model:
  """A pretrained model by name; ``weights`` overrides the weights file.

  ``"tiny-darknet"`` ships its weights. ``"inception-v1"`` (torch-lucent's key names) and
  ``"resnet50"`` (torchvision's) read ``weights`` (``.safetensors``, ``.npz``, or ``.pth``
  through torch's weights-only loader) or, without it, the file `download_weights` put in
  the weights cache. Raises `FvjaxError` for an unknown name (listing the valid names), for
  missing published weights (saying how to get them) and for a weights file that is
  unreadable or does not match the architecture (naming the tensor).
  """
  if name not in _MODELS:
    raise FvjaxError(f"unknown model {name!r}; valid models: {', '.join(_MODELS)}")
  if weights is None:
    return _cached(name)
  return _MODELS[name](weights)


def abstract(name: str) -> Model:
  """``name``'s architecture with abstract weights: `Model` whose ``params`` are the
  ``jax.ShapeDtypeStruct``s of the module's template (``jax.eval_shape`` of its ``init``), so
  its layer table, input size and labels need no weights file (``fvjax layers``). It
  cannot be applied to images; `load` gives the runnable model."""
  if name not in _MODELS:
    raise FvjaxError(f"unknown model {name!r}; valid models: {', '.join(_MODELS)}")
  if name == "tiny-darknet":
    module = TinyDarknet()
    template = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
    return Model.from_flax(module, template, input_size=(224, 224), min_size=16,
                           labels=read_labels(os.path.join(WEIGHTS_DIR,
                                                           "tiny_darknet_labels.tsv")),
                           name=name)
  if name == "inception-v1":
    from fvjax._src.zoo import inception_v1 as arch
    module, labels = arch.InceptionV1(), None
  else:
    from fvjax._src.zoo import resnet as arch
    module, labels = arch.ResNet50(), arch.imagenet_labels()
  return Model.from_flax(module, arch.template(), input_size=arch.INPUT_SIZE,
                         min_size=arch.MIN_SIZE, labels=labels, name=name)


@functools.lru_cache(maxsize=None)
def _cached(name: str) -> Model:
  return _MODELS[name](None)
