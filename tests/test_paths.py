"""Path similarity (Geirhos et al. 2023, part 3): Spearman and normalisation on known inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import fvjax
from fvjax._src.reliability import paths


def test_rankdata_averages_ties():
  np.testing.assert_array_equal(paths.rankdata([10.0, 30.0, 20.0, 20.0]), [1, 4, 2.5, 2.5])


def test_spearman_matrix_matches_scipy_and_known_values():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(4, 30))
  b = rng.normal(size=(3, 30))
  b[0] = np.round(b[0])  # ties
  got = paths.spearman_matrix(a, b)
  for i in range(4):
    for j in range(3):
      assert got[i, j] == pytest.approx(stats.spearmanr(a[i], b[j]).statistic, abs=1e-12)
  x = rng.normal(size=50)
  assert paths.spearman_matrix(x, np.exp(3 * x))[0, 0] == pytest.approx(1.0)  # monotone
  assert paths.spearman_matrix(x, -x ** 3)[0, 0] == pytest.approx(-1.0)
  np.testing.assert_allclose(paths.spearman_pairs(a[:3], b), np.diag(got[:3]), atol=1e-12)
  with pytest.raises(fvjax.FvjaxError, match="lengths"):
    paths.spearman_matrix(a, b[:, :5])


def test_normalize_similarity():
  same, diff = np.array([0.9, 0.5]), np.array([0.3, 0.1])
  np.testing.assert_allclose(paths.normalize_similarity(same, same, diff), [1, 1])
  np.testing.assert_allclose(paths.normalize_similarity(diff, same, diff), [0, 0])
  np.testing.assert_allclose(paths.normalize_similarity([0.6, 0.0], same, diff), [0.5, -0.25])
  with pytest.raises(fvjax.FvjaxError, match="must exceed"):
    paths.normalize_similarity(0.5, [0.2, 0.5], [0.3, 0.1])


def synthetic_classes(key, k=5, v=4, c=40, noise=0.3):
  """Views [K, V, C] = class prototype + noise, and the prototypes [K, C]."""
  k1, k2 = jax.random.split(key)
  protos = np.asarray(jax.random.normal(k1, (k, c)))
  views = protos[:, None] + noise * np.asarray(jax.random.normal(k2, (k, v, c)))
  return views, protos


def test_same_different_baselines_on_known_structure():
  views, _ = synthetic_classes(jax.random.key(0))
  same, diff = paths.same_different_baselines(views)
  assert same > 0.8 and abs(diff) < 0.2
  identical = np.repeat(views[:, :1], 3, axis=1)  # every view of a class the same
  same, _ = paths.same_different_baselines(identical)
  assert same == pytest.approx(1.0)
  with pytest.raises(fvjax.FvjaxError, match="2 views"):
    paths.same_different_baselines(views[:, :1])


def test_path_similarity_separates_natural_like_from_foreign():
  views, protos = synthetic_classes(jax.random.key(1), k=6, v=5)
  rng = np.random.default_rng(2)
  like = protos + 0.3 * rng.normal(size=protos.shape)  # a new natural-like sample per class
  foreign = rng.normal(size=protos.shape)  # unrelated to every class
  shifted = np.roll(protos, 1, axis=0) + 0.3 * rng.normal(size=protos.shape)  # wrong class
  res = paths.path_similarity({"a": like, "b": foreign, "c": shifted},
                              {"a": views, "b": views, "c": views})
  assert res.layers == ("a", "b", "c")
  assert res.normalized.shape == (6, 3)
  assert np.all(np.abs(res.normalized[:, 0] - 1) < 0.25)  # like a same-class natural image
  assert np.all(np.abs(res.normalized[:, 1]) < 0.35)  # like a different-class image
  assert np.all(res.normalized[:, 2] < 0.35)
  assert np.all(res.normalized_other[:, 2] > 0.1)  # it matches its neighbour class instead
  # the natural reference itself averages to exactly 1 over classes
  assert res.natural[:, 0].mean() == pytest.approx(1.0, abs=1e-9)


def test_natural_views_are_deterministic_crops_and_flips():
  img = np.asarray(jax.random.uniform(jax.random.key(0), (40, 60, 3)))
  a = paths.natural_views(jax.random.key(3), img, 16, 5)
  b = paths.natural_views(jax.random.key(3), img, 16, 5)
  c = paths.natural_views(jax.random.key(4), img, 16, 5)
  assert a.shape == (5, 16, 16, 3) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a[2:], c[2:])
  np.testing.assert_allclose(a[1], a[0][:, ::-1], atol=1 / 255 + 1e-6)  # flipped centre crop
  assert 0 <= a.min() and a.max() <= 1


def test_layer_activations_match_the_model(tiny_darknet):
  layers = paths.path_layers(tiny_darknet)
  assert len(layers) == 15 + 4 + 1 and layers[0] == "leaky_re_lu_1" and layers[-1] == "logits"
  assert paths.path_layers(tiny_darknet, up_to="leaky_re_lu_12", logits=False)[-1] == \
      "leaky_re_lu_12"
  x = np.asarray(jax.random.uniform(jax.random.key(0), (3, 32, 32, 3)))
  got = paths.layer_activations(tiny_darknet, x, ["leaky_re_lu_4", "logits"], batch_size=2,
                                extra={"m": "leaky_re_lu_4:max"})
  acts = tiny_darknet(jnp.asarray(x))
  np.testing.assert_allclose(got["leaky_re_lu_4"], acts["leaky_re_lu_4"].mean(axis=(1, 2)),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got["m"], acts["leaky_re_lu_4"].max(axis=(1, 2)), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(got["logits"], acts["logits"], rtol=1e-4, atol=1e-4)
  with pytest.raises(fvjax.FvjaxError, match="unknown layer"):
    paths.layer_activations(tiny_darknet, x, ["nope"])
