"""Box-constrained L-BFGS adversarial examples (Szegedy et al. 2014, "Intriguing properties").

For an input ``x`` and a target label ``l`` the paper approximates the minimal distortion
``D(x, l) = min |r|  s.t.  f(x + r) = l,  x + r in [0, 1]`` by solving, for a penalty ``c``,

    minimise_r   c * |r|^2 + loss_f(x + r, l)    subject to  lower <= x + r <= upper

with box-constrained L-BFGS (``loss_f`` is the cross-entropy of label ``l``), and by a line
search over ``c`` for the perturbation of least distortion that still reaches ``l``. A larger
``c`` weighs the distortion more, so the search looks for the *largest* ``c`` whose minimiser
is classified ``l`` (the paper's text says "minimum c"; its intent, the minimal distortion, is
what is searched here). The penalty is the squared L2 norm, which is smooth at ``r = 0`` where
every solve starts.

The solver is jaxopt's `LBFGSB` vmapped over the examples (each example has its own ``c``,
its own L-BFGS memory and its own line search; one compiled program serves every step of the
search), or SciPy's L-BFGS-B driven by JAX gradients (``backend="scipy"``, one joint problem
whose objective is the sum of the separable per-example objectives). The search over ``c`` is
geometric: factors of ``expand`` until the success/failure of each example is bracketed, then
bisection of ``log c``.

Distortion is reported as in the paper, ``sqrt(mean((x' - x)^2))`` over all pixels.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.validate import check_images
from fvjax._src.model import Model

LogitsFn = Callable[[Any, jax.Array], jax.Array]
BACKENDS = ("jaxopt", "scipy")


class AttackResult(NamedTuple):
  """What `minimal_distortion` returns (NumPy arrays; N examples).

  adversarial: ``[N, ...]`` the least-distorted ``x + r`` found that the model labels
    ``target`` (in the box); where the search failed, the last solve's ``x + r``.
  success: ``[N]`` bool, whether ``target`` was reached.
  distortion: ``[N]`` ``sqrt(mean((x' - x)^2))`` of ``adversarial`` (NaN where it failed).
  c: ``[N]`` the penalty of the returned perturbation (NaN where it failed).
  predicted: ``[N]`` int, the model's label of ``adversarial``.
  target: ``[N]`` int, the target labels.
  """
  adversarial: np.ndarray
  success: np.ndarray
  distortion: np.ndarray
  c: np.ndarray
  predicted: np.ndarray
  target: np.ndarray


def distortion(x, x_adv) -> np.ndarray:
  """``sqrt(mean((x_adv - x)^2))`` per example: ``[N, ...]`` pairs -> ``[N]``."""
  d = np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)
  return np.sqrt(np.mean(d.reshape(len(d), -1) ** 2, axis=1))


@dataclasses.dataclass(frozen=True)
class ModelLogits:
  """``logits_fn(params, x)`` of an `fvjax.Model`'s apply (hashable: one compile per model)."""
  apply: Callable

  def __call__(self, params, x):
    return self.apply(params, x)["logits"]


def logits_fn_of(model: Model) -> tuple[LogitsFn, Any]:
  """``(logits_fn, params)`` of an `fvjax.Model`, for the functions of this module."""
  if not isinstance(model, Model):
    raise FvjaxError(f"expected an fvjax.Model, got {type(model).__name__}")
  if "logits" not in model.layers:
    raise FvjaxError(f"model {model.name!r} has no 'logits'; layers: " + ", ".join(model.layers))
  return ModelLogits(model.apply), model.params


def _objective(logits_fn: LogitsFn, params, r, x, c, label):
  """One example's ``c * |r|^2 + cross_entropy(logits(x + r), label)``."""
  logits = logits_fn(params, (x + r)[None])[0]
  ce = jax.nn.logsumexp(logits) - logits[label]
  return c * jnp.sum(r * r) + ce


@functools.partial(jax.jit, static_argnames=("logits_fn", "maxiter", "tol", "history"))
def _solve_jaxopt(logits_fn, params, x, c, label, lower, upper, *, maxiter, tol, history):
  import jaxopt  # pylint: disable=import-outside-toplevel

  def fun(r, x, c, label):
    return _objective(logits_fn, params, r, x, c, label)

  solver = jaxopt.LBFGSB(fun=fun, maxiter=maxiter, tol=tol, history_size=history)

  def one(x, c, label):
    lo = jnp.broadcast_to(lower, x.shape) - x
    hi = jnp.broadcast_to(upper, x.shape) - x
    return solver.run(jnp.zeros_like(x), bounds=(lo, hi), x=x, c=c, label=label).params

  r = jax.vmap(one)(x, c, label)
  return r, jnp.argmax(logits_fn(params, x + r), axis=-1)


@functools.partial(jax.jit, static_argnames=("logits_fn",))
def _total_value_and_grad(logits_fn, params, r, x, c, label):
  """Sum over examples of the separable objectives, and its gradient ``[N, ...]``."""
  def total(r):
    per = jax.vmap(lambda r, x, c, label: _objective(logits_fn, params, r, x, c, label))
    return jnp.sum(per(r, x, c, label))
  return jax.value_and_grad(total)(r)


def _solve_scipy(logits_fn, params, x, c, label, lower, upper, *, maxiter, tol, history):
  from scipy import optimize  # pylint: disable=import-outside-toplevel

  shape = x.shape

  def fg(flat):
    v, g = _total_value_and_grad(logits_fn, params, jnp.asarray(flat.reshape(shape), x.dtype),
                                 x, c, label)
    return float(v), np.asarray(g, np.float64).reshape(-1)

  xs = np.asarray(x, np.float64).reshape(-1)
  lo = (np.broadcast_to(np.asarray(lower, np.float64), shape).reshape(-1) - xs)
  hi = (np.broadcast_to(np.asarray(upper, np.float64), shape).reshape(-1) - xs)
  out = optimize.minimize(fg, np.zeros_like(xs), jac=True, method="L-BFGS-B",
                          bounds=optimize.Bounds(lo, hi),
                          options={"maxiter": maxiter, "maxcor": history, "gtol": tol,
                                   "ftol": 1e-12})
  r = jnp.asarray(np.clip(out.x, lo, hi).reshape(shape), x.dtype)
  return r, _argmax(logits_fn, params, x + r)


def _classes(logits_fn, params, x) -> int | None:
  """The number of classes of ``logits_fn`` (abstract evaluation on one example: no FLOPs),
  or None when it cannot be read before the other checks."""
  try:
    shape = jax.eval_shape(logits_fn, params,
                           jax.ShapeDtypeStruct((1, *np.shape(x)[1:]), jnp.float32)).shape
  except Exception:  # pylint: disable=broad-except  # the checks below name the bad input
    return None
  return int(shape[-1]) if len(shape) == 2 else None


def _check(x, target, lower, upper, backend, classes=None):
  if backend not in BACKENDS:
    raise FvjaxError(f"backend must be one of {BACKENDS}, got {backend!r}")
  scalar_box = np.ndim(lower) == 0 and np.ndim(upper) == 0
  x = check_images(x, "x", rank=None, channels=None, low=float(lower) if scalar_box else None,
                   high=float(upper) if scalar_box else None)
  x = jnp.asarray(x, jnp.float32)
  if x.ndim < 2:
    raise FvjaxError(f"x has shape {x.shape}; expected a batch [N, ...] of examples")
  target = jnp.asarray(target)
  if target.shape != (x.shape[0],) or not jnp.issubdtype(target.dtype, jnp.integer):
    raise FvjaxError(f"target must be {x.shape[0]} integer labels (one per example), got "
                     f"shape {target.shape} dtype {target.dtype}")
  if classes is not None:
    bad = np.asarray(target)[(np.asarray(target) < 0) | (np.asarray(target) >= classes)]
    if bad.size:
      raise FvjaxError(f"target label {int(bad[0])} is out of range for a model with {classes} "
                       f"classes (valid: 0..{classes - 1})")
  if np.any(np.asarray(x) < np.asarray(lower) - 1e-6) or np.any(
      np.asarray(x) > np.asarray(upper) + 1e-6):
    raise FvjaxError(f"x has values outside the box [{lower}, {upper}] "
                     f"(min {float(x.min()):.4g}, max {float(x.max()):.4g})")
  return x, target.astype(jnp.int32)


def penalized(logits_fn: LogitsFn, params, x, target, c, *, lower=0.0, upper=1.0,
              maxiter: int = 100, tol: float = 1e-5, history: int = 10,
              backend: str = "jaxopt") -> tuple[jax.Array, jax.Array]:
  """One box-constrained L-BFGS solve per example at a fixed penalty.

  Args:
    logits_fn: ``logits_fn(params, x [B, ...]) -> [B, classes]``, a hashable (module-level)
      function: each new function object compiles anew (`logits_fn_of` wraps a model).
    params: its weights (a pytree, traced).
    x: ``[N, ...]`` examples in ``[lower, upper]``.
    target: ``[N]`` int target labels ``l``.
    c: the penalty, a scalar or ``[N]`` (one per example), > 0.
    lower, upper: the box (scalars or broadcastable to one example).
    maxiter, tol, history: L-BFGS-B iterations, gradient tolerance and memory.
    backend: ``"jaxopt"`` (vmapped over the examples) or ``"scipy"`` (one joint problem).

  Returns:
    ``(r [N, ...], predicted [N])``: the minimisers of ``c * |r|^2 + CE(x + r, l)`` with
    ``x + r`` in the box, and the model's labels of ``x + r``.
  """
  x, target = _check(x, target, lower, upper, backend, _classes(logits_fn, params, x))
  c = jnp.broadcast_to(jnp.asarray(c, jnp.float32), (x.shape[0],))
  if not bool(jnp.all(c > 0)):
    raise FvjaxError(f"c must be > 0, got min {float(c.min())}")
  solve = _solve_jaxopt if backend == "jaxopt" else _solve_scipy
  return solve(logits_fn, params, x, c, target, jnp.float32(lower), jnp.float32(upper),
               maxiter=int(maxiter), tol=float(tol), history=int(history))


def minimal_distortion(logits_fn: LogitsFn | Model, params, x, target, *, c_init: float = 1.0,
                       steps: int = 12, expand: float = 10.0, c_min: float = 1e-6,
                       c_max: float = 1e6, lower=0.0, upper=1.0, maxiter: int = 100,
                       tol: float = 1e-5, history: int = 10, backend: str = "jaxopt",
                       progress: Callable[[int, np.ndarray], None] | None = None,
                       ) -> AttackResult:
  """The least-distorted adversarial example for label ``target`` found by a search over c.

  Each of ``steps`` rounds solves `penalized` for all examples at once (each with its own
  ``c``). An example that reaches its target at ``c`` next tries ``c * expand`` (less
  distortion) until one fails, and one that fails tries ``c / expand`` until one succeeds;
  once bracketed, ``log c`` is bisected. The least-distorted success over all rounds is kept.

  Args:
    logits_fn: ``logits_fn(params, x) -> logits`` (see `penalized`), or an `fvjax.Model`
      (then ``params`` may be None for the model's own).
    params: the weights.
    x: ``[N, ...]`` examples in ``[lower, upper]`` (for a `Model`: images ``[N, H, W, 3]``).
    target: ``[N]`` int target labels.
    c_init: the first penalty; ``c_min``/``c_max`` bound the search.
    steps: rounds (L-BFGS-B solves per example).
    expand: the bracketing factor (> 1).
    progress: called as ``progress(step, success_so_far)`` after each round.

  Returns:
    `AttackResult`. Raises `FvjaxError` for bad input.
  """
  if isinstance(logits_fn, Model):
    model_fn, model_params = logits_fn_of(logits_fn)
    logits_fn, params = model_fn, model_params if params is None else params
  if expand <= 1 or steps < 1 or not 0 < c_min <= c_init <= c_max:
    raise FvjaxError(f"need expand > 1, steps >= 1 and 0 < c_min <= c_init <= c_max; got "
                     f"expand={expand}, steps={steps}, c=({c_min}, {c_init}, {c_max})")
  if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
    raise FvjaxError(f"steps must be a positive integer, got {steps!r}")
  x, target = _check(x, target, lower, upper, backend, _classes(logits_fn, params, x))
  n = x.shape[0]
  log_c = np.full(n, np.log(c_init))
  log_ok = np.full(n, np.nan)    # largest log c seen to succeed
  log_fail = np.full(n, np.nan)  # smallest log c seen to fail
  best_adv = np.asarray(x).copy()
  best_dist = np.full(n, np.inf)
  best_c = np.full(n, np.nan)
  best_pred = np.full(n, -1)
  last_adv = best_adv.copy()
  last_pred = np.full(n, -1)
  target_np = np.asarray(target)
  x_np = np.asarray(x)
  lo_log, hi_log, step_log = np.log(c_min), np.log(c_max), np.log(expand)
  for step in range(steps):
    r, pred = penalized(logits_fn, params, x, target, np.exp(log_c), lower=lower, upper=upper,
                        maxiter=maxiter, tol=tol, history=history, backend=backend)
    adv = np.clip(x_np + np.asarray(r), lower, upper)
    pred = np.asarray(pred)
    ok = pred == target_np
    dist = distortion(x_np, adv)
    better = ok & (dist < best_dist)
    best_adv[better], best_dist[better] = adv[better], dist[better]
    best_c[better], best_pred[better] = np.exp(log_c[better]), pred[better]
    last_adv, last_pred = adv, pred
    log_ok = np.where(ok, np.fmax(log_ok, log_c), log_ok)
    log_fail = np.where(~ok, np.fmin(log_fail, log_c), log_fail)
    bracketed = ~np.isnan(log_ok) & ~np.isnan(log_fail)
    log_c = np.where(bracketed, 0.5 * (log_ok + log_fail),
                     np.where(ok, log_c + step_log, log_c - step_log))
    log_c = np.clip(log_c, lo_log, hi_log)
    if progress is not None:
      progress(step, np.isfinite(best_dist))
  success = np.isfinite(best_dist)
  adversarial = np.where(success.reshape((-1,) + (1,) * (x_np.ndim - 1)), best_adv, last_adv)
  return AttackResult(
      adversarial=adversarial.astype(np.float32), success=success,
      distortion=np.where(success, best_dist, np.nan), c=np.where(success, best_c, np.nan),
      predicted=np.where(success, best_pred, last_pred).astype(np.int64),
      target=target_np.astype(np.int64))


def random_targets(key: jax.Array, labels, num_classes: int) -> jax.Array:
  """A uniformly random label different from each of ``labels`` ``[N]`` (from ``key``)."""
  labels = jnp.asarray(labels)
  shift = jax.random.randint(key, labels.shape, 1, num_classes)
  return (labels + shift) % num_classes


def gaussian_noise(key: jax.Array, x, stddev, *, lower=0.0, upper=1.0) -> jax.Array:
  """``clip(x + stddev * N(0, 1))`` (``stddev`` a scalar or ``[N]``, one per example)."""
  x = jnp.asarray(x, jnp.float32)
  s = jnp.broadcast_to(jnp.asarray(stddev, jnp.float32), (x.shape[0],))
  s = s.reshape((-1,) + (1,) * (x.ndim - 1))
  return jnp.clip(x + s * jax.random.normal(key, x.shape), lower, upper)


def magnify(x, x_adv, target_distortion: float, *, lower=0.0, upper=1.0) -> np.ndarray:
  """``clip(x + (x_adv - x) * t / d)``: the perturbation rescaled to distortion ``t``
  (``d`` each example's own), the paper's "magnified" examples (Table 4)."""
  x = np.asarray(x, np.float32)
  d = distortion(x, x_adv).reshape((-1,) + (1,) * (x.ndim - 1))
  scale = np.where(d > 0, target_distortion / np.maximum(d, 1e-12), 0.0)
  return np.clip(x + (np.asarray(x_adv, np.float32) - x) * scale, lower, upper).astype(np.float32)


def error_rate(logits_fn: LogitsFn, params, x, labels, *, batch_size: int = 512) -> float:
  """Fraction of ``x`` ``[N, ...]`` that the model does not label ``labels`` ``[N]``."""
  labels = np.asarray(labels)
  preds = predict(logits_fn, params, x, batch_size=batch_size)
  return float(np.mean(preds != labels)) if len(labels) else float("nan")


def predict(logits_fn: LogitsFn, params, x, *, batch_size: int = 512) -> np.ndarray:
  """The model's labels ``[N]`` of ``x`` ``[N, ...]`` (finite floats), in jitted batches."""
  x = np.asarray(check_images(x, "x", rank=None, channels=None, low=None, high=None),
                 np.float32)
  return map_batches(lambda b: _argmax(logits_fn, params, b), x, batch_size=batch_size)


@functools.partial(jax.jit, static_argnums=0)
def _argmax(logits_fn, params, x):
  return jnp.argmax(logits_fn(params, x), axis=-1)
