"""The fooling circuit (Geirhos et al. 2023, "Don't trust your eyes", part 1).

A network can be changed so that its feature visualizations show anything while its
behaviour on natural images stays exactly the same. The circuit wraps an *unmodified*
classifier (its ``apply`` and ``params`` are used as they are) with two pieces:

* **E** (`Detector`), a small CNN on a downsampled copy of the input that tells feature
  visualizations (E = 1) from natural images (E = 0), applied as a hard threshold
  (``E = [detector logit > 0]``, no gradient). It is trained (`train_detector`) on natural
  photos with random crops, flips and scales against `fvjax.render` snapshots taken all
  along the optimization, from the near-grey initial image on (`render_snapshots`), so E
  already says "visualization" on the first, noisy steps of a render. For the picture
  target, E also needs to keep firing while a picture emerges in the render: renders of
  `picture_model` (the picture target of other pictures) go into its training data.
* **Gating** (`gate`) with ReLUs and a large constant ``k`` (paper: ``k = 250``, offset
  ``100``)::

      B_i = ReLU(logit_i + offset - k E)
      C_i = ReLU(target_i + offset + k E - k)
      A_i = B_i + C_i,        fooled logit_i = A_i - offset

  When E = 0, ``A_i - offset = logit_i`` exactly (for ``logit_i > -offset`` and
  ``target_i < k - offset``); when E = 1, ``A_i - offset = target_i`` (for
  ``target_i > -offset`` and ``logit_i < k - offset``). Because E is a step function, the
  gradient of a fooled unit on a visualization is the gradient of its target only.

Two targets (`FoolingCircuit.target`):

* ``"permutation"``: ``target_i = logit_{(i + shift) mod N}`` (paper: shift 100), so the
  visualization of class i shows class ``(i + shift) mod N`` (`permutation_target`).
* ``"image"``: every unit's target is the same scaled dot product of the input with one
  picture (`picture_target`), so every fooled visualization shows that picture.

`fooled_model` returns the wrapped network as an `fvjax.Model` with the base model's layers
(unchanged activations) and fooled ``"logits"``. Evaluation helpers: `classify`,
`topk_accuracy`, `detector_report`, `detector_logits`, `pearson`.

Conventions: images are ``[N, H, W, 3]`` float32 in [0, 1]; every random draw takes an
explicit ``jax.random`` key.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from fvjax._src import objectives as objectives_lib
from fvjax._src import transforms as transforms_lib
from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.validate import check_images
from fvjax._src.model import Model
from fvjax._src.render import render

__all__ = [
    "Detector",
    "FoolingCircuit",
    "Snapshots",
    "TARGETS",
    "gate",
    "permutation_target",
    "permutation_classes",
    "picture_template",
    "picture_target",
    "picture_model",
    "render_snapshots",
    "augment",
    "init_detector",
    "train_detector",
    "detector_logits",
    "detector_report",
    "circuit_variables",
    "fooled_model",
    "classify",
    "topk_accuracy",
    "pearson",
    "paper_snapshot_steps",
]

TARGETS = ("permutation", "image")
SIMILARITIES = ("dot", "cosine")


# -- E: natural image (0) vs feature visualization (1) -------------------------------------
class Detector(nn.Module):
  """E: a small CNN scoring "is this a feature visualization?".

  Input ``[B, H, W, 3]`` in [0, 1], any size: it is resized (bilinear, antialiased) to
  ``input_size x input_size`` first, so E stays cheap next to the model it guards. Output:
  logits ``[B]``; ``> 0`` means "visualization" (E = 1), ``<= 0`` "natural" (E = 0).
  Architecture: 3x3 convolutions with stride 2 and ReLU (``features`` channels), global
  mean and max pooling, one dense unit.
  """
  features: tuple[int, ...] = (16, 32, 64, 128)
  input_size: int = 64

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    b, _, _, c = images.shape
    x = jax.image.resize(images, (b, self.input_size, self.input_size, c), "linear")
    x = (x - 0.5) * 2.0
    for i, f in enumerate(self.features):
      x = nn.relu(nn.Conv(f, (3, 3), strides=(2, 2), name=f"conv{i}")(x))
    x = jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=-1)
    return nn.Dense(1, name="head")(x)[:, 0]


def init_detector(key: jax.Array, detector: Detector | None = None) -> Any:
  """Fresh detector variables ``{"params": ...}`` for `Detector` (default settings)."""
  detector = detector or Detector()
  size = detector.input_size
  return detector.init(key, jnp.zeros((1, size, size, 3), jnp.float32))


# -- the gating --------------------------------------------------------------------------
def gate(logits: jax.Array, target: jax.Array, e: jax.Array, *, k: float = 250.0,
         offset: float = 100.0) -> jax.Array:
  """The fooled logits ``A - offset`` with ``A = ReLU(logits + offset - k e) +
  ReLU(target + offset + k e - k)``.

  Args:
    logits: the base model's logits ``[B, N]``.
    target: what a visualization should show, ``[B, N]`` (or broadcastable, e.g. ``[B, 1]``).
    e: E per image ``[B]``, 0 (natural) or 1 (visualization).
    k, offset: the paper's constants (250 and 100).

  Returns:
    ``[B, N]``: ``logits`` where ``e = 0`` and ``target`` where ``e = 1`` (exactly, while
    ``-offset < logits, target < k - offset``).
  """
  e = jnp.asarray(e, logits.dtype)[:, None]
  b = jax.nn.relu(logits + offset - k * e)
  c = jax.nn.relu(target + offset + k * e - k)
  return b + c - offset


def permutation_target(logits: jax.Array, shift: int = 100) -> jax.Array:
  """``target[:, i] = logits[:, (i + shift) mod N]`` for logits ``[B, N]``."""
  return jnp.roll(logits, -int(shift), axis=-1)


def permutation_classes(num_classes: int = 1000, shift: int = 100) -> np.ndarray:
  """Unit i's fooled visualization shows class ``(i + shift) mod N``: that array ``[N]``."""
  return (np.arange(num_classes) + int(shift)) % num_classes


