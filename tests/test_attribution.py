"""fvjax.attribution: the rules and properties of the issue, on tiny hand-made models."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax import attribution as A
from fvjax._src.attribution.class_model import IMAGENET_MEAN
from tests.conftest import SHARED_PHOTOS, needs_shared

# -- tiny models ----------------------------------------------------------------------------
SIDE = 4
HIDDEN = 12
CLASSES = 5


def _two_layer_params(seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return {"w1": jax.random.normal(k1, (SIDE * SIDE * 3, HIDDEN)),
          "w2": jax.random.normal(k2, (HIDDEN, CLASSES))}


def _two_layer(activation):
  def fn(params, images):
    z = images.reshape(images.shape[0], -1) @ params["w1"]
    return {"hidden": z, "logits": activation(z) @ params["w2"]}
  return fvjax.Model.from_fn(fn, _two_layer_params(), input_size=(SIDE, SIDE), name="two-layer")


def _hand_rule(params, images, cls, rule, slope=0.0):
  """Springenberg's rules written out for x -> f(x W1) W2."""
  x = np.asarray(images).reshape(len(images), -1)
  w1, w2 = np.asarray(params["w1"]), np.asarray(params["w2"])
  z = x @ w1
  r = np.broadcast_to(w2[:, cls], z.shape)  # signal arriving at the rectifier's output
  forward_gate = np.where(z > 0, 1.0, slope)
  signal_gate = (r > 0).astype(np.float64)
  passed = {"gradient": forward_gate * r, "deconvnet": signal_gate * r,
            "guided": forward_gate * signal_gate * r}[rule]
  return (passed @ w1.T).reshape(np.shape(images))


class Mlp(nn.Module):
  """A user's linen model with ReLU modules-as-functions (never edited by the library)."""

  @nn.compact
  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(HIDDEN, use_bias=False, name="dense1")(x))
    return nn.Dense(CLASSES, use_bias=False, name="dense2")(x)


def _images(n=3, seed=1):
  return jax.random.uniform(jax.random.key(seed), (n, SIDE, SIDE, 3))


# -- guided backprop and deconvnet ---------------------------------------------------------
@pytest.mark.parametrize("rule", ["gradient", "guided", "deconvnet"])
@pytest.mark.parametrize("activation,slope", [
    (jax.nn.relu, 0.0), (lambda z: jnp.maximum(z, 0.0), 0.0),
    (lambda z: jax.nn.leaky_relu(z, 0.1), 0.1)], ids=["relu", "maximum", "leaky"])
def test_backward_rules_equal_hand_written_rules(rule, activation, slope):
  model = _two_layer(activation)
  images = _images()
  got = A.backprop(model, images, 2, rule=rule)
  want = _hand_rule(model.params, images, 2, rule, slope)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  # the rules really differ from each other on this network
  if rule != "gradient":
    assert np.abs(got - _hand_rule(model.params, images, 2, "gradient", slope)).max() > 1e-2


def test_backward_rules_on_a_users_linen_model():
  module = Mlp()
  variables = module.init(jax.random.key(0), jnp.zeros((1, SIDE, SIDE, 3)))
  model = fvjax.Model.from_flax(module, variables, input_size=(SIDE, SIDE))
  params = {"w1": variables["params"]["dense1"]["kernel"],
            "w2": variables["params"]["dense2"]["kernel"]}
  images = _images()
  for rule in ("guided", "deconvnet"):
    np.testing.assert_allclose(A.backprop(model, images, [0, 1, 4], rule=rule),
                               np.stack([_hand_rule(params, images[i:i + 1], c, rule)[0]
                                         for i, c in enumerate([0, 1, 4])]),
                               rtol=1e-4, atol=1e-4)
  # forward values unchanged
  guided = A.with_backward_rule(model, "guided")
  np.testing.assert_allclose(guided(images)["logits"], model(images)["logits"], rtol=1e-6)
  # a second rewrite of the model is an equal static function: no compile, no module cache
  with fvjax.count_compiles() as log:
    A.backprop(model, images, [0, 1, 4], rule="guided")
  assert log.count("_grad") == 0, log.names


