"""The functional core `fvjax.optvis`: user loops under jit/vmap/scan, settings by value,
custom objectives, projections, and the drivers built on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

import fvjax
from fvjax import objectives as obj
from fvjax import optvis

LAYER = "leaky_re_lu_5"


def test_user_loop_jit_vmap_scan_raises_the_objective(tiny_darknet):
  settings = optvis.Settings(size=32)
  units = jnp.arange(4)
  keys = jax.random.split(jax.random.key(0), 4)

  def optimize(key, unit):
    objective = obj.channel(LAYER, unit)
    state = optvis.init(key, tiny_darknet, objective, settings)
    state, scores = jax.lax.scan(
        lambda s, _: optvis.step(s, tiny_darknet, objective, settings), state, None, length=12)
    return optvis.images(state, settings), scores, optvis.score(state, tiny_darknet, objective,
                                                                settings)

  pictures, scores, final = jax.jit(jax.vmap(optimize))(keys, units)
  assert pictures.shape == (4, 1, 32, 32, 3)
  assert float(pictures.min()) >= 0 and float(pictures.max()) <= 1
  start = jax.vmap(lambda k, u: optvis.score(optvis.init(k, tiny_darknet, obj.channel(LAYER, u),
                                                         settings), tiny_darknet,
                                             obj.channel(LAYER, u), settings))(keys, units)
  assert np.all(np.asarray(final) - np.asarray(start) > 0.2), (start, final)
  # The user loop is the computation render runs: same keys, same images (measured max pixel
  # difference on AMD EPYC, 2026-12-02: 2.4e-7; the scan and render's per-step calls are
  # compiled separately, so only float tolerance is asked).
  rendered = fvjax.render(tiny_darknet, obj.channel(LAYER, units), key=jax.random.key(0),
                          steps=12, size=32, progress=False)
  np.testing.assert_allclose(rendered.images, np.asarray(pictures)[:, 0], atol=1e-5)


def test_step_jits_without_static_arguments_and_other_values_reuse_it(tiny_darknet):
  step = jax.jit(optvis.step)
  settings = optvis.Settings(size=32)
  objective = obj.channel(LAYER, 3)
  state = optvis.init(jax.random.key(1), tiny_darknet, objective, settings)
  state, _ = step(state, tiny_darknet, objective, settings)
  with fvjax.count_compiles() as log:
    other = optvis.Settings(size=32, optimizer=optvis.Adam(0.01), transform_strength=0.5,
                            param=fvjax.param.image(32, decay=1.5))
    state, _ = step(state, fvjax.zoo.load("tiny-darknet"), obj.channel(LAYER, 7), other)
  assert log.count("step") == 0, log.names


def test_equal_settings_built_afresh_and_either_key_kind_do_not_recompile(tiny_darknet):
  run = lambda model, key, units, **kw: fvjax.render(
      model, obj.channel(LAYER, jnp.asarray(units)), key=key, steps=4, size=32,
      progress=False, **kw)
  run(tiny_darknet, jax.random.key(0), [0, 1])
  with fvjax.count_compiles() as log:
    run(fvjax.zoo.load("tiny-darknet"), jax.random.PRNGKey(5), [2, 3],
        optimizer=optvis.Adam(0.05), transforms=fvjax.transforms.standard(),
        param=fvjax.param.image(32))
    lucid = {k: v for k, v in fvjax.presets.preset("lucid", 32).items() if k != "steps"}
    run(tiny_darknet, jax.random.key(9), [4, 5], **lucid)
    run(tiny_darknet, jax.random.key(9), [4, 5], optimizer=optvis.Adam(0.2),
        hyperparams={"decay": [1.0, 1.5], "transform_strength": 0.5})
  assert log.count("_run_all") == 0 and log.count("_init_all") == 0, log.names
  with fvjax.count_compiles() as log:  # the counter does see a real recompile
    run(tiny_darknet, jax.random.key(0), [0, 1], param=fvjax.param.image(32, fft=False))
  assert log.count("_run_all") == 1


def test_swept_strength_and_penalty_weight_equal_render(tiny_darknet):
  objective = obj.channel(LAYER, jnp.arange(2))
  common = dict(key=jax.random.key(4), steps=8, size=32, progress=False)
  swept = fvjax.sweep(tiny_darknet, objective, grid={"transform_strength": [1.0, 0.5],
                                                      "total_variation": [0.0, 0.3]}, **common)
  # Same program, 8 units (sweep) or 2 (render): measured on AMD EPYC, 2026-12-02, images
  # identical and finals within 4.8e-7.
  for s, point in enumerate(swept.settings):
    settings = optvis.Settings(size=32, transform_strength=point["transform_strength"],
                               total_variation=point["total_variation"])
    alone = fvjax.render(tiny_darknet, objective, settings=settings, **common)
    np.testing.assert_allclose(swept.images[s], alone.images, atol=1e-5)
    np.testing.assert_allclose(swept.final[s], alone.final, rtol=1e-4, atol=1e-5)
  # the swept values matter (the test would pass for a sweep that ignored them otherwise)
  assert np.abs(swept.images[0] - swept.images[1]).max() > 1e-3
  assert np.abs(swept.images[0] - swept.images[2]).max() > 0.01
  default = fvjax.render(tiny_darknet, objective, **common)
  np.testing.assert_allclose(swept.images[0], default.images, atol=1e-5)


def _cosine(acts, target):
  a = acts[LAYER].mean(axis=(1, 2))
  return a @ target / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(target) + 1e-6)


def _close_to(acts, target):
  return -jnp.mean(jnp.square(acts[LAYER] - target), axis=(1, 2, 3))


def test_from_fn_batches_over_units_without_recompiling(tiny_darknet):
  targets = jax.random.normal(jax.random.key(0), (3, 16))
  common = dict(key=jax.random.key(2), steps=4, size=32, progress=False)
  batched = fvjax.render(tiny_darknet, obj.from_fn(_cosine, batched=True, target=targets),
                         **common)
  assert batched.images.shape == (3, 32, 32, 3)
  with fvjax.count_compiles() as log:
    again = fvjax.render(tiny_darknet, obj.from_fn(_cosine, batched=True, target=-targets),
                         **common)
  assert log.count("_run_all") == 0, log.names
  assert not np.allclose(again.images, batched.images)
  # unit i of the batch is from_fn with that unit's values alone (after one step: later steps
  # amplify the batched kernels' rounding, see the README's measured bound)
  keys = jax.random.split(jax.random.key(2), 3)
  one_step = common | {"steps": 1}
  alone = fvjax.render(tiny_darknet, obj.from_fn(_cosine, target=targets[1]),
                       **(one_step | {"key": keys[1]}))
  together = fvjax.render(tiny_darknet, obj.from_fn(_cosine, batched=True, target=targets),
                          **one_step)
  np.testing.assert_allclose(alone.images[0], together.images[1], atol=1e-4)
  # composes with the algebra
  combined = obj.from_fn(_cosine, target=targets[0]) - 0.1 * obj.total_variation()
  assert isinstance(combined, obj.Objective)


def test_loop_and_final_see_the_same_shapes(tiny_darknet):
  settings = optvis.Settings(size=64)
  seen = settings.transforms.output_size((64, 64))
  shape = tiny_darknet(jnp.zeros((1, *seen, 3)))[LAYER].shape[1:]
  target = jnp.zeros(shape)  # a full activation map, as the loop sees it
  result = fvjax.render(tiny_darknet, obj.from_fn(_close_to, target=target), key=jax.random.key(0),
                        steps=4, settings=settings, progress=False)
  assert np.isfinite(result.final).all() and result.trace.shape == (1, 4)


def test_unregistered_subclass_and_bad_settings_are_clear_errors(tiny_darknet):
  class Mine(obj.Objective):
    def __call__(self, acts):
      return acts[LAYER].mean(axis=(1, 2, 3))

  with pytest.raises(fvjax.FvjaxError, match="not registered"):
    fvjax.render(tiny_darknet, Mine(), key=jax.random.key(0), steps=2, size=32)

  @obj.register
  class Registered(obj.Objective):
    layer: str

    def __call__(self, acts):
      return acts[self.layer].mean(axis=(1, 2, 3))

  fvjax.render(tiny_darknet, Registered(LAYER), key=jax.random.key(0), steps=2, size=32,
               progress=False)
  with pytest.raises(fvjax.FvjaxError, match="unknown setting 'decay'.*valid: "):
    optvis.setting(optvis.Settings(size=32, param=fvjax.param.maco(32)), "decay", 1.0)
  with pytest.raises(fvjax.FvjaxError, match="learning_rate"):
    fvjax.render(tiny_darknet, obj.channel(LAYER, 0), key=jax.random.key(0), steps=2, size=32,
                 hyperparams={"momentum_typo": 0.1})
  with pytest.raises(fvjax.FvjaxError, match="PRNG key"):
    fvjax.render(tiny_darknet, obj.channel(LAYER, 0), key=0, steps=2, size=32)
  with pytest.raises(fvjax.FvjaxError, match="not an fvjax objective|must be an fvjax objective"):
    fvjax.render(tiny_darknet, "channel", key=jax.random.key(0), steps=2, size=32)


def test_projection_runs_after_every_update(tiny_darknet):
  settings = optvis.Settings(size=32, param=fvjax.param.pixel(32, sd=0.5),
                             optimizer=optvis.SGD(100.0),
                             projection=optvis.Projection(
                                 lambda p, bound: jnp.clip(p, -bound, bound), {"bound": 0.2}))
  state = optvis.init(jax.random.key(0), tiny_darknet, obj.channel(LAYER, 1), settings)
  for _ in range(3):
    state, _ = jax.jit(optvis.step)(state, tiny_darknet, obj.channel(LAYER, 1), settings)
    assert float(jnp.abs(state.params).max()) <= 0.2 + 1e-6
  assert float(jnp.abs(state.params).max()) > 0.19  # the update did push against the bound


def test_blur_penalty_is_lucids_blur_input_each_step():
  x = jax.random.uniform(jax.random.key(0), (2, 9, 7, 3))
  kernel = np.full((3, 3), 0.5)
  kernel[1, 1] = 1.0
  conv = lambda a: scipy.ndimage.convolve(a, kernel, mode="constant", cval=0.0)
  expected_blur = np.stack([np.stack([conv(np.asarray(x[b, :, :, c])) /
                                      conv(np.ones((9, 7))) for c in range(3)], -1)
                            for b in range(2)])
  np.testing.assert_allclose(obj.blur3x3(x), expected_blur, rtol=1e-5, atol=1e-6)
  expected = 0.5 * ((np.asarray(x) - expected_blur) ** 2).reshape(2, -1).sum(axis=1)
  np.testing.assert_allclose(obj.blur_penalty()({"input": x}), expected, rtol=1e-5)


def test_setting_names_and_dotted_paths():
  settings = optvis.Settings(size=32)
  names = optvis.setting_names(settings)
  for name in ("learning_rate", "decay", "sd", "transform_strength", "optimizer.b1",
               "transforms.transforms.0.value", "l1", "total_variation", "blur"):
    assert name in names
  changed = optvis.setting(settings, "transforms.transforms.0.value", 0.25)
  assert float(changed.transforms.transforms[0].value) == 0.25
  assert float(settings.transforms.transforms[0].value) == 0.5
  assert optvis.Settings(size=32) == optvis.Settings(size=32)
  assert optvis.Settings(size=32) != changed


SHARD_MAP_SCRIPT = """
import json
import jax, jax.numpy as jnp, numpy as np, fvjax
from jax.sharding import Mesh, PartitionSpec as P
from fvjax import objectives as obj, optvis
model = fvjax.zoo.load("tiny-darknet")
settings = optvis.Settings(size=32)

