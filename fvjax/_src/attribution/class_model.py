"""Class model visualisation (Simonyan et al. 2014): the image that maximises a class score.

Maximise the unnormalised class score (the logit) with an L2 penalty,
``S_c(mean + I) - lambda * ||I||_2^2``, by gradient ascent on the mean-centred image ``I``
starting from ``I = 0`` (the "zero image" of a mean-subtracted network is the mean image).
Optional regularisers from Yosinski et al. (2015), applied after every ``blur_every``-th step
(blur) or every step (clipping): Gaussian blur of ``I``, zeroing the pixels whose norm is below
a percentile, and zeroing the pixels whose contribution ``|sum_colour I * dS/dI|`` is below a
percentile.

A thin driver of the functional core (`fvjax.optvis`, run by `fvjax.render.optimize_units`):
the parameterization is `CentredImage` (``I``, shown to the model as ``mean + I``, with the
L2 penalty), the transforms are the identity, the optimizer is plain SGD, the objective is
``class_logit`` batched over the K classes and the regularisers are a `optvis.Projection`
applied after each update. Classes are optimised together, vmapped.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src import objectives as objectives_lib
from fvjax._src import optvis
from fvjax._src import param as param_lib
from fvjax._src import pytree
from fvjax._src import render
from fvjax._src import transforms as transforms_lib
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
  trace: ``[K, steps]`` the class score ``S_c(mean + I)`` before each step (the L2 penalty
    ``lambda * ||I||^2`` is not included).
  """
  images: np.ndarray
  raw: np.ndarray
  scores: np.ndarray
  initial: np.ndarray
  trace: np.ndarray


@pytree.dataclass
class CentredImage(param_lib.ImageParam):
  """The parameterization of class model visualisation: a mean-centred image ``I``
  ``[1, H, W, 3]`` starting at 0, shown to the model as ``mean + I`` (unbounded), with the
  penalty ``weight_decay * ||I||^2``. ``mean`` ``[3]`` and ``weight_decay`` are traced."""
  size: tuple[int, int] = pytree.static()
  mean: Any = dataclasses.field(default_factory=lambda: np.asarray(IMAGENET_MEAN, np.float32))
  weight_decay: Any = np.float32(1e-3)
  batch: int = pytree.static(1)

  def init(self, key):
    del key
    return jnp.zeros((self.batch, *self.size, 3), jnp.float32)

  def to_image(self, params):
    return self.mean + params

  def penalty(self, params):
    return self.weight_decay * jnp.sum(params ** 2)


@dataclasses.dataclass(frozen=True)
class Regularise:
  """The projection of Yosinski et al.'s regularisers (a `optvis.Projection` ``fn`` with
  context): the switches are static (compared by value), the numbers come as traced
  values. ``grads`` are those of the loss ``lambda ||I||^2 - S_c``; the contribution
  ``|sum_colour I * grads|`` equals ``|sum_colour I * dS/dI|`` up to the penalty's term."""
  blur: bool
  norm: bool
  contribution: bool

  def __call__(self, centred, *, grads, step, blur_every, blur_sigma, norm_percentile,
               contribution_percentile):
    if self.blur:
      centred = jnp.where(step % jnp.maximum(blur_every, 1) == 0,
                          _common.traced_gaussian_blur(centred, blur_sigma), centred)
    if self.norm:
      norm = jnp.linalg.norm(centred, axis=-1)
      centred = jnp.where((norm < jnp.percentile(norm, norm_percentile))[..., None], 0.0,
                          centred)
    if self.contribution:
      contribution = jnp.abs(jnp.sum(centred * grads, axis=-1))
      cut = jnp.percentile(contribution, contribution_percentile)
      centred = jnp.where((contribution < cut)[..., None], 0.0, centred)
    return centred


@jax.jit
def _logits(model: Model, images):
  return model(images)["logits"]


def class_model(model: Model, target: Any, *, size: int | None = None, steps: int = 200,
                learning_rate: float = 1.0, weight_decay: float = 1e-3,
                mean: Sequence[float] = IMAGENET_MEAN, blur_every: int = 0,
                blur_sigma: float = 1.0, norm_percentile: float = 0.0,
                contribution_percentile: float = 0.0, optimizer: Any = None,
                progress: bool = False) -> ClassModelResult:
  """Images maximising each class score of ``target`` (Simonyan et al. 2014).

  Args:
    model: a classifier `fvjax.Model`.
    target: class indices, one (``int``) or several (``[K]``); one image each.
    size: image side (default: the model's input size).
    steps: gradient-ascent steps.
    learning_rate: step size of the default optimizer, plain gradient ascent
      (``fvjax.optvis.SGD``, i.e. ``optax.sgd``).
    weight_decay: lambda of the L2 penalty ``lambda * ||I||^2`` on the centred image.
    mean: the colour added to the centred image to form the model input; ``I = 0`` is the
      starting point. ``(0, 0, 0)`` starts from a black image.
    blur_every, blur_sigma: blur ``I`` by a Gaussian of ``blur_sigma`` px every
      ``blur_every`` steps (0: never).
    norm_percentile: zero the pixels whose colour norm is below this percentile (0: off).
    contribution_percentile: zero the pixels whose contribution ``|sum_c I * dS/dI|`` is below
      this percentile (0: off).
    optimizer: an optax transformation or an ``fvjax.optvis`` optimizer used instead of
      ``SGD(learning_rate)``.
    progress: show a progress bar over chunks of steps.

  Returns:
    A `ClassModelResult`; ``images[k]`` is the visualisation of class ``target[k]``. Its
    ``trace`` is the class score before each step, without the L2 penalty.
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
  mean = np.broadcast_to(np.asarray(mean, np.float32), (3,)).copy()
  regularise = Regularise(blur=bool(blur_every) and blur_sigma > 0, norm=norm_percentile > 0,
                          contribution=contribution_percentile > 0)
  projection = None
  if regularise.blur or regularise.norm or regularise.contribution:
    projection = optvis.Projection(regularise, {
        "blur_every": np.int32(blur_every), "blur_sigma": np.float32(blur_sigma),
        "norm_percentile": np.float32(norm_percentile),
        "contribution_percentile": np.float32(contribution_percentile)}, context=True)
  settings = optvis.Settings(
      size=tuple(side),
      param=CentredImage(tuple(side), mean, np.float32(weight_decay)),
      transforms=transforms_lib.identity(),
      optimizer=(optvis.SGD(learning_rate) if optimizer is None
                 else optvis.as_optimizer(optimizer)),
      projection=projection)
  count, objective, _ = objectives_lib.stack(objectives_lib.class_logit(classes))
  render.validate(model, objective, settings, int(steps))
  keys = jax.random.split(jax.random.key(0), count)  # unused: nothing is random
  result = render.optimize_units(model, objective, keys, optvis.broadcast(settings, count),
                                 steps=int(steps), keep_batch=False, progress=progress,
                                 desc=f"class model of {count} class{'es' * (count > 1)}")
  raw = result.images
  start = np.asarray(_logits(model, jnp.broadcast_to(jnp.asarray(mean), (1, *side, 3))))[0]
  lo = raw.min(axis=(1, 2, 3), keepdims=True)
  hi = raw.max(axis=(1, 2, 3), keepdims=True)
  images = (raw - lo) / np.maximum(hi - lo, 1e-12)
  return ClassModelResult(images, raw, result.final, start[np.asarray(classes)], result.trace)
