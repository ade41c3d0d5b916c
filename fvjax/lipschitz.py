"""Per-layer Lipschitz upper bounds (Szegedy et al. 2014, section 4.3; Sedghi et al. 2019);
see `fvjax._src.lipschitz`."""

from fvjax._src.lipschitz import (LayerBound, Measured, conv_bound_fft, conv_layer,
                                  conv_operator, conv_operator_norm, conv_singular_values,
                                  dense_bound, dense_layer, fixed_layer, fold_batchnorm, measure,
                                  network_bound, operator_norm, tiny_darknet_layers)

__all__ = [
    "LayerBound", "Measured", "conv_bound_fft", "conv_layer", "conv_operator",
    "conv_operator_norm", "conv_singular_values", "dense_bound", "dense_layer", "fixed_layer",
    "fold_batchnorm", "measure", "network_bound", "operator_norm", "tiny_darknet_layers",
]
