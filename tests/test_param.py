import jax
import jax.numpy as jnp
import numpy as np

from fvjax import param


def test_colour_constants_are_lucids():
  np.testing.assert_array_equal(
      param.COLOR_CORRELATION_SVD_SQRT,
      np.float32([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]))
  assert param.MAX_NORM_SVD_SQRT == np.float32(0.4619524)
  # Lucid derives the divisor as the largest column norm of the matrix.
  largest = np.linalg.norm(param.COLOR_CORRELATION_SVD_SQRT, axis=0).max()
  np.testing.assert_allclose(largest, 0.4619524, rtol=1e-6)
  np.testing.assert_allclose(param.decorrelate_colors(jnp.asarray([1.0, 0.0, 0.0])),
                             np.asarray([0.26, 0.27, 0.27]) / 0.4619524, rtol=1e-6)


def test_fourier_scaling_is_one_over_f():
  h, w = 8, 6
  freqs = param.rfft2d_freqs(h, w)
  assert freqs.shape == (8, 4)
  np.testing.assert_allclose(freqs[0, 1], 1 / 6)
  np.testing.assert_allclose(freqs[2, 3], np.hypot(2 / 8, 3 / 6))
  scale = param.fourier_scale(h, w, decay=1.0)
  np.testing.assert_allclose(scale[0, 0], np.sqrt(48) * 8, rtol=1e-6)  # f=0 clipped to 1/max
  np.testing.assert_allclose(scale[2, 3], np.sqrt(48) / np.hypot(2 / 8, 3 / 6), rtol=1e-6)
  np.testing.assert_allclose(param.fourier_scale(h, w, decay=2.0)[0, 1], np.sqrt(48) * 36,
                             rtol=1e-6)


def test_image_ranges_shapes_and_reproducibility():
  for p in (param.image(20, batch=3), param.pixel((20, 24)), param.fourier(17, decay=1.5)):
    a = p.init(jax.random.key(0))
    images = p.to_image(a)
    assert images.shape[-1] == 3 and images.ndim == 4
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    np.testing.assert_array_equal(a, p.init(jax.random.key(0)))
    assert not np.array_equal(a, p.init(jax.random.key(1)))
  assert param.image(20, batch=3).to_image(param.image(20, batch=3).init(jax.random.key(0))
                                           ).shape == (3, 20, 20, 3)
  assert param.pixel((20, 24)).init(jax.random.key(0)).shape == (1, 20, 24, 3)


def test_init_sd_and_equal_settings_share_functions():
  p = param.pixel(64, sd=0.01)
  np.testing.assert_allclose(np.std(p.init(jax.random.key(0))), 0.01, rtol=0.05)
  assert param.image(32) == param.image(32)  # same pair: jit reuses the compiled loop
  assert param.image(32) != param.image(32, decay=2.0)


def test_fourier_param_is_unitary_like_lucids():
  # A single coefficient at frequency (0, 1) gives a cosine of amplitude ~2*s/(4*sqrt(hw)).
  h = w = 16
  p = param.Image((h, w), fft=True, decorrelate=False)
  coeffs = np.zeros((1, 3, h, w // 2 + 1, 2), np.float32)
  coeffs[0, 0, 0, 1, 0] = 1.0
  raw = np.asarray(p.to_raw(jnp.asarray(coeffs)))[0, :, :, 0]
  scale = param.fourier_scale(h, w)[0, 1]
  expected = 2 * scale / (h * w) * np.cos(2 * np.pi * np.arange(w) / w) / 4
  np.testing.assert_allclose(raw[0], expected, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(raw, np.broadcast_to(raw[0], raw.shape), atol=1e-7)
