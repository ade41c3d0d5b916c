"""Zeiler & Fergus projections (`fvjax.attribution.project_activation`) on the vendored Tiny
Darknet: one activation projected by the deconvnet is nonzero only inside that unit's
receptive field, is not the whole channel's projection, and follows the deconvnet rule."""

import jax
import numpy as np
import pytest

import fvjax
from fvjax import attribution as A

skimage_data = pytest.importorskip("skimage.data", reason="the test picture comes from "
                                   "scikit-image (the test extra)")

# leaky_re_lu_4 of Tiny Darknet: conv 3x3, pool 2/2, conv 3x3, pool 2/2, conv 1x1, conv 3x3
# ('same' padding): a cell (i, j) sees input rows i*4 - 7 .. i*4 - 7 + 17 (18 px, stride 4).
SIDE, STRIDE, PAD = 18, 4, 7


def _pictures(size=64):
  pics = [skimage_data.chelsea(), skimage_data.astronaut()]
  return np.stack([np.asarray(jax.image.resize(p / 255.0, (size, size, 3), "linear"),
                              np.float32) for p in pics]).clip(0, 1)


def _box(pos, shape):
  box = np.zeros(shape, bool)
  t, l = pos[0] * STRIDE - PAD, pos[1] * STRIDE - PAD
  box[max(t, 0):max(t + SIDE, 0), max(l, 0):max(l + SIDE, 0)] = True
  return box


def test_projection_stays_in_the_receptive_field(tiny_darknet):
  images = _pictures()
  proj = A.project_activation(tiny_darknet, images, "leaky_re_lu_4", [3, 40],
                              positions=[[6, 9], [15, 0]])  # an inner cell and a border cell
  assert proj.signal.shape == (2, 64, 64, 3)
  acts = np.asarray(tiny_darknet(images)["leaky_re_lu_4"])
  # batch of 2 vs the forward pass here: XLA rounds differently (measured 1.4e-6 relative)
  np.testing.assert_allclose(proj.values, [acts[0, 6, 9, 3], acts[1, 15, 0, 40]], rtol=1e-4)
  for sig, pos in zip(proj.signal, proj.positions):
    mag = np.abs(sig).sum(-1)
    box = _box(pos, mag.shape)
    assert mag[box].max() > 0                   # something comes back
    assert np.all(mag[~box] == 0)               # and only inside the receptive field
    rows, cols = np.nonzero(mag)                # reaching both ends of it (not a smaller set)
    assert rows.max() - rows.min() >= 0.75 * min(SIDE, box.any(1).sum()) - 1
  # the peak by default: the argmax of the channel's map
  peak = A.project_activation(tiny_darknet, images, "leaky_re_lu_4", 3)
  flat = acts[..., 3].reshape(2, -1).argmax(1)
  np.testing.assert_array_equal(peak.positions, np.stack([flat // 16, flat % 16], 1))
  np.testing.assert_allclose(peak.values, acts[..., 3].reshape(2, -1).max(1), rtol=1e-4)
  # the deconvnet rule is applied: the plain gradient of the same activation differs
  grad = A.project_activation(tiny_darknet, images, "leaky_re_lu_4", 3, rule="gradient")
  assert np.abs(grad.signal - peak.signal).max() > 1e-3 * np.abs(peak.signal).max()
  with pytest.raises(fvjax.FvjaxError, match="spatial layer"):
    A.project_activation(tiny_darknet, images, "logits", 0)
  with pytest.raises(fvjax.FvjaxError, match="channels must be in 0..127"):
    A.project_activation(tiny_darknet, images, "leaky_re_lu_4", 128)
  with pytest.raises(fvjax.FvjaxError, match="positions"):
    A.project_activation(tiny_darknet, images, "leaky_re_lu_4", 0, positions=[[16, 0]] * 2)
