"""Meaningful perturbation (Fong & Vedaldi 2017): learn the smallest mask whose perturbation
changes the class score.

A mask ``m`` (1 keeps a pixel, 0 perturbs it) blends the image ``x0`` with a perturbed copy:
``Phi(x0; m) = m * x0 + (1 - m) * p(x0)``, with ``p`` a Gaussian blur (sigma 10 px), a
constant colour or noise. The deletion game minimises

    lambda1 * ||1 - m||_1 + lambda2 * TV_beta(m) + E_tau[ f_c(Phi(x0(. - tau); m)) ],

(the smallest region whose deletion kills the score); the preservation game minimises
``lambda1 * ||m||_1 + lambda2 * TV_beta(m) - E_tau[f_c(...)]`` (the smallest region that keeps
it). ``f_c`` is the softmax probability of class c, ``TV_beta(m) = sum_u |dm/dx|^beta +
|dm/dy|^beta``, ``tau`` a random shift of up to ``jitter`` pixels drawn at every step. The
mask ``m`` is optimised at ``mask_size x mask_size`` (28) and both penalties are summed over
its 28x28 cells; for the perturbation it is resized bilinearly to the image (x8 at 224) and
smoothed by a Gaussian. Adam (lr 0.1) runs ``steps`` (300) projected steps, the mask clipped
to [0, 1] after each.

(Summing the penalties over the 224x224 upsampled mask instead, ``penalties="image"``, makes ``lambda1 * ||1 - m||_1``
reach 5 for a full deletion, far above the probability it trades against: the optimum is then
to delete nothing on most photos.)

Images are optimised independently, vmapped in chunks of ``batch_size``; the steps run in a
compiled ``lax.scan``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from fvjax._src.attribution import _common
from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

GAMES = ("deletion", "preservation")
PENALTIES = ("mask", "image")
PERTURBATIONS = ("blur", "constant", "noise")


class PerturbationResult(NamedTuple):
  """What `meaningful_perturbation` returns (NumPy).

  masks: ``[N, H, W]`` in [0, 1], the full-size mask (1 = pixel kept, 0 = perturbed).
  saliency: ``[N, H, W]`` in [0, 1]: ``1 - masks`` for the deletion game (high = deleted),
    ``masks`` for the preservation game (high = kept).
  small: ``[N, mask_size, mask_size]`` the optimised low-resolution mask.
  base: ``[N]`` the score of the unperturbed images.
  perturbed: ``[N]`` the score of ``Phi(x0; m)`` with the final mask (no jitter).
  reference: ``[N]`` the score of the fully perturbed image (``m = 0``, no noise redraw).
  trace: ``[N, steps]`` the loss at every step.
  """
  masks: np.ndarray
  saliency: np.ndarray
  small: np.ndarray
  base: np.ndarray
  perturbed: np.ndarray
  reference: np.ndarray
  trace: np.ndarray


class _Setting(NamedTuple):
  """Everything static about a run (a hashable jit static argument)."""
  game: str
  perturbation: str
  l1: float
  tv: float
  beta: float
  mask_size: int
  mask_smooth: float
  blur_sigma: float
  noise_sd: float
  jitter: int
  score: str
  learning_rate: float
  penalties: str

  @property
  def optimizer(self) -> optax.GradientTransformation:
    """Adam at ``learning_rate`` (built where it is used: no cached optimizer object)."""
    return optax.adam(self.learning_rate)


def upsample_mask(small: jax.Array, size: tuple[int, int], smooth: float) -> jax.Array:
  """``[m, m]`` -> ``[H, W]``: bilinear resize, then a Gaussian blur of ``smooth`` pixels."""
  big = jax.image.resize(small, size, "bilinear")
  return _common.gaussian_blur(big[..., None], smooth)[..., 0]


def total_variation(mask: jax.Array, beta: float = 3.0) -> jax.Array:
  """``TV_beta(m) = sum_u |m(u + e_y) - m(u)|^beta + |m(u + e_x) - m(u)|^beta`` of ``[H, W]``."""
  dy = jnp.abs(jnp.diff(mask, axis=0))
  dx = jnp.abs(jnp.diff(mask, axis=1))
  return jnp.sum(dy ** beta) + jnp.sum(dx ** beta)


def perturb(image: jax.Array, mask: jax.Array, reference: jax.Array) -> jax.Array:
  """``Phi(x0; m) = m * x0 + (1 - m) * reference``: image and reference ``[..., H, W, 3]``,
  mask ``[..., H, W]`` in [0, 1] (leading batch axes broadcast)."""
  return mask[..., None] * image + (1.0 - mask[..., None]) * reference


def _references(setting: _Setting, padded: jax.Array, key: jax.Array) -> jax.Array:
  """The perturbed copy of the (padded) image ``[H', W', 3]``."""
  if setting.perturbation == "blur":
    return _common.gaussian_blur(padded, setting.blur_sigma)
  colour = padded.mean(axis=(0, 1))
  base = jnp.broadcast_to(colour, padded.shape)
  if setting.perturbation == "constant":
    return base
  return base + setting.noise_sd * jax.random.normal(key, padded.shape)


def _loss(setting: _Setting, model: Model, small, image_p, blurred_p, cls, key, size):
  h, w = size
  j = setting.jitter
  shift_key, noise_key = jax.random.split(key)
  ty, tx = jax.random.randint(shift_key, (2,), 0, 2 * j + 1)
  image = jax.lax.dynamic_slice(image_p, (ty, tx, 0), (h, w, 3))
  if setting.perturbation == "noise":
    reference = _references(setting, image, noise_key)
  else:
    reference = jax.lax.dynamic_slice(blurred_p, (ty, tx, 0), (h, w, 3))
  mask = upsample_mask(small, (h, w), setting.mask_smooth)
  seen = perturb(image, mask, reference)
  s = _common.class_scores(model.apply, model.params, seen[None], cls[None], setting.score)[0]
  penalised = small if setting.penalties == "mask" else mask
  tv = setting.tv * total_variation(penalised, setting.beta)
  if setting.game == "deletion":
    return setting.l1 * jnp.sum(jnp.abs(1.0 - penalised)) + tv + s
  return setting.l1 * jnp.sum(jnp.abs(penalised)) + tv - s


def _pad(setting: _Setting, image):
  j = setting.jitter
  return jnp.pad(image, ((j, j), (j, j), (0, 0)), mode="edge")


@functools.partial(jax.jit, static_argnames=("setting", "init"))
def _start(setting: _Setting, model: Model, images, classes, keys, init: float):
  def one(image, cls, key):
    padded = _pad(setting, image)
    small = jnp.full((setting.mask_size, setting.mask_size), init, jnp.float32)
    return small, setting.optimizer.init(small), _references(setting, padded, key)
  return jax.vmap(one)(images, classes, keys)


@functools.partial(jax.jit, static_argnames=("setting", "length"), donate_argnums=(2,))
def _run(setting: _Setting, model: Model, state, images, classes, keys, length: int):
  size = images.shape[1:3]
  grad_fn = jax.value_and_grad(_loss, argnums=2)

  def one(state, image, cls, key):
    small, opt_state, blurred_p = state
    image_p = _pad(setting, image)

    def step(carry, key):
      small, opt_state = carry
      loss, grads = grad_fn(setting, model, small, image_p, blurred_p, cls, key, size)
      updates, opt_state = setting.optimizer.update(grads, opt_state, small)
      small = jnp.clip(optax.apply_updates(small, updates), 0.0, 1.0)
      return (small, opt_state), loss

    (small, opt_state), losses = jax.lax.scan(step, (small, opt_state),
                                              jax.random.split(key, length))
    return (small, opt_state, blurred_p), losses

  return jax.vmap(one)(state, images, classes, keys)


@functools.partial(jax.jit, static_argnames=("setting",))
def _finish(setting: _Setting, model: Model, smalls, images, classes, keys):
  size = images.shape[1:3]

  def one(small, image, cls, key):
    mask = upsample_mask(small, size, setting.mask_smooth)
    reference = _references(setting, image, key)
    batch = jnp.stack([image, perturb(image, mask, reference), reference])
    scores = _common.class_scores(model.apply, model.params, batch, jnp.full((3,), cls),
                                  setting.score)
    return mask, scores
  return jax.vmap(one)(smalls, images, classes, keys)


def meaningful_perturbation(key: jax.Array, model: Model, images: Any, target: Any, *,
                            game: str = "deletion", perturbation: str = "blur",
                            l1: float = 1e-4, tv: float = 1e-2, beta: float = 3.0,
                            mask_size: int = 28, mask_smooth: float = 5.0,
                            blur_sigma: float = 10.0, noise_sd: float = 0.2, jitter: int = 4,
                            steps: int = 300, learning_rate: float = 0.1, init: float = 1.0,
                            score: str = "probability", penalties: str = "mask",
                            batch_size: int = 8,
                            progress: bool = False) -> PerturbationResult:
  """Learn a deletion (or preservation) mask per image, Fong & Vedaldi (2017).

  Args:
    key: PRNG key for the jitter shifts and the noise (image i uses ``split(key, N)[i]``).
    model: a classifier `fvjax.Model`.
    images: ``[N, H, W, 3]`` in [0, 1].
    target: the class to explain (one index or ``[N]``).
    game: ``"deletion"`` (smallest region whose perturbation kills the score) or
      ``"preservation"`` (smallest region that alone keeps it).
    perturbation: ``"blur"`` (Gaussian, ``blur_sigma`` px), ``"constant"`` (the image's mean
      colour) or ``"noise"`` (mean colour + Gaussian noise of std ``noise_sd``, redrawn at
      every step).
    l1, tv, beta: ``lambda1``, ``lambda2`` and the TV exponent (paper: 1e-4, 1e-2, 3).
    mask_size: side of the optimised mask (28), on which the penalties are summed; it is
      resized to the image and smoothed by a Gaussian of ``mask_smooth`` px.
    jitter: maximum shift of the image at each step, pixels (4).
    steps, learning_rate: Adam steps and step size (300, 0.1).
    init: the initial mask value (1: nothing perturbed).
    score: ``f_c``: ``"probability"`` (softmax, default), ``"logit"`` or ``"log_probability"``.
    penalties: where the L1 and TV terms are summed: ``"mask"`` (the optimised
      ``mask_size``-square mask, default) or ``"image"`` (the resized, smoothed full-size
      mask; with the paper's lambdas the L1 term then dominates and masks stay nearly empty).
    batch_size: images optimised together (vmapped).
    progress: show a progress bar over chunks of steps.

  Returns:
    A `PerturbationResult`. Raises `FvjaxError` for bad arguments before anything runs.
  """
  _common.check_model(model, "meaningful_perturbation")
  _common.check_choice(game, GAMES, "game")
  _common.check_choice(perturbation, PERTURBATIONS, "perturbation")
  _common.check_choice(score, _common.SCORES, "score")
  _common.check_choice(penalties, PENALTIES, "penalties")
  for name, value in (("l1", l1), ("tv", tv), ("mask_smooth", mask_smooth),
                      ("blur_sigma", blur_sigma), ("noise_sd", noise_sd)):
    _common.check_positive(value, name, zero=True)
  _common.check_positive(beta, "beta")
  _common.check_positive(learning_rate, "learning_rate")
  _common.check_positive(mask_size, "mask_size", integer=True)
  _common.check_positive(jitter, "jitter", integer=True, zero=True)
  _common.check_positive(steps, "steps", integer=True)
  _common.check_positive(batch_size, "batch_size", integer=True)
  if not 0.0 <= init <= 1.0:
    raise FvjaxError(f"init must be a mask value in [0, 1], got {init!r}")
  images = _common.check_images(model, images, "meaningful_perturbation")
  if mask_size > min(images.shape[1:3]):
    raise FvjaxError(f"mask_size {mask_size} is larger than the {images.shape[1]}x"
                     f"{images.shape[2]} images; valid: 1..{min(images.shape[1:3])}")
  classes = _common.check_targets(model, target, len(images), "meaningful_perturbation")
  setting = _Setting(game, perturbation, float(l1), float(tv), float(beta), int(mask_size),
                     float(mask_smooth), float(blur_sigma), float(noise_sd), int(jitter), score,
                     float(learning_rate), penalties)
  keys = jax.random.split(key, len(images))
  chunk = _chunk(steps)
  bar = tqdm(total=steps * len(images), desc="meaningful perturbation", unit="step",
             disable=not progress, leave=False)

  def run(images, classes, keys):
    start_key, loop_key, final_key = jax.vmap(lambda k: jax.random.split(k, 3))(keys).swapaxes(0, 1)
    state = _start(setting, model, images, classes, start_key, init=float(init))
    traces = []
    for i in range(steps // chunk):
      step_keys = jax.vmap(lambda k: jax.random.fold_in(k, i))(loop_key)
      state, losses = _run(setting, model, state, images, classes, step_keys, length=chunk)
      traces.append(losses)
      bar.update(chunk * len(images))
    masks, scores = _finish(setting, model, state[0], images, classes, final_key)
    return state[0], masks, scores, jnp.concatenate(traces, axis=1)

  with bar:
    small, masks, scores, trace = map_batches(run, images, classes, keys,
                                              batch_size=batch_size)
  saliency = 1.0 - masks if game == "deletion" else masks
  return PerturbationResult(masks, saliency, small, scores[:, 0], scores[:, 1], scores[:, 2],
                            trace)


def _chunk(steps: int) -> int:
  """The largest divisor of ``steps`` giving at least ~10 progress updates."""
  target = max(1, -(-steps // 10))
  return max(d for d in range(1, steps + 1) if steps % d == 0 and d <= target)
