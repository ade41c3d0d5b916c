"""Reliability of feature visualization (Geirhos et al., "Don't trust your eyes").

`fooling` (a circuit that shows arbitrary visualizations while keeping natural predictions),
`silent` (units silent on natural images that take over the visualization), `paths`
(natural-vs-synthetic path similarity), `trust` (the trust report) and `impossibility`
(the impossibility theorems, numerically). Each submodule is also importable as
``fvjax.reliability.<name>``."""

from fvjax._src.reliability import fooling, impossibility, paths, silent, trust
from fvjax._src.reliability.impossibility import (
    Extremes, TwinPair, grid_points, init_relu_mlp, linear_mlp, mlp_apply, mlp_apply_np,
    mlp_depth, deepen_mlp, stack_mlps, max_mlp, min_mlp, plateau_bump_mlp,
    feature_visualization, make_twins, sup_distance, decode_midpoint,
    decode_linear_interpolation, decode_distance_weighted, decode_affine_1d,
    decoder_error_report, above_midpoint, midpoint_property_report, random_affine_1d,
    affine_recovery_errors, affine_2d_twins)
from fvjax._src.reliability.fooling import (
    Detector, FoolingCircuit, Snapshots, TARGETS, gate, permutation_target, permutation_classes,
    picture_template, picture_target, picture_model, render_snapshots, augment, init_detector,
    train_detector, detector_logits, detector_report, circuit_variables, fooled_model, classify,
    topk_accuracy, pearson, paper_snapshot_steps)
from fvjax._src.reliability.silent import (
    SilentUnits, conv_module_input, conv_kernel, batchnorm_scale, effective_weights,
    target_filter, orthogonal_directions, silent_filters, filter_max_response, add_silent_units,
    make_silent_units, branch_preactivation, filter_probe, compare_on)
from fvjax._src.reliability.paths import (
    PathSimilarity, path_layers, reduce_activation, layer_activations, rankdata,
    spearman_matrix, spearman_pairs, normalize_similarity, natural_views,
    same_different_baselines, path_similarity)
from fvjax._src.reliability.trust import (
    TrustCriteria, TrustReport, NaturalStatistics, natural_statistics, trust_report,
    trust_reports, flag_rate)

__all__ = [
    "impossibility", "fooling", "silent", "paths", "trust", "Extremes", "TwinPair",
    "grid_points", "init_relu_mlp", "linear_mlp", "mlp_apply", "mlp_apply_np", "mlp_depth",
    "deepen_mlp", "stack_mlps", "max_mlp", "min_mlp", "plateau_bump_mlp",
    "feature_visualization", "make_twins", "sup_distance", "decode_midpoint",
    "decode_linear_interpolation", "decode_distance_weighted", "decode_affine_1d",
    "decoder_error_report", "above_midpoint", "midpoint_property_report", "random_affine_1d",
    "affine_recovery_errors", "affine_2d_twins", "Detector", "FoolingCircuit", "Snapshots",
    "TARGETS", "gate", "permutation_target", "permutation_classes", "picture_template",
    "picture_target", "picture_model", "render_snapshots", "augment", "init_detector",
    "train_detector", "detector_logits", "detector_report", "circuit_variables", "fooled_model",
    "classify", "topk_accuracy", "pearson", "paper_snapshot_steps", "SilentUnits",
    "conv_module_input", "conv_kernel", "batchnorm_scale", "effective_weights", "target_filter",
    "orthogonal_directions", "silent_filters", "filter_max_response", "add_silent_units",
    "make_silent_units", "branch_preactivation", "filter_probe", "compare_on", "PathSimilarity",
    "path_layers", "reduce_activation", "layer_activations", "rankdata", "spearman_matrix",
    "spearman_pairs", "normalize_similarity", "natural_views", "same_different_baselines",
    "path_similarity", "TrustCriteria", "TrustReport", "NaturalStatistics",
    "natural_statistics", "trust_report", "trust_reports", "flag_rate",
]
