"""Modified backward rules for rectifiers (guided backprop, deconvnet) without editing models.

Springenberg et al. (2015) change only how the gradient signal ``R`` passes back through each
rectifier ``y = f(x)``:

* ``"gradient"`` (plain backprop): ``f'(x) * R`` (``1[x > 0] * R`` for a ReLU);
* ``"deconvnet"`` (Zeiler & Fergus): ``1[R > 0] * R``, whatever the input was;
* ``"guided"`` (guided backprop): ``f'(x) * 1[R > 0] * R``, both gates.

For a LeakyReLU with slope ``a``, ``f'(x)`` is ``1`` for ``x > 0`` and ``a`` otherwise, so the
``"gradient"`` rule is exactly the model's gradient and ``"guided"`` keeps the leak on the
forward gate while discarding negative signal, as ``"deconvnet"`` does.

`with_backward_rule` does this for any `fvjax.Model` by rewriting the traced program: the
model's apply function is traced to a jaxpr, and every rectifier in it (a call of
``jax.nn.relu`` / ``flax.linen.relu``, ``jax.nn.leaky_relu`` / ``flax.linen.leaky_relu``, or a
``max(x, 0)`` as written by ``jnp.maximum(x, 0)``) is replaced by the same function wrapped
in a ``jax.custom_vjp`` carrying the rule. Everything else (convolutions, BatchNorm,
max-pooling switches) keeps its ordinary gradient. The forward values are unchanged; the
model's code is not touched. Rectifiers inside ``lax.scan`` / ``cond`` / ``while`` bodies or
custom-derivative functions are left as they are.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model

RULES = ("gradient", "guided", "deconvnet")
DEFAULT_ACTIVATIONS = ("relu", "leaky_relu")
_INLINE = ("jit", "pjit", "closed_call", "core_call")


def _rectified(fn: Callable, rule: str) -> Callable:
  """``fn(x, *rest)`` (elementwise in ``x``) with its vjp in ``x`` following ``rule``; ``rest``
  (e.g. the leak slope) gets zero cotangents."""

  @jax.custom_vjp
  def act(x, *rest):
    return fn(x, *rest)

  def fwd(x, *rest):
    return fn(x, *rest), (x, rest)

  def bwd(res, g):
    x, rest = res
    if rule == "deconvnet":
      gx = jnp.maximum(g, 0).astype(x.dtype)
    else:
      if rule == "guided":
        g = jnp.maximum(g, 0)
      _, vjp = jax.vjp(lambda x: fn(x, *rest), x)
      gx = vjp(g.astype(x.dtype))[0]
    return (gx, *(_zero_cotangent(r) for r in rest))

  act.defvjp(fwd, bwd)
  return act


def _zero_cotangent(x):
  x = jnp.asarray(x)
  if jnp.issubdtype(x.dtype, jnp.inexact):
    return jnp.zeros_like(x)
  return np.zeros(x.shape, jax.dtypes.float0)


def _is_zero_literal(v) -> bool:
  return isinstance(v, jex.Literal) and np.ndim(v.val) == 0 and float(v.val) == 0.0


def _activation(eqn, names: Sequence[str]):
  """``(kind, fn, x_index)`` when ``eqn`` is a rectifier listed in ``names``, else None.

  ``fn(*inputs)`` recomputes the equation's output from all its inputs; ``x_index`` is the
  input the rule acts on.
  """
  prim = eqn.primitive.name
  if prim in _INLINE and eqn.params.get("name") in names:
    closed = eqn.params["jaxpr"]
    fn = functools.partial(_plain_eval, closed)
  elif prim == "custom_jvp_call":
    inner = eqn.params["call_jaxpr"]
    if len(inner.jaxpr.eqns) != 1 or _activation(inner.jaxpr.eqns[0], names) is None:
      return None
    fn = functools.partial(_plain_eval, inner)
  elif prim == "max" and "relu" in names and len(eqn.invars) == 2 and any(
      _is_zero_literal(v) for v in eqn.invars):
    zero = 0 if _is_zero_literal(eqn.invars[0]) else 1
    x_index = 1 - zero
    value = eqn.invars[zero].val

    def relu(*args):
      return jax.lax.max(args[x_index], jnp.asarray(value, args[x_index].dtype))

    return relu, x_index
  else:
    return None
  out = eqn.outvars[0].aval
  for i, v in enumerate(eqn.invars):
    aval = v.aval
    if aval.shape == out.shape and jnp.issubdtype(aval.dtype, jnp.floating):
      return fn, i
  return None


def _name(eqn) -> str:
  """A readable name of a rectifier equation: its function's name, or ``relu`` for max(x, 0)."""
  if eqn.primitive.name == "custom_jvp_call":
    return _name(eqn.params["call_jaxpr"].jaxpr.eqns[0])
  if eqn.primitive.name == "max":
    return "relu"
  return eqn.params.get("name", eqn.primitive.name)


