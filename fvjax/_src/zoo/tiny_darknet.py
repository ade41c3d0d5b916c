"""Tiny Darknet (Redmon), an ImageNet-1k classifier: 16 convolutions, 4 max-pools, 1000 logits.

Input RGB ``[B, H, W, 3]`` in [0, 1] (pixel / 255, no mean subtraction), trained at 224x224.
Layer names are the Keras names of the TF.js export the vendored weights come from:
``conv2d_i`` (raw convolution), ``batch_normalization_i``, ``leaky_re_lu_i`` (alpha 0.1),
``max_pooling2d_i`` (after blocks 1, 2, 6, 10), ``global_average_pooling2d_1``; the model
value adds ``logits`` [B, 1000].
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

# (filters, kernel size) of conv2d_1 ... conv2d_15; conv2d_16 is the 1x1 classifier.
BLOCKS = ((16, 3), (32, 3), (16, 1), (128, 3), (16, 1), (128, 3), (32, 1), (256, 3),
          (32, 1), (256, 3), (64, 1), (512, 3), (64, 1), (512, 3), (128, 1))
POOL_AFTER = (1, 2, 6, 10)
LEAKY_ALPHA = 0.1
BN_EPSILON = 1e-3


class TinyDarknet(nn.Module):
  """Tiny Darknet as a Flax module; BatchNorm always uses its running statistics.

  Convolution and BatchNorm outputs are submodule outputs (seen with
  ``capture_intermediates``); the activations and pools are sown under their Keras names.
  """
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x):
    pools = 0
    for i, (filters, k) in enumerate(BLOCKS, start=1):
      x = nn.Conv(filters, (k, k), padding="SAME", use_bias=False, name=f"conv2d_{i}")(x)
      x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON,
                       name=f"batch_normalization_{i}")(x)
      x = nn.leaky_relu(x, jnp.float32(LEAKY_ALPHA))
      self.sow("intermediates", f"leaky_re_lu_{i}", x)
      if i in POOL_AFTER:
        pools += 1
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
        self.sow("intermediates", f"max_pooling2d_{pools}", x)
    x = nn.Conv(self.num_classes, (1, 1), use_bias=True, name="conv2d_16")(x)
    return jnp.mean(x, axis=(1, 2))