def test_guided_backprop_on_tiny_darknet(tiny_darknet):
  assert A.count_rectifiers(tiny_darknet) == ["leaky_relu"] * 15
  images = jax.random.uniform(jax.random.key(0), (1, 32, 32, 3))
  g = A.guided_backprop(tiny_darknet, images, 7, reduce="none")
  s = A.gradient(tiny_darknet, images, 7)
  assert g.shape == s.shape == (1, 32, 32, 3) and np.all(np.isfinite(g))
  assert A.rank_correlation(g, s)[0] < 0.95  # a different map from the gradient's


# -- saliency --------------------------------------------------------------------------------
def _linear_model(side=6):
  w = jax.random.normal(jax.random.key(3), (side, side, 3, CLASSES))

  def fn(params, images):
    return {"logits": jnp.einsum("bhwc,hwck->bk", images, params)}
  return fvjax.Model.from_fn(fn, w, input_size=(side, side), name="linear"), np.asarray(w)


def test_saliency_of_a_linear_model_is_abs_weight_channel_max():
  model, w = _linear_model()
  images = jax.random.uniform(jax.random.key(0), (2, 6, 6, 3))
  np.testing.assert_allclose(A.saliency(model, images, [1, 3]),
                             np.stack([np.abs(w[..., 1]).max(-1), np.abs(w[..., 3]).max(-1)]),
                             rtol=1e-6)
  np.testing.assert_allclose(A.gradient_x_input(model, images, 1),
                             (np.asarray(images) * w[..., 1]).sum(-1), rtol=1e-5, atol=1e-6)


# -- occlusion -------------------------------------------------------------------------------
def _patch_model(side=32, patch=(8, 16, 8, 16)):
  """Class 0's logit reads only the pixels of one patch; class 1's logit is 0."""
  t, b, l, r = patch

  def fn(params, images):
    score = params * (images[:, t:b, l:r].mean(axis=(1, 2, 3)) - 0.5)
    return {"logits": jnp.stack([score, jnp.zeros_like(score)], axis=-1)}
  return fvjax.Model.from_fn(fn, jnp.float32(20.0), input_size=(side, side), name="patch")


def test_occlusion_lights_only_the_patch_the_model_reads():
  model = _patch_model()
  images = jnp.ones((1, 32, 32, 3))
  heat = A.occlusion(model, images, 0, window=8, stride=8, score="logit")
  inside = np.zeros((32, 32), bool)
  inside[8:16, 8:16] = True
  assert np.all(heat[0][inside] > 1.0)
  np.testing.assert_array_equal(heat[0][~inside], 0.0)
  grid = A.occlusion_grid(model, images, 0, window=8, stride=8)
  assert grid.drops.shape == (1, 4, 4)
  assert np.unravel_index(np.argmax(grid.drops[0]), (4, 4)) == (1, 1)


# -- meaningful perturbation ---------------------------------------------------------------
def test_meaningful_perturbation_deletes_the_region_the_model_depends_on():
  model = _patch_model(patch=(8, 16, 16, 24))
  image = np.zeros((1, 32, 32, 3), np.float32)
  image[:, 8:16, 16:24] = 1.0  # a bright patch on black: blurring it kills class 0
  region = np.zeros((32, 32), bool)
  region[8:16, 16:24] = True
  # the paper's weights (TV >> L1) end up spreading the deletion over the whole tiny image, so
  # look at the first steps: the region the model reads is deleted first
  result = A.meaningful_perturbation(jax.random.key(0), model, image, 0, mask_size=16,
                                     mask_smooth=1.0, blur_sigma=4.0, jitter=1, steps=12)
  deleted = result.saliency[0]
  assert deleted[region].mean() > 0.5
  assert deleted[region].mean() > 3 * deleted[~region].mean()
  top = np.argsort(deleted.ravel())[-32:]  # the most-deleted pixels are the region's
  assert region.ravel()[top].mean() > 0.9
  assert result.perturbed[0] < 0.8 * result.base[0]
  assert result.trace.shape == (1, 12) and result.trace[0, -1] < result.trace[0, 0]
  # the same settings again reuse the compiled steps (the optimizer is rebuilt from its
  # learning rate, not cached)
  with fvjax.count_compiles() as log:
    A.meaningful_perturbation(jax.random.key(1), model, image, 0, mask_size=16,
                              mask_smooth=1.0, blur_sigma=4.0, jitter=1, steps=12)
  assert log.count("jit(_run)") == 0 and log.count("jit(_start)") == 0, log.names


