"""experiments/distill: the measurements behind its figures, on a small real CNN."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import fvjax
from fvjax import objectives as O

MAIN = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "distill" / "main.py"


def _distill():
  spec = importlib.util.spec_from_file_location("distill_main", MAIN)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _cnn():
  """A random 3x3 conv (3 -> 8 channels) + ReLU, a 2x2 mean pool, and a second 3x3 conv."""
  k1, k2 = jax.random.split(jax.random.key(42))
  params = {"c1": jax.random.normal(k1, (3, 3, 3, 8)) / 3,
            "c2": jax.random.normal(k2, (3, 3, 8, 8)) / 6}

  def conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def fn(p, images):
    a = jax.nn.relu(conv(images - 0.5, p["c1"]))
    pooled = jax.lax.reduce_window(a, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4
    b = jax.nn.relu(conv(pooled, p["c2"]))
    return {"conv1": a, "conv2": b, "logits": b.mean((1, 2))}

  return fvjax.Model.from_fn(fn, params, input_size=(16, 16), name="cnn")


def test_diversity_batch_differs_more_than_independent_starts():
  distill = _distill()
  model = _cnn()
  # the same unit, the same keys: weight 0 (four independent random starts) and weight 100;
  # one structure, so both render in one compiled batch
  variants = [O.channel("conv2", 3) + w * O.diversity("conv2") for w in (0.0, 100.0)]
  result = fvjax.render(model, variants, key=jax.random.key(0), steps=48, size=16, batch=4,
                        progress=False)
  without, with_div = result.images
  forward = distill.layer_forward(model, "conv2")
  g0 = distill.gram_similarity(forward, without, "conv2")
  g1 = distill.gram_similarity(forward, with_div, "conv2")
  # measured (x86, 48 steps): mean pairwise Gram cosine 0.96 without, 0.20 with diversity
  assert g0 > 0.8 and g1 < 0.5, (g0, g1)
  # the measurement agrees with the objective it measures: diversity = -(B - 1) x cosine
  scores = O.diversity("conv2")({"conv2": forward(jnp.asarray(with_div))})
  np.testing.assert_allclose(-np.mean(scores) / 3, g1, rtol=1e-4)


def test_high_frequency_fraction_known_images():
  distill = _distill()
  y, x = np.mgrid[0:32, 0:32]
  checker = ((x + y) % 2).astype(np.float64)  # all power at (0.5, 0.5) cycles/px
  slow = 0.5 + 0.5 * np.sin(2 * np.pi * x / 16)  # 0.0625 cycles/px
  below = 0.5 + 0.5 * np.sin(2 * np.pi * 7 * y / 32)  # 0.219 cycles/px: just under 0.25
  fast = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * x / 8)  # 0.375 cycles/px
  images = np.stack([np.repeat(im[..., None], 3, -1) for im in (checker, slow, below, fast)])
  np.testing.assert_allclose(distill.high_frequency_fraction(images), [1.0, 0.0, 0.0, 1.0],
                             atol=1e-9)
  mixed = np.repeat((0.5 * slow + 0.5 * fast)[None, ..., None], 3, -1)  # equal power
  np.testing.assert_allclose(distill.high_frequency_fraction(mixed), [0.5], atol=1e-9)