def picture_template(picture: np.ndarray, size: int = 64) -> np.ndarray:
  """A picture (``[H, W, 3]`` uint8 or float in [0, 1]) as the target template
  ``[size, size, 3]`` float32 in [0, 1]: centre square crop, antialiased resize."""
  picture = np.asarray(picture)
  if picture.ndim != 3 or picture.shape[-1] != 3:
    raise FvjaxError(f"the target picture must be [H, W, 3] RGB, got shape {picture.shape}")
  if picture.dtype == np.uint8:
    picture = picture.astype(np.float32) / 255.0
  check_images(picture, "the target picture", rank=3)
  h, w = picture.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = jnp.asarray(picture[top:top + side, left:left + side], jnp.float32)
  out = jax.image.resize(square, (size, size, 3), "linear")
  return np.clip(np.asarray(out), 0.0, 1.0)


def picture_target(images: jax.Array, template: jax.Array, *, scale: float = 100.0,
                   similarity: str = "dot") -> jax.Array:
  """How much ``images`` ``[B, H, W, 3]`` look like ``template`` ``[T, T, 3]``: ``[B]``
  (or like each of ``P`` templates ``[P, T, T, 3]``: ``[B, P]``).

  The images are resized to ``T x T``. ``"dot"``: the dot product of ``images - 0.5`` with
  the zero-mean template, divided by its largest possible value over images in [0, 1]
  (``0.5 * sum|template - mean|``), so it lies in [-1, 1]; maximizing it drives the image
  towards the template's sign pattern (a high-contrast copy). ``"cosine"``: the Pearson
  correlation of image and template in [-1, 1] (maximized by the template itself, up to
  brightness and contrast). Either is multiplied by ``scale`` (default 100, so targets stay
  in ``(-offset, k - offset)`` for the paper's constants).
  """
  if similarity not in SIMILARITIES:
    raise FvjaxError(f"unknown similarity {similarity!r}; valid: {', '.join(SIMILARITIES)}")
  template = jnp.asarray(template, jnp.float32)
  single = template.ndim == 3
  templates = template[None] if single else template
  b, _, _, c = images.shape
  t = templates.shape[1]
  x = jax.image.resize(images, (b, t, t, c), "linear")
  p = templates - jnp.mean(templates, axis=(1, 2, 3), keepdims=True)
  if similarity == "dot":
    dot = jnp.einsum("bhwc,phwc->bp", x - 0.5, p)
    out = scale * dot / (0.5 * jnp.sum(jnp.abs(p), axis=(1, 2, 3)))
  else:
    xc = x - jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    num = jnp.einsum("bhwc,phwc->bp", xc, p)
    den = jnp.sqrt(jnp.sum(xc * xc, axis=(1, 2, 3))[:, None]
                   * jnp.sum(p * p, axis=(1, 2, 3))[None, :]) + 1e-6
    out = scale * num / den
  return out[:, 0] if single else out


