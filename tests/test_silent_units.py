"""Silent units (Geirhos et al. 2023, part 2): orthogonal, silent on natural data, invisible
in predictions, and the layer table is untouched."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax._src.reliability import silent
from tests.conftest import SHARED_PHOTOS, needs_shared

LAYER = "conv2d_12"


def smooth_images(key, n, size):
  """Random smooth colour images [n, size, size, 3] in [0, 1] (stand-ins for photos)."""
  coarse = jax.random.uniform(key, (n, 6, 6, 3))
  return np.asarray(jax.image.resize(coarse, (n, size, size, 3), "linear"), np.float32)


@pytest.fixture(scope="module")
def manipulated(tiny_darknet):
  naturals = smooth_images(jax.random.key(0), 12, 48)
  target = smooth_images(jax.random.key(1), 1, 48)
  su = silent.make_silent_units(tiny_darknet, LAYER, target, naturals, progress=False,
                                batch_size=12)
  return su, naturals


def test_orthogonal_directions_are_orthogonal_unit_vectors():
  w = jax.random.normal(jax.random.key(0), (3, 3, 8, 5))
  t = jax.random.normal(jax.random.key(1), (3, 3, 8))
  d = np.asarray(silent.orthogonal_directions(w, t), np.float64).reshape(-1, 5)
  w = np.asarray(w, np.float64).reshape(-1, 5)
  cos = np.sum(d * w, 0) / np.linalg.norm(w, axis=0)
  assert np.all(np.abs(cos) < 1e-6)
  np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, rtol=1e-6)
  # d keeps the target's part that is orthogonal to w: positive overlap with the target
  assert np.all(np.sum(d * np.asarray(t).reshape(-1, 1), 0) > 0)
  with pytest.raises(fvjax.FvjaxError, match="parallel"):
    silent.orthogonal_directions(w.reshape(3, 3, 8, 5), w.reshape(3, 3, 8, 5)[..., 0] * 2.0)


@pytest.mark.parametrize("mix", [0.0, 1.0, 3.0, math.inf])
def test_silent_filters_share_and_norm(mix):
  w = jax.random.normal(jax.random.key(2), (3, 3, 4, 6))
  d = silent.orthogonal_directions(w, jax.random.normal(jax.random.key(3), (3, 3, 4)))
  f = np.asarray(silent.silent_filters(w, d, mix=mix, gain=7.0)).reshape(-1, 6)
  w = np.asarray(w).reshape(-1, 6)
  cos = np.sum(f * w, 0) / (np.linalg.norm(f, axis=0) * np.linalg.norm(w, axis=0))
  np.testing.assert_allclose(cos, 1 / math.sqrt(1 + mix ** 2), atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(f, axis=0), 7.0 * np.linalg.norm(w, axis=0),
                             rtol=1e-5)


def test_manipulated_model_keeps_layer_table(tiny_darknet, manipulated):
  su, _ = manipulated
  assert list(su.model.layers) == list(tiny_darknet.layers)
  assert dict(su.model.layers) == dict(tiny_darknet.layers)
  assert su.add_to == "batch_normalization_12"
  assert su.filters.shape == (3, 3, 64, 512) and su.biases.shape == (512,)
  d = su.directions.reshape(-1, 512)
  w = su.weights.reshape(-1, 512)
  assert np.max(np.abs(np.sum(d * w, 0)) / np.linalg.norm(w, axis=0)) < 1e-5


def test_branch_silent_and_predictions_unchanged_on_calibration_images(tiny_darknet,
                                                                        manipulated):
  su, naturals = manipulated
  pre = silent.branch_preactivation(su, naturals, batch_size=12)
  assert pre.shape == (12, 512)
  assert np.all(pre <= 0.0)
  # the bias is minus the maximum (with a 1e-4 relative slack): the arg-max image sits just
  # below the threshold
  np.testing.assert_allclose(pre.max(axis=0), -1e-4 * np.abs(su.natural_max),
                             rtol=1e-2, atol=1e-3)
  a = tiny_darknet(jnp.asarray(naturals))
  b = su.model(jnp.asarray(naturals))
  # The branch adds exactly ReLU(pre) = 0; XLA may still fuse the base model's BatchNorm
  # differently once an addition follows it, which moves the last float32 bits (seen: 2 of
  # 55296 values by 2.5e-5), so activations agree to float tolerance, predictions exactly.
  for layer in ("batch_normalization_12", "leaky_re_lu_12", "logits"):
    x, y = np.asarray(a[layer]), np.asarray(b[layer])
    # float32 rounding of a re-fused BatchNorm, bounded at 1e-4 of the layer's largest value:
    # 1e-5 of it held on the developers' machine and failed on the AMD EPYC run of issue 12.
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-4 * max(1.0, np.abs(x).max()))
  np.testing.assert_array_equal(np.argmax(a["logits"], -1), np.argmax(b["logits"], -1))


def test_branch_fires_beyond_the_natural_range(tiny_darknet, manipulated):
  """Off the calibration set nothing keeps the branch silent: pushing the conv input along a
  unit's added filter (as a feature visualization does) switches it on."""
  su, naturals = manipulated
  conv_in = silent.conv_module_input(tiny_darknet, LAYER, naturals[:2])  # [2, 3, 3, 64]
  module = silent._check_conv(tiny_darknet, LAYER)
  f0 = su.filters[..., 0]
  pre = []
  for step in (0.0, 5.0, 50.0):
    x = conv_in + step * (f0 / np.linalg.norm(f0))[None]  # the centre sees the whole filter
    z = silent._branch_conv(module, jnp.asarray(su.filters), jnp.asarray(x))
    pre.append(float(jnp.max(z[:, 1, 1, 0] + su.biases[0])))
  assert pre[0] <= 0 < pre[2] and pre[0] < pre[1] < pre[2]


