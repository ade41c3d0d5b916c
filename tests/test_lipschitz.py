"""Lipschitz bounds: the FFT singular values of a circular convolution equal those of its
explicitly built operator matrix; power iteration on the real (zero-padded, strided) operator
agrees with the dense SVD and stays below the FFT bound; batch-norm folding, dense layers and
the measured-ratio check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax import lipschitz as lip


def _matrix(fn, shape):
  """The dense matrix of a linear map on ``shape`` inputs (columns: images of basis vectors)."""
  n = int(np.prod(shape))
  basis = jnp.eye(n, dtype=jnp.float32).reshape(n, *shape)
  return np.asarray(jax.vmap(fn)(basis).reshape(n, -1), np.float64).T


@pytest.mark.parametrize("hw,k,cin,cout", [((5, 5), 3, 2, 3), ((6, 4), 3, 3, 2),
                                           ((4, 4), 1, 3, 3), ((2, 3), 3, 2, 2)])
def test_fft_singular_values_equal_operator_matrix(hw, k, cin, cout):
  kernel = np.random.default_rng(0).normal(size=(k, k, cin, cout)).astype(np.float32)
  circular = lip.conv_operator(kernel, padding="CIRCULAR")
  dense = _matrix(circular, (*hw, cin))
  expected = np.sort(np.linalg.svd(dense, compute_uv=False))[::-1][:hw[0] * hw[1] * min(cin, cout)]
  fft = np.sort(lip.conv_singular_values(kernel, hw).ravel())[::-1]
  np.testing.assert_allclose(fft, expected, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(lip.conv_bound_fft(kernel, hw, padding="circular"), expected[0],
                             rtol=1e-5)


@pytest.mark.parametrize("stride,padding", [(1, "SAME"), (2, "SAME"), (1, "VALID")])
def test_power_iteration_agrees_with_dense_svd(stride, padding):
  kernel = np.random.default_rng(1).normal(size=(3, 3, 2, 4)).astype(np.float32)
  hw = (7, 6)
  dense = _matrix(lip.conv_operator(kernel, stride=stride, padding=padding), (*hw, 2))
  top = np.linalg.svd(dense, compute_uv=False)[0]
  power = lip.conv_operator_norm(kernel, hw, stride=stride, padding=padding,
                                 key=jax.random.key(0), iters=300)
  np.testing.assert_allclose(power, top, rtol=1e-3)
  assert lip.conv_bound_fft(kernel, hw, padding=padding) >= top * (1 - 1e-5)  # rigorous
  matrix = jnp.asarray(dense, jnp.float32)
  sigma, v = lip.operator_norm(lambda x: matrix @ x.reshape(-1), (*hw, 2),
                               key=jax.random.key(1), iters=300)
  np.testing.assert_allclose(sigma, top, rtol=1e-3)
  np.testing.assert_allclose(float(jnp.linalg.norm(v)), 1.0, rtol=1e-5)


def test_dense_batchnorm_and_measured_ratios():
  rng = np.random.default_rng(2)
  w = rng.normal(size=(20, 7))
  assert lip.dense_bound(w) == pytest.approx(np.linalg.svd(w, compute_uv=False)[0])
  kernel = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
  scale, var = rng.uniform(0.5, 2, 3), rng.uniform(0.1, 1, 3)
  folded = lip.fold_batchnorm(kernel, scale, var, epsilon=1e-3)
  x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
  conv = lambda k: np.asarray(lip.conv_operator(k)(jnp.asarray(x[0])))  # noqa: E731
  np.testing.assert_allclose(conv(folded), conv(kernel) * scale / np.sqrt(var + 1e-3),
                             rtol=1e-4, atol=1e-5)

  # a two-layer net: conv -> relu -> mean; measured ratios never exceed the bounds
  layers = [lip.conv_layer("conv", kernel, (5, 5), key=jax.random.key(0), iters=100,
                           output="conv"),
            lip.fixed_layer("relu", "ReLU", 1.0, output="relu"),
            lip.fixed_layer("mean", "mean over 5x5", 1 / 5, output="out")]
  assert layers[0].power <= layers[0].bound * (1 + 1e-5)
  assert layers[0].circular <= layers[0].bound * (1 + 1e-5)

  def acts(x):
    c = jax.vmap(lip.conv_operator(kernel))(jnp.asarray(x))
    return {"conv": c, "relu": jax.nn.relu(c), "out": jax.nn.relu(c).mean((1, 2))}

  xs = rng.uniform(size=(16, 5, 5, 2)).astype(np.float32)
  r = (rng.normal(size=xs.shape) * 0.1).astype(np.float32)
  m = lip.measure(layers, acts(xs), acts(xs + r), r)
  assert m.names == ("conv", "relu", "out")
  assert (m.ratios <= m.bounds[:, None] * (1 + 1e-5)).all()
  assert (m.cumulative <= m.cumulative_bounds[:, None] * (1 + 1e-5)).all()
  assert m.ratios[0].max() > 0.2 * m.bounds[0]  # the check is not vacuous
  assert lip.network_bound(layers) == pytest.approx(layers[0].bound / 5)
  with pytest.raises(fvjax.FvjaxError, match="kernel"):
    lip.conv_singular_values(np.zeros((3, 3, 2)), 4)
  with pytest.raises(fvjax.FvjaxError, match="padding"):
    lip.conv_bound_fft(kernel, 5, padding="REFLECT")
