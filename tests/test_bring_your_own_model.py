"""Bring your own model: flax.nnx, equinox and haiku; validated outputs (dicts, NHWC);
fixed-size models; layer tables without weights."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import fvjax
from fvjax import objectives as obj
from fvjax._src import cli
from fvjax._src.model import nchw_like
from fvjax._src.zoo import torch_weights


REPO = pathlib.Path(__file__).resolve().parents[1]


def _readme_blocks():
  readme = (REPO / "README.md").read_text()
  section = readme.split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
  blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
  assert len(blocks) == 4  # nnx, equinox, haiku, fixed size
  return blocks


def _imports(nnx_block):
  return nnx_block.split("class Block")[0]


# -- flax.nnx: the README's CNN ------------------------------------------------------------
def test_nnx_cnn_equals_its_eval_mode_call_and_renders(capsys):
  nnx_block = _readme_blocks()[0]
  namespace: dict = {}
  exec(compile(nnx_block, "README nnx", "exec"), namespace)
  assert capsys.readouterr().out.strip() == str(list(namespace["model"].layers))
  cnn = namespace["cnn"]  # give BatchNorm non-trivial running statistics, as after training
  cnn.block2.bn.mean[...] = jax.random.normal(jax.random.key(2), (16,))
  cnn.block2.bn.var[...] = jax.random.uniform(jax.random.key(3), (16,), minval=0.5, maxval=2.0)
  model = fvjax.Model.from_nnx(cnn, input_size=(32, 32), name="nnx-cnn")
  assert list(model.layers) == ["block2", "block2/bn", "block2/conv", "block2/relu", "conv1",
                                "drop", "head", "logits"]
  assert model.layers["block2/conv"] == (16, 16, 16) and model.layers["logits"] == (10,)
  assert cnn.drop.deterministic is False  # the module given is left in training mode
  # params: the nnx state's weights and batch statistics, no RNG stream; a pytree under jit
  assert len(jax.tree.leaves(model)) == 10
  images = jax.random.uniform(jax.random.key(1), (4, 32, 32, 3))
  acts = jax.jit(lambda m, x: m(x))(model, images)
  train_logits = nnx.clone(cnn)(images)  # batch statistics, Dropout on (on a copy: a
  # training call updates the running statistics)
  cnn.eval()
  conv1 = nnx.relu(cnn.conv1(images))
  expected = {"logits": cnn(images), "conv1": cnn.conv1(images),
              "block2/conv": cnn.block2.conv(conv1), "block2": cnn.block2(conv1)}
  # measured (AMD EPYC): 0 difference, jitted model vs eager call; the margin is for other
  # CPUs whose XLA may fuse differently
  for name, value in expected.items():
    np.testing.assert_allclose(acts[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
  np.testing.assert_allclose(acts["block2/relu"], acts["block2"])
  assert np.abs(np.asarray(train_logits - acts["logits"])).max() > 1e-2  # eval mode mattered
  result = fvjax.render(model, obj.channel("block2/conv", jnp.arange(2)), key=jax.random.key(0),
                        steps=8, size=32, progress=False)
  assert result.images.shape == (2, 32, 32, 3) and np.isfinite(result.trace).all()
  assert (result.trace[:, -1] > result.trace[:, 0]).all()


def _linen_module():
  import flax.linen as nn
  return nn.Dense(3)


def test_from_flax_given_an_nnx_module_points_to_from_nnx():
  with pytest.raises(fvjax.FvjaxError, match=r"Dropout is a flax.nnx module.*Model.from_nnx"):
    fvjax.Model.from_flax(nnx.Dropout(0.5), None, input_size=(32, 32))
  with pytest.raises(fvjax.FvjaxError, match="from_nnx takes a flax.nnx Module.*from_flax"):
    fvjax.Model.from_nnx(_linen_module(), input_size=(32, 32))


# -- equinox and haiku: the README's recipes, executed as they stand ------------------------
def test_readme_haiku_recipe():
  pytest.importorskip("haiku")
  nnx_block, _, haiku_block, _ = _readme_blocks()
  namespace: dict = {}
  exec(compile(_imports(nnx_block) + haiku_block, "README haiku", "exec"), namespace)
  assert namespace["hk_model"].layers == {"conv1": (32, 32, 8), "conv2": (16, 16, 16),
                                          "logits": (10,)}


def test_readme_equinox_recipe_and_its_nchw_forms():
  pytest.importorskip("equinox")
  nnx_block, eqx_block, _, _ = _readme_blocks()
  namespace: dict = {}
  exec(compile(_imports(nnx_block) + eqx_block, "README equinox", "exec"), namespace)
  model, result = namespace["eqx_model"], namespace["result"]
  assert model.layers == {"conv1": (32, 32, 8), "conv2": (16, 16, 16)}
  assert result.images.shape == (1, 48, 48, 3) and result.trace[0, -1] > result.trace[0, 0]
  eqx, params, static = namespace["eqx"], namespace["params"], namespace["static"]

  def naive(params, images):  # forgets the layout: NCHW activations
    return jax.vmap(eqx.combine(params, static))(jnp.transpose(images, (0, 3, 1, 2)))

  with pytest.raises(fvjax.FvjaxError, match=r"'conv1' has shape \(8, 32, 32\).*layout='NCHW'"):
    fvjax.Model.from_fn(naive, params, input_size=(32, 32))
  declared = fvjax.Model.from_fn(naive, params, input_size=(32, 32), layout="NCHW")
  assert declared.layers == model.layers
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  run = jax.jit(lambda m, x: m(x)["conv2"])
  np.testing.assert_array_equal(run(declared, images), run(model, images))


# -- validated outputs -----------------------------------------------------------------------
def _conv(params, images):
  return jax.lax.conv_general_dilated(images, params, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


KERNEL = jax.random.normal(jax.random.key(0), (3, 3, 3, 8))


@pytest.mark.parametrize("fn, message", [
    (lambda p, x: [_conv(p, x)], r"must return a dict \{layer name: activation\}, got a list "
                                 r"of 1 items"),
    (lambda p, x: (_conv(p, x), x), "got a tuple of 2 items"),
    (lambda p, x: _conv(p, x), r"got a single array of shape \(2, 32, 32, 8\)"),
    (lambda p, x: {0: _conv(p, x)}, "layer names must be strings, got 0"),
    (lambda p, x: {"conv": {"a": _conv(p, x)}}, "activation 'conv' must be an array .*dict"),
    (lambda p, x: {"conv": _conv(p, x).sum()}, r"activation 'conv' has shape \(\) .*first axis"),
    (lambda p, x: {"conv": _conv(p, x)[0]}, r"activation 'conv' has shape \(32, 32, 8\) for a "
                                            r"batch of 2"),
    (lambda p, x: {"conv": jnp.transpose(_conv(p, x), (0, 3, 1, 2))},
     r"'conv' has shape \(8, 32, 32\) .*looks like NCHW.*layout='NCHW'"),
    (lambda p, x: {"conv": p @ x}, "fails on \\[2, 32, 32, 3\\] images"),
])
def test_bad_outputs_get_one_clear_error(fn, message):
  with pytest.raises(fvjax.FvjaxError, match=message) as error:
    fvjax.Model.from_fn(fn, KERNEL, input_size=(32, 32))
  assert "\n" not in str(error.value)  # one line, no tracing notes


def test_ambiguous_shapes_are_decided_by_running_at_twice_the_size():
  def nchw(params, images):  # 8 channels at 8x8: (8, 8, 8) either way
    small = jax.image.resize(images, (images.shape[0], images.shape[1] // 4,
                                      images.shape[2] // 4, 3), "linear")
    return {"conv": jnp.transpose(_conv(params, small), (0, 3, 1, 2))}

  with pytest.raises(fvjax.FvjaxError, match=r"'conv' has shape \(8, 8, 8\).*NCHW"):
    fvjax.Model.from_fn(nchw, KERNEL, input_size=(32, 32))
  nhwc = lambda p, x: {"conv": jnp.transpose(nchw(p, x)["conv"], (0, 2, 3, 1))}
  assert fvjax.Model.from_fn(nhwc, KERNEL, input_size=(32, 32)).layers["conv"] == (8, 8, 8)
  nchw_model = fvjax.Model.from_fn(nchw, KERNEL, input_size=(32, 32), layout="NCHW")
  images = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3))
  np.testing.assert_array_equal(nchw_model(images)["conv"], nhwc(KERNEL, images)["conv"])


@pytest.mark.parametrize("shape, size, doubled, expected", [
    ((8, 32, 32), (32, 32), None, True), ((32, 32, 8), (32, 32), None, False),
    ((512, 1, 1), (32, 32), None, True), ((1, 1, 512), (32, 32), None, False),
    ((64, 7, 5), (224, 160), None, True), ((7, 5, 64), (224, 160), None, False),
    ((8, 8, 8), (32, 32), None, None), ((8, 8, 8), (32, 32), (8, 16, 16), True),
    ((8, 8, 8), (32, 32), (16, 16, 8), False), ((8, 8, 8), (32, 32), (), False),
    ((1, 1, 1), (32, 32), (1, 1, 1), False),
])
def test_nchw_heuristic(shape, size, doubled, expected):
  assert nchw_like(shape, size, doubled) is expected


def test_bad_layout_and_fixed_size_values():
  with pytest.raises(fvjax.FvjaxError, match="layout must be 'NHWC' or 'NCHW', got 'CHW'"):
    fvjax.Model.from_fn(lambda p, x: {"c": _conv(p, x)}, KERNEL, layout="CHW")
  with pytest.raises(fvjax.FvjaxError, match="fixed_size must be True or False, got 1"):
    fvjax.Model.from_fn(lambda p, x: {"c": _conv(p, x)}, KERNEL, fixed_size=1)


# -- fixed-size models -----------------------------------------------------------------------
def test_fixed_size_model_renders_at_any_size_and_fails_early_without_the_flag():
  nnx_block, _, _, fixed_block = _readme_blocks()
  namespace: dict = {}
  exec(compile(_imports(nnx_block) + fixed_block, "README fixed", "exec"), namespace)
  module, variables, model = namespace["Fixed"](), namespace["variables"], namespace["fixed"]
  plain = fvjax.Model.from_flax(module, variables, input_size=(32, 32))
  for size in (32, 64):  # the default transforms make 32 px into 44 px: the Dense fails
    with fvjax.count_compiles() as log, pytest.raises(
        fvjax.FvjaxError, match=r"fails on the \d+x\d+ images the transforms make of "
                                rf"{size}x{size} renders: ScopeParamShapeError.*fixed_size=True"):
      fvjax.render(plain, obj.channel("conv", 0), key=jax.random.key(0), steps=4, size=size,
                   progress=False)
    assert log.count() == 0  # nothing was compiled, let alone optimized
  with pytest.raises(fvjax.FvjaxError, match="fixed_size=True"):
    fvjax.sweep(plain, obj.channel("conv", 0), key=jax.random.key(0), steps=4, size=32,
                grid={"learning_rate": [0.05]}, progress=False)

  assert model.layers == plain.layers and model.fixed_size
  images = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3))
  resized = jax.image.resize(images, (2, 32, 32, 3), "bilinear")
  logits = jax.jit(lambda m, x: m(x)["logits"])
  np.testing.assert_allclose(logits(model, images), logits(plain, resized), rtol=1e-6)
  results = {64: namespace["result"],  # the README's render at 64 px
             32: fvjax.render(model, obj.class_logit(3), key=jax.random.key(0), steps=8, size=32,
                              progress=False)}
  for size, result in results.items():
    assert result.images.shape == (1, size, size, 3) and np.isfinite(result.final).all()
    assert result.trace[0, -1] > result.trace[0, 0]


def test_an_untraceable_step_is_an_error_before_any_step():
  model = fvjax.Model.from_fn(lambda p, x: {"conv": _conv(p, x)}, KERNEL, input_size=(32, 32),
                              name="conv")

  def wrong(acts, w):  # [B, 8] @ [3]: a shape error only tracing finds
    return acts["conv"].mean(axis=(1, 2)) @ w

  with fvjax.count_compiles() as log, pytest.raises(
      fvjax.FvjaxError, match="on model 'conv' cannot be traced, "
                              "so nothing was optimized: TypeError: dot_general"):
    fvjax.render(model, obj.from_fn(wrong, w=jnp.ones(3)), key=jax.random.key(0), steps=4,
                 size=32, progress=False)
  assert log.count("_run_all") == 0 and log.count("_final_all") == 0


# -- layer tables without weights ------------------------------------------------------------
@pytest.mark.parametrize("name, layer, shape, count", [
    ("inception-v1", "mixed4a", "14x14x508", 142), ("resnet50", "layer4", "7x7x2048", 135)])
def test_layers_without_weights(tmp_path, monkeypatch, capsys, name, layer, shape, count):
  monkeypatch.setenv("FVJAX_WEIGHTS_DIR", str(tmp_path))  # an empty weights cache
  assert torch_weights.default_path(name) is None  # no weights file to be found
  assert cli.main(["layers", "--model", name]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == f"{name}: input 224x224x3 in [0, 1]" and len(lines) == 1 + count
  assert any(line.split() == [layer, shape] for line in lines)
  assert re.fullmatch(r"logits\s+100[08]", lines[-1])