def test_meaningful_perturbation_is_one_compiled_loop_for_every_chunk_and_number():
  model = _patch_model(patch=(8, 16, 16, 24))
  images = np.zeros((3, 32, 32, 3), np.float32)
  images[:, 8:16, 16:24] = 1.0
  kw = dict(mask_size=8, mask_smooth=1.0, jitter=1, steps=4, batch_size=2)
  first = A.meaningful_perturbation(jax.random.key(0), model, images, 0, **kw)
  assert first.masks.shape == (3, 32, 32) and first.small.shape == (3, 8, 8)
  assert first.trace.shape == (3, 4)
  assert 0.0 <= first.masks.min() and first.masks.max() <= 1.0
  # the three images ran as two chunks of two units (the last repeats image 2): one loop
  with fvjax.count_compiles() as log:  # other numbers reuse the compiled loop
    A.meaningful_perturbation(jax.random.key(1), model, images, 0, learning_rate=0.05, l1=1e-3,
                              tv=0.1, blur_sigma=3.0, init=0.9, **{**kw, "mask_smooth": 2.0})
  assert log.count("_run_all") == 0 and log.count("_init_all") == 0, log.names


def test_nearest_upsampling_gives_constant_blocks():
  small = jax.random.uniform(jax.random.key(3), (2, 4, 4))
  near = np.asarray(A.upsample_mask(small, (32, 32), 0.0, mode="nearest"))
  # every 8x8 block is the constant value of its cell (pixel replication, no interpolation)
  blocks = near.reshape(2, 4, 8, 4, 8)
  np.testing.assert_array_equal(blocks, np.broadcast_to(
      np.asarray(small)[:, :, None, :, None], blocks.shape))
  bilinear = np.asarray(A.upsample_mask(small, (32, 32), 0.0))
  assert np.abs(np.diff(bilinear.reshape(2, 4, 8, 4, 8), axis=2)).max() > 1e-3
  # through the optimiser: the returned full-size mask is the nearest-upsampled small mask
  model = _patch_model(patch=(8, 16, 16, 24))
  image = np.zeros((1, 32, 32, 3), np.float32)
  image[:, 8:16, 16:24] = 1.0
  result = A.meaningful_perturbation(jax.random.key(0), model, image, 0, mask_size=8,
                                     mask_smooth=0.0, blur_sigma=4.0, jitter=1, steps=6,
                                     upsample="nearest")
  np.testing.assert_allclose(result.masks[0], np.kron(result.small[0], np.ones((4, 4))),
                             atol=1e-6)
  assert result.small[0].min() < 0.99  # the mask moved, so the blocks are not all ones


def test_circle_init_is_the_smallest_disc_that_removes_the_class():
  from fvjax._src.attribution import perturbation as P
  model = _patch_model(patch=(12, 20, 12, 20))  # reads the central 8x8 patch
  image = np.zeros((1, 32, 32, 3), np.float32)
  image[:, 12:20, 12:20] = 1.0
  result = A.meaningful_perturbation(jax.random.key(0), model, image, 0, mask_size=8,
                                     blur_sigma=4.0, jitter=0, steps=1, init="circle")
  radius = result.init_radius[0]
  # scaled grid at 32 px: radii 0, 5, ..., 170 px x 32/224, sigma 10 x 32/224
  step = 5 * 32 / 224
  assert 5 < radius < 12, radius  # the patch's half diagonal is 5.7 px
  k = int(round(radius / step))
  discs = P.circle_masks((32, 32), [(k - 1) * step, k * step, 170 * 32 / 224], 10 * 32 / 224)
  blurred = np.asarray(P._reference("blur", jnp.asarray(image[0]), 4.0, 0.2, None))
  scores = []
  for disc in discs:
    x = disc[..., None] * image[0] + (1 - disc[..., None]) * blurred
    scores.append(float(jax.nn.softmax(model(jnp.asarray(x[None]))["logits"])[0, 0]))
  s0 = float(jax.nn.softmax(model(jnp.asarray(image))["logits"])[0, 0])
  normalized = (np.asarray(scores[:2]) - scores[2]) / (s0 - scores[2])
  assert normalized[1] < 0.01 <= normalized[0]  # this disc removes the class, one smaller not
  # the start is 1 - that disc, resized to the 8x8 mask by nearest neighbour: deleted centre
  np.testing.assert_allclose(result.init[0], discs[1][2::4, 2::4], atol=1e-6)
  assert result.init[0][3:5, 3:5].max() < 0.1 and result.init[0][0, 0] > 0.99
  constant = A.meaningful_perturbation(jax.random.key(0), model, image, 0, mask_size=8,
                                       blur_sigma=4.0, jitter=0, steps=1, init=0.7)
  np.testing.assert_allclose(constant.init, 0.7)
  assert np.isnan(constant.init_radius).all()


