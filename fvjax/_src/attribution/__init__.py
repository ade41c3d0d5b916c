"""Attribution and perturbation methods (see `fvjax.attribution`)."""
