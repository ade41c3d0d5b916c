import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax


class TwoBlocks(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = True):
    x = nn.Conv(4, (3, 3), name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
    x = nn.relu(x)
    self.sow("intermediates", "relu", x)
    return nn.Dense(5, name="head")(x.mean(axis=(1, 2)))


def test_from_flax_captures_layers_and_uses_inference_batchnorm():
  module = TwoBlocks()
  variables = module.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), train=False)
  model = fvjax.Model.from_flax(module, variables, input_size=(16, 16), train=False)
  assert list(model.layers) == ["conv", "bn", "relu", "head", "logits"]
  assert model.layers["relu"] == (16, 16, 4) and model.layers["logits"] == (5,)
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  acts = model(images)
  np.testing.assert_allclose(acts["logits"], module.apply(variables, images, train=False),
                             rtol=1e-6)
  assert float(acts["relu"].min()) >= 0.0


def test_from_fn_and_pytree_roundtrip():
  def fn(params, images):
    return {"gray": images.mean(-1, keepdims=True) * params["w"],
            "logits": images.mean((1, 2)) @ params["m"]}

  model = fvjax.Model.from_fn(fn, {"w": jnp.float32(2.0), "m": jnp.eye(3)}, input_size=(8, 8),
                              labels=["r", "g", "b"])
  assert model.layers == {"gray": (8, 8, 1), "logits": (3,)}
  leaves, treedef = jax.tree.flatten(model)
  assert len(leaves) == 2
  rebuilt = jax.tree.unflatten(treedef, leaves)
  out = jax.jit(lambda m, x: m(x)["logits"])(rebuilt, jnp.ones((1, 8, 8, 3)))
  np.testing.assert_allclose(out, [[1.0, 1.0, 1.0]])


def test_labels_must_match_logits():
  fn = lambda p, x: {"logits": x.mean((1, 2))}
  with pytest.raises(fvjax.FvjaxError, match="3 logits but 2 labels"):
    fvjax.Model.from_fn(fn, {}, input_size=(4, 4), labels=["a", "b"])


def test_unknown_layer_lists_layers(tiny_darknet):
  with pytest.raises(fvjax.FvjaxError, match="unknown layer 'conv99'.*valid layers: conv2d_1, "
                     "batch_normalization_1"):
    tiny_darknet.layer_shape("conv99")
