"""Trust reports (Geirhos et al. 2023, part 5): a hand-made silent unit is flagged, a normal
unit is not."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fvjax
from fvjax._src.reliability import trust


def conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def toy_apply(params, images):
  features = jax.nn.relu(conv(images - 0.5, params["w1"]))
  pre = conv(features, params["w2"]) + params["b2"]
  units = jax.nn.relu(pre)
  return {"features": features, "pre": pre, "units": units,
          "logits": jnp.mean(units, axis=(1, 2)) @ params["w3"]}


@pytest.fixture(scope="module")
def toy():
  """Eight ReLU units; unit 1 has a bias of minus its natural maximum, so it is silent on
  every natural image and only a synthetic pattern turns it on; the others are ordinary."""
  k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
  coarse = jax.random.uniform(k4, (40, 4, 4, 3))
  naturals = np.asarray(jax.image.resize(coarse, (40, 24, 24, 3), "linear"))
  params = {"w1": jax.random.normal(k1, (3, 3, 3, 16)) * 0.5,
            "w2": jax.random.normal(k2, (3, 3, 16, 8)) * 0.3,
            "b2": jnp.zeros(8), "w3": jax.random.normal(k3, (8, 3))}
  pre = toy_apply(params, jnp.asarray(naturals))["pre"]
  params["b2"] = params["b2"].at[1].set(-float(pre[..., 1].max()))
  model = fvjax.Model.from_fn(toy_apply, params, input_size=(24, 24), name="toy")
  assert float(model(jnp.asarray(naturals))["units"][..., 1].max()) == 0.0
  return model, naturals


def test_silent_unit_flagged_normal_unit_not(toy):
  model, naturals = toy
  key = jax.random.key(1)
  # unit 1's visualization: an image that drives its pre-activation hard (rendered on "pre",
  # because the ReLU gives no gradient while the unit is off)
  pattern = fvjax.render(model, fvjax.objectives.channel("pre", 1), key=key, steps=64, size=24,
                         transforms=fvjax.transforms.identity(), optimizer=optax.adam(0.3),
                         progress=False).images[0]
  assert float(model(jnp.asarray(pattern[None]))["units"][..., 1].max()) > 0.0
  acts = model(jnp.asarray(naturals))["units"][..., 0].mean(axis=(1, 2))
  top_natural = naturals[int(jnp.argmax(acts))]
  natural = trust.natural_statistics(model, "units", naturals, path_layers=["features", "units"])
  reports = trust.trust_reports(model, "units", [0, 1], key=key, natural=natural,
                                visualizations=np.stack([top_natural, pattern]), top_k=5,
                                n_reference=20, progress=False)
  normal, silent_unit = reports
  assert normal.unit == 0 and silent_unit.unit == 1
  assert not normal.flagged, normal.reasons
  assert normal.drive == pytest.approx(1.0)  # the top natural image: exactly one range up
  assert normal.fire_fraction > 0.5
  assert normal.path_similarity_mean > 0.5
  assert silent_unit.flagged
  assert silent_unit.fire_fraction == 0.0
  assert silent_unit.natural_max == 0.0 and silent_unit.visualization_activation > 0
  assert silent_unit.drive == math.inf
  assert any("fires on only" in r for r in silent_unit.reasons)
  assert any("natural ranges above" in r for r in silent_unit.reasons)
  rate = trust.flag_rate(reports)
  assert rate["flagged"] == 0.5 and rate["silent"] == 0.5 and rate["units"] == 2
  d = silent_unit.to_dict()
  assert d["drive"] is None and d["flagged"] is True  # JSON-safe


def test_drive_and_path_criteria(toy):
  model, naturals = toy
  natural = trust.natural_statistics(model, "units", naturals, path_layers=["features", "units"])
  best = naturals[int(np.argmax(natural.unit_mean[:, 0]))]
  strict = trust.TrustCriteria(max_drive=0.5, min_fire_fraction=0.0, min_path_similarity=2.0)
  rep = trust.trust_report(model, "units", 0, key=jax.random.key(2), natural=natural,
                           visualizations=best, criteria=strict, top_k=5)
  assert rep.drive == pytest.approx(1.0) and rep.flagged
  assert any("natural ranges above" in r for r in rep.reasons)
  assert any("path is unlike" in r for r in rep.reasons)  # nothing reaches 2.0
  lenient = trust.TrustCriteria(max_drive=1e9, min_fire_fraction=0.0)  # path: report only
  flat = np.full((24, 24, 3), 0.5, np.float32)
  rep = trust.trust_report(model, "units", 0, key=jax.random.key(2), natural=natural,
                           visualizations=flat, criteria=lenient, top_k=5)
  assert not rep.flagged and rep.reasons == ()
  assert set(rep.path_similarity) == {"features", "units"}


def test_rendered_reports_and_errors(toy):
  model, naturals = toy
  reports = trust.trust_reports(model, "units", [0, 1], naturals, key=jax.random.key(3),
                                steps=4, size=24, top_k=4, progress=False)
  assert [r.unit for r in reports] == [0, 1]
  assert all(len(r.top_images) == 4 for r in reports)
  with pytest.raises(fvjax.FvjaxError, match="units must be in"):
    trust.trust_reports(model, "units", [8], naturals, key=jax.random.key(0))
  with pytest.raises(fvjax.FvjaxError, match="natural images"):
    trust.trust_reports(model, "units", [0], naturals[:3], key=jax.random.key(0),
                        visualizations=naturals[:1])
  with pytest.raises(fvjax.FvjaxError, match="needs natural_images"):
    trust.trust_reports(model, "units", [0], key=jax.random.key(0))


def head_apply(params, images, *, fooled):
  """A conv feature map, global average pooling and a linear head (so on natural images
  the logits are exactly a linear read-out of the pooled features); ``fooled`` adds a
  gate that only a very bright image opens, as a fooling circuit's detector would."""
  features = jax.nn.relu(conv(images - 0.5, params["w1"]))
  logits = jnp.mean(features, axis=(1, 2)) @ params["w3"]
  if fooled:
    gate = jax.nn.relu(jnp.mean(images, axis=(1, 2, 3)) - 0.8)
    logits = logits + 100.0 * gate[:, None]
  return {"features": features, "logits": logits}


