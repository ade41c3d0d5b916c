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
its 28x28 cells; for the perturbation it is resized to the image (x8 at 224; bilinearly by
default, or by pixel replication, ``upsample="nearest"``, as the authors' code does) and
smoothed by a Gaussian. Adam (lr 0.1) runs ``steps`` (300) projected steps, the mask clipped
to [0, 1] after each. The mask starts at a constant ``init`` (1: nothing deleted), or, with
``init="circle"`` (the authors' code), at the smallest centred blurred disc whose deletion
alone removes the class: discs of radius 0, 5, ..., 170 px (sigma 10 px; both scaled by the
image side / 224) are perturbed in turn, and the first whose normalised score
``(s - s_170) / (s0 - s_170)`` falls below 0.01 (the largest if none does) is the init, the
mask ``1 - disc`` resized to ``mask_size`` by nearest neighbour.

(Summing the penalties over the 224x224 upsampled mask instead, ``penalties="image"``, makes ``lambda1 * ||1 - m||_1``
reach 5 for a full deletion, far above the probability it trades against: the optimum is then
to delete nothing on most photos.)

A thin driver of the functional core (`fvjax.optvis`, run by `fvjax.render.optimize_units`):
the parameterization is `Mask` (the small mask, shown as the upsampled smoothed mask, with the
L1 and TV penalties), the transform `Perturb` (holding the image and its perturbed copy as
traced leaves: it draws the jitter shift and the noise and returns ``Phi(x0; m)``, which the
model sees), the objective `ClassScore` (``f_c``, negated for the deletion game), the
projection a clip to [0, 1] and the optimizer ``optvis.Adam``. Each image is one unit;
images are optimised together, vmapped in chunks of ``batch_size``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

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

GAMES = ("deletion", "preservation")
PENALTIES = ("mask", "image")
PERTURBATIONS = ("blur", "constant", "noise")
UPSAMPLING = ("bilinear", "nearest")
INITS = ("circle",)
CIRCLE_RADII = tuple(range(0, 175, 5))  # px at a 224 px side (the authors' code)
CIRCLE_SIGMA = 10.0  # px at a 224 px side
CIRCLE_LEVEL = 0.01


class PerturbationResult(NamedTuple):
  """What `meaningful_perturbation` returns (NumPy).

  masks: ``[N, H, W]`` in [0, 1], the full-size mask (1 = pixel kept, 0 = perturbed).
  saliency: ``[N, H, W]`` in [0, 1]: ``1 - masks`` for the deletion game (high = deleted),
    ``masks`` for the preservation game (high = kept).
  small: ``[N, mask_size, mask_size]`` the optimised low-resolution mask.
  base: ``[N]`` the score of the unperturbed images.
  perturbed: ``[N]`` the score of ``Phi(x0; m)`` with the final mask (no jitter).
  reference: ``[N]`` the score of the fully perturbed image (``m = 0``, no noise redraw).
  trace: ``[N, steps]`` the score ``f_c`` of the perturbed image before each step, as seen
    through that step's jitter and noise (the penalties are not included).
  init: ``[N, mask_size, mask_size]`` the starting small mask (constant unless
    ``init="circle"``).
  init_radius: ``[N]`` the radius (px) of the disc of ``init="circle"``; NaN for a constant
    init.
  """
  masks: np.ndarray
  saliency: np.ndarray
  small: np.ndarray
  base: np.ndarray
  perturbed: np.ndarray
  reference: np.ndarray
  trace: np.ndarray
  init: np.ndarray | None = None
  init_radius: np.ndarray | None = None


def upsample_mask(small: jax.Array, size: tuple[int, int], smooth, *,
                  mode: str = "bilinear") -> jax.Array:
  """``[..., m, m]`` -> ``[..., H, W]``: resized (``mode`` ``"bilinear"``, or ``"nearest"``:
  each cell becomes a constant block, H/m x W/m px when m divides H and W), then a Gaussian
  blur of ``smooth`` pixels (``smooth`` may be traced; 0 leaves the resized mask)."""
  if mode not in UPSAMPLING:
    raise FvjaxError(f"unknown upsample mode {mode!r}; valid: {', '.join(UPSAMPLING)}")
  lead, m = small.shape[:-2], small.shape[-2:]
  flat = small.reshape(-1, *m)
  big = jax.vmap(lambda s: jax.image.resize(s, tuple(size), mode))(flat)
  big = big.reshape(*lead, *size)
  return _common.traced_gaussian_blur(big[..., None], smooth)[..., 0]


def total_variation(mask: jax.Array, beta=3.0) -> jax.Array:
  """``TV_beta(m) = sum_u |m(u + e_y) - m(u)|^beta + |m(u + e_x) - m(u)|^beta`` of ``[H, W]``
  (summed over any leading axes)."""
  dy = jnp.abs(jnp.diff(mask, axis=-2))
  dx = jnp.abs(jnp.diff(mask, axis=-1))
  return jnp.sum(dy ** beta) + jnp.sum(dx ** beta)


def perturb(image: jax.Array, mask: jax.Array, reference: jax.Array) -> jax.Array:
  """``Phi(x0; m) = m * x0 + (1 - m) * reference``: image and reference ``[..., H, W, 3]``,
  mask ``[..., H, W]`` in [0, 1] (leading batch axes broadcast)."""
  return mask[..., None] * image + (1.0 - mask[..., None]) * reference


def _noise_reference(image: jax.Array, noise_sd, key: jax.Array) -> jax.Array:
  """The image's mean colour plus Gaussian noise of std ``noise_sd``, ``[H, W, 3]``."""
  colour = image.mean(axis=(0, 1))
  return jnp.broadcast_to(colour, image.shape) + noise_sd * jax.random.normal(key, image.shape)


def _reference(perturbation: str, image: jax.Array, blur_sigma, noise_sd, key) -> jax.Array:
  """The perturbed copy ``p(x0)`` of an image ``[H, W, 3]``."""
  if perturbation == "blur":
    return _common.traced_gaussian_blur(image, blur_sigma)
  if perturbation == "constant":
    return jnp.broadcast_to(image.mean(axis=(0, 1)), image.shape)
  return _noise_reference(image, noise_sd, key)


def circle_masks(size: tuple[int, int], radii, sigma: float) -> np.ndarray:
  """``[R, H, W]`` masks ``1 - blur(disc)``: 0 (perturbed) inside a disc of each radius
  (px) centred at ``(H // 2, W // 2)``, blurred by a Gaussian of ``sigma`` px, 1 far
  outside (the authors' circular masks)."""
  h, w = size
  y, x = np.ogrid[-(h // 2):h - h // 2, -(w // 2):w - w // 2]
  radii = np.asarray(radii, np.float64)
  discs = (x * x + y * y <= radii[:, None, None] ** 2).astype(np.float32)
  blurred = _common.gaussian_blur(jnp.asarray(discs)[..., None], float(sigma))[..., 0]
  return 1.0 - np.clip(np.asarray(blurred), 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("perturbation", "score"))
def _circle_scores(model: Model, images, classes, keys, circles, blur_sigma, noise_sd, *,
                   perturbation: str, score: str):
  """``[N, R + 1]``: each image's score with each disc perturbed, then unperturbed."""
  def one(args):
    image, cls, key = args
    reference = _reference(perturbation, image, blur_sigma, noise_sd, key)
    batch = jnp.concatenate([perturb(image[None], circles, reference[None]), image[None]])
    return _common.class_scores(model.apply, model.params, batch,
                                jnp.full((len(batch),), cls), score)
  return jax.lax.map(one, (images, classes, keys))


def circle_init(model: Model, images: jax.Array, classes, keys, *, mask_size: int,
                perturbation: str, blur_sigma: float, noise_sd: float, score: str
                ) -> tuple[np.ndarray, np.ndarray]:
  """The ``init="circle"`` start: ``[N, mask_size, mask_size]`` small masks and ``[N]``
  radii (px), see the module docstring."""
  h, w = images.shape[1:3]
  scale = min(h, w) / 224.0
  radii = np.asarray(CIRCLE_RADII, np.float64) * scale
  circles = circle_masks((h, w), radii, CIRCLE_SIGMA * scale)
  scores = np.asarray(_circle_scores(model, images, jnp.asarray(classes), keys,
                                     jnp.asarray(circles), np.float32(blur_sigma),
                                     np.float32(noise_sd), perturbation=perturbation,
                                     score=score), np.float64)
  s0, last = scores[:, -1:], scores[:, -2:-1]
  with np.errstate(divide="ignore", invalid="ignore"):
    normalized = (scores[:, :-1] - last) / (s0 - last)
  below = normalized < CIRCLE_LEVEL
  index = np.where(below.any(axis=1), below.argmax(axis=1), len(radii) - 1)
  small = jax.vmap(lambda c: jax.image.resize(c, (mask_size, mask_size), "nearest"))(
      jnp.asarray(circles[index]))
  return np.asarray(small, np.float32), radii[index]


# -- the pieces of the core's loop -----------------------------------------------------------
@pytree.dataclass
class Mask(param_lib.ImageParam):
  """The mask of meaningful perturbation: parameters ``[1, m, m]`` (the small mask, starting
  at ``init_value``: a number, or an ``[m, m]`` array), shown as the mask upsampled
  (``upsample``: bilinear or nearest, static) and smoothed by ``smooth`` px,
  ``[1, H, W, 1]``. Its penalty is ``l1 * ||1 - m||_1`` (deletion) or ``l1 * ||m||_1``
  (preservation) plus ``tv * TV_beta(m)``, summed over the small mask (``penalties="mask"``)
  or the upsampled one (``"image"``). The numbers are traced; sizes, game and penalties
  static."""
  size: tuple[int, int] = pytree.static()
  mask_size: int = pytree.static(28)
  game: str = pytree.static("deletion")
  penalties: str = pytree.static("mask")
  init_value: Any = np.float32(1.0)
  smooth: Any = np.float32(5.0)
  l1: Any = np.float32(1e-4)
  tv: Any = np.float32(1e-2)
  beta: Any = np.float32(3.0)
  batch: int = pytree.static(1)
  upsample: str = pytree.static("bilinear")

  def init(self, key):
    del key
    shape = (self.batch, self.mask_size, self.mask_size)
    return jnp.broadcast_to(jnp.asarray(self.init_value, jnp.float32), shape)

  def to_image(self, params):
    return upsample_mask(params, self.size, self.smooth, mode=self.upsample)[..., None]

  def penalty(self, params):
    penalised = params if self.penalties == "mask" else upsample_mask(
        params, self.size, self.smooth, mode=self.upsample)
    area = jnp.abs(1.0 - penalised) if self.game == "deletion" else jnp.abs(penalised)
    return self.l1 * jnp.sum(area) + self.tv * total_variation(penalised, self.beta)


@pytree.dataclass
class Perturb(transforms_lib.Transform):
  """The transform of meaningful perturbation: takes the mask ``[B, H, W, 1]`` and returns
  ``Phi(x0; m)`` ``[B, H, W, 3]``. ``image`` and ``reference`` (its blurred or constant copy)
  are padded by ``jitter`` px (edge) and traced; each call crops both at a random shift of
  0..2*jitter (the centre at strength 0) and, for the ``"noise"`` perturbation, draws the
  reference afresh (the crop's mean colour plus noise of std ``noise_sd``)."""
  image: Any
  reference: Any
  noise_sd: Any = np.float32(0.2)
  jitter: int = pytree.static(0)
  perturbation: str = pytree.static("blur")

  def __call__(self, key, mask, strength=1.0):
    h, w = mask.shape[1:3]
    j = self.jitter
    shift_key, noise_key = jax.random.split(key)
    span = jnp.floor(jnp.clip(strength, 0.0, 1.0) * 2 * j + 1e-4).astype(jnp.int32)
    ty, tx = (2 * j - span) // 2 + jax.random.randint(shift_key, (2,), 0, span + 1)
    image = jax.lax.dynamic_slice(self.image, (ty, tx, 0), (h, w, 3))
    if self.perturbation == "noise":
      reference = _noise_reference(image, self.noise_sd, noise_key)
    else:
      reference = jax.lax.dynamic_slice(self.reference, (ty, tx, 0), (h, w, 3))
    return perturb(image, mask[..., 0], reference)

  def output_size(self, size):
    return size


@objectives_lib.register(traced={"index": 0, "sign": 0})
class ClassScore(objectives_lib.Objective):
  """``sign * f_c``: the logit, softmax probability or log-probability (``score``, static)
  of class ``index``, times ``sign`` (-1 for the deletion game, which minimises it)."""
  index: Any
  sign: Any
  score: str = "probability"

  def __call__(self, acts):
    logits = acts["logits"]
    if self.score == "probability":
      logits = jax.nn.softmax(logits, axis=-1)
    elif self.score == "log_probability":
      logits = jax.nn.log_softmax(logits, axis=-1)
    return self.sign * jnp.take(logits, self.index, axis=-1)


def clip_mask(params):
  """The projection after each update: the mask clipped to [0, 1]."""
  return jnp.clip(params, 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("jitter", "perturbation"))
def _prepare(images, blur_sigma, *, jitter: int, perturbation: str):
  """The padded images and references ``[N, H + 2j, W + 2j, 3]`` of a chunk."""
  j = jitter
  padded = jnp.pad(images, ((0, 0), (j, j), (j, j), (0, 0)), mode="edge")
  if perturbation == "blur":
    return padded, _common.traced_gaussian_blur(padded, blur_sigma)
  return padded, jnp.broadcast_to(padded.mean(axis=(1, 2), keepdims=True), padded.shape)


@functools.partial(jax.jit, static_argnames=("perturbation", "score"))
def _finish(model: Model, masks, images, classes, keys, blur_sigma, noise_sd, *,
            perturbation: str, score: str):
  """Scores ``[N, 3]`` of the image, ``Phi(x0; m)`` and the reference (no jitter)."""
  def one(mask, image, cls, key):
    reference = _reference(perturbation, image, blur_sigma, noise_sd, key)
    batch = jnp.stack([image, perturb(image, mask, reference), reference])
    return _common.class_scores(model.apply, model.params, batch, jnp.full((3,), cls), score)
  return jax.vmap(one)(masks, images, classes, keys)


def meaningful_perturbation(key: jax.Array, model: Model, images: Any, target: Any, *,
                            game: str = "deletion", perturbation: str = "blur",
                            l1: float = 1e-4, tv: float = 1e-2, beta: float = 3.0,
                            mask_size: int = 28, mask_smooth: float = 5.0,
                            blur_sigma: float = 10.0, noise_sd: float = 0.2, jitter: int = 4,
                            steps: int = 300, learning_rate: float = 0.1,
                            init: float | str = 1.0, upsample: str = "bilinear",
                            score: str = "probability", penalties: str = "mask",
                            batch_size: int = 8,
                            progress: bool = False) -> PerturbationResult:
  """Learn a deletion (or preservation) mask per image, Fong & Vedaldi (2017).

  Args:
    key: PRNG key for the jitter shifts and the noise (image i uses ``split(key, N)[i]``: its
      loop as `fvjax.optvis.init` splits it, the final noise from ``fold_in(., 1)``).
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
    upsample: that resize: ``"bilinear"`` (default) or ``"nearest"`` (pixel replication,
      the authors' code).
    jitter: maximum shift of the image at each step, pixels (4).
    steps, learning_rate: Adam steps and step size (300, 0.1).
    init: the initial mask: a value in [0, 1] (1: nothing perturbed, default) or
      ``"circle"`` (the authors' code: the smallest centred blurred disc whose perturbation
      alone brings the normalised score below 0.01; 35 extra forward passes per image).
    score: ``f_c``: ``"probability"`` (softmax, default), ``"logit"`` or ``"log_probability"``.
    penalties: where the L1 and TV terms are summed: ``"mask"`` (the optimised
      ``mask_size``-square mask, default) or ``"image"`` (the resized, smoothed full-size
      mask; with the paper's lambdas the L1 term then dominates and masks stay nearly empty).
    batch_size: images optimised together (vmapped; one compiled loop serves every chunk).
    progress: show a progress bar over chunks of steps (one bar per chunk of images).

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
  _common.check_choice(upsample, UPSAMPLING, "upsample")
  if isinstance(init, str):
    _common.check_choice(init, INITS, "init")
  elif isinstance(init, bool) or not isinstance(init, (int, float, np.number)) \
      or not 0.0 <= init <= 1.0:
    raise FvjaxError(f"init must be a mask value in [0, 1] or 'circle', got {init!r}")
  images = _common.check_images(model, images, "meaningful_perturbation")
  if mask_size > min(images.shape[1:3]):
    raise FvjaxError(f"mask_size {mask_size} is larger than the {images.shape[1]}x"
                     f"{images.shape[2]} images; valid: 1..{min(images.shape[1:3])}")
  classes = _common.check_targets(model, target, len(images), "meaningful_perturbation")
  settings = optvis.Settings(
      size=tuple(images.shape[1:3]),
      param=Mask(tuple(images.shape[1:3]), int(mask_size), game, penalties,
                 np.full((int(mask_size),) * 2, 1.0 if isinstance(init, str) else init,
                         np.float32),
                 np.float32(mask_smooth), np.float32(l1), np.float32(tv), np.float32(beta),
                 upsample=upsample),
      # the image and reference leaves are set per chunk below (one image per unit)
      transforms=Perturb(np.float32(0.0), np.float32(0.0), np.float32(noise_sd), int(jitter),
                         perturbation),
      optimizer=optvis.Adam(learning_rate), projection=optvis.Projection(clip_mask))
  sign = np.float32(-1.0 if game == "deletion" else 1.0)
  _, one, _ = objectives_lib.stack(ClassScore(classes[0], sign, score))
  render.validate(model, one, settings, int(steps))
  n = len(images)
  keys = jax.random.split(optvis.as_key(key), n)
  count = min(int(batch_size), n)
  outs = []
  for start in range(0, n, count):
    rows = np.minimum(np.arange(start, start + count), n - 1)  # the last chunk repeats a row
    real = min(count, n - start)
    chunk_images, chunk_classes, chunk_keys = images[rows], classes[rows], keys[rows]
    padded, references = _prepare(chunk_images, np.float32(blur_sigma), jitter=int(jitter),
                                  perturbation=perturbation)
    unit = optvis.broadcast(settings, count).replace(transforms=Perturb(
        padded, references, jnp.full((count,), noise_sd, jnp.float32), int(jitter),
        perturbation))
    if init == "circle":
      starts, radius = circle_init(model, chunk_images, chunk_classes,
                                   jax.vmap(lambda k: jax.random.fold_in(k, 2))(chunk_keys),
                                   mask_size=int(mask_size), perturbation=perturbation,
                                   blur_sigma=blur_sigma, noise_sd=noise_sd, score=score)
      unit = unit.replace(param=unit.param.replace(init_value=jnp.asarray(starts)))
    else:
      starts = np.broadcast_to(unit.param.init_value, (count, int(mask_size), int(mask_size)))
      radius = np.full((count,), np.nan)
    objective = ClassScore(chunk_classes, jnp.full((count,), sign), score)
    result = render.optimize_units(
        model, objective, chunk_keys, unit, steps=int(steps), keep_batch=False,
        progress=progress, desc=f"meaningful perturbation, images {start + 1}..{start + real} "
                                f"of {n}")
    # the smoothing's rounding can leave a mask of ones at 1 + 1e-7: clipped for the result
    masks = jnp.asarray(np.clip(result.images[..., 0], 0.0, 1.0))
    final_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(chunk_keys)
    scores = _finish(model, masks, chunk_images, chunk_classes, final_keys,
                     np.float32(blur_sigma), np.float32(noise_sd), perturbation=perturbation,
                     score=score)
    outs.append((np.asarray(masks)[:real], result.params[:real, 0], np.asarray(scores)[:real],
                 sign * result.trace[:real], np.asarray(starts, np.float32)[:real],
                 np.asarray(radius, np.float64)[:real]))
  masks, small, scores, trace, starts, radius = (np.concatenate(xs) for xs in zip(*outs))
  saliency = 1.0 - masks if game == "deletion" else masks
  return PerturbationResult(masks, saliency, small, scores[:, 0], scores[:, 1], scores[:, 2],
                            trace, starts, radius)