def _plain_eval(closed, *args):
  return jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *args)[0]


def _eval(jaxpr, consts, args, rule: str, names: Sequence[str], found: list):
  env: dict = {}

  def read(v):
    return v.val if isinstance(v, jex.Literal) else env[v]

  def write(v, value):
    if not isinstance(v, jex.DropVar):
      env[v] = value

  for v, c in zip(jaxpr.constvars, consts):
    write(v, c)
  for v, a in zip(jaxpr.invars, args):
    write(v, a)
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    act = _activation(eqn, names)
    if act is not None:
      fn, x_index = act
      found.append(_name(eqn))
      rest = invals[:x_index] + invals[x_index + 1:]

      def reordered(x, *rest, fn=fn, x_index=x_index):
        full = list(rest[:x_index]) + [x] + list(rest[x_index:])
        return fn(*full)

      outs = [_rectified(reordered, rule)(invals[x_index], *rest)]
    elif eqn.primitive.name in _INLINE and "jaxpr" in eqn.params:
      closed = eqn.params["jaxpr"]
      outs = _eval(closed.jaxpr, closed.consts, invals, rule, names, found)
    else:
      params = eqn.primitive.get_bind_params(eqn.params)
      subfuns = []
      if isinstance(params, tuple):  # older JAX returns (subfuns, params)
        subfuns, params = params
      with eqn.ctx.manager:
        outs = eqn.primitive.bind(*subfuns, *invals, **params)
      if not eqn.primitive.multiple_results:
        outs = [outs]
    for v, value in zip(eqn.outvars, outs):
      write(v, value)
  return [read(v) for v in jaxpr.outvars]


def rewrite(fn: Callable, rule: str, activations: Sequence[str] = DEFAULT_ACTIVATIONS,
            found: list | None = None) -> Callable:
  """``fn(*args)`` (a pytree-valued function) evaluated from its jaxpr with every rectifier's
  backward pass following ``rule``; ``found`` (if given) collects the rectifiers replaced."""
  names = tuple(activations)

  def rewritten(*args):
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    flat = jax.tree.leaves(args)
    seen: list = []
    outs = _eval(closed.jaxpr, closed.consts, flat, rule, names, seen)
    if found is not None:
      found[:] = seen
    return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

  return rewritten


@dataclasses.dataclass(frozen=True)
class RewrittenApply:
  """``apply(params, images)`` with every rectifier's backward pass following ``rule``
  (`rewrite`), compared by value (the wrapped apply, the rule, the activations): two
  rewrites of one model are equal static structure and share one compiled program."""
  apply: Callable
  rule: str
  activations: tuple[str, ...]

  def __call__(self, params, images):
    return rewrite(self.apply, self.rule, self.activations)(params, images)


def count_rectifiers(model: Model, activations: Sequence[str] = DEFAULT_ACTIVATIONS) -> list:
  """Names of the rectifiers `with_backward_rule` would replace in ``model``, in order."""
  found: list = []
  images = jax.ShapeDtypeStruct((1, *model.input_size, 3), jnp.float32)
  jax.eval_shape(rewrite(model.apply, "gradient", tuple(activations), found), model.params,
                 images)
  return found


def with_backward_rule(model: Model, rule: str = "guided", *,
                       activations: Sequence[str] = DEFAULT_ACTIVATIONS) -> Model:
  """A copy of ``model`` whose rectifiers pass gradients back by ``rule``.

  Args:
    model: any `fvjax.Model` (Tiny Darknet, `Model.from_flax` of a user's linen module,
      `Model.from_fn`); its code is not edited.
    rule: ``"guided"`` (guided backprop), ``"deconvnet"`` or ``"gradient"`` (unchanged
      gradients, through the same rewritten program).
    activations: names of the rectifier functions to rewrite (``jax.nn`` names; ``"relu"``
      also covers ``max(x, 0)``).

  Returns:
    A `fvjax.Model` with the same params, layers and forward values. Raises `FvjaxError` for
    an unknown rule or a model without any rectifier to rewrite.
  """
  if not isinstance(model, Model):
    raise FvjaxError(f"with_backward_rule needs an fvjax.Model, got {type(model).__name__}")
  if rule not in RULES:
    raise FvjaxError(f"unknown backward rule {rule!r}; valid: {', '.join(RULES)}")
  activations = tuple(activations)
  if not count_rectifiers(model, activations):
    raise FvjaxError(f"model {model.name!r} has no rectifier ({', '.join(activations)}) to "
                     f"rewrite for the {rule!r} rule; guided backprop and deconvnet need "
                     "ReLU or LeakyReLU activations")
  return model.replace(apply=RewrittenApply(model.apply, rule, activations),
                       name=f"{model.name}[{rule}]")
