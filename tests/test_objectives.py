import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax import objectives as obj

ACTS = {
    "conv": jnp.arange(2 * 3 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 3, 4) / 10.0,
    "logits": jnp.asarray([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]),
}


def test_unit_objectives_known_values():
  conv = ACTS["conv"]
  np.testing.assert_allclose(obj.channel("conv", 2)(ACTS), conv[..., 2].mean((1, 2)))
  np.testing.assert_allclose(obj.neuron("conv", 1)(ACTS), conv[:, 1, 1, 1])
  np.testing.assert_allclose(obj.neuron("conv", 1, y=0, x=2)(ACTS), conv[:, 0, 2, 1])
  np.testing.assert_allclose(obj.layer("conv")(ACTS), (conv ** 2).mean((1, 2, 3)), rtol=1e-6)
  np.testing.assert_allclose(obj.class_logit(2)(ACTS), [3.0, 0.0])
  np.testing.assert_allclose(obj.class_probability(0)(ACTS),
                             [np.exp(1) / np.exp([1, 2, 3]).sum(), 1 / 3], rtol=1e-6)
  v = jnp.asarray([1.0, 0.0, -1.0, 0.5])
  np.testing.assert_allclose(obj.direction("conv", v)(ACTS), (conv @ v).mean((1, 2)), rtol=1e-6)


def test_composition_and_batch_selection():
  a, b = obj.channel("conv", 0), obj.channel("conv", 3)
  combined = 2 * a - b / 4 + obj.class_logit(1) * 0.5
  expected = 2 * a(ACTS) - b(ACTS) / 4 + 0.5 * ACTS["logits"][:, 1]
  np.testing.assert_allclose(combined(ACTS), expected, rtol=1e-6)
  np.testing.assert_allclose(sum([a, b])(ACTS), a(ACTS) + b(ACTS))
  np.testing.assert_allclose((-a)(ACTS), -a(ACTS))
  np.testing.assert_allclose((a * b)(ACTS), a(ACTS) * b(ACTS))
  only_second = obj.channel("conv", 0, batch=1)
  np.testing.assert_allclose(only_second(ACTS), [0.0, a(ACTS)[1]])


def test_objectives_are_pytrees_with_traced_indices():
  leaves, treedef = jax.tree.flatten(obj.channel("conv", 1) - 3 * obj.neuron("conv", 2))
  assert len(leaves) == 4  # two indices, two scale factors
  assert treedef == jax.tree.structure(obj.channel("conv", 3) - 1 * obj.neuron("conv", 0))
  assert treedef != jax.tree.structure(obj.channel("other", 3) - 1 * obj.neuron("conv", 0))


def test_stack_batched_and_lists():
  from fvjax._src.objectives import stack
  count, stacked, batched = stack(obj.channel("conv", jnp.arange(3)) + obj.class_logit(1))
  assert (count, batched) == (3, True)
  assert jax.tree.leaves(stacked)[-1].shape == (3,)  # the unbatched logit index was broadcast
  count, stacked, _ = stack([obj.channel("conv", i) for i in range(4)])
  assert count == 4 and jax.tree.leaves(stacked)[0].tolist() == [0, 1, 2, 3]
  with pytest.raises(fvjax.FvjaxError, match="different structure"):
    stack([obj.channel("conv", 0), obj.neuron("conv", 0)])
  with pytest.raises(fvjax.FvjaxError, match="sizes \\[2, 3\\]"):
    (obj.channel("conv", jnp.arange(2)) + obj.channel("conv", jnp.arange(3))).unit_count()
  with pytest.raises(fvjax.FvjaxError, match="add to objectives"):
    obj.channel("conv", 0) + "x"


def test_check_reports_layer_size(tiny_darknet):
  with pytest.raises(fvjax.FvjaxError, match="channel index 300 is out of range.*256 channels"):
    obj.channel("leaky_re_lu_8", jnp.asarray([0, 300])).check(tiny_darknet)
  with pytest.raises(fvjax.FvjaxError, match="class index 1000 .* 1000 channels"):
    obj.class_logit(1000).check(tiny_darknet)
  with pytest.raises(fvjax.FvjaxError, match="vector has length 3.*256 channels"):
    obj.direction("leaky_re_lu_8", jnp.ones(3)).check(tiny_darknet)


@pytest.mark.parametrize("make", [
    lambda: obj.channel("leaky_re_lu_8", 5),
    lambda: obj.neuron("leaky_re_lu_10", 7),
    lambda: obj.layer("leaky_re_lu_6"),
    lambda: obj.class_logit(1),
    lambda: obj.class_probability(1),
    lambda: obj.direction("leaky_re_lu_12", jax.random.normal(jax.random.key(3), (512,))),
], ids=["channel", "neuron", "layer", "class_logit", "class_probability", "direction"])
def test_objective_rises_on_tiny_darknet(tiny_darknet, make):
  objective = make()
  result = fvjax.render(tiny_darknet, objective, key=jax.random.key(0), steps=12, size=48,
                        transforms=fvjax.transforms.identity(), progress=False)
  # With no transforms the first trace entry is the objective of the initial image.
  assert result.final[0] > result.trace[0, 0] + 1e-4, (result.trace[0, 0], result.final[0])
