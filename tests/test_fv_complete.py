"""Feature-visualization extras: new objectives, regularizers, params, presets, expressions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fvjax
from fvjax import objectives as O
from fvjax import param as P
from fvjax._src.expressions import parse_objective


def _tiny_model():
  """A random 3x3 conv (3 -> 6 channels) + ReLU, then a 2x2 mean pool: a small real CNN."""
  kernel = jax.random.normal(jax.random.key(42), (3, 3, 3, 6)) / 3

  def fn(params, images):
    conv = jax.nn.relu(jax.lax.conv_general_dilated(
        images - 0.5, params, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    pooled = jax.lax.reduce_window(conv, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4
    return {"conv": conv, "pool": pooled, "logits": pooled.mean((1, 2))}

  return fvjax.Model.from_fn(fn, kernel, input_size=(16, 16), name="tiny")


def test_diversity_known_values():
  same = jnp.tile(jax.random.normal(jax.random.key(0), (1, 4, 4, 5)), (3, 1, 1, 1))
  scores = O.diversity("x")({"x": same})
  np.testing.assert_allclose(scores, [-2.0, -2.0, -2.0], rtol=1e-5)  # -1 per ordered pair
  # Activations in disjoint channels have orthogonal Gram matrices: diversity 0.
  a = jnp.zeros((2, 4, 4, 4)).at[0, ..., :2].set(1.0).at[1, ..., 2:].set(1.0)
  np.testing.assert_allclose(O.diversity("x")({"x": a}), [0.0, 0.0], atol=1e-6)


def test_alignment_interpolate_and_direction_neuron_known_values():
  a = jnp.zeros((3, 2, 2, 1)).at[1].set(1.0).at[2].set(3.0)
  # pairs (0,1): 1/2, (1,2): 4/2, (0,2): 9/4 -- each split between its two images
  expected = -np.asarray([0.25 + 9 / 8, 0.25 + 1.0, 1.0 + 9 / 8])
  np.testing.assert_allclose(O.alignment("x")({"x": a}), expected, rtol=1e-6)
  acts = {"x": jnp.stack([jnp.full((2, 2, 2), v) * jnp.asarray([1.0, 10.0]) for v in (1, 2, 3)])}
  np.testing.assert_allclose(O.channel_interpolate("x", 0, "x", 1)(acts),
                             [1.0, 0.5 * 2 + 0.5 * 20, 30.0], rtol=1e-6)
  v = jnp.asarray([1.0, -1.0])
  b = jax.random.normal(jax.random.key(1), (2, 5, 5, 2))
  np.testing.assert_allclose(O.direction_neuron("x", v)({"x": b}), b[:, 2, 2] @ v, rtol=1e-6)
  np.testing.assert_allclose(O.direction_neuron("x", v, y=0, x=4)({"x": b}), b[:, 0, 4] @ v,
                             rtol=1e-6)


def test_regularizer_known_values():
  img = jnp.full((2, 4, 4, 3), 0.7).at[1, :, 2:].set(0.1)
  acts = {"input": img}
  np.testing.assert_allclose(O.l1()(acts), [0.2, 0.5 * 0.2 + 0.5 * 0.4], rtol=1e-5)
  np.testing.assert_allclose(O.l2(epsilon=0.0)(acts)[0], 0.2, rtol=1e-5)
  # image 1: one vertical edge of height 0.6 between columns 1 and 2 -> mean |dx| = 0.6/3
  np.testing.assert_allclose(O.total_variation()(acts), [0.0, 0.2], atol=1e-6)
  assert float(O.blur_penalty()(acts)[0]) < 1e-10 < float(O.blur_penalty()(acts)[1])


@pytest.mark.parametrize("name, objective, batch", [
    ("diversity", O.diversity("conv"), 3),
    ("alignment", O.alignment("conv"), 3),
    ("interpolate", O.channel_interpolate("conv", 0, "pool", 4), 3),
    ("direction_neuron", O.direction_neuron("conv", jnp.arange(6.0) - 2.5), 1),
    ("neuron_arithmetic", O.channel("conv", 1) + O.channel("conv", 4), 1),
    ("minus_l1", -O.l1(), 1),
    ("minus_l2", -O.l2(), 1),
    ("minus_tv", -O.total_variation(), 1),
    ("minus_blur", -O.blur_penalty(), 1),
])
def test_optimizing_moves_each_objective_the_right_way(name, objective, batch):
  model = _tiny_model()
  result = fvjax.render(model, objective, key=jax.random.key(0), steps=20, batch=batch,
                        param=P.pixel(16, batch=batch, sd=0.5), optimizer=optax.adam(0.05),
                        transforms=fvjax.transforms.identity(), progress=False)
  assert result.final[0] > result.trace[0, 0] + 1e-5, (result.trace[0, 0], result.final[0])


def test_random_directions_batched_render_on_tiny_darknet(tiny_darknet):
  vectors = O.random_directions(jax.random.key(0), 3, 256)
  np.testing.assert_allclose(jnp.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(vectors, O.random_directions(jax.random.key(0), 3, 256))
  result = fvjax.render(tiny_darknet, O.direction("leaky_re_lu_8", vectors),
                        key=jax.random.key(1), steps=8, size=32,
                        transforms=fvjax.transforms.identity(), progress=False)
  assert result.images.shape == (3, 32, 32, 3)
  assert (result.final > result.trace[:, 0]).all()


def test_shared_param_components_are_identical_across_the_batch():
  p = P.image(16, batch=4, shared=True)
  params = p.init(jax.random.key(0))
  assert params["shared"].shape[0] == 1 and params["separate"].shape[0] == 4
  settings = P.Image((16, 16), batch=4, shared=True)
  shared_part = settings.to_raw({"separate": jnp.zeros_like(params["separate"]),
                                 "shared": params["shared"]})
  for b in range(1, 4):
    np.testing.assert_array_equal(shared_part[b], shared_part[0])
  # After optimization the shared component is still one array used by every image.
  result = fvjax.render(_tiny_model(), O.channel_interpolate("conv", 0, "conv", 3),
                        key=jax.random.key(1), steps=5, batch=4, param=p,
                        transforms=fvjax.transforms.identity(), progress=False)
  assert result.params["shared"].shape == (1, 1, *params["shared"].shape[1:])


def test_maco_keeps_the_magnitude_spectrum_fixed():
  for size in [(32, 32), (33, 20)]:
    m = P.Maco(size, batch=2)
    reference = P.natural_magnitude(size)
    for phase in (m.init(jax.random.key(0)), 5.0 * jax.random.normal(jax.random.key(1),
                                                                    (2, 3, size[0], size[1] // 2 + 1))):
      spatial = np.moveaxis(np.asarray(m.to_spatial(phase), np.float64), -1, 1)
      magnitude = np.abs(np.fft.rfft2(spatial, axes=(-2, -1)))
      np.testing.assert_allclose(magnitude, np.broadcast_to(reference, magnitude.shape),
                                 rtol=1e-3, atol=1e-3 * reference.max())
    images = m.to_image(m.init(jax.random.key(2)))
    assert images.shape == (2, *size, 3) and 0 <= float(images.min()) <= float(images.max()) <= 1
  with pytest.raises(fvjax.FvjaxError, match="stored at 224x224"):
    P.natural_magnitude((256, 256))


def test_cppn_shapes_range_and_grey_start():
  p = P.cppn(20, batch=2)
  params = p.init(jax.random.key(0))
  images = p.to_image(params)
  assert images.shape == (2, 20, 20, 3)
  np.testing.assert_allclose(images, 0.5)  # Lucid's zero-initialised output layer
  assert len(params) == 9 and params[0][0].shape == (2, 2, 24) and params[1][0].shape == (2, 48, 24)


def test_presets():
  from fvjax._src.presets import preset
  lucid = preset("lucid", 64)
  assert lucid["steps"] == 512 and lucid["param"] == P.image(64)
  assert lucid["transforms"] == fvjax.transforms.standard()
  assert preset("lucid", 64)["optimizer"] == lucid["optimizer"]  # equal values: no recompilation
  assert preset("maco", 64, batch=2)["param"] == P.maco(64, batch=2)
  with pytest.raises(fvjax.FvjaxError, match="valid presets: lucid, maco"):
    preset("deepdream", 64)


def test_expression_parser():
  acts = {"conv2d_8": jax.random.normal(jax.random.key(0), (2, 3, 3, 8)),
          "input": jnp.full((2, 4, 4, 3), 0.7)}
  parsed = parse_objective("channel:conv2d_8:3 - 100*diversity:conv2d_8 + 0.5*(l1 - tv)")
  direct = (O.channel("conv2d_8", 3) - 100 * O.diversity("conv2d_8")
            + 0.5 * (O.l1() - O.total_variation()))
  np.testing.assert_allclose(parsed(acts), direct(acts), rtol=1e-6)
  np.testing.assert_allclose(parse_objective("-2*neuron:conv2d_8:1:0:2")(acts),
                             -2 * acts["conv2d_8"][:, 0, 2, 1], rtol=1e-6)
  for bad, message in [("channel:x", "takes 2"), ("foo:1", "valid: channel, neuron"),
                       ("channel:x:1 +", "unexpected"), ("1 + channel:x:1", "add a number"),
                       ("channel:x:a", "not an integer"), ("channel:x:1 $", "cannot read")]:
    with pytest.raises(fvjax.FvjaxError, match=message):
      parse_objective(bad)