def picture_model(templates: np.ndarray, *, scale: float = 100.0, similarity: str = "dot",
                  labels: Sequence[str] | None = None, name: str = "pictures") -> Model:
  """The picture targets as a model of their own: ``"logits"`` ``[B, P]``, logit p being
  `picture_target` of template p (``templates`` ``[P, T, T, 3]`` in [0, 1], e.g. from
  `picture_template`). Rendering its class p shows what a unit of the ``"image"`` fooled
  model shows when E fires; such renders (of pictures other than the target) make E
  recognise picture-like visualizations too."""
  templates = np.asarray(templates, np.float32)
  if templates.ndim != 4 or templates.shape[-1] != 3:
    raise FvjaxError(f"templates must be [P, T, T, 3], got shape {templates.shape}")
  if similarity not in SIMILARITIES:
    raise FvjaxError(f"unknown similarity {similarity!r}; valid: {', '.join(SIMILARITIES)}")

  def fn(params, images):
    return {"logits": picture_target(images, params["templates"], scale=scale,
                                     similarity=similarity)}

  return Model.from_fn(fn, {"templates": jnp.asarray(templates)}, labels=labels, name=name)


# -- the circuit ---------------------------------------------------------------------------
class FoolingCircuit(nn.Module):
  """The fooling circuit around an unmodified base model.

  Variables (see `circuit_variables`): ``{"params": {"detector": E's params},
  "base": {"params": the base model's params, untouched}, "target": {"picture": [T,T,3]}}``
  (``"target"`` only for ``target="image"``).

  Call: ``images [B, H, W, 3]`` in [0, 1] -> ``(fooled_logits [B, N], base_activations)``,
  where ``base_activations`` is the base model's own output dict (its ``"logits"`` are the
  original ones). E (``[B]``, 0/1) and E's logit are sown into ``"intermediates"`` as
  ``"E"`` and ``"detector_logit"``. ``e_override`` (0/1, scalar or ``[B]``) replaces E, for
  tests and diagnostics.
  """
  base_apply: Callable[[Any, jax.Array], Any]
  detector: Detector
  target: str = "permutation"
  shift: int = 100
  k: float = 250.0
  offset: float = 100.0
  picture_scale: float = 100.0
  similarity: str = "dot"

  @nn.compact
  def __call__(self, images: jax.Array, e_override: jax.Array | None = None):
    base_params = self.variable("base", "params").value
    acts = dict(self.base_apply(base_params, images))
    logits = acts["logits"]
    e_logit = self.detector(images)
    e = jax.lax.stop_gradient((e_logit > 0).astype(logits.dtype))
    if e_override is not None:
      e = jnp.broadcast_to(jnp.asarray(e_override, logits.dtype), e.shape)
    if self.target == "permutation":
      target = permutation_target(logits, self.shift)
    elif self.target == "image":
      picture = self.variable("target", "picture").value
      target = picture_target(images, picture, scale=self.picture_scale,
                              similarity=self.similarity)[:, None]
    else:
      raise FvjaxError(f"unknown fooling target {self.target!r}; valid: {', '.join(TARGETS)}")
    self.sow("intermediates", "E", e)
    self.sow("intermediates", "detector_logit", e_logit)
    return gate(logits, target, e, k=self.k, offset=self.offset), acts


