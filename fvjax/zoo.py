"""Pretrained models and converters (see `fvjax._src.zoo`)."""

from fvjax._src.zoo.registry import load, names, read_labels
from fvjax._src.zoo.tfjs import KerasSequential
from fvjax._src.zoo.tfjs import convert as convert_tfjs
from fvjax._src.zoo.tiny_darknet import TinyDarknet

__all__ = ["load", "names", "read_labels", "TinyDarknet", "KerasSequential", "convert_tfjs"]