def test_filter_max_response_uses_same_padding(tiny_darknet):
  naturals = smooth_images(jax.random.key(4), 3, 32)
  x = silent.conv_module_input(tiny_darknet, LAYER, naturals)
  kernel = jax.random.normal(jax.random.key(5), (3, 3, 64, 4))
  got = silent.filter_max_response(tiny_darknet, LAYER, kernel, naturals)
  want = jax.lax.conv_general_dilated(jnp.asarray(x), kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(got, np.asarray(want).max(axis=(0, 1, 2)), rtol=1e-5, atol=1e-4)
  valid = jax.lax.conv_general_dilated(jnp.asarray(x), kernel, (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
  assert valid.shape[1] < x.shape[1]  # SAME keeps the border positions VALID drops


def test_filter_probe_and_errors(tiny_darknet):
  kernel = jax.random.normal(jax.random.key(6), (3, 3, 64))
  probe = silent.filter_probe(tiny_darknet, LAYER, kernel)
  assert probe.layers["probe"] == (14, 14, 1)
  with pytest.raises(fvjax.FvjaxError, match="not a convolution"):
    silent.make_silent_units(tiny_darknet, "batch_normalization_12", None, None)
  with pytest.raises(fvjax.FvjaxError, match="unknown layer"):
    silent.conv_module_input(tiny_darknet, "conv2d_99", np.zeros((1, 32, 32, 3)))
  with pytest.raises(fvjax.FvjaxError, match="units"):
    silent.add_silent_units(tiny_darknet, LAYER, np.zeros((3, 3, 64, 7)), np.zeros(7),
                            add_to="batch_normalization_12")
  with pytest.raises(fvjax.FvjaxError, match="mix"):
    silent.silent_filters(np.ones((1, 1, 2, 1)), np.ones((1, 1, 2, 1)), mix=-1.0)


@pytest.mark.slow  # 40 shared photos at 224 px, ~8 s: CI runs it (-m slow)
@needs_shared
def test_silent_on_shared_photos_and_predictions_unchanged(tiny_darknet):
  photos = fvjax.data.image_folder(str(SHARED_PHOTOS), 224, limit=40)
  target = fvjax.data.load_image(str(SHARED_PHOTOS / "n07745940_strawberry.jpg"), 224,
                                 crop=True)[None]
  su = silent.make_silent_units(tiny_darknet, LAYER, target, photos.images, progress=False,
                                batch_size=20, mix=1.0)
  assert np.all(silent.branch_preactivation(su, photos.images, batch_size=20) <= 0)
  a = np.asarray(tiny_darknet(jnp.asarray(photos.images[:20]))["logits"])
  b = np.asarray(su.model(jnp.asarray(photos.images[:20]))["logits"])
  assert np.array_equal(a.argmax(1), b.argmax(1))
  assert np.max(np.abs(a - b)) == 0.0


# Marked slow: two Tiny Darknet render compiles, 31 s (AMD EPYC, load 2.4); .ci/run runs it.
@pytest.mark.slow
@needs_shared
def test_silent_unit_visualization_moves_towards_the_target(tiny_darknet):
  """The paper's construction (the notebook's: target = the visualization of unit 0, target
  filter not centred, mix 3, gain 100), calibrated on real photos: the visualizations of
  other units, rendered with the same key before and after, move towards the target -- the
  target unit's own activation (original model) and the target filter's response both rise.
  Without the branch (filters and biases zeroed) the two renders are the same computation,
  and both differences are exactly 0."""
  photos = fvjax.data.image_folder(str(SHARED_PHOTOS), 224, limit=20).images
  layer = "leaky_re_lu_12"
  units = jnp.array([0, 64, 128])
  kw = dict(key=jax.random.key(3), steps=32, size=32, progress=False)
  before = fvjax.render(tiny_darknet, fvjax.objectives.channel(layer, units), **kw).images
  target = before[:1]  # unit 0's visualization is the target, as in the notebook
  su = silent.make_silent_units(tiny_darknet, LAYER, target, photos, mix=3.0, centre=False,
                                progress=False, batch_size=20)
  after = fvjax.render(su.model, fvjax.objectives.channel(layer, units), **kw).images
  on = silent.branch_preactivation(su, after)[np.arange(3), np.asarray(units)] > 0
  probe = silent.filter_probe(tiny_darknet, LAYER, su.target)

  def towards(images):
    acts = probe(jnp.asarray(images))
    return (np.asarray(acts[layer][..., 0]).mean((1, 2)),
            np.asarray(acts["probe"][..., 0]).mean((1, 2)))

  unit0_b, resp_b = towards(before[1:])
  unit0_a, resp_a = towards(after[1:])
  assert on[1:].all(), on
  # Measured (this machine, see the report): unit 0's activation rises by 0.28 and 0.51 (from
  # -0.18 and -0.14), the target filter's response by 7.3 and 12.4 (from ~40); required: a
  # rise of 0.1 and 1.0 for each unit (a fifth of the smallest measured, or less).
  assert np.all(unit0_a - unit0_b > 0.1), (unit0_b, unit0_a)
  assert np.all(resp_a - resp_b > 1.0), (resp_b, resp_a)