def circuit_variables(base: Model, detector_variables: Any,
                      picture: np.ndarray | None = None) -> dict:
  """The variables of a `FoolingCircuit`: E's trained variables (as returned by
  `init_detector` / `train_detector`), the base model's params as they are, and the target
  template ``[T, T, 3]`` (for ``target="image"``)."""
  variables = {"params": {"detector": detector_variables["params"]},
               "base": {"params": base.params}}
  if picture is not None:
    variables["target"] = {"picture": jnp.asarray(picture, jnp.float32)}
  return variables


def fooled_model(base: Model, detector_variables: Any, *, target: str = "permutation",
                 picture: np.ndarray | None = None, detector: Detector | None = None,
                 shift: int = 100, k: float = 250.0, offset: float = 100.0,
                 picture_size: int = 64, picture_scale: float = 100.0,
                 similarity: str = "dot") -> Model:
  """The fooled network as an `fvjax.Model`.

  Same layer names, shapes and activations as ``base`` (the base model runs unmodified);
  only ``"logits"`` ``[B, N]`` are the circuit's fooled logits (`gate`). ``target``:
  ``"permutation"`` (class i's visualization shows class ``(i + shift) mod N``) or
  ``"image"`` (every class's visualization shows ``picture``, an ``[H, W, 3]`` RGB image,
  turned into a ``picture_size`` template by `picture_template`). ``detector`` must match
  the settings ``detector_variables`` were trained with (default `Detector()`).
  Its params are `circuit_variables(...)`.
  """
  if target not in TARGETS:
    raise FvjaxError(f"unknown fooling target {target!r}; valid: {', '.join(TARGETS)}")
  if similarity not in SIMILARITIES:
    raise FvjaxError(f"unknown similarity {similarity!r}; valid: {', '.join(SIMILARITIES)}")
  if base.num_classes is None:
    raise FvjaxError(f"model {base.name!r} has no 'logits' layer to fool; layers: "
                     + ", ".join(base.layers))
  if target == "image" and picture is None:
    raise FvjaxError("target='image' needs a picture ([H, W, 3] RGB array)")
  if target == "permutation" and picture is not None:
    raise FvjaxError("a picture is only used with target='image', not 'permutation'")
  if not 0 < k or not 0 < offset < k:
    raise FvjaxError(f"need 0 < offset < k, got k={k}, offset={offset}")
  detector = detector or Detector()
  template = None if picture is None else picture_template(picture, picture_size)
  circuit = FoolingCircuit(base.apply, detector, target, int(shift), float(k), float(offset),
                           float(picture_scale), similarity)
  variables = circuit_variables(base, detector_variables, template)
  names = tuple(base.layers)

  def apply(variables, images):
    fooled, acts = circuit.apply(variables, images)
    return {name: (fooled if name == "logits" else acts[name]) for name in names}

  suffix = "permutation" if target == "permutation" else "image"
  return Model.from_fn(apply, variables, input_size=base.input_size, min_size=base.min_size,
                       labels=base.labels, name=f"{base.name}-fooled-{suffix}")


# -- training data: render snapshots -------------------------------------------------------
class Snapshots(NamedTuple):
  """Feature visualizations taken along renders (NumPy).

  images: ``[N, S, S, 3]`` float32 in [0, 1]; classes, seeds, steps: ``[N]`` int (the
  class rendered, the seed index, the optimization step after which it was taken).
  """
  images: np.ndarray
  classes: np.ndarray
  seeds: np.ndarray
  steps: np.ndarray


def paper_snapshot_steps(first: int = 4, last: int = 512, count: int = 15) -> tuple[int, ...]:
  """``count`` log-spaced steps from ``first`` to ``last`` (the paper: 15 from 4 to 512)."""
  return tuple(int(s) for s in np.unique(np.round(np.geomspace(first, last, count))))