@pytest.mark.slow  # both mask games on a shared photo, ~15 s: CI runs it (-m slow)
@needs_shared
def test_meaningful_perturbation_on_a_real_photo(tiny_darknet):
  photo = fvjax.data.load_image(str(SHARED_PHOTOS / "n01443537_goldfish.jpg"), 64)[None]
  cls = int(np.argmax(np.asarray(tiny_darknet(jnp.asarray(photo))["logits"])))
  kw = dict(mask_size=8, steps=20, jitter=2)
  deletion = A.meaningful_perturbation(jax.random.key(0), tiny_darknet, photo, cls, **kw)
  preservation = A.meaningful_perturbation(jax.random.key(0), tiny_darknet, photo, cls,
                                           game="preservation", **kw)
  assert deletion.perturbed[0] < 0.5 * deletion.base[0]  # deleting the mask kills the score
  assert deletion.reference[0] < 0.5 * deletion.base[0]
  assert 0.0 < (1 - deletion.masks[0]).mean() < 0.9  # ... without deleting everything
  assert deletion.trace[0, -5:].mean() < 0.5 * deletion.trace[0, :2].mean()
  assert preservation.perturbed[0] > 0.5 * preservation.base[0]  # the kept region keeps it
  assert preservation.masks[0].mean() < 0.9


def test_deletion_game_finds_the_patch_box():
  model = _patch_model(patch=(8, 16, 16, 24))
  image = np.zeros((1, 32, 32, 3), np.float32)
  image[:, 8:16, 16:24] = 1.0
  good = np.zeros((1, 32, 32), np.float32)
  good[:, 8:16, 16:24] = 1.0
  result = A.deletion_game(model, image, 0, good, blur_sigma=4.0)
  assert A.minimal_deletion_area(result)[0] == pytest.approx(64 / 1024)
  flat = A.deletion_game(model, image, 0, np.ones((1, 32, 32)), blur_sigma=4.0)
  assert A.minimal_deletion_area(flat)[0] == 1.0


# -- class model -----------------------------------------------------------------------------
def test_class_model_raises_its_class_score(tiny_darknet):
  result = A.class_model(tiny_darknet, [3, 500], size=32, steps=6)
  assert np.all(result.scores > result.initial + 1.0)
  assert result.images.shape == (2, 32, 32, 3)
  assert result.images.min() >= 0 and result.images.max() <= 1
  assert np.all(np.diff(result.trace, axis=1).mean(axis=1) > 0)
  np.testing.assert_allclose(result.trace[:, 0], result.initial, rtol=1e-4, atol=1e-4)


def test_class_model_regularisers_and_one_compiled_loop(tiny_darknet):
  kw = dict(size=32, steps=4, blur_every=2, norm_percentile=50, contribution_percentile=10)
  result = A.class_model(tiny_darknet, [3, 500], **kw)
  centred = result.raw - np.asarray(IMAGENET_MEAN, np.float32)
  zero = np.all(np.abs(centred) < 1e-6, axis=-1)
  assert np.all(zero.mean(axis=(1, 2)) > 0.45)  # the norm percentile zeroes half the pixels
  assert np.all(zero.mean(axis=(1, 2)) < 0.9)
  with fvjax.count_compiles() as log:  # other numbers, other classes: the same loop
    A.class_model(tiny_darknet, [7, 8], learning_rate=0.5, weight_decay=1e-2, blur_sigma=2.0,
                  **{**kw, "blur_every": 3, "norm_percentile": 30})
  assert log.count("_run_all") == 0 and log.count("_init_all") == 0, log.names


