"""Handwritten digits offline and the MNIST models of Szegedy et al. 2014 (Tables 1 and 3):
`load`, `halves`, the Flax modules, `train`, `errors` and `lipschitz_layers`; see
`fvjax._src.digits`. Also reachable as ``fvjax.adversarial.digits``."""

from fvjax._src.digits import (AE, CNN, CROSS_MODELS, DATASETS, FC, KINDS, NUM_CLASSES,
                               PAPER_MODELS, Digits, Logits, Spec, Trained, errors, halves,
                               lipschitz_layers, load, model_names, spec, train)

__all__ = [
    "DATASETS", "KINDS", "NUM_CLASSES", "Digits", "load", "halves", "FC", "AE", "CNN", "Spec",
    "PAPER_MODELS", "CROSS_MODELS", "spec", "Logits", "Trained", "train", "errors",
    "lipschitz_layers", "model_names",
]