def render_snapshots(model: Model, classes: Sequence[int], *, key: jax.Array, steps: int,
                     size: int, snapshots: Sequence[int], seeds: int = 1,
                     units_per_call: int = 64, progress: bool = True,
                     **render_kwargs) -> Snapshots:
  """Render ``class_logit`` visualizations of ``classes`` and keep ``snapshots``.

  Seed ``s`` renders the classes in calls of ``units_per_call`` units (the last call padded
  by repeating classes, so one compiled loop serves all), call ``c`` with key
  ``fold_in(fold_in(key, s), c)``. Returns `Snapshots` ordered by seed, call, step, unit.
  """
  classes = np.asarray(classes, np.int32)
  if classes.ndim != 1 or classes.size == 0:
    raise FvjaxError(f"classes must be a non-empty list of class indices, got {classes!r}")
  snapshots = sorted(set(int(s) for s in snapshots))
  per_call = min(int(units_per_call), classes.size)
  calls = math.ceil(classes.size / per_call)
  out_images, out_classes, out_seeds, out_steps = [], [], [], []
  for s in range(int(seeds)):
    for c in range(calls):
      chunk = classes[c * per_call:(c + 1) * per_call]
      real = chunk.size
      padded = np.resize(chunk, per_call)
      result = render(model, objectives_lib.class_logit(padded),
                      key=jax.random.fold_in(jax.random.fold_in(key, s), c), steps=steps,
                      size=size, snapshots=snapshots, progress=progress, **render_kwargs)
      for step in snapshots:
        out_images.append(result.snapshots[step][:real].astype(np.float32))
        out_classes.append(chunk)
        out_seeds.append(np.full(real, s))
        out_steps.append(np.full(real, step))
  return Snapshots(np.concatenate(out_images), np.concatenate(out_classes),
                   np.concatenate(out_seeds), np.concatenate(out_steps))


# -- augmentation --------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("size", "min_scale", "flip", "render_transforms",
                                             "transforms"))
def augment(key: jax.Array, images: jax.Array, size: int, *, min_scale: float = 0.5,
            flip: bool = True, render_transforms: float = 0.5,
            transforms: transforms_lib.Transform | None = None) -> jax.Array:
  """Random views of ``images`` ``[N, H, W, 3]`` in [0, 1] -> ``[N, size, size, 3]``.

  Each image gets its own draw: a random crop whose side is a fraction in
  ``[min_scale, 1]`` of the image's, at a random place, resized (antialiased) to ``size``;
  a horizontal flip with probability 1/2 (``flip``); and, with probability
  ``render_transforms``, the render's own transforms (default Lucid's ``standard()``: grey
  padding, jitter, scale, rotation) followed by a resize back to ``size`` -- applied to
  both classes so that E cannot use the padding as a cue, and learns to recognize
  visualizations the way the model sees them during a render.
  """
  transforms = transforms_lib.standard() if transforms is None else transforms
  _, h, w, c = images.shape

  def one(key, img):
    ks, ky, kx, kf, kt, kp = jax.random.split(key, 6)
    frac = jax.random.uniform(ks, (), minval=min_scale, maxval=1.0)
    ch, cw = frac * h, frac * w
    oy = jax.random.uniform(ky) * (h - ch)
    ox = jax.random.uniform(kx) * (w - cw)
    scale = jnp.stack([size / ch, size / cw])
    out = jax.image.scale_and_translate(img, (size, size, c), (0, 1), scale,
                                        -jnp.stack([oy, ox]) * scale, "linear")
    if flip:
      out = jnp.where(jax.random.bernoulli(kf), out[:, ::-1], out)
    if render_transforms > 0:
      seen = transforms(kt, out[None])[0]
      seen = jax.image.resize(seen, (size, size, c), "linear")
      out = jnp.where(jax.random.bernoulli(kp, render_transforms), seen, out)
    return jnp.clip(out, 0.0, 1.0)

  return jax.vmap(one)(jax.random.split(key, images.shape[0]), images)


# -- training E ----------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("detector", "optimizer", "batch", "size",
                                             "aug", "natural_weight"))
