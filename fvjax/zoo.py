"""Pretrained models and converters (see `fvjax._src.zoo`)."""

from fvjax._src.zoo.registry import load, names, read_labels
from fvjax._src.zoo.tfjs import KerasSequential
from fvjax._src.zoo.tfjs import convert as convert_tfjs
from fvjax._src.zoo.inception_v1 import InceptionV1, inception_v1
from fvjax._src.zoo.resnet import ResNet50, resnet50
from fvjax._src.zoo.tiny_darknet import TinyDarknet
from fvjax._src.zoo.torch_weights import (cache_dir, download_weights, export_safetensors,
                                          load_state_dict)

__all__ = [
    "load", "names", "read_labels", "TinyDarknet", "KerasSequential", "convert_tfjs",
    "InceptionV1", "inception_v1", "ResNet50", "resnet50", "download_weights", "cache_dir",
    "export_safetensors", "load_state_dict",
]
