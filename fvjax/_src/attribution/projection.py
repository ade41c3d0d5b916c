"""Zeiler & Fergus (2014) projections: one activation mapped back to pixel space.

Their Fig. 2 takes a unit's strongest activation in an image, zeroes every other activation
of the layer and passes that single value back down through the deconvnet (transposed
convolutions, max-pooling switches, and rectifiers that pass only positive signal). For a
model whose rectifiers follow the ``"deconvnet"`` backward rule (`with_backward_rule`) this
is exactly the gradient of that one activation with respect to the input, which is what
`project_activation` computes: convolutions keep their ordinary (transposed) gradient,
max-pooling routes the signal through its switches, BatchNorm in inference mode scales it.
Every operation is local, so the projection is zero outside the unit's receptive field.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fvjax._src.attribution import _common
from fvjax._src.attribution.guided import RULES, with_backward_rule
from fvjax._src.batching import map_batches
from fvjax._src.errors import FvjaxError
from fvjax._src.model import Model


class Projection(NamedTuple):
  """What `project_activation` returns (NumPy).

  signal: ``[N, H, W, 3]`` float32 (unbounded): the activation projected to the input.
  positions: ``[N, 2]`` int ``(row, col)`` of the projected activation in the layer's grid.
  values: ``[N]`` the activation's value there.
  """
  signal: np.ndarray
  positions: np.ndarray
  values: np.ndarray


@functools.partial(jax.jit, static_argnames=("layer",))
def _maps(model: Model, images, channels, layer: str):
  acts = model.apply(model.params, images)[layer]                  # [B, h, w, C]
  return jnp.take_along_axis(acts, channels[:, None, None, None], axis=-1)[..., 0]


@functools.partial(jax.jit, static_argnames=("layer",))
def _project(model: Model, images, channels, rows, cols, layer: str):
  def total(x):
    acts = model.apply(model.params, x)[layer]
    return jnp.sum(acts[jnp.arange(x.shape[0]), rows, cols, channels])
  return jax.grad(total)(images)


def project_activation(model: Model, images: Any, layer: str, channels: Any,
                       positions: Any = None, *, rule: str = "deconvnet",
                       batch_size: int = 16) -> Projection:
  """Project one activation per image back to pixel space (Zeiler & Fergus, Fig. 2).

  Args:
    model: an `fvjax.Model` with ReLU / LeakyReLU rectifiers (for the deconvnet rule).
    images: ``[N, H, W, 3]`` in [0, 1].
    layer: a spatial layer of ``model`` (activations ``[h, w, C]``).
    channels: one channel index, or one per image ``[N]``.
    positions: ``[N, 2]`` ``(row, col)`` cells of the layer's grid, or None for each image's
      peak of its channel (the argmax, as Zeiler & Fergus project the strongest activation).
    rule: ``"deconvnet"`` (Zeiler & Fergus), ``"guided"`` or ``"gradient"``.
    batch_size: images per compiled call.

  Returns:
    `Projection`. Raises `FvjaxError` for an unknown or non-spatial layer, a channel or
    position out of range, or an unknown rule, before any work.
  """
  _common.check_model(model, "project_activation")
  _common.check_choice(rule, RULES, "backward rule")
  _common.check_positive(batch_size, "batch_size", integer=True)
  shape = model.layer_shape(layer)
  if len(shape) != 3:
    raise FvjaxError(f"project_activation needs a spatial layer [h, w, C]; {layer!r} has "
                     f"shape {tuple(shape)}")
  images = _common.check_images(model, images, "project_activation")
  n = len(images)
  ch = np.broadcast_to(np.asarray(channels), (n,)).astype(np.int64)
  if ch.min() < 0 or ch.max() >= shape[2]:
    raise FvjaxError(f"channels must be in 0..{shape[2] - 1} for layer {layer!r}, got "
                     f"{np.asarray(channels).tolist()}")
  h, w = (jax.eval_shape(lambda x: model.apply(model.params, x)[layer],
                         jax.ShapeDtypeStruct(images.shape, jnp.float32)).shape[1:3])
  ch = jnp.asarray(ch, jnp.int32)
  maps = map_batches(lambda x, c: _maps(model, x, c, layer), images, ch,
                     batch_size=batch_size)                        # [N, h, w]
  if positions is None:
    flat = maps.reshape(n, -1).argmax(1)
    pos = np.stack([flat // w, flat % w], 1)
  else:
    pos = np.asarray(positions, np.int64).reshape(n, 2)
    if pos.min() < 0 or (pos[:, 0] >= h).any() or (pos[:, 1] >= w).any():
      raise FvjaxError(f"positions must be (row, col) cells in 0..{h - 1} x 0..{w - 1} of "
                       f"{layer!r} at this image size, got {pos.tolist()}")
  values = maps[np.arange(n), pos[:, 0], pos[:, 1]]
  projecting = model if rule == "gradient" else with_backward_rule(model, rule)
  rows, cols = jnp.asarray(pos[:, 0], jnp.int32), jnp.asarray(pos[:, 1], jnp.int32)
  signal = map_batches(lambda x, c, r, q: _project(projecting, x, c, r, q, layer),
                       images, ch, rows, cols, batch_size=batch_size)
  return Projection(np.asarray(signal, np.float32), pos, np.asarray(values, np.float32))
