"""`Model.from_nnx`: a ``flax.nnx`` module as a pure function of (state, images)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from fvjax._src.errors import FvjaxError


@dataclasses.dataclass(frozen=True)
class NnxApply:
  """``apply(state, images) -> activations`` of an nnx module's graph definition, compared
  by value (the graph definition, the shapes of the left-out RNG streams), so two wrappers of
  equal modules share one compiled loop.

  ``rng_treedef`` / ``rng_leaves``: the structure and ``(shape, dtype name, key impl)`` of
  the RNG-stream variables, rebuilt on every call as key 0 and count 0 (inference draws no
  randomness from Dropout; the streams are not weights, so they are not in ``params``).
  """
  graphdef: Any
  rng_treedef: Any
  rng_leaves: tuple[tuple[tuple[int, ...], str, str | None], ...]
  logits: bool = True

  def _rng_state(self):
    leaves = []
    for shape, dtype, impl in self.rng_leaves:
      if impl is not None:
        leaves.append(jnp.broadcast_to(jax.random.key(0, impl=impl), shape))
      else:
        leaves.append(jnp.zeros(shape, dtype))
    return jax.tree.unflatten(self.rng_treedef, leaves)

  def __call__(self, params, images):
    from flax import nnx
    from fvjax._src.model import _flatten_intermediates
    module = nnx.merge(self.graphdef, params, self._rng_state())
    out, captured = nnx.capture(module, nnx.Intermediate,
                                method_outputs=nnx.Intermediate)(images)
    acts = _flatten_intermediates(captured.to_pure_dict())
    if self.logits:
      acts["logits"] = out
    return acts


def split(module, *, logits: bool = True) -> tuple[NnxApply, Any]:
  """``(apply, params)`` of an nnx ``module`` viewed in inference mode (see
  `fvjax.Model.from_nnx`)."""
  from flax import nnx
  if not isinstance(module, nnx.Module):
    raise FvjaxError(f"from_nnx takes a flax.nnx Module, got {type(module).__name__}"
                     + (" (a linen module: use fvjax.Model.from_flax(module, variables))"
                        if hasattr(module, "apply") and hasattr(module, "init") else ""))
  view = nnx.view(module, deterministic=True, use_running_average=True,
                  raise_if_not_found=False)
  graphdef, rng_state, params = nnx.split(view, nnx.RngState, ...)
  rng_leaves, rng_treedef = jax.tree.flatten(rng_state)
  spec = []
  for leaf in rng_leaves:
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      spec.append((tuple(leaf.shape), "key", str(jax.random.key_impl(leaf))))
    else:
      spec.append((tuple(leaf.shape), str(leaf.dtype), None))
  return NnxApply(graphdef, rng_treedef, tuple(spec), logits), params
