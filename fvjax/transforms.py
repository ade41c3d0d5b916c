"""Transformation robustness (see `fvjax._src.transforms`)."""

from fvjax._src.transforms import (Compose, Jitter, Pad, RandomRotate, RandomScale, Transform,
                                   compose, identity, jitter, pad, random_rotate,
                                   random_scale, standard)

__all__ = [
    "Transform", "Pad", "Jitter", "RandomScale", "RandomRotate", "Compose",
    "pad", "jitter", "random_scale", "random_rotate", "compose", "standard", "identity",
]
