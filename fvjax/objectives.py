"""Objectives: composable scores of activations (see `fvjax._src.objectives`).

Rewards (maximised): channel, neuron, layer/deepdream, class_logit, class_probability,
direction, direction_neuron, channel_interpolate, diversity, alignment. Penalties (>= 0,
subtract them): l1, l2, total_variation, blur_penalty. New objectives: from_fn (a function of
the activations and traced values) or a subclass of Objective decorated with register.
"""

from fvjax._src.objectives import (Alignment, BlurPenalty, Channel, ChannelInterpolate,
                                   ClassLogit, ClassProbability, Direction, DirectionNeuron,
                                   Diversity, FromFn, L1, L2, LayerObjective, Neuron, Objective,
                                   Product, Scaled, Sum, TotalVariation, alignment, blur_penalty,
                                   channel, channel_interpolate, class_logit, class_probability,
                                   blur3x3, deepdream, direction, direction_neuron, diversity,
                                   from_fn, l1, l2, register, stack,
                                   layer, neuron, random_directions, total_variation)

__all__ = [
    "Objective", "Channel", "Neuron", "LayerObjective", "ClassLogit", "ClassProbability",
    "Direction", "DirectionNeuron", "Diversity", "Alignment", "ChannelInterpolate",
    "L1", "L2", "TotalVariation", "BlurPenalty", "Sum", "Scaled", "Product",
    "channel", "neuron", "layer", "deepdream", "class_logit", "class_probability",
    "direction", "direction_neuron", "diversity", "alignment", "channel_interpolate",
    "l1", "l2", "total_variation", "blur_penalty", "random_directions",
    "FromFn", "from_fn", "register", "stack", "blur3x3",
]
