"""dataset_examples: the true top-k/bottom-k (against a full sort of activations computed
directly), streaming in padded batches with one compile, crops centred on the peak, clear
errors; and the Distill-style panel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import fvjax
from fvjax import objectives as obj
from fvjax._src import dataset_examples as dx
from fvjax._src.data import ImageSet
from fvjax._src.plot_examples import dataset_examples_panel
from tests.conftest import SHARED_PHOTOS, needs_shared

N, SIZE, BATCH = 37, 16, 8  # 8 does not divide 37: the last batch holds 5 images


def _toy_model(seed: int = 0) -> fvjax.Model:
  """A random 3x3 convolution (6 channels), a 2x2 average pool and 4 logits."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  params = {"w": jax.random.normal(k1, (3, 3, 3, 6)), "d": jax.random.normal(k2, (6, 4))}

  def fn(params, x):
    conv = jax.lax.conv_general_dilated(x, params["w"], (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    pool = jax.lax.reduce_window(conv, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1),
                                 "VALID") / 4
    return {"conv": conv, "pool": pool, "logits": pool.mean((1, 2)) @ params["d"]}

  return fvjax.Model.from_fn(fn, params, input_size=(SIZE, SIZE), name="toy")


def _bright_model() -> fvjax.Model:
  """``bright``: the red channel itself (stride 1); ``cells``: its 4x4/4 max-pool (stride 4);
  ``logits``: the mean red level (no spatial map)."""

  def fn(params, x):
    bright = x[..., :1] * params
    cells = jax.lax.reduce_window(bright, -jnp.inf, jax.lax.max, (1, 4, 4, 1), (1, 4, 4, 1),
                                  "VALID")
    return {"bright": bright, "cells": cells, "logits": bright.mean((1, 2))}

  return fvjax.Model.from_fn(fn, jnp.float32(1.0), input_size=(32, 32), name="bright")


@pytest.fixture(scope="module")
def data():
  return np.random.default_rng(0).random((N, SIZE, SIZE, 3), np.float32)


def _check_against_sort(result, scores, k):
  """``scores [N, K]`` computed directly; result must hold the true top/bottom k."""
  scores = np.asarray(scores)
  order = np.argsort(-scores, axis=0, kind="stable")[:k].T  # [K, k]
  np.testing.assert_array_equal(result.top.indices, order)
  np.testing.assert_allclose(result.top.scores, np.take_along_axis(scores.T, order, 1),
                             rtol=1e-5, atol=1e-6)
  low = np.argsort(scores, axis=0, kind="stable")[:k].T
  np.testing.assert_array_equal(result.bottom.indices, low)
  np.testing.assert_allclose(result.bottom.scores, np.take_along_axis(scores.T, low, 1),
                             rtol=1e-5, atol=1e-6)
  assert (np.diff(result.top.scores, axis=1) <= 0).all()
  assert (np.diff(result.bottom.scores, axis=1) >= 0).all()


def test_layer_top_and_bottom_k_with_one_compile(data):
  model = _toy_model()
  with fvjax.count_compiles() as log:
    result = dx.dataset_examples(model, "pool", data, 5, batch_size=BATCH, progress=False)
  assert log.count("jit(_step)") == 1, "a padded last batch must not compile a second step"
  assert result.count == N and len(result.units) == 6 and result.units[2] == "pool:2"
  assert result.top.images.shape == (6, 5, SIZE, SIZE, 3)
  _check_against_sort(result, model(jnp.asarray(data))["pool"].mean((1, 2)), 5)
  np.testing.assert_array_equal(result.top.images, data[result.top.indices])
  np.testing.assert_array_equal(result.bottom.images, data[result.bottom.indices])
  assert result.top.names[0][0] == f"#{result.top.indices[0, 0]}"
  # peak positions: the argmax cell (stride 2) mapped to input pixels
  pool = np.asarray(model(jnp.asarray(data))["pool"])
  i = result.top.indices[3, 0]
  cy, cx = np.unravel_index(np.argmax(pool[i, ..., 3]), pool.shape[1:3])
  np.testing.assert_allclose(result.top.positions[3, 0], (2 * cy + 0.5, 2 * cx + 0.5))
  # a non-spatial layer: every logit is a unit, no positions
  logits = dx.dataset_examples(model, "logits", data, 3, batch_size=BATCH, progress=False)
  _check_against_sort(logits, model(jnp.asarray(data))["logits"], 3)
  assert logits.top.positions is None and logits.top.boxes is None


def test_batched_channel_objective_and_reduce_max(data):
  model = _toy_model()
  units = jnp.asarray([4, 0, 5])
  conv = np.asarray(model(jnp.asarray(data))["conv"])
  result = dx.dataset_examples(model, obj.channel("conv", units), data, 4, batch_size=BATCH,
                               progress=False)
  assert result.units == ("conv:4", "conv:0", "conv:5")
  _check_against_sort(result, conv.mean((1, 2))[:, units], 4)
  peak = dx.dataset_examples(model, obj.channel("conv", units), data, 4, batch_size=BATCH,
                             reduce="max", progress=False)
  _check_against_sort(peak, conv.max((1, 2))[:, units], 4)
  # a list of objectives is the same batch; a scaled objective flips the order
  listed = dx.dataset_examples(model, [obj.channel("conv", int(u)) for u in units], data, 4,
                               batch_size=BATCH, progress=False)
  np.testing.assert_array_equal(listed.top.indices, result.top.indices)
  flipped = dx.dataset_examples(model, -obj.channel("conv", units), data, 4, batch_size=BATCH,
                                progress=False)
  np.testing.assert_array_equal(flipped.top.indices, result.bottom.indices)


def test_directions(data):
  model = _toy_model()
  vectors = np.random.default_rng(1).normal(size=(2, 6)).astype(np.float32)
  pool = np.asarray(model(jnp.asarray(data))["pool"])
  result = dx.dataset_examples(model, obj.direction("pool", vectors), data, 6, batch_size=BATCH,
                               progress=False)
  _check_against_sort(result, np.einsum("nhwc,kc->nk", pool, vectors) / 64, 6)
  one = dx.dataset_examples(model, obj.direction("pool", vectors[1]), data, 6, batch_size=BATCH,
                            progress=False)
  assert one.top.indices.shape == (1, 6)
  np.testing.assert_array_equal(one.top.indices[0], result.top.indices[1])


def test_streamed_batches_match_the_array(data):
  model = _toy_model()
  whole = dx.dataset_examples(model, "pool", data, 5, batch_size=BATCH, progress=False)
  names = tuple(f"img{i}.jpg" for i in range(N))
  pieces = [ImageSet(data[a:b], names[a:b], tuple("ab"[i % 2] for i in range(a, b)))
            for a, b in ((0, 3), (3, 20), (20, 21), (21, N))]
  streamed = dx.dataset_examples(model, "pool", iter(pieces), 5, batch_size=BATCH,
                                 progress=False)
  np.testing.assert_array_equal(streamed.top.indices, whole.top.indices)
  np.testing.assert_array_equal(streamed.bottom.indices, whole.bottom.indices)
  np.testing.assert_array_equal(streamed.top.images, whole.top.images)
  assert streamed.top.names[1] == tuple(names[i] for i in whole.top.indices[1])
  assert streamed.top.labels[1] == tuple("ab"[i % 2] for i in whole.top.indices[1])
  as_set = dx.dataset_examples(model, "pool", ImageSet(data, names, ("x",) * N), 5,
                               batch_size=BATCH, progress=False)
  assert as_set.top.names == streamed.top.names
  with pytest.raises(fvjax.FvjaxError, match=r"uint8.*images / 255"):  # not read as [0, 1]
    dx.dataset_examples(model, "pool", (data * 255).round().astype(np.uint8), 5,
                        batch_size=BATCH, progress=False)


def _bright_pixels():
  """16 black 32x32 images, each with one red pixel of a distinct brightness, and the pixel
  positions; image 0 has its (brightest) pixel in the top-right corner."""
  rng = np.random.default_rng(3)
  images = np.zeros((16, 32, 32, 3), np.float32)
  where = rng.integers(6, 26, size=(16, 2))
  where[0] = (0, 31)
  level = np.linspace(1.0, 0.25, 16, dtype=np.float32)
  for i, (y, x) in enumerate(where):
    images[i, y, x, 0] = level[i]
  return images, where, level


def test_crops_are_centred_on_the_peak():
  model = _bright_model()
  images, where, level = _bright_pixels()
  result = dx.dataset_examples(model, obj.channel("bright", 0), images, 6, batch_size=5,
                               crop=5, bottom=False, progress=False)
  assert result.bottom is None and result.top.images.shape == (1, 6, 5, 5, 3)
  np.testing.assert_array_equal(result.top.indices[0], np.arange(6))  # brightest first
  for j in range(6):
    y, x = where[j]
    np.testing.assert_allclose(result.top.positions[0, j], (y, x))
    crop, box = result.top.images[0, j], result.top.boxes[0, j]
    if j == 0:  # the corner: the box is shifted inside the image, the pixel kept
      assert tuple(box) == (0, 27, 5, 32)
      assert crop[0, 4, 0] == level[0]
    else:  # stride 1: the bright pixel is the centre of the crop
      assert tuple(box) == (y - 2, x - 2, y + 3, x + 3)
      assert crop[2, 2, 0] == level[j] and crop[..., 0].sum() == level[j]


def test_crops_map_stride_four_cells_to_pixels():
  model = _bright_model()
  images, where, level = _bright_pixels()
  result = dx.dataset_examples(model, "cells", images, 4, batch_size=3, crop=(8, 6),
                               progress=False)
  assert result.top.images.shape == (1, 4, 8, 6, 3)
  for j, i in enumerate(result.top.indices[0]):
    cy, cx = where[i] // 4
    np.testing.assert_allclose(result.top.positions[0, j], (4 * cy + 1.5, 4 * cx + 1.5))
    top, left, bottom, right = result.top.boxes[0, j]
    assert (bottom - top, right - left) == (8, 6)
    assert top <= where[i][0] < bottom and left <= where[i][1] < right
    assert result.top.images[0, j, ..., 0].max() == level[i]  # the bright pixel is inside
  # a neuron objective crops around its fixed cell
  fixed = dx.dataset_examples(model, obj.neuron("cells", 0, 2, 5), images, 2, batch_size=8,
                              crop=4, progress=False)
  np.testing.assert_allclose(fixed.top.positions[0], [(9.5, 21.5)] * 2)
  np.testing.assert_array_equal(fixed.top.boxes[0, 0], (8, 20, 12, 24))


def test_bad_input_gives_clear_errors(data):
  model = _toy_model()
  with pytest.raises(fvjax.FvjaxError, match=f"only {N} images"):
    dx.dataset_examples(model, "pool", data, N + 1, progress=False)
  with pytest.raises(fvjax.FvjaxError, match="only 5 images"):  # learnt while streaming
    dx.dataset_examples(model, "pool", iter([data[:2], data[2:5]]), 6, progress=False)
  for k in (0, -3, 2.5, True):
    with pytest.raises(fvjax.FvjaxError, match="k must be a positive integer"):
      dx.dataset_examples(model, "pool", data, k, progress=False)
  with pytest.raises(fvjax.FvjaxError, match="valid layers: conv, pool, logits"):
    dx.dataset_examples(model, "pol", data, 3, progress=False)
  with pytest.raises(fvjax.FvjaxError, match="out of range"):
    dx.dataset_examples(model, obj.channel("pool", 9), data, 3, progress=False)
  with pytest.raises(fvjax.FvjaxError, match="crop needs spatial units"):
    dx.dataset_examples(model, obj.class_logit(jnp.arange(2)), data, 3, crop=4, progress=False)
  with pytest.raises(fvjax.FvjaxError, match="larger than the images"):
    dx.dataset_examples(model, "pool", data, 3, crop=17, progress=False)
  with pytest.raises(fvjax.FvjaxError, match="reduce must be one of"):
    dx.dataset_examples(model, "pool", data, 3, reduce="median", progress=False)
  with pytest.raises(fvjax.FvjaxError, match="batch_size"):
    dx.dataset_examples(model, "pool", data, 3, batch_size=0, progress=False)
  with pytest.raises(fvjax.FvjaxError, match=r"must have 3 channels .*\(37, 16, 16, 2\)"):
    dx.dataset_examples(model, "pool", data[..., :2], 3, progress=False)


def test_panel(tmp_path, data):
  model = _toy_model()
  result = dx.dataset_examples(model, obj.channel("conv", jnp.asarray([1, 2, 3])), data, 4,
                               batch_size=BATCH, crop=8, progress=False)
  path = dataset_examples_panel(data[:3], result, str(tmp_path / "panel" / "examples.png"),
                                labels=["a", "b", "c"], title="toy")
  with Image.open(path) as png:
    width, height = png.size
  assert width > 2 * height > 0  # 3 rows of 1 + 4 + 4 tiles
  only = dataset_examples_panel(None, result._replace(bottom=None), str(tmp_path / "top.png"))
  with Image.open(only) as png:
    assert png.size[0] < width
  with pytest.raises(fvjax.FvjaxError, match="one per unit"):
    dataset_examples_panel(data[:2], result, str(tmp_path / "bad.png"))


@needs_shared
def test_tiny_darknet_on_shared_photos(tiny_darknet):
  photos = fvjax.data.image_folder(str(SHARED_PHOTOS), 96, limit=21)
  units = jnp.asarray([5, 17, 300])
  result = dx.dataset_examples(tiny_darknet, obj.channel("leaky_re_lu_12", units), photos, 3,
                               batch_size=8, crop=40, progress=False)
  acts = np.asarray(tiny_darknet(jnp.asarray(photos.images))["leaky_re_lu_12"])
  _check_against_sort(result, acts.mean((1, 2))[:, units], 3)
  assert result.top.images.shape == (3, 3, 40, 40, 3)
  assert result.top.names[0][0] == photos.names[result.top.indices[0, 0]]
