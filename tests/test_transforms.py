import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax import transforms as T

IMAGES = jax.random.uniform(jax.random.key(0), (2, 40, 40, 3))


@pytest.mark.parametrize("t", [T.pad(12), T.jitter(8), T.random_scale([0.9, 1.1]),
                               T.random_rotate([-10, 10]), T.standard(), T.identity()],
                         ids=["pad", "jitter", "scale", "rotate", "standard", "identity"])
def test_static_shapes_and_reproducible(t):
  out = jax.jit(t)(jax.random.key(1), IMAGES)
  assert out.shape == (2, *t.output_size((40, 40)), 3)
  np.testing.assert_array_equal(out, jax.jit(t)(jax.random.key(1), IMAGES))


def test_standard_is_lucids_list():
  std = T.standard()
  assert std.output_size((128, 128)) == (128 + 24 - 8 - 4,) * 2
  pad, jitter1, scale, rotate, jitter2 = std.transforms
  assert (pad.width, pad.value, jitter1.d, jitter2.d) == (12, 0.5, 8, 4)
  np.testing.assert_allclose(scale.scales, np.arange(0.90, 1.1001, 0.02), atol=1e-9)
  assert sorted(set(rotate.angles)) == list(range(-10, 11)) and list(rotate.angles).count(0) == 6


def test_random_draws_differ_between_keys():
  outs = [np.asarray(T.standard()(jax.random.key(k), IMAGES)) for k in range(4)]
  assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_pad_values_and_jitter_is_a_crop():
  padded = T.pad(3, value=0.25)(None, IMAGES)
  np.testing.assert_array_equal(padded[:, :3], 0.25)
  np.testing.assert_array_equal(padded[:, 3:-3, 3:-3], IMAGES)
  crop = T.jitter(5)(jax.random.key(2), IMAGES)
  found = [(y, x) for y in range(6) for x in range(6)
           if np.array_equal(IMAGES[:, y:y + 35, x:x + 35], crop)]
  assert len(found) == 1


def test_scale_one_and_zero_rotation_are_identity_and_rotation_moves_pixels():
  np.testing.assert_allclose(T.random_scale([1.0])(jax.random.key(0), IMAGES), IMAGES, atol=1e-6)
  np.testing.assert_allclose(T.random_rotate([0])(jax.random.key(0), IMAGES), IMAGES, atol=1e-6)
  rot90 = T.random_rotate([90])(jax.random.key(0), IMAGES)
  np.testing.assert_allclose(rot90, np.rot90(IMAGES, k=1, axes=(1, 2)), atol=1e-4)


def test_bad_options():
  with pytest.raises(fvjax.FvjaxError, match="valid: constant, reflect, edge"):
    T.pad(2, mode="wrap")
