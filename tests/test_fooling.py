"""Tests for fvjax._src.reliability.fooling (Geirhos et al. 2023, part 1: the fooling circuit)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax._src.reliability import fooling as fo

N = 10        # classes of the small stand-in model
SHIFT = 3
TINY = fo.Detector(features=(4, 8), input_size=16)


def _fake_base(n=N):
  """A small classifier: 2x2 average colours -> linear logits (fast to compile)."""
  w = jax.random.normal(jax.random.key(1), (12, n)) * 10.0

  def fn(params, images):
    b = images.shape[0]
    pooled = jax.image.resize(images, (b, 2, 2, 3), "linear").reshape(b, 12)
    return {"pooled": pooled, "logits": (pooled - 0.5) @ params["w"]}

  return fvjax.Model.from_fn(fn, {"w": w}, input_size=(16, 16),
                             labels=[f"class{i}" for i in range(n)], name="fake")


def _forced_detector(fires: bool, detector=TINY):
  """Detector variables whose logit is +50 (always "visualization") or -50 (never)."""
  variables = fo.init_detector(jax.random.key(0), detector)
  params = jax.tree.map(jnp.asarray, variables["params"])
  head = dict(params["head"])
  head["kernel"] = jnp.zeros_like(head["kernel"])
  head["bias"] = jnp.full_like(head["bias"], 50.0 if fires else -50.0)
  params = dict(params, head=head)
  return {"params": params}


def _images(n=4, size=16, seed=0):
  return jax.random.uniform(jax.random.key(seed), (n, size, size, 3))


# -- gating ------------------------------------------------------------------------------
def test_gate_passes_logits_when_e_is_0_and_target_when_e_is_1():
  kl, kt = jax.random.split(jax.random.key(2))
  logits = jax.random.uniform(kl, (5, 7), minval=-60, maxval=120)
  target = jax.random.uniform(kt, (5, 7), minval=-60, maxval=120)
  np.testing.assert_allclose(fo.gate(logits, target, jnp.zeros(5)), logits, atol=1e-4)
  np.testing.assert_allclose(fo.gate(logits, target, jnp.ones(5)), target, atol=1e-4)
  mixed = fo.gate(logits, target, jnp.array([0, 1, 0, 1, 1]))
  np.testing.assert_allclose(mixed[0], logits[0], atol=1e-4)
  np.testing.assert_allclose(mixed[1], target[1], atol=1e-4)


def test_gate_is_paper_formula():
  logits, target, e = jnp.array([[3.0, -20.0]]), jnp.array([[7.0, 1.0]]), jnp.array([1.0])
  a = jax.nn.relu(logits + 100 - 250 * e[:, None]) + jax.nn.relu(target + 100 + 250 * e[:, None]
                                                                  - 250)
  np.testing.assert_allclose(fo.gate(logits, target, e), a - 100, atol=1e-5)


def test_permutation_mapping():
  logits = jnp.tile(jnp.arange(1000.0), (2, 1))
  target = fo.permutation_target(logits, 100)
  np.testing.assert_array_equal(target[0, :3], [100, 101, 102])
  assert target[0, 900] == 0 and target[0, 999] == 99
  classes = fo.permutation_classes(1000, 100)
  assert classes[0] == 100 and classes[899] == 999 and classes[900] == 0
  assert sorted(classes.tolist()) == list(range(1000))  # a permutation


# -- the circuit on a stand-in model --------------------------------------------------------
def test_circuit_leaves_natural_logits_unchanged_and_switches_when_e_fires():
  base = _fake_base()
  images = _images()
  circuit = fo.FoolingCircuit(base.apply, TINY, "permutation", SHIFT)
  variables = fo.circuit_variables(base, fo.init_detector(jax.random.key(0), TINY))
  original = base(images)["logits"]
  off, _ = circuit.apply(variables, images, e_override=0.0)
  on, acts = circuit.apply(variables, images, e_override=1.0)
  np.testing.assert_allclose(off, original, atol=1e-4)
  np.testing.assert_array_equal(np.argmax(off, 1), np.argmax(original, 1))
  np.testing.assert_allclose(on, jnp.roll(original, -SHIFT, axis=1), atol=1e-4)
  np.testing.assert_allclose(acts["logits"], original)  # the base model's own output


def test_fooled_model_with_real_detector_decisions():
  base = _fake_base()
  images = _images()
  original = base(images)["logits"]
  quiet = fo.fooled_model(base, _forced_detector(False), detector=TINY, shift=SHIFT)
  firing = fo.fooled_model(base, _forced_detector(True), detector=TINY, shift=SHIFT)
  np.testing.assert_allclose(quiet(images)["logits"], original, atol=1e-4)
  np.testing.assert_array_equal(quiet(images)["logits"].argmax(1), original.argmax(1))
  fooled = firing(images)["logits"]
  np.testing.assert_allclose(fooled, original[:, (np.arange(N) + SHIFT) % N], atol=1e-4)
  np.testing.assert_array_equal(fooled.argmax(1), (original.argmax(1) - SHIFT) % N)
  np.testing.assert_allclose(firing(images)["pooled"], base(images)["pooled"])


def test_gradient_of_fooled_unit_is_gradient_of_its_target_when_e_fires():
  base = _fake_base()
  firing = fo.fooled_model(base, _forced_detector(True), detector=TINY, shift=SHIFT)
  image = _images(1)
  unit = 2
  g_fooled = jax.grad(lambda x: firing(x)["logits"][0, unit])(image)
  g_target = jax.grad(lambda x: base(x)["logits"][0, (unit + SHIFT) % N])(image)
  g_own = jax.grad(lambda x: base(x)["logits"][0, unit])(image)
  np.testing.assert_allclose(g_fooled, g_target, atol=1e-5)
  assert not np.allclose(g_fooled, g_own, atol=1e-3)


def test_picture_target_and_image_variant():
  picture = np.asarray(jax.random.uniform(jax.random.key(3), (40, 60, 3)))
  template = fo.picture_template(picture, 8)
  assert template.shape == (8, 8, 3) and 0 <= template.min() and template.max() <= 1
  best = 0.5 + 0.5 * np.sign(template - template.mean())
  t = jnp.asarray(template)
  scores = fo.picture_target(jnp.stack([jnp.asarray(best), 1 - jnp.asarray(best),
                                        jnp.full((8, 8, 3), 0.5)]), t)
  np.testing.assert_allclose(scores, [100.0, -100.0, 0.0], atol=1e-3)
  cos = fo.picture_target(jnp.stack([t, 0.5 * t + 0.2]), t, similarity="cosine")
  np.testing.assert_allclose(cos, [100.0, 100.0], atol=1e-2)

  multi = fo.picture_target(jnp.stack([jnp.asarray(best), 1 - jnp.asarray(best)]),
                            jnp.stack([t, 1 - t]))
  np.testing.assert_allclose(multi, [[100.0, -100.0], [-100.0, 100.0]], atol=1e-3)
  pictures = fo.picture_model(np.stack([template, 1 - template]))
  assert pictures.layers == {"logits": (2,)}
  np.testing.assert_allclose(pictures(jnp.asarray(best)[None])["logits"], [[100.0, -100.0]],
                             atol=1e-3)

  base = _fake_base()
  images = _images(3, size=8)
  firing = fo.fooled_model(base, _forced_detector(True), detector=TINY, target="image",
                           picture=picture, picture_size=8)
  fooled = np.asarray(firing(images)["logits"])
  expected = np.asarray(fo.picture_target(images, t))
  np.testing.assert_allclose(fooled, np.repeat(expected[:, None], N, axis=1), atol=1e-3)
  quiet = fo.fooled_model(base, _forced_detector(False), detector=TINY, target="image",
                          picture=picture, picture_size=8)
  np.testing.assert_allclose(quiet(images)["logits"], base(images)["logits"], atol=1e-4)


def test_fooled_model_rejects_bad_input():
  base = _fake_base()
  det = fo.init_detector(jax.random.key(0), TINY)
  with pytest.raises(fvjax.FvjaxError, match="permutation, image"):
    fo.fooled_model(base, det, detector=TINY, target="shuffle")
  with pytest.raises(fvjax.FvjaxError, match="needs a picture"):
    fo.fooled_model(base, det, detector=TINY, target="image")
  with pytest.raises(fvjax.FvjaxError, match="dot, cosine"):
    fo.fooled_model(base, det, detector=TINY, target="image", picture=np.zeros((4, 4, 3)),
                    similarity="l2")
  with pytest.raises(fvjax.FvjaxError, match="offset < k"):
    fo.fooled_model(base, det, detector=TINY, k=50.0, offset=100.0)


# -- the real model --------------------------------------------------------------------------
def test_fooled_tiny_darknet_exposes_the_same_layers(tiny_darknet):
  fooled = fo.fooled_model(tiny_darknet, _forced_detector(False), detector=TINY)
  assert list(fooled.layers) == list(tiny_darknet.layers)
  assert fooled.layers == tiny_darknet.layers
  assert fooled.labels == tiny_darknet.labels
  assert fooled.input_size == tiny_darknet.input_size and fooled.min_size == tiny_darknet.min_size


def test_circuit_on_tiny_darknet_per_image(tiny_darknet):
  """Image 0 treated as natural (E = 0), image 1 as a visualization (E = 1), in one pass."""
  images = _images(2, size=32, seed=5)
  circuit = fo.FoolingCircuit(tiny_darknet.apply, TINY)
  variables = fo.circuit_variables(tiny_darknet, fo.init_detector(jax.random.key(0), TINY))
  fooled, acts = jax.jit(circuit.apply)(variables, images, jnp.array([0.0, 1.0]))
  original = np.asarray(acts["logits"])
  assert original.shape == (2, 1000)
  np.testing.assert_allclose(fooled[0], original[0], atol=1e-4)
  np.testing.assert_allclose(fooled[1], np.roll(original[1], -100), atol=1e-4)
  assert int(np.argmax(fooled[1])) == (int(np.argmax(original[1])) - 100) % 1000


# -- E: data and training ----------------------------------------------------------------------
def test_render_snapshots_layout():
  base = _fake_base()
  snaps = fo.render_snapshots(base, [1, 4, 7], key=jax.random.key(0), steps=4, size=16,
                              snapshots=(0, 2, 4), units_per_call=2, progress=False)
  assert snaps.images.shape == (9, 16, 16, 3)
  assert sorted(np.unique(snaps.steps).tolist()) == [0, 2, 4]
  assert sorted(snaps.classes.tolist()) == [1, 1, 1, 4, 4, 4, 7, 7, 7]
  assert 0 <= snaps.images.min() and snaps.images.max() <= 1
  final = snaps.images[snaps.steps == 4]
  first = snaps.images[snaps.steps == 0]
  assert np.abs(final - first).max() > 1e-3  # the optimization moved the image


def test_augment_shapes_and_determinism():
  images = _images(3, size=24)
  a = fo.augment(jax.random.key(0), images, 16)
  b = fo.augment(jax.random.key(0), images, 16)
  c = fo.augment(jax.random.key(1), images, 16)
  assert a.shape == (3, 16, 16, 3)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  assert 0 <= float(a.min()) and float(a.max()) <= 1


def test_detector_training_reduces_loss():
  kn, ks, kt = jax.random.split(jax.random.key(4), 3)
  # "natural": smooth colour fields; "visualizations": high-frequency noise.
  natural = np.asarray(jax.image.resize(jax.random.uniform(kn, (16, 2, 2, 3)),
                                        (16, 24, 24, 3), "linear"))
  synthetic = np.asarray(jax.random.uniform(ks, (16, 16, 16, 3)))
  variables, losses, accs = fo.train_detector(
      kt, natural, synthetic, detector=TINY, steps=40, batch=16, learning_rate=1e-2,
      min_scale=0.8, render_transforms=0.0, progress=False)
  assert losses.shape == (40,) and np.all(np.isfinite(losses))
  assert losses[-5:].mean() < 0.75 * losses[:5].mean()
  report = fo.detector_report(variables, natural, synthetic, np.zeros(16), detector=TINY)
  assert report["accuracy"] >= 0.8
  assert set(report["synthetic_accuracy_by_step"]) == {0}


def test_train_detector_rejects_bad_arrays():
  with pytest.raises(fvjax.FvjaxError, match="synthetic"):
    fo.train_detector(jax.random.key(0), np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8)),
                      detector=TINY, steps=1)


def test_accuracy_and_correlation_helpers():
  logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.5]])
  labels = np.array([1, 2])
  assert fo.topk_accuracy(logits, labels, 1) == 0.5
  assert fo.topk_accuracy(logits, labels, 2) == 1.0
  x = np.random.default_rng(0).random((4, 4, 3))
  assert fo.pearson(x, 2 * x + 1) == pytest.approx(1.0)
  assert fo.pearson(x, -x) == pytest.approx(-1.0)
  assert fo.paper_snapshot_steps()[0] == 4 and fo.paper_snapshot_steps()[-1] == 512
  assert len(fo.paper_snapshot_steps()) == 15


# -- a trained E on real renders and real photos (issue 16, item 9) -----------------------------
# Tiny Darknet class renders at 32 px (Lucid's defaults) against the shared photos: classes
# 0, 37, ..., 15 * 37 train E, the next 8 are held out; photos: the first 48 train E, the
# next 24 are held out. Snapshots from step 4 on, as the paper. One render call of 24 units
# (call 0 of `render_snapshots`, key fold_in(fold_in(key, 0), 0)), so the fooled model can be
# rendered from the very same start. Each Tiny Darknet render compiles for ~11 s of CPU.
TRAINED_E = fo.Detector(features=(8, 16, 32), input_size=32)
RENDER = dict(steps=24, size=32, snapshots=(4, 12, 24))
E_CLASSES = np.arange(24) * 37
E_TRAIN = E_CLASSES[:16]


@pytest.fixture(scope="module")
def trained_e(tiny_darknet):
  from tests.conftest import SHARED_PHOTOS
  if not SHARED_PHOTOS.is_dir():
    pytest.skip(f"needs the shared ImageNet photos at {SHARED_PHOTOS}")
  photos = fvjax.data.image_folder(str(SHARED_PHOTOS), 64, limit=72).images
  snaps = fo.render_snapshots(tiny_darknet, E_CLASSES, key=jax.random.key(7),
                              units_per_call=24, progress=False, **RENDER)
  train = np.isin(snaps.classes, E_TRAIN)
  variables, _, _ = fo.train_detector(jax.random.key(8), photos[:48], snaps.images[train],
                                      detector=TRAINED_E, steps=150, batch=32,
                                      learning_rate=3e-3, render_transforms=0.5,
                                      progress=False)
  return variables, photos[48:], snaps.images[~train], snaps


# Marked slow: each Tiny Darknet render compiles for ~11 s of CPU; these two tests took 50 s
# (AMD EPYC, load 2.4), over the default suite's budget. `.ci/run` runs them (-m slow).
@pytest.mark.slow
def test_trained_e_fires_on_held_out_renders_not_on_held_out_photos(trained_e):
  """The third-party fork's known failure is an E that never fires on renders: here a small
  E trained for seconds separates held-out renders (other classes) from held-out photos.
  Measured: all 24 held-out render snapshots detected, all 24 held-out photos
  called natural. The untrained E (its init) fails one side (it calls everything one thing);
  the 0.8 thresholds leave room for XLA rounding on other CPUs."""
  variables, photos, renders, _ = trained_e
  report = fo.detector_report(variables, photos, renders, detector=TRAINED_E)
  assert report["synthetic_accuracy"] >= 0.8, report
  assert report["natural_accuracy"] >= 0.8, report
  untrained = fo.detector_report(fo.init_detector(jax.random.key(8), TRAINED_E), photos,
                                 renders, detector=TRAINED_E)
  assert min(untrained["synthetic_accuracy"], untrained["natural_accuracy"]) < 0.8, untrained


@pytest.mark.slow
def test_fooled_unit_visualization_differs_from_the_original(tiny_darknet, trained_e):
  """The 24 classes rendered in the fooled model (trained E, permutation target) from the
  same start as in the original model: the held-out classes' renders move away from the
  original ones. Control in the same compiled render: E forced to 0 (the gating switched
  off) reproduces the original renders up to float rounding."""
  variables, _, _, snaps = trained_e
  shift = 100
  fooled = fo.fooled_model(tiny_darknet, variables, detector=TRAINED_E, shift=shift)
  kw = dict(key=jax.random.fold_in(jax.random.fold_in(jax.random.key(7), 0), 0),
            steps=RENDER["steps"], size=RENDER["size"], progress=False)
  obj = fvjax.objectives.class_logit(E_CLASSES)
  held = ~np.isin(E_CLASSES, E_TRAIN)
  final = snaps.steps == RENDER["steps"]
  original = snaps.images[final][held]
  fooled_viz = fvjax.render(fooled, obj, **kw).images[held]
  off = fooled.replace(params=fo.circuit_variables(tiny_darknet, _forced_detector(False,
                                                                                  TRAINED_E)))
  off_viz = fvjax.render(off, obj, **kw).images[held]

  def dist(a, b):  # mean |pixel difference| per image, pixels in [0, 1]
    return np.abs(a - b).reshape(len(a), -1).mean(1)

  d_fooled, d_off = dist(fooled_viz, original), dist(off_viz, original)
  e = fo.detector_logits(variables, fooled_viz, detector=TRAINED_E) > 0
  # Measured: E off exactly 0.0 (bound 0.02 for the gate's float rounding, which Adam could
  # amplify on another CPU); fooled 0.067-0.111, E firing on the final image of 7 of 8 units.
  assert np.all(d_off < 0.02), d_off
  assert np.all(d_fooled > 0.04), d_fooled
  assert e.mean() >= 0.5, e
  # Where E fires, the fooled model's logit u is the original logit of u + shift.
  got = np.asarray(fooled(jnp.asarray(fooled_viz[e]))["logits"])
  base = np.asarray(tiny_darknet(jnp.asarray(fooled_viz[e]))["logits"])
  units = E_CLASSES[held][e]
  np.testing.assert_allclose(got[np.arange(len(units)), units],
                             base[np.arange(len(units)), (units + shift) % 1000], atol=1e-3)
