"""Objectives: small pytree values scoring a batch of images by their activations.

An objective is called on the activations dict of a batch of ``B`` images (as returned by a
`fvjax.Model`, plus ``"input"``: the images fed to the model, ``[B, H, W, 3]`` in [0, 1]) and
returns one score per image, ``[B]``; optimization maximises the sum. Objectives compose:
``a + b``, ``a - b``, ``-a``, ``3 * a``, ``a * b``, ``a / 2`` and ``sum([...])``.

Unit indices, direction vectors and scale factors are pytree leaves (traced), while layer
names and batch selections are static; so one compiled render serves every unit. A leaf
with one extra leading axis (``channel("conv2d_8", jnp.arange(16))``) makes the objective a
batch of K objectives, which `fvjax.render` optimizes in parallel.

New objectives: `from_fn` wraps a function of the activations and traced values; a class
decorated with `register` (a subclass of `Objective`) declares which fields are traced.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError

Activations = dict[str, jax.Array]


def register(cls=None, *, traced: dict[str, int] | None = None,
             children: Sequence[str] | None = None):
  """Class decorator for a new objective: makes a subclass of `Objective` a frozen dataclass
  registered as a pytree.

  ``traced`` maps each traced field to the number of axes one unit has (0 for an index, 1
  for a vector); a value with one more leading axis batches K units. ``children`` names the
  fields holding objectives (or tuples of them). All other fields are static: hashable
  values (layer names, ints) that are part of the compiled program. Example::

      @fvjax.objectives.register(traced={"target": 1})
      class CloseTo(fvjax.objectives.Objective):
        layer: str
        target: jax.Array  # [C]
        def __call__(self, acts):
          return -jnp.mean(jnp.square(acts[self.layer] - self.target), axis=(1, 2, 3))
  """

  def wrap(cls):
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
      raise FvjaxError(f"register decorates subclasses of fvjax.objectives.Objective, got {cls!r}")
    if children is not None:
      cls._children = tuple(children)
    cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
    cls._traced = dict(traced or {})
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = [f for f in (*cls._traced, *cls._children) if f not in fields]
    if unknown:
      raise FvjaxError(f"{cls.__name__} has no fields {unknown}; its fields: {fields}")
    data = [f for f in fields if f in cls._traced or f in cls._children]
    meta = [f for f in fields if f not in data]
    jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)
    cls._registered = cls
    return cls

  return wrap if cls is None else wrap(cls)



def _check_registered(objective) -> None:
  cls = type(objective)
  if cls.__dict__.get("_registered") is not cls:
    raise FvjaxError(f"{cls.__name__} subclasses Objective but is not registered; decorate it "
                     "with @fvjax.objectives.register(traced={...}), or build the objective "
                     "with fvjax.objectives.from_fn(fn, **values)")


class Objective:
  """Base class: ``objective(acts) -> scores [B]``."""
  _traced: ClassVar[dict[str, int]] = {}
  _children: ClassVar[tuple[str, ...]] = ()

  def __call__(self, acts: Activations) -> jax.Array:
    raise NotImplementedError

  # -- algebra ------------------------------------------------------------------------
  def __add__(self, other):
    if isinstance(other, (int, float)) and other == 0:
      return self
    return Sum((self, _as_objective(other, "+")))

  __radd__ = __add__  # sum([...]) starts from 0

  def __sub__(self, other):
    return Sum((self, Scaled(_as_objective(other, "-"), jnp.float32(-1.0))))

  def __rsub__(self, other):
    return _as_objective(other, "-") - self

  def __neg__(self):
    return Scaled(self, jnp.float32(-1.0))

  def __mul__(self, other):
    if isinstance(other, Objective):
      return Product(self, other)
    return Scaled(self, _as_factor(other))

  __rmul__ = __mul__

  def __truediv__(self, other):
    return Scaled(self, 1.0 / _as_factor(other))

  # -- structure ----------------------------------------------------------------------
  def children(self) -> tuple["Objective", ...]:
    kids = []
    for name in self._children:
      value = getattr(self, name)
      kids.extend(value if isinstance(value, tuple) else (value,))
    return tuple(kids)

  def map_traced(self, fn: Callable[[jax.Array, int], jax.Array]) -> "Objective":
    """A copy with ``fn(leaf, unit_ndim)`` applied to every traced leaf, recursively."""
    _check_registered(self)
    changes = {name: fn(getattr(self, name), ndim) for name, ndim in self._traced.items()}
    for name in self._children:
      value = getattr(self, name)
      changes[name] = (tuple(v.map_traced(fn) for v in value) if isinstance(value, tuple)
                       else value.map_traced(fn))
    return dataclasses.replace(self, **changes)

  def unit_count(self) -> int | None:
    """K when some traced leaf has a leading unit axis, else None (one objective)."""
    counts = set()

    def visit(leaf, ndim):
      if jnp.ndim(leaf) == ndim + 1:
        counts.add(jnp.shape(leaf)[0])
      elif jnp.ndim(leaf) != ndim:
        raise FvjaxError(f"{type(self).__name__}: a traced value has shape {jnp.shape(leaf)}; "
                         f"expected {ndim} axes for one unit or {ndim + 1} for a batch")
      return leaf

    self.map_traced(visit)
    if len(counts) > 1:
      raise FvjaxError(f"objective mixes unit batches of sizes {sorted(counts)}; "
                       "all batched values must have the same leading size")
    return counts.pop() if counts else None

  def check(self, model) -> None:
    """Raise `FvjaxError` if the objective does not fit ``model`` (layers, index ranges)."""
    for child in self.children():
      child.check(model)


def _as_objective(value, op: str) -> Objective:
  if not isinstance(value, Objective):
    raise FvjaxError(f"cannot combine an objective with {value!r} by {op!r}; "
                     "objectives add to objectives and multiply by numbers")
  return value


def _as_factor(value) -> jax.Array:
  if isinstance(value, Objective):
    raise FvjaxError("divide an objective by a number, not by an objective")
  if isinstance(value, (str, bytes)) or value is None:
    raise FvjaxError(f"an objective multiplies by numbers, got {value!r}")
  if not isinstance(value, jax.core.Tracer):
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
      cast = np.asarray(value, np.float32)
    if not np.all(np.isfinite(cast)):
      raise FvjaxError(f"an objective's factor must be finite (within float32), got {value!r}")
  return jnp.asarray(value, jnp.float32)


def _select(scores: jax.Array, batch: int | None) -> jax.Array:
  """Zero the scores of every image but ``batch`` (None keeps all)."""
  if batch is None:
    return scores
  return jnp.where(jnp.arange(scores.shape[0]) == batch, scores, 0.0)


def _check_layer(model, layer: str) -> tuple[int, ...] | None:
  if layer == "input":  # the images fed to the model, added by render
    return None
  return model.layer_shape(layer)


def _check_index(model, layer: str, index, what: str = "channel") -> None:
  size = _check_layer(model, layer)[-1]
  values = np.asarray(index)
  if values.size and (values.min() < 0 or values.max() >= size):
    bad = values[(values < 0) | (values >= size)]
    raise FvjaxError(f"{what} index {bad.tolist()[0]} is out of range for layer {layer!r} "
                     f"of model {model.name!r}, which has {size} channels (valid: 0..{size - 1})")


def _spatial_mean(x: jax.Array) -> jax.Array:
  """``[B, ...spatial]`` -> ``[B]``."""
  return x.reshape(x.shape[0], -1).mean(axis=1)


# -- unit objectives --------------------------------------------------------------------
@register(traced={"index": 0})
class Channel(Objective):
  """Mean activation of channel ``index`` of ``layer`` over all positions."""
  layer: str
  index: Any
  batch: int | None = None

  def __call__(self, acts):
    return _select(_spatial_mean(jnp.take(acts[self.layer], self.index, axis=-1)), self.batch)

  def check(self, model):
    _check_index(model, self.layer, self.index)


@register(traced={"index": 0})
class Neuron(Objective):
  """Activation of channel ``index`` at one position ``(y, x)``; the centre by default."""
  layer: str
  index: Any
  y: int | None = None
  x: int | None = None
  batch: int | None = None

  def __call__(self, acts):
    a = acts[self.layer]
    if a.ndim != 4:
      raise FvjaxError(f"neuron needs a spatial layer; {self.layer!r} has shape {a.shape}")
    y, x = _check_position(a.shape, self.layer, self.y, self.x)
    return _select(jnp.take(a[:, y, x], self.index, axis=-1), self.batch)

  def check(self, model):
    _check_index(model, self.layer, self.index)


@register
class LayerObjective(Objective):
  """DeepDream: mean square of every activation of ``layer``."""
  layer: str
  batch: int | None = None

  def __call__(self, acts):
    return _select(_spatial_mean(jnp.square(acts[self.layer])), self.batch)

  def check(self, model):
    _check_layer(model, self.layer)


@register(traced={"index": 0})
class ClassLogit(Objective):
  """Logit ``index`` (pre-softmax class score)."""
  index: Any
  batch: int | None = None

  def __call__(self, acts):
    return _select(jnp.take(acts["logits"], self.index, axis=-1), self.batch)

  def check(self, model):
    _check_index(model, "logits", self.index, what="class")


@register(traced={"index": 0})
class ClassProbability(Objective):
  """Softmax probability of class ``index``, in [0, 1]."""
  index: Any
  batch: int | None = None

  def __call__(self, acts):
    return _select(jnp.take(jax.nn.softmax(acts["logits"], axis=-1), self.index, axis=-1),
                   self.batch)

  def check(self, model):
    _check_index(model, "logits", self.index, what="class")


@register(traced={"vector": 1})
class Direction(Objective):
  """Mean over positions of the dot product of ``layer``'s activation with ``vector`` [C].

  With ``cossim_pow > 0`` each position's dot product is multiplied by its cosine
  similarity to ``vector`` raised to that power (Lucid's weighting), favouring activations
  that point along the direction rather than merely being large.
  """
  layer: str
  vector: Any
  cossim_pow: float = 0.0
  batch: int | None = None

  def __call__(self, acts):
    dot = _cossim_weighted_dot(acts[self.layer], self.vector, self.cossim_pow)
    return _select(_spatial_mean(dot), self.batch)

  def check(self, model):
    size = _check_layer(model, self.layer)[-1]
    if jnp.shape(self.vector)[-1] != size:
      raise FvjaxError(f"direction vector has length {jnp.shape(self.vector)[-1]}; layer "
                       f"{self.layer!r} of model {model.name!r} has {size} channels")


@register(traced={"vector": 1})
class DirectionNeuron(Objective):
  """Dot product of ``layer``'s activation at one position ``(y, x)`` (centre by default)
  with ``vector`` [C], weighted by cosine similarity to the power ``cossim_pow``."""
  layer: str
  vector: Any
  y: int | None = None
  x: int | None = None
  cossim_pow: float = 0.0
  batch: int | None = None

  def __call__(self, acts):
    a = acts[self.layer]
    if a.ndim != 4:
      raise FvjaxError(f"direction_neuron needs a spatial layer; {self.layer!r} has shape "
                       f"{a.shape}")
    y, x = _check_position(a.shape, self.layer, self.y, self.x)
    return _select(_cossim_weighted_dot(a[:, y, x], self.vector, self.cossim_pow), self.batch)

  check = Direction.check


def _cossim_weighted_dot(a: jax.Array, vector: jax.Array, cossim_pow: float) -> jax.Array:
  """``a [..., C] . vector [C]``, times ``max(cos, 0.1)**cossim_pow`` when ``cossim_pow > 0``."""
  v = vector.astype(a.dtype)
  dot = jnp.tensordot(a, v, axes=[[-1], [0]])
  if cossim_pow:
    cos = dot / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(v) + 1e-6)
    dot = dot * jnp.maximum(cos, 0.1) ** cossim_pow
  return dot


def _gram_cosines(a: jax.Array) -> jax.Array:
  """Cosine similarities ``[B, B]`` between the flattened Gram matrices of ``a [B, ..., C]``."""
  flat = a.reshape(a.shape[0], -1, a.shape[-1])
  grams = jnp.einsum("bpi,bpj->bij", flat, flat).reshape(a.shape[0], -1)
  grams = grams / jnp.maximum(jnp.linalg.norm(grams, axis=-1, keepdims=True), 1e-10)
  return grams @ grams.T


@register
class Diversity(Objective):
  """Batch diversity (Olah et al. 2017): image b scores ``-sum_{a != b} cos(G_a, G_b)``,
  the Gram matrices ``G_ij = sum_xy a_i a_j`` of ``layer``; the batch total is
  ``-sum_{a != b}`` over ordered pairs, so identical images score -1 per ordered pair.

  A reward (higher = more diverse): add it, ``channel(...) + 1e2 * diversity(...)``.
  (Lucid's ``diversity`` returns the similarity and is subtracted; the sign is flipped.)
  """
  layer: str

  def __call__(self, acts):
    cos = _gram_cosines(acts[self.layer])
    return -(cos.sum(axis=1) - jnp.diagonal(cos))

  def check(self, model):
    _check_layer(model, self.layer)


@register
class Alignment(Objective):
  """Lucid's alignment: minus the mean squared difference of ``layer``'s activations between
  batch neighbours at distances 1..4, weighted ``decay_ratio**-d`` (each pair's term is
  shared between its two images). Keeps interpolation strips smooth."""
  layer: str
  decay_ratio: float = 2.0

  def __call__(self, acts):
    a = acts[self.layer]
    scores = jnp.zeros(a.shape[0], a.dtype)
    for d in range(1, min(5, a.shape[0])):
      diff = jnp.mean(jnp.square(a[:-d] - a[d:]).reshape(a.shape[0] - d, -1), axis=1)
      term = diff / self.decay_ratio ** d / 2
      scores = scores.at[:-d].add(-term).at[d:].add(-term)
    return scores

  def check(self, model):
    _check_layer(model, self.layer)


@register(traced={"index1": 0, "index2": 0})
class ChannelInterpolate(Objective):
  """Image b of B maximises ``(1 - w_b) * channel(layer1, index1) + w_b * channel(layer2,
  index2)`` with ``w_b = b / (B - 1)``: an interpolation strip from one unit to another."""
  layer1: str
  index1: Any
  layer2: str
  index2: Any

  def __call__(self, acts):
    a = _spatial_mean(jnp.take(acts[self.layer1], self.index1, axis=-1))
    b = _spatial_mean(jnp.take(acts[self.layer2], self.index2, axis=-1))
    w = jnp.linspace(0.0, 1.0, a.shape[0]) if a.shape[0] > 1 else jnp.zeros(1)
    return (1 - w) * a + w * b

  def check(self, model):
    _check_index(model, self.layer1, self.index1)
    _check_index(model, self.layer2, self.index2)


# -- regularizers: penalties >= 0 on the input (or a layer); subtract them ------------------
def _per_image_mean(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).mean(axis=1)


@register
class L1(Objective):
  """Mean ``|x - constant|`` of ``layer`` (default the input image) per image, >= 0."""
  layer: str = "input"
  constant: float = 0.5

  def __call__(self, acts):
    return _per_image_mean(jnp.abs(acts[self.layer] - self.constant))

  def check(self, model):
    _check_layer(model, self.layer)


@register
class L2(Objective):
  """``sqrt(mean((x - constant)^2) + epsilon)`` of ``layer`` per image, >= 0."""
  layer: str = "input"
  constant: float = 0.5
  epsilon: float = 1e-6

  def __call__(self, acts):
    return jnp.sqrt(_per_image_mean(jnp.square(acts[self.layer] - self.constant)) + self.epsilon)

  check = L1.check


@register
class TotalVariation(Objective):
  """Mean absolute difference between vertical and horizontal neighbours, per image, >= 0."""
  layer: str = "input"

  def __call__(self, acts):
    x = acts[self.layer]
    return (_per_image_mean(jnp.abs(x[:, 1:] - x[:, :-1]))
            + _per_image_mean(jnp.abs(x[:, :, 1:] - x[:, :, :-1])))

  check = L1.check


def blur3x3(x: jax.Array) -> jax.Array:
  """Lucid's ``_tf_blur`` of ``x [B, H, W, C]``: each channel convolved with the 3x3 kernel
  (centre 1, the 8 neighbours 0.5) with zero padding, divided by the same convolution of
  ones (so borders are averaged over the pixels that exist)."""
  h, w = x.shape[1], x.shape[2]
  weights = np.full((3, 3), 0.5, np.float32)
  weights[1, 1] = 1.0

  def convolve(t):
    padded = jnp.pad(t, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(weights[dy, dx] * padded[:, dy:dy + h, dx:dx + w]
               for dy in range(3) for dx in range(3))

  return convolve(x) / convolve(jnp.ones_like(x))


@register
class BlurPenalty(Objective):
  """Lucid's ``blur_input_each_step``: ``0.5 * sum((x - stop_gradient(blur3x3(x)))^2)`` per
  image, >= 0 (Lucid sums over the batch too); its gradient pulls every pixel towards its
  local weighted mean (see `blur3x3`)."""
  layer: str = "input"

  def __call__(self, acts):
    x = acts[self.layer]
    diff = x - jax.lax.stop_gradient(blur3x3(x))
    return 0.5 * jnp.sum(jnp.square(diff).reshape(x.shape[0], -1), axis=1)

  check = L1.check


# -- user objectives -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class FromFn(Objective):
  """``fn(acts, **values) -> [B]`` with traced ``values`` (see `from_fn`)."""
  fn: Callable[..., jax.Array]
  values: dict[str, Any]
  unit_ndims: tuple[tuple[str, int], ...]
  _children: ClassVar[tuple[str, ...]] = ()

  def __call__(self, acts):
    return self.fn(acts, **self.values)

  def map_traced(self, fn):
    ndims = dict(self.unit_ndims)
    return dataclasses.replace(
        self, values={name: fn(value, ndims[name]) for name, value in self.values.items()})


jax.tree_util.register_dataclass(FromFn, data_fields=["values"],
                                 meta_fields=["fn", "unit_ndims"])
FromFn._registered = FromFn


def from_fn(fn: Callable[..., jax.Array], *, batched: bool = False, **values) -> Objective:
  """An objective from a function: ``fn(acts, **values) -> scores [B]``.

  ``acts`` is the activations dict of a batch of B images (plus ``"input"``); ``values`` are
  arrays (or numbers) passed to ``fn`` as traced leaves, so other values reuse the compiled
  loop. With ``batched=True`` every value has a leading axis of K units and the objective is
  a batch of K objectives (`fvjax.render` optimizes them in parallel, ``fn`` sees one unit's
  values). ``fn`` is part of the compiled program's structure: pass the same function object
  (a module-level ``def``) to reuse it. The result composes like any objective
  (``from_fn(...) - 0.1 * total_variation()``). Example, cosine similarity to a target::

      def cosine(acts, target):   # target [C]
        a = acts["leaky_re_lu_8"].mean(axis=(1, 2))   # [B, C]
        return a @ target / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(target))
      objective = fvjax.objectives.from_fn(cosine, target=target_activation)
  """
  if not callable(fn):
    raise FvjaxError(f"from_fn needs a function fn(acts, **values) -> [B], got {fn!r}")
  arrays = {name: jnp.asarray(value) for name, value in values.items()}
  ndims = []
  for name, value in arrays.items():
    ndim = value.ndim - (1 if batched else 0)
    if ndim < 0:
      raise FvjaxError(f"from_fn(batched=True): value {name!r} is a scalar; batched values "
                       "need a leading axis of K units")
    ndims.append((name, ndim))
  objective = FromFn(fn, arrays, tuple(ndims))
  objective.unit_count()  # values batched over different K fail here
  return objective


# -- composition -------------------------------------------------------------------------
@register
class Sum(Objective):
  terms: tuple[Objective, ...]
  _children: ClassVar[tuple[str, ...]] = ("terms",)

  def __call__(self, acts):
    return sum(t(acts) for t in self.terms)


@register(traced={"factor": 0})
class Scaled(Objective):
  objective: Objective
  factor: Any
  _children: ClassVar[tuple[str, ...]] = ("objective",)

  def __call__(self, acts):
    return self.factor * self.objective(acts)


@register
class Product(Objective):
  left: Objective
  right: Objective
  _children: ClassVar[tuple[str, ...]] = ("left", "right")

  def __call__(self, acts):
    return self.left(acts) * self.right(acts)


# -- constructors (the public names) ---------------------------------------------------
def _index(value, what: str = "index") -> jax.Array:
  """Unit / class indices as int32: an integer, or ``[K]`` integers (K >= 1). Non-integers,
  negative values and empty or nested arrays are an `FvjaxError` (checked on concrete values;
  traced values pass through)."""
  if isinstance(value, jax.core.Tracer):
    return jnp.asarray(value, jnp.int32)
  if isinstance(value, (str, bytes)) or value is None:
    raise FvjaxError(f"{what} must be an integer or a list/array of integers, got {value!r}")
  arr = np.asarray(value)
  if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
    raise FvjaxError(f"{what} must be an integer or integers (e.g. jnp.arange(K)), got "
                     f"{value!r} of dtype {arr.dtype}" + (
                         "; indices are not rounded" if arr.dtype.kind == "f" else ""))
  if arr.ndim > 1:
    raise FvjaxError(f"{what} must be an integer or a 1-d array of K integers, got shape "
                     f"{arr.shape}")
  if arr.size == 0:
    raise FvjaxError(f"{what} is empty ({value!r}); give at least one unit")
  if arr.min() < 0:
    raise FvjaxError(f"{what} {int(arr.min())} is negative; indices count from 0")
  if arr.max() > np.iinfo(np.int32).max:
    raise FvjaxError(f"{what} {int(arr.max())} is too large")
  return jnp.asarray(arr, jnp.int32)


def _position(value, name: str) -> int | None:
  """A neuron's ``y`` / ``x``: None (the centre) or a non-negative integer; the upper bound
  is checked where the objective meets the layer (`Neuron.__call__` at trace time)."""
  if value is None:
    return None
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
      or value < 0:
    raise FvjaxError(f"neuron position {name} must be None (the centre) or a non-negative "
                     f"integer, got {value!r}")
  return int(value)


def _check_position(a_shape, layer: str, y, x) -> tuple[int, int]:
  """``(y, x)`` within a ``[B, H, W, C]`` activation (None: the centre), else `FvjaxError`."""
  h, w = a_shape[1], a_shape[2]
  y = h // 2 if y is None else y
  x = w // 2 if x is None else x
  if not (0 <= y < h and 0 <= x < w):
    raise FvjaxError(f"neuron position (y={y}, x={x}) is outside layer {layer!r}, whose "
                     f"activation is {h}x{w} at this image size (valid: y in 0..{h - 1}, "
                     f"x in 0..{w - 1})")
  return y, x


def channel(layer: str, index, *, batch: int | None = None) -> Objective:
  """Mean activation of channel ``index`` (an int, or ``[K]`` ints for K units)."""
  return Channel(layer, _index(index, "channel index"), batch)


def neuron(layer: str, index, y: int | None = None, x: int | None = None, *,
           batch: int | None = None) -> Objective:
  """Channel ``index`` at position ``(y, x)`` of a spatial layer; the centre by default."""
  return Neuron(layer, _index(index, "channel index"), _position(y, "y"), _position(x, "x"),
                batch)


def layer(name: str, *, batch: int | None = None) -> Objective:
  """DeepDream objective: mean square of the layer's activations."""
  return LayerObjective(name, batch)


deepdream = layer


def class_logit(index, *, batch: int | None = None) -> Objective:
  """The logit of class ``index`` (int or ``[K]``)."""
  return ClassLogit(_index(index, "class index"), batch)


def class_probability(index, *, batch: int | None = None) -> Objective:
  """The softmax probability of class ``index`` (int or ``[K]``)."""
  return ClassProbability(_index(index, "class index"), batch)


def direction(layer: str, vector, *, cossim_pow: float = 0.0,
              batch: int | None = None) -> Objective:
  """Projection of ``layer``'s activations on ``vector`` ``[C]`` (or ``[K, C]``)."""
  return Direction(layer, jnp.asarray(vector, jnp.float32), float(cossim_pow), batch)


def direction_neuron(layer: str, vector, y: int | None = None, x: int | None = None, *,
                     cossim_pow: float = 0.0, batch: int | None = None) -> Objective:
  """Projection on ``vector`` of ``layer``'s activation at ``(y, x)`` (the centre by default)."""
  return DirectionNeuron(layer, jnp.asarray(vector, jnp.float32), _position(y, "y"),
                         _position(x, "x"), float(cossim_pow), batch)


def diversity(layer: str) -> Objective:
  """Batch diversity reward (see `Diversity`); needs ``batch >= 2`` images per unit."""
  return Diversity(layer)


def alignment(layer: str, *, decay_ratio: float = 2.0) -> Objective:
  """Similarity reward between batch neighbours (see `Alignment`)."""
  return Alignment(layer, float(decay_ratio))


def channel_interpolate(layer1: str, index1, layer2: str, index2) -> Objective:
  """An interpolation strip over the batch from ``channel(layer1, index1)`` to
  ``channel(layer2, index2)``; combine with `alignment` and a shared `param.image`."""
  return ChannelInterpolate(layer1, _index(index1), layer2, _index(index2))


def l1(layer: str = "input", *, constant: float = 0.5) -> Objective:
  return L1(layer, float(constant))


def l2(layer: str = "input", *, constant: float = 0.5, epsilon: float = 1e-6) -> Objective:
  return L2(layer, float(constant), float(epsilon))


def total_variation(layer: str = "input") -> Objective:
  return TotalVariation(layer)


def blur_penalty(layer: str = "input") -> Objective:
  return BlurPenalty(layer)


def random_directions(key: jax.Array, n: int, channels: int) -> jax.Array:
  """``n`` random unit vectors ``[n, channels]`` (uniform on the sphere), from ``key``."""
  v = jax.random.normal(key, (n, channels), jnp.float32)
  return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


# -- batching for render -----------------------------------------------------------------
def stack(objectives: Objective | Sequence[Objective]) -> tuple[int, Objective, bool]:
  """``(K, objective with every traced leaf batched over K, batched)``.

  Accepts one objective (batched or not) or a list of K unbatched objectives of the same
  structure. ``batched`` is False only for a single unbatched objective (K = 1).
  """
  if not isinstance(objectives, (Objective, list, tuple)):
    raise FvjaxError(f"the objective must be an fvjax objective or a list of them, got "
                     f"{objectives!r} (build one with fvjax.objectives.channel(...), ... or "
                     "from_fn(fn, **values))")
  if isinstance(objectives, Objective):
    count = objectives.unit_count()
    if count is None:
      return 1, objectives.map_traced(lambda leaf, _: jnp.asarray(leaf)[None]), False
    return count, objectives.map_traced(
        lambda leaf, ndim: leaf if jnp.ndim(leaf) == ndim + 1
        else jnp.broadcast_to(leaf, (count, *jnp.shape(leaf)))), True
  objectives = list(objectives)
  if not objectives:
    raise FvjaxError("render got an empty list of objectives")
  for i, obj in enumerate(objectives):
    if not isinstance(obj, Objective):
      raise FvjaxError(f"objective {i} is {obj!r}, not an fvjax objective (build one with "
                       "fvjax.objectives.channel(...), ... or from_fn(fn, **values))")
    if obj.unit_count() is not None:
      raise FvjaxError(f"objective {i} is itself a batch of {obj.unit_count()}; pass a list "
                       "of single objectives or one batched objective, not both")
  structure = jax.tree.structure(objectives[0])
  for i, obj in enumerate(objectives[1:], start=1):
    if jax.tree.structure(obj) != structure:
      raise FvjaxError(f"objective {i} has a different structure from objective 0 "
                       f"({jax.tree.structure(obj)} vs {structure}); a batch renders "
                       "objectives that differ only in indices, vectors and factors")
  stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *objectives)
  return len(objectives), stacked, True
