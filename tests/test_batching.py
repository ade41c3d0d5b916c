"""fvjax.data.map_batches: equal to the unbatched computation, pytree outputs, one compile for a
padded last batch (counted with JAX's own compile log), clear errors; and the library's
batched inference (adversarial predict, fooling classify and detector_logits) compiling its
inner function once for n=5 images in batches of 2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax import adversarial as adv
from fvjax.data import map_batches
from fvjax.reliability import fooling as fo


def _rows(n, d=4, seed=0):
  return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@jax.jit
def _affine_rows(x, y):
  """Row-wise: ``x @ W + y.sum``, shapes ``[B, 4], [B, 3] -> [B, 2]``."""
  w = jnp.arange(8, dtype=jnp.float32).reshape(4, 2) / 8
  return x @ w + y.sum(-1, keepdims=True)


def test_equals_unbatched_when_batch_does_not_divide_n():
  x, y = _rows(7), _rows(7, 3, seed=1)
  whole = np.asarray(_affine_rows(x, y))
  for batch in (1, 2, 3, 6, 7, 50):
    out = map_batches(_affine_rows, x, y, batch_size=batch)
    assert isinstance(out, np.ndarray) and out.shape == (7, 2)
    np.testing.assert_allclose(out, whole, rtol=1e-6, atol=1e-6)
  # JAX inputs are batched (and padded) on the device just the same
  out = map_batches(_affine_rows, jnp.asarray(x), jnp.asarray(y), batch_size=3)
  np.testing.assert_allclose(out, whole, rtol=1e-6, atol=1e-6)


def test_pytree_outputs():
  x = _rows(5)

  def fn(b):
    return {"sum": b.sum(-1), "pair": (b * 2, jnp.argmax(b, -1))}

  out = map_batches(fn, x, batch_size=2)
  np.testing.assert_allclose(out["sum"], x.sum(-1), rtol=1e-6)
  np.testing.assert_allclose(out["pair"][0], x * 2)
  np.testing.assert_array_equal(out["pair"][1], x.argmax(-1))


def test_padded_last_batch_compiles_once():
  @jax.jit
  def _square_rows_once(b):
    return b * b

  x = _rows(7)
  with fvjax.count_compiles() as log:
    out = map_batches(_square_rows_once, x, batch_size=3)  # batches 3, 3, 1 (padded to 3)
    more = map_batches(_square_rows_once, x[:5], batch_size=3)  # 3, 2: the same shape
  np.testing.assert_allclose(out, x * x)
  np.testing.assert_allclose(more, x[:5] * x[:5])
  assert log.count("_square_rows_once") == 1, log.names


def test_calls_see_equal_shapes_and_padding_repeats_the_last_row():
  seen = []

  def record(b):
    seen.append(np.asarray(b).copy())
    return b

  x = _rows(5)
  out = map_batches(record, x, batch_size=2, progress=True, desc="test")
  np.testing.assert_array_equal(out, x)
  assert [s.shape for s in seen] == [(2, 4)] * 3
  np.testing.assert_array_equal(seen[-1], x[[4, 4]])
  seen.clear()
  map_batches(record, x[:3], batch_size=8)  # fewer rows than batch_size: one call of 3
  assert [s.shape for s in seen] == [(3, 4)]


def test_empty_input_gives_empty_outputs_of_the_right_shape():
  out = map_batches(lambda b: {"a": b[:, :2], "i": jnp.argmax(b, -1)}, np.zeros((0, 4),
                                                                               np.float32),
                    batch_size=4)
  assert out["a"].shape == (0, 2) and out["a"].dtype == np.float32
  assert out["i"].shape == (0,) and np.issubdtype(out["i"].dtype, np.integer)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "4", None])
def test_bad_batch_size_is_an_fvjax_error_naming_it(bad):
  with pytest.raises(fvjax.FvjaxError, match=f"batch_size must be a positive integer, got "
                     f"{bad!r}"):
    map_batches(lambda b: b, _rows(3), batch_size=bad)


def test_other_bad_input():
  with pytest.raises(fvjax.FvjaxError, match=r"one length along axis 0, got \[3, 2\]"):
    map_batches(lambda a, b: a, _rows(3), _rows(2), batch_size=2)
  with pytest.raises(fvjax.FvjaxError, match="at least one array"):
    map_batches(lambda: 0, batch_size=2)
  with pytest.raises(fvjax.FvjaxError, match="leading axis"):
    map_batches(lambda b: b.sum(), _rows(3), batch_size=2)


# -- library call sites: n=5 in batches of 2 compiles the inner function once --------------
def test_adversarial_predict_compiles_once():
  w = jnp.asarray(_rows(4, 3, seed=2))

  def logits_fn(params, x):
    return x @ params

  x = _rows(5)
  with fvjax.count_compiles() as log:
    labels = adv.predict(logits_fn, w, x, batch_size=2)
  np.testing.assert_array_equal(labels, np.argmax(x @ np.asarray(w), -1))
  assert log.count("jit(_argmax)") == 1, log.names
  assert adv.error_rate(logits_fn, w, x, labels, batch_size=2) == 0.0


def _tiny_classifier():
  w = jax.random.normal(jax.random.key(1), (12, 6))

  def fn(params, images):
    b = images.shape[0]
    pooled = jax.image.resize(images, (b, 2, 2, 3), "linear").reshape(b, 12)
    return {"pooled": pooled, "logits": pooled @ params["w"]}

  return fvjax.Model.from_fn(fn, {"w": w}, input_size=(16, 16), name="tiny")


def test_fooling_classify_compiles_once():
  model = _tiny_classifier()
  images = np.asarray(jax.random.uniform(jax.random.key(0), (5, 16, 16, 3)))
  with fvjax.count_compiles() as log:
    logits = fo.classify(model, images, batch=2)
  np.testing.assert_allclose(logits, np.asarray(model(jnp.asarray(images))["logits"]),
                             rtol=1e-5, atol=1e-5)
  assert log.count("jit(_logits)") == 1, log.names


def test_fooling_detector_logits_compiles_once():
  detector = fo.Detector(features=(2, 3), input_size=16)
  variables = fo.init_detector(jax.random.key(3), detector)
  images = np.asarray(jax.random.uniform(jax.random.key(4), (5, 16, 16, 3)))
  with fvjax.count_compiles() as log:
    logits = fo.detector_logits(variables, images, detector=detector, batch=2)
  whole = np.asarray(detector.apply(variables, jnp.asarray(images)))
  np.testing.assert_allclose(logits, whole, rtol=1e-4, atol=1e-5)
  assert log.count("jit(_detector_apply)") == 1, log.names
  assert fo.detector_logits(variables, images[:0], detector=detector).shape == (0,)


def test_silent_target_filter_in_padded_batches(tiny_darknet):
  """`target_filter` sums the input patches of each image: the padded rows of the last batch
  are dropped (batches of 2 equal the patches summed directly) and it compiles once."""
  from fvjax.reliability import silent
  images = np.asarray(jax.random.uniform(jax.random.key(5), (5, 32, 32, 3)))
  with fvjax.count_compiles() as log:
    got = np.asarray(silent.target_filter(tiny_darknet, "conv2d_1", images, batch_size=2))
  assert log.count("jit(_patch_sum_jit)") == 1, log.names
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))  # conv2d_1: 3x3, 'same', stride 1
  mean = np.stack([np.stack([padded[:, i:i + 32, j:j + 32].mean((0, 1, 2)) for j in range(3)])
                   for i in range(3)])
  np.testing.assert_allclose(got, mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
