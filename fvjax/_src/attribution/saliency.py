"""Backpropagation-based attribution: gradient saliency, gradient x input, guided backprop,
deconvnet.

All take a classifier `fvjax.Model`, images ``[N, H, W, 3]`` in [0, 1] and the class to
explain (one index, or one per image), and return NumPy arrays. The score is the
unnormalised class score (the logit) by default, as in Simonyan et al. (2014).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.attribution import _common
from fvjax._src.batching import map_batches
from fvjax._src.attribution.guided import RULES, with_backward_rule
from fvjax._src.model import Model

REDUCTIONS = ("max_abs", "sum", "sum_abs", "l2", "none")


@functools.partial(jax.jit, static_argnames=("score",))
def _grad(model: Model, images, classes, score: str):
  def total(images):
    return jnp.sum(_common.class_scores(model.apply, model.params, images, classes, score))
  return jax.grad(total)(images)


def reduce_channels(signal: Any, reduce: str = "max_abs") -> np.ndarray:
  """``[N, H, W, 3]`` -> ``[N, H, W]``: ``"max_abs"`` max over colour of ``|.|`` (Simonyan),
  ``"sum"`` (signed), ``"sum_abs"``, ``"l2"``; ``"none"`` returns the signal unchanged."""
  _common.check_choice(reduce, REDUCTIONS, "channel reduction")
  signal = np.asarray(signal)
  if reduce == "max_abs":
    return np.abs(signal).max(-1)
  if reduce == "sum":
    return signal.sum(-1)
  if reduce == "sum_abs":
    return np.abs(signal).sum(-1)
  if reduce == "l2":
    return np.sqrt(np.square(signal).sum(-1))
  return signal


def backprop(model: Model, images: Any, target: Any, *, rule: str = "gradient",
             score: str = "logit", batch_size: int = 16) -> np.ndarray:
  """The signal at the input, ``[N, H, W, 3]`` float32 (unbounded), for class ``target``.

  Args:
    model: a classifier `fvjax.Model`.
    images: ``[N, H, W, 3]`` in [0, 1].
    target: the class to explain: one index in ``0..num_classes-1``, or one per image ``[N]``.
    rule: ``"gradient"`` (d score / d image), ``"guided"`` (guided backprop) or
      ``"deconvnet"``; see `with_backward_rule`.
    score: ``"logit"`` (unnormalised score), ``"probability"`` or ``"log_probability"``.
    batch_size: images per compiled call.
  """
  _common.check_model(model, "backprop")
  _common.check_choice(rule, RULES, "backward rule")
  _common.check_choice(score, _common.SCORES, "score")
  _common.check_positive(batch_size, "batch_size", integer=True)
  images = _common.check_images(model, images, "backprop")
  classes = _common.check_targets(model, target, len(images), "backprop")
  if rule != "gradient":
    model = with_backward_rule(model, rule)
  return map_batches(lambda x, c: _grad(model, x, c, score), images, classes,
                     batch_size=batch_size)


def gradient(model: Model, images: Any, target: Any, *, score: str = "logit",
             batch_size: int = 16) -> np.ndarray:
  """d score_c / d image, ``[N, H, W, 3]``; see `backprop`."""
  return backprop(model, images, target, rule="gradient", score=score, batch_size=batch_size)


def saliency(model: Model, images: Any, target: Any, *, score: str = "logit",
             batch_size: int = 16) -> np.ndarray:
  """Gradient saliency (Simonyan et al. 2014): ``max_colour |d score_c / d x|``,
  ``[N, H, W]`` >= 0."""
  return reduce_channels(gradient(model, images, target, score=score, batch_size=batch_size))


def gradient_x_input(model: Model, images: Any, target: Any, *, score: str = "logit",
                     reduce: str = "sum", batch_size: int = 16) -> np.ndarray:
  """Gradient x input: ``x * d score_c / d x`` reduced over colour (signed ``"sum"`` by
  default), ``[N, H, W]`` (``[N, H, W, 3]`` with ``reduce="none"``)."""
  grads = gradient(model, images, target, score=score, batch_size=batch_size)
  return reduce_channels(grads * np.asarray(images, np.float32), reduce)


def guided_backprop(model: Model, images: Any, target: Any, *, score: str = "logit",
                    reduce: str = "max_abs", batch_size: int = 16) -> np.ndarray:
  """Guided backprop (Springenberg et al. 2015), ``[N, H, W]`` >= 0 with the default
  ``reduce="max_abs"``; ``reduce="none"`` gives the raw ``[N, H, W, 3]`` reconstruction."""
  return reduce_channels(backprop(model, images, target, rule="guided", score=score,
                                  batch_size=batch_size), reduce)


def deconvnet(model: Model, images: Any, target: Any, *, score: str = "logit",
              reduce: str = "max_abs", batch_size: int = 16) -> np.ndarray:
  """Deconvnet (Zeiler & Fergus 2014, as a backward rule), ``[N, H, W]`` >= 0 with the
  default ``reduce="max_abs"``; ``reduce="none"`` gives ``[N, H, W, 3]``."""
  return reduce_channels(backprop(model, images, target, rule="deconvnet", score=score,
                                  batch_size=batch_size), reduce)
