"""Attribution and perturbation: which pixels a classifier's decision depends on.

Backpropagation maps (`saliency`, `gradient_x_input`, `guided_backprop`, `deconvnet`, the raw
`backprop` signal and `with_backward_rule`, which rewrites any model's rectifiers without
editing its code; `project_activation`: one activation projected to pixels, Zeiler & Fergus's
Fig. 2), `occlusion` (Zeiler & Fergus), `meaningful_perturbation` (Fong & Vedaldi),
`class_model` (Simonyan et al.), their evaluation (`deletion_game` /
`minimal_deletion_area`, `cascading_randomization` / `rank_correlation`) and views
(`filter_grid`, `activation_grid`, `overlay`, `attribution_panel`, `sanity_curves`,
`deletion_bars`). Every method takes a classifier `fvjax.Model` and images ``[N, H, W, 3]``
in [0, 1]; maps come back as NumPy ``[N, H, W]``.
"""

from fvjax._src.attribution._common import gaussian_blur, normalize
from fvjax._src.attribution.class_model import ClassModelResult, class_model
from fvjax._src.attribution.evaluation import (DeletionResult, bounding_boxes,
                                               cascading_randomization, deletion_game,
                                               layer_groups, minimal_deletion_area,
                                               randomize, rank_correlation)
from fvjax._src.attribution.guided import count_rectifiers, rewrite, with_backward_rule
from fvjax._src.attribution.occlusion import OcclusionResult, occlusion, occlusion_grid
from fvjax._src.attribution.projection import Projection, project_activation
from fvjax._src.attribution.perturbation import (PerturbationResult, meaningful_perturbation,
                                                 perturb, total_variation, upsample_mask)
from fvjax._src.attribution.saliency import (backprop, deconvnet, gradient, gradient_x_input,
                                             guided_backprop, reduce_channels, saliency)
from fvjax._src.attribution.views import (activation_grid, attribution_panel, deletion_bars,
                                          filter_grid, first_layer_filters, overlay,
                                          sanity_curves)

__all__ = [
    # backpropagation maps
    "backprop", "gradient", "saliency", "gradient_x_input", "guided_backprop", "deconvnet",
    "reduce_channels", "with_backward_rule", "count_rectifiers", "rewrite",
    "project_activation", "Projection",
    # perturbation maps
    "occlusion", "occlusion_grid", "OcclusionResult",
    "meaningful_perturbation", "PerturbationResult", "perturb", "upsample_mask",
    "total_variation", "gaussian_blur",
    # class model visualisation
    "class_model", "ClassModelResult",
    # evaluation
    "deletion_game", "DeletionResult", "minimal_deletion_area", "bounding_boxes",
    "cascading_randomization", "layer_groups", "randomize", "rank_correlation",
    # views
    "normalize", "overlay", "attribution_panel", "filter_grid", "first_layer_filters",
    "activation_grid", "sanity_curves", "deletion_bars",
]