def run(keys, units):  # each device optimizes its own units
  def one(key, unit):
    state, scores = optvis.run(key, model, obj.channel("leaky_re_lu_5", unit), settings, 3)
    return optvis.images(state, settings), scores
  return jax.vmap(one)(keys, units)

mesh = Mesh(np.array(jax.devices()[:2]), ("units",))
keys = jax.random.split(jax.random.key(0), 4)
sharded = jax.jit(jax.shard_map(run, mesh=mesh, in_specs=(P("units"), P("units")),
                                out_specs=(P("units"), P("units"))))
images, scores = sharded(keys, jnp.arange(4))
ref_images, ref_scores = jax.jit(run)(keys, jnp.arange(4))
print(json.dumps({"shape": list(images.shape), "pixel": float(jnp.abs(images - ref_images).max()),
                  "score": float(jnp.abs(scores - ref_scores).max())}))
"""


@pytest.mark.slow  # a process with 2 simulated devices, ~15 s: CI runs it (-m slow)
def test_user_loop_under_shard_map_over_two_devices(run_on_simulated_devices):
  import json
  diffs = json.loads(run_on_simulated_devices(SHARD_MAP_SCRIPT, 2).strip().splitlines()[-1])
  assert diffs["shape"] == [4, 1, 32, 32, 3]
  # Each device runs the same per-unit program on 2 of the 4 units; a batch of 2 rounds
  # like a batch of 4 only up to XLA's batched kernels (after 3 steps, see test_render).
  assert diffs["pixel"] < 2e-2 and diffs["score"] < 1e-2 * 4, diffs
