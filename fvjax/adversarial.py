"""Box-constrained L-BFGS adversarial examples, Szegedy et al. 2014 (see
`fvjax._src.adversarial`), and the digits data and models of the paper's MNIST tables
(`fvjax.digits`, also reachable as ``fvjax.adversarial.digits``)."""

from fvjax import digits
from fvjax._src.adversarial import (AttackResult, ModelLogits, distortion, error_rate,
                                    gaussian_noise, logits_fn_of, magnify, minimal_distortion,
                                    penalized, predict, random_targets)

__all__ = [
    "AttackResult", "ModelLogits", "distortion", "error_rate", "gaussian_noise", "logits_fn_of",
    "magnify", "minimal_distortion", "penalized", "predict", "random_targets", "digits",
]
