"""Box-constrained L-BFGS adversarial examples: on a linear classifier the search over c finds
the analytic minimal distance to the target's region (both backends), stays in the box, and
bad input raises FvjaxError."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax import adversarial as adv

D, CLASSES = 12, 4


def linear(params, x):
  return x.reshape(x.shape[0], -1) @ params["w"] + params["b"]


def _problem(n=6, seed=0):
  """A random linear classifier and images near the box's centre, each with a wrong target
  whose minimal distance is analytic: the projection onto the nearest-to-cross hyperplane
  ``(w_l - w_j) . x' + b_l - b_j = 0`` that is farthest away lands in the target's region and
  in the box, so no shorter perturbation exists (every one must cross that hyperplane)."""
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(D, CLASSES)).astype(np.float32)
  b = rng.normal(scale=0.1, size=CLASSES).astype(np.float32)
  xs, targets, dists = [], [], []
  while len(xs) < n:
    x = (0.5 + rng.uniform(-0.1, 0.1, D)).astype(np.float64)
    logits = x @ w + b
    l = int(rng.choice([c for c in range(CLASSES) if c != logits.argmax()]))
    g = w[:, [l]] - w  # [D, C]
    m = logits[l] - logits  # >= 0 in the target region
    d = np.where(np.arange(CLASSES) == l, -np.inf, -m / np.linalg.norm(g, axis=0).clip(1e-9))
    j = int(d.argmax())
    proj = x + d[j] * g[:, j] / np.linalg.norm(g[:, j])
    margin = (proj @ w + b)[l] - np.delete(proj @ w + b, [l, j]).max()
    if margin > 1e-3 and proj.min() > 0.02 and proj.max() < 0.98 and 0.05 < d[j] < 0.6:
      xs.append(x)
      targets.append(l)
      dists.append(d[j])
  params = {"w": jnp.asarray(w), "b": jnp.asarray(b)}
  return params, np.asarray(xs, np.float32), np.asarray(targets), np.asarray(dists)


@pytest.mark.parametrize("backend", ["jaxopt", "scipy"])
def test_linear_classifier_analytic_minimal_distance(backend):
  params, x, target, dist = _problem()
  res = adv.minimal_distortion(linear, params, x, target, steps=22, maxiter=300, tol=1e-7,
                               backend=backend)
  assert res.success.all()
  assert (res.predicted == target).all()
  assert res.adversarial.min() >= 0.0 and res.adversarial.max() <= 1.0
  found = np.linalg.norm(res.adversarial - x, axis=1)
  np.testing.assert_allclose(found, dist, rtol=0.03)
  assert (found >= dist * (1 - 1e-3)).all()  # nothing beats the analytic minimum
  np.testing.assert_allclose(res.distortion, found / np.sqrt(D), rtol=1e-5)


def test_box_binds_and_noise_magnify():
  """A target only reachable through the box's faces: the solution sits on them."""
  w = np.zeros((2, 2), np.float32)
  w[0, 1] = 1.0  # class 1 iff x0 > 0.9
  params = {"w": jnp.asarray(w), "b": jnp.asarray([0.9, 0.0], jnp.float32)}
  x = np.asarray([[0.2, 0.5]], np.float32)
  res = adv.minimal_distortion(linear, params, x, np.asarray([1]), steps=16, maxiter=100)
  assert res.success[0]
  np.testing.assert_allclose(res.adversarial[0], [0.9, 0.5], atol=0.02)
  res = adv.minimal_distortion(linear, {"w": params["w"], "b": jnp.asarray([1.5, 0.0])}, x,
                               np.asarray([1]), steps=4, maxiter=50)
  assert not res.success[0] and np.isnan(res.distortion[0])  # x0 <= 1 < 1.5: unreachable
  assert res.adversarial.max() <= 1.0

  xs = np.full((4, 5, 5, 1), 0.5, np.float32)
  noisy = np.asarray(adv.gaussian_noise(jax.random.key(0), xs, 0.1))
  assert 0.07 < adv.distortion(xs, noisy).mean() < 0.13
  far = np.clip(xs + 0.02, 0, 1)
  np.testing.assert_allclose(adv.distortion(xs, adv.magnify(xs, far, 0.1)), 0.1, rtol=1e-4)
  t = np.asarray(adv.random_targets(jax.random.key(1), np.arange(100) % 10, 10))
  assert (t != np.arange(100) % 10).all() and t.min() >= 0 and t.max() <= 9


def test_bad_input():
  params, x, target, _ = _problem(1)
  with pytest.raises(fvjax.FvjaxError, match="backend"):
    adv.minimal_distortion(linear, params, x, target, backend="adam")
  with pytest.raises(fvjax.FvjaxError, match="target"):
    adv.penalized(linear, params, x, np.asarray([0, 1]), 1.0)
  with pytest.raises(fvjax.FvjaxError, match=r"outside \[0, 1\]"):
    adv.penalized(linear, params, x + 2, target, 1.0)
  with pytest.raises(fvjax.FvjaxError, match="c must be > 0"):
    adv.penalized(linear, params, x, target, -1.0)
  with pytest.raises(fvjax.FvjaxError, match="expand"):
    adv.minimal_distortion(linear, params, x, target, expand=1.0)
