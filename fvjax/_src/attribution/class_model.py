"""Class model visualisation (Simonyan et al. 2014): the image that maximises a class score.

Maximise the unnormalised class score (the logit) with an L2 penalty,
``S_c(mean + I) - lambda * ||I||_2^2``, by gradient ascent on the mean-centred image ``I``
starting from ``I = 0`` (the "zero image" of a mean-subtracted network is the mean image).
Optional regularisers from Yosinski et al. (2015), applied after every ``blur_every``-th step
(blur) or every step (clipping): Gaussian blur of ``I``, zeroing the pixels whose norm is below
a percentile, and zeroing the pixels whose contribution ``|sum_colour I * dS/dI|`` is below a
percentile. Classes are optimised together, vmapped; the steps run in one ``lax.scan``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fvjax._src.attribution import _common
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

IMAGENET_MEAN = (0.485, 0.456, 0.406)


class ClassModelResult(NamedTuple):
  """What `class_model` returns (NumPy).

  images: ``[K, H, W, 3]`` in [0, 1], each image min-max normalised for display.
  raw: ``[K, H, W, 3]`` the optimised model input ``mean + I`` (unbounded).
  scores: ``[K]`` the class score S_c of ``raw``.
  initial: ``[K]`` the class score of the starting image (``mean``).
  trace: ``[K, steps]`` the objective ``S_c - lambda * ||I||^2`` before each step.
  """
  images: np.ndarray
  raw: np.ndarray
  scores: np.ndarray
  initial: np.ndarray
  trace: np.ndarray


class _Setting(NamedTuple):
  size: tuple[int, int]
  steps: int
  weight_decay: float
  mean: tuple[float, float, float]
  blur_every: int
  blur_sigma: float
  norm_percentile: float
  contribution_percentile: float
  optimizer: Any


def _score(model: Model, image, cls):
  return _common.class_scores(model.apply, model.params, image[None], cls[None], "logit")[0]


@functools.partial(jax.jit, static_argnames=("setting",))
def _optimize(setting: _Setting, model: Model, classes):
  mean = jnp.asarray(setting.mean, jnp.float32)

  def objective(centred, cls):
    return _score(model, mean + centred, cls) - setting.weight_decay * jnp.sum(centred ** 2)

  def one(cls):
    centred = jnp.zeros((*setting.size, 3), jnp.float32)

    def step(carry, i):
      centred, opt_state = carry
      value, grads = jax.value_and_grad(objective)(centred, cls)
      updates, opt_state = setting.optimizer.update(-grads, opt_state, centred)
      centred = optax.apply_updates(centred, updates)
      if setting.blur_every:
        centred = jnp.where((i + 1) % setting.blur_every == 0,
                            _common.gaussian_blur(centred, setting.blur_sigma), centred)
      if setting.norm_percentile > 0:
        norm = jnp.linalg.norm(centred, axis=-1)
        centred = jnp.where((norm < jnp.percentile(norm, setting.norm_percentile))[..., None],
                            0.0, centred)
      if setting.contribution_percentile > 0:
        contribution = jnp.abs(jnp.sum(centred * grads, axis=-1))
        cut = jnp.percentile(contribution, setting.contribution_percentile)
        centred = jnp.where((contribution < cut)[..., None], 0.0, centred)
      return (centred, opt_state), value

    (centred, _), trace = jax.lax.scan(step, (centred, setting.optimizer.init(centred)),
                                       jnp.arange(setting.steps))
    raw = mean + centred
    return raw, _score(model, raw, cls), _score(model, jnp.broadcast_to(mean, raw.shape), cls), trace

  return jax.vmap(one)(classes)


def class_model(model: Model, target: Any, *, size: int | None = None, steps: int = 200,
                learning_rate: float = 1.0, weight_decay: float = 1e-3,
                mean: Sequence[float] = IMAGENET_MEAN, blur_every: int = 0,
                blur_sigma: float = 1.0, norm_percentile: float = 0.0,
                contribution_percentile: float = 0.0,
                optimizer: optax.GradientTransformation | None = None) -> ClassModelResult:
  """Images maximising each class score of ``target`` (Simonyan et al. 2014).

  Args:
    model: a classifier `fvjax.Model`.
    target: class indices, one (``int``) or several (``[K]``); one image each.
    size: image side (default: the model's input size).
    steps: gradient-ascent steps.
    learning_rate: step size of the default optimizer, plain gradient ascent
      (``optax.sgd``).
    weight_decay: lambda of the L2 penalty ``lambda * ||I||^2`` on the centred image.
    mean: the colour added to the centred image to form the model input; ``I = 0`` is the
      starting point. ``(0, 0, 0)`` starts from a black image.
    blur_every, blur_sigma: blur ``I`` by a Gaussian of ``blur_sigma`` px every
      ``blur_every`` steps (0: never).
    norm_percentile: zero the pixels whose colour norm is below this percentile (0: off).
    contribution_percentile: zero the pixels whose contribution ``|sum_c I * dS/dI|`` is below
      this percentile (0: off).
    optimizer: an optax transformation used instead of ``optax.sgd(learning_rate)``.

  Returns:
    A `ClassModelResult`; ``images[k]`` is the visualisation of class ``target[k]``.
  """
  _common.check_model(model, "class_model")
  values = np.atleast_1d(np.asarray(target))
  classes = _common.check_targets(model, values, len(values), "class_model")
  side = model.input_size if size is None else (int(size), int(size))
  if size is not None:
    _common.check_positive(size, "size", integer=True)
  model.check_size(min(side))
  _common.check_positive(steps, "steps", integer=True)
  _common.check_positive(learning_rate, "learning_rate")
  _common.check_positive(weight_decay, "weight_decay", zero=True)
  _common.check_positive(blur_every, "blur_every", integer=True, zero=True)
  _common.check_positive(blur_sigma, "blur_sigma", zero=True)
  for name, value in (("norm_percentile", norm_percentile),
                      ("contribution_percentile", contribution_percentile)):
    if not 0 <= value < 100:
      raise FvjaxError(f"{name} must be in [0, 100), got {value!r}")
  mean = tuple(float(v) for v in np.broadcast_to(np.asarray(mean, np.float32), (3,)))
  setting = _Setting(tuple(side), int(steps), float(weight_decay), mean, int(blur_every),
                     float(blur_sigma), float(norm_percentile), float(contribution_percentile),
                     optimizer or _sgd(float(learning_rate)))
  raw, scores, initial, trace = (np.asarray(a) for a in _optimize(setting, model, classes))
  lo = raw.min(axis=(1, 2, 3), keepdims=True)
  hi = raw.max(axis=(1, 2, 3), keepdims=True)
  images = (raw - lo) / np.maximum(hi - lo, 1e-12)
  return ClassModelResult(images, raw, scores, initial, trace)


@functools.lru_cache(maxsize=16)
def _sgd(learning_rate: float):
  return optax.sgd(learning_rate)