# -- sanity check ----------------------------------------------------------------------------
def test_cascading_randomization_goes_top_down():
  module = Mlp()
  variables = module.init(jax.random.key(0), jnp.zeros((1, SIDE, SIDE, 3)))
  model = fvjax.Model.from_flax(module, variables, input_size=(SIDE, SIDE))
  stages = A.cascading_randomization(jax.random.key(1), model)
  assert [name for name, _ in stages] == ["dense2", "dense1"]
  top = stages[0][1].params["params"]
  np.testing.assert_array_equal(top["dense1"]["kernel"], variables["params"]["dense1"]["kernel"])
  assert not np.allclose(top["dense2"]["kernel"], variables["params"]["dense2"]["kernel"])
  a = np.arange(20.0).reshape(1, 4, 5)
  assert A.rank_correlation(a, a)[0] == pytest.approx(1.0)
  assert A.rank_correlation(a, -a, absolute=False)[0] == pytest.approx(-1.0)


# -- views -----------------------------------------------------------------------------------
def test_views_write_pngs(tmp_path, tiny_darknet):
  images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  maps = {"a": np.random.default_rng(1).uniform(size=(2, 32, 32)), "b": images}
  over = A.overlay(images, maps["a"])
  assert over.shape == (2, 32, 32, 3) and 0 <= over.min() and over.max() <= 1
  for path in (A.attribution_panel(images, maps, str(tmp_path / "panel.png"), labels=["x", "y"]),
               A.filter_grid(tiny_darknet, str(tmp_path / "filters.png")),
               A.activation_grid(tiny_darknet, images[0], "leaky_re_lu_1",
                                 str(tmp_path / "acts.png")),
               A.sanity_curves({"a": np.ones((2, 3))}, ["original", "l2", "l1"],
                               str(tmp_path / "sanity.png")),
               A.deletion_bars({"a": np.array([0.1, 0.2])}, str(tmp_path / "bars.png"))):
    assert (tmp_path / path.split("/")[-1]).stat().st_size > 1000
  assert A.first_layer_filters(tiny_darknet).shape == (16, 3, 3, 3)


# -- bad input ------------------------------------------------------------------------------
def test_bad_inputs_get_clear_errors():
  model = _two_layer(jax.nn.relu)
  images = _images(2)
  with pytest.raises(fvjax.FvjaxError, match=r"class index 5 is out of range.*0\.\.4"):
    A.saliency(model, images, 5)
  with pytest.raises(fvjax.FvjaxError, match=r"class index -1 is out of range"):
    A.guided_backprop(model, images, [0, -1])
  with pytest.raises(fvjax.FvjaxError, match="3 class indices for 2 images"):
    A.saliency(model, images, [0, 1, 2])
  with pytest.raises(fvjax.FvjaxError, match=r"occlusion window 5 is larger than the 4x4"):
    A.occlusion(model, images, 0, window=5)
  with pytest.raises(fvjax.FvjaxError, match=r"\[N, H, W, 3\]"):
    A.saliency(model, images[0], 0)
  with pytest.raises(fvjax.FvjaxError, match="unknown backward rule 'guidd'"):
    A.backprop(model, images, 0, rule="guidd")
  with pytest.raises(fvjax.FvjaxError, match="unknown game 'insertion'.*deletion, preservation"):
    A.meaningful_perturbation(jax.random.key(0), model, images, 0, game="insertion")
  with pytest.raises(fvjax.FvjaxError, match="unknown upsample 'bicubic'.*bilinear, nearest"):
    A.meaningful_perturbation(jax.random.key(0), model, images, 0, upsample="bicubic")
  with pytest.raises(fvjax.FvjaxError, match="unknown init 'square'.*circle"):
    A.meaningful_perturbation(jax.random.key(0), model, images, 0, init="square")
  with pytest.raises(fvjax.FvjaxError, match=r"init must be a mask value in \[0, 1\] or"):
    A.meaningful_perturbation(jax.random.key(0), model, images, 0, init=1.5)
  with pytest.raises(fvjax.FvjaxError, match="class index 7"):
    A.class_model(model, 7)
  linear, _ = _linear_model()
  with pytest.raises(fvjax.FvjaxError, match="no rectifier"):
    A.with_backward_rule(linear, "guided")
  with pytest.raises(fvjax.FvjaxError, match="one map"):
    A.deletion_game(model, images, 0, np.ones((2, 3, 3)))