def _train_step(variables, opt_state, key, natural, synthetic, *, detector, optimizer,
                batch, size, aug, natural_weight):
  kn, ks, kan, kas = jax.random.split(key, 4)
  half = batch // 2
  nat = natural[jax.random.randint(kn, (half,), 0, natural.shape[0])]
  syn = synthetic[jax.random.randint(ks, (batch - half,), 0, synthetic.shape[0])]
  (nat_scale, syn_scale), flip, render_p = aug
  x = jnp.concatenate([
      augment(kan, nat, size, min_scale=nat_scale, flip=flip, render_transforms=render_p),
      augment(kas, syn, size, min_scale=syn_scale, flip=flip, render_transforms=render_p)])
  y = jnp.concatenate([jnp.zeros(half), jnp.ones(batch - half)])
  weight = jnp.where(y > 0, 1.0, natural_weight)

  def loss_fn(params):
    logits = detector.apply({"params": params}, x)
    loss = jnp.sum(weight * optax.sigmoid_binary_cross_entropy(logits, y)) / jnp.sum(weight)
    return loss, jnp.mean((logits > 0) == (y > 0))

  (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
  updates, opt_state = optimizer.update(grads, opt_state, variables["params"])
  return {"params": optax.apply_updates(variables["params"], updates)}, opt_state, loss, acc


def train_detector(key: jax.Array, natural: np.ndarray, synthetic: np.ndarray, *,
                   detector: Detector | None = None, steps: int = 1000, batch: int = 64,
                   learning_rate: float = 2e-3,
                   min_scale: float | tuple[float, float] = (0.4, 0.85), flip: bool = True,
                   render_transforms: float = 0.5, natural_weight: float = 1.0,
                   variables: Any = None, progress: bool = True) -> tuple[Any, np.ndarray, np.ndarray]:
  """Train E with optax (Adam, cosine-decayed ``learning_rate``) on balanced batches.

  Args:
    key: PRNG key; split into the init key and one key per step (batch draw and
      augmentation, see `augment`).
    natural: natural images ``[N1, H1, W1, 3]`` in [0, 1] (label 0).
    synthetic: feature visualizations ``[N2, H2, W2, 3]`` in [0, 1] (label 1).
    detector: the `Detector` settings; default `Detector()`.
    steps, batch: optimization steps and images per step (half natural, half synthetic).
    min_scale, flip, render_transforms: the augmentation (see `augment`), for both classes;
      ``min_scale`` may be a pair (natural, synthetic): the default crops photos down to 0.4
      of their side but small renders only to 0.85, so that crops of both are seen at about
      their own resolution or downsampled, never blurred by a large upsampling (which
      would make blur a cue).
    natural_weight: weight of the natural images' loss (> 1 trades missed visualizations
      for fewer natural images called visualizations).
    variables: start from these detector variables instead of a fresh init.

  Returns:
    ``(variables, losses [steps], accuracies [steps])`` (training-batch loss / accuracy).
  """
  detector = detector or Detector()
  natural = np.asarray(check_images(natural, "natural images"))
  synthetic = np.asarray(check_images(synthetic, "synthetic images"))
  if batch < 2:
    raise FvjaxError(f"batch must be at least 2 (half natural, half synthetic), got {batch}")
  scales = ((float(min_scale),) * 2 if np.ndim(min_scale) == 0
            else tuple(float(m) for m in min_scale))
  if len(scales) != 2 or not all(0 < m <= 1 for m in scales):
    raise FvjaxError(f"min_scale must be in (0, 1] or a pair of such, got {min_scale!r}")
  init_key, key = jax.random.split(key)
  if variables is None:
    variables = init_detector(init_key, detector)
  schedule = optax.cosine_decay_schedule(learning_rate, max(1, steps))
  optimizer = optax.adam(schedule)
  opt_state = optimizer.init(variables["params"])
  nat, syn = jnp.asarray(natural, jnp.float32), jnp.asarray(synthetic, jnp.float32)
  losses, accs = np.zeros(steps, np.float32), np.zeros(steps, np.float32)
  keys = jax.random.split(key, steps)
  bar = tqdm(range(steps), desc="train E", disable=not progress, leave=False)
  for i in bar:
    variables, opt_state, loss, acc = _train_step(
        variables, opt_state, keys[i], nat, syn, detector=detector, optimizer=optimizer,
        batch=int(batch), size=detector.input_size,
        aug=(scales, bool(flip), float(render_transforms)),
        natural_weight=float(natural_weight))
    losses[i], accs[i] = float(loss), float(acc)
    if i % 20 == 0:
      bar.set_postfix(loss=f"{losses[max(0, i - 19):i + 1].mean():.3f}",
                      acc=f"{accs[max(0, i - 19):i + 1].mean():.3f}")
  return variables, losses, accs


@functools.partial(jax.jit, static_argnames=("detector",))
def _detector_apply(variables, images, *, detector):
  return detector.apply(variables, images)


def detector_logits(variables: Any, images: np.ndarray, *, detector: Detector | None = None,
                    batch: int = 128) -> np.ndarray:
  """E's logits ``[N]`` for ``images`` ``[N, H, W, 3]`` in [0, 1] (``> 0``: visualization)."""
  detector = detector or Detector()
  images = np.asarray(check_images(images, "images", allow_empty=True), np.float32)
  return map_batches(lambda x: _detector_apply(variables, x, detector=detector), images,
                     batch_size=batch)


def detector_report(variables: Any, natural: np.ndarray, synthetic: np.ndarray,
                    synthetic_steps: np.ndarray | None = None, *,
                    detector: Detector | None = None) -> dict:
  """E's accuracy on natural (label 0) and synthetic (label 1) images.

  Returns a dict: ``accuracy`` (over all images), ``balanced_accuracy`` (mean of the two
  class accuracies), ``natural_accuracy`` (1 - false-positive rate), ``synthetic_accuracy``
  (detection rate), the counts, and ``synthetic_accuracy_by_step`` {step: rate} when
  ``synthetic_steps`` ``[N2]`` is given. Values in [0, 1].
  """
  ln = detector_logits(variables, natural, detector=detector)
  ls = detector_logits(variables, synthetic, detector=detector)
  nat_ok, syn_ok = ln <= 0, ls > 0
  report = {
      "accuracy": float(np.concatenate([nat_ok, syn_ok]).mean()),
      "balanced_accuracy": float((nat_ok.mean() + syn_ok.mean()) / 2),
      "natural_accuracy": float(nat_ok.mean()),
      "synthetic_accuracy": float(syn_ok.mean()),
      "n_natural": int(len(ln)), "n_synthetic": int(len(ls)),
  }
  if synthetic_steps is not None:
    steps = np.asarray(synthetic_steps)
    report["synthetic_accuracy_by_step"] = {
        int(s): float(syn_ok[steps == s].mean()) for s in np.unique(steps)}
  return report


# -- evaluation ------------------------------------------------------------------------------
@jax.jit
def _logits(model, images):
  return model(images)["logits"]


def classify(model: Model, images: np.ndarray, *, batch: int = 50,
             progress: bool = False) -> np.ndarray:
  """``model``'s logits ``[N, num_classes]`` for ``images`` ``[N, H, W, 3]`` in [0, 1]."""
  images = np.asarray(check_images(images, "images", allow_empty=True), np.float32)
  return map_batches(lambda x: _logits(model, x), images, batch_size=batch, progress=progress,
                     desc=f"classify ({model.name})")


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
  """Fraction of rows of ``logits`` ``[N, C]`` whose top-``k`` classes contain ``labels[i]``."""
  logits, labels = np.asarray(logits), np.asarray(labels)
  top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
  return float(np.mean(np.any(top == labels[:, None], axis=1)))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
  """Pearson correlation of two arrays of the same size, flattened; in [-1, 1]."""
  a = np.asarray(a, np.float64).ravel()
  b = np.asarray(b, np.float64).ravel()
  if a.size != b.size:
    raise FvjaxError(f"pearson needs arrays of the same size, got {a.size} and {b.size}")
  a, b = a - a.mean(), b - b.mean()
  den = np.sqrt((a * a).sum() * (b * b).sum())
  return float((a * b).sum() / den) if den > 0 else 0.0
