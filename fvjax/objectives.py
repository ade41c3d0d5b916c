"""Objectives: composable scores of activations (see `fvjax._src.objectives`)."""

from fvjax._src.objectives import (Channel, ClassLogit, ClassProbability, Direction,
                                   LayerObjective, Neuron, Objective, Product, Scaled, Sum,
                                   channel, class_logit, class_probability, deepdream,
                                   direction, layer, neuron)

__all__ = [
    "Objective", "Channel", "Neuron", "LayerObjective", "ClassLogit", "ClassProbability",
    "Direction", "Sum", "Scaled", "Product",
    "channel", "neuron", "layer", "deepdream", "class_logit", "class_probability",
    "direction",
]