def test_unexplained_activation_flags_a_gated_head_not_the_honest_one(toy):
  _, naturals = toy
  k1, k3 = jax.random.split(jax.random.key(5))
  params = {"w1": jax.random.normal(k1, (3, 3, 3, 16)) * 0.5,
            "w3": jax.random.normal(k3, (16, 3))}
  bright = np.full((1, 24, 24, 3), 0.97, np.float32)  # stands in for a visualization
  verdicts = {}
  for fooled in (False, True):
    model = fvjax.Model.from_fn(lambda p, x, f=fooled: head_apply(p, x, fooled=f), params,
                                input_size=(24, 24), name=f"head-fooled={fooled}")
    assert float(jnp.max(jnp.abs(model(jnp.asarray(naturals))["logits"]
                                 - head_apply(params, jnp.asarray(naturals),
                                              fooled=False)["logits"]))) == 0.0
    natural = trust.natural_statistics(model, "logits", naturals,
                                       path_layers=["features", "logits"])
    rep = trust.trust_report(model, "logits", 0, key=jax.random.key(0), natural=natural,
                             visualizations=bright, top_k=5, n_reference=20,
                             criteria=trust.TrustCriteria(fire_threshold=None))
    assert rep.readout_layer == "features" and rep.readout_exact, rep.readout_error
    verdicts[fooled] = rep
  honest, gated = verdicts[False], verdicts[True]
  assert abs(honest.unexplained) < 1e-3
  assert not any("linear read-out" in r for r in honest.reasons)
  assert gated.unexplained > 1.0 and gated.flagged
  assert any("linear read-out" in r for r in gated.reasons)
