"""InceptionV1 and ResNet-50 against independent PyTorch references, and the torch-weights
converter's checks.

On random weights (no download), every layer torch-lucent's hooks see on its
``InceptionV1`` and every layer of a hand-written torch ResNet-50 forward must equal the
fvjax model's within 1e-4 of that layer's scale (``max |fvjax - torch| <= 1e-4 * max(1,
max |torch|)``). The references need torch (and torch-lucent for InceptionV1); those tests
skip, saying so, where they are not installed. See benchmarks/README.md for the install.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

import fvjax
from fvjax._src.zoo import inception_v1 as inception_lib
from fvjax._src.zoo import resnet as resnet_lib
from fvjax._src.zoo import lucent_compat, torch_weights

try:
  import torch
  import torch.nn.functional as F
except ImportError:
  torch = None

needs_torch = pytest.mark.skipif(
    torch is None, reason="needs torch (pip install 'torch==2.13.0+cpu'; see "
    "benchmarks/README.md) for the PyTorch reference")
TOLERANCE = 1e-4


def lucent_inception_class():
  if torch is None:
    pytest.skip("needs torch and torch-lucent for the InceptionV1 reference (see "
                "benchmarks/README.md: pip install 'torch==2.13.0+cpu'; pip install --no-deps "
                "torch-lucent==0.1.8 kornia==0.4.1 decorator)")
  lucent_compat.install_torchvision_stand_in()
  try:
    from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1
  except ImportError as err:
    pytest.skip(f"needs torch-lucent for the InceptionV1 reference ({err}); see "
                "benchmarks/README.md: pip install --no-deps torch-lucent==0.1.8 kornia==0.4.1 "
                "decorator")
  return InceptionV1


def assert_layers_equal(ours: dict, reference: dict):
  assert reference, "the reference produced no layers"
  report = []
  for name, ref in reference.items():
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    if ref.ndim == 4:
      ref = ref.transpose(0, 2, 3, 1)
    assert name in ours, f"fvjax model has no layer {name!r}"
    got = np.asarray(ours[name])
    assert got.shape == ref.shape, (name, got.shape, ref.shape)
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(got - ref).max()) / scale
    report.append((err, name, scale))
  worst = max(report)
  assert worst[0] <= TOLERANCE, f"layer {worst[1]!r} differs by {worst[0]:.2e} of its scale"
  return report


def he_init_(state: dict, generator) -> dict:
  """Variance-preserving random weights so deep layers keep activations of order one."""
  out = {}
  for key, value in state.items():
    if key.endswith("num_batches_tracked"):
      out[key] = value
    elif key.endswith("running_var"):
      out[key] = torch.rand(value.shape, generator=generator) + 0.5
    elif key.endswith("running_mean") or key.endswith("bias"):
      out[key] = 0.1 * torch.randn(value.shape, generator=generator)
    elif value.ndim == 1:  # BatchNorm scale
      out[key] = 0.5 * torch.rand(value.shape, generator=generator) + 0.25
    else:
      fan_in = int(np.prod(value.shape[1:]))
      out[key] = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
  return out


# -- InceptionV1 against torch-lucent -------------------------------------------------------
@pytest.fixture(scope="module")
def lucent_pair():
  """torch-lucent's InceptionV1 on random weights (its default redirected ReLU) and the fvjax
  model converted from its state dict."""
  InceptionV1 = lucent_inception_class()
  generator = torch.Generator().manual_seed(0)
  net = InceptionV1().eval()
  net.load_state_dict(he_init_(net.state_dict(), generator))
  for p in net.parameters():
    p.requires_grad_(False)
  model = inception_lib.inception_v1({k: v.numpy() for k, v in net.state_dict().items()},
                                     redirected_relu=True)
  return net, model


def lucent_activations(net, images: np.ndarray, requires_grad: bool = False):
  """What Lucent's hooks see (the output of every child module, lucent.optvis.render) for
  ``images`` in [0, 1], after Lucent's ``preprocess_inceptionv1`` (x * 255 - 117)."""
  seen = {}
  hooks = [module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
           for name, module in net.named_children()]
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).requires_grad_(requires_grad)
  try:
    with torch.set_grad_enabled(requires_grad):
      net(x * 255 - 117)
  finally:
    for hook in hooks:
      hook.remove()
  return x, seen


def test_inception_v1_matches_lucent_layer_by_layer(lucent_pair):
  net, model = lucent_pair
  images = np.random.default_rng(0).random((1, 224, 224, 3), np.float32)
  _, seen = lucent_activations(net, images)
  ours = jax.jit(model.apply)(model.params, images)
  assert set(seen) <= set(model.layers)
  assert_layers_equal(ours, seen)
  assert_layers_equal({"logits": ours["logits"]},
                      {"logits": seen["softmax2_pre_activation_matmul"]})
  assert model.layers["mixed4a"] == (14, 14, 508) and model.layers["logits"] == (1008,)


def test_inception_v1_input_gradient_matches_lucent(lucent_pair):
  """The gradient a render follows: redirected ReLUs and max-pool gradients as in Lucent."""
  net, model = lucent_pair
  images = np.random.default_rng(1).random((1, 224, 224, 3), np.float32)
  x, seen = lucent_activations(net, images, requires_grad=True)
  seen["mixed4a"][:, 7].mean().backward()
  reference = x.grad.numpy().transpose(0, 2, 3, 1)
  ours = jax.jit(jax.grad(lambda im: model.apply(model.params, im)["mixed4a"][..., 7].mean()))(
      jnp.asarray(images))
  error = np.linalg.norm(np.asarray(ours) - reference) / np.linalg.norm(reference)
  assert error < 1e-4, error


def test_redirected_relu_changes_gradients_not_values():
  x = jnp.array([-2.0, -0.5, 0.0, 1.5])
  np.testing.assert_array_equal(inception_lib.redirected_relu(x), jax.nn.relu(x))
  grad = jax.grad(lambda v: jnp.sum(inception_lib.redirected_relu(v)))(x)
  np.testing.assert_allclose(grad, [0.1, 0.1, 1.0, 1.0])


# -- ResNet-50 against a hand-written torch forward ------------------------------------------
RESNET_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


def torch_resnet50_state(generator) -> dict:
  """Random weights with torchvision's ResNet-50 key names and shapes."""
  shapes = {"conv1.weight": (64, 3, 7, 7), "fc.weight": (1000, 2048), "fc.bias": (1000,)}

  def bn(prefix, c):
    for leaf in ("weight", "bias", "running_mean", "running_var"):
      shapes[f"{prefix}.{leaf}"] = (c,)
    shapes[f"{prefix}.num_batches_tracked"] = ()

  bn("bn1", 64)
  inplanes = 64
  for s, (width, blocks, _) in enumerate(RESNET_STAGES, start=1):
    for b in range(blocks):
      p = f"layer{s}.{b}"
      shapes[f"{p}.conv1.weight"] = (width, inplanes, 1, 1)
      shapes[f"{p}.conv2.weight"] = (width, width, 3, 3)
      shapes[f"{p}.conv3.weight"] = (4 * width, width, 1, 1)
      for i, c in ((1, width), (2, width), (3, 4 * width)):
        bn(f"{p}.bn{i}", c)
      if b == 0:
        shapes[f"{p}.downsample.0.weight"] = (4 * width, inplanes, 1, 1)
        bn(f"{p}.downsample.1", 4 * width)
      inplanes = 4 * width
  state = {k: torch.zeros(v, dtype=torch.long if k.endswith("tracked") else torch.float32)
           for k, v in shapes.items()}
  return he_init_(state, generator)


def torch_resnet50_forward(sd: dict, images: "torch.Tensor") -> dict:
  """torchvision's ResNet-50 forward (eval mode) written out with torch.nn.functional."""
  out = {}

  def bn(x, p):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
                        sd[f"{p}.bias"], training=False, eps=1e-5)

  def keep(name, x):
    out[name] = x
    return x

  mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
  std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
  x = (images - mean) / std
  x = keep("conv1", F.conv2d(x, sd["conv1.weight"], stride=2, padding=3))
  x = keep("bn1", bn(x, "bn1"))
  x = keep("relu", F.relu(x))
  x = keep("maxpool", F.max_pool2d(x, 3, stride=2, padding=1))
  for s, (_, blocks, stride) in enumerate(RESNET_STAGES, start=1):
    for b in range(blocks):
      p, st = f"layer{s}.{b}", stride if b == 0 else 1
      y = keep(f"{p}.conv1", F.conv2d(x, sd[f"{p}.conv1.weight"]))
      y = F.relu(keep(f"{p}.bn1", bn(y, f"{p}.bn1")))
      y = keep(f"{p}.conv2", F.conv2d(y, sd[f"{p}.conv2.weight"], stride=st, padding=1))
      y = F.relu(keep(f"{p}.bn2", bn(y, f"{p}.bn2")))
      y = keep(f"{p}.conv3", F.conv2d(y, sd[f"{p}.conv3.weight"]))
      y = keep(f"{p}.bn3", bn(y, f"{p}.bn3"))
      shortcut = x
      if b == 0:
        shortcut = keep(f"{p}.downsample.0",
                        F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=st))
        shortcut = keep(f"{p}.downsample.1", bn(shortcut, f"{p}.downsample.1"))
        out[f"{p}.downsample"] = shortcut
      x = keep(p, F.relu(y + shortcut))
    out[f"layer{s}"] = x
  x = keep("avgpool", x.mean(dim=(2, 3), keepdim=True))
  keep("fc", F.linear(x.flatten(1), sd["fc.weight"], sd["fc.bias"]))
  return out


@needs_torch
def test_resnet50_matches_torch_layer_by_layer():
  sd = torch_resnet50_state(torch.Generator().manual_seed(1))
  model = resnet_lib.resnet50({k: v.numpy() for k, v in sd.items()})
  images = np.random.default_rng(1).random((2, 96, 96, 3), np.float32)
  with torch.no_grad():
    reference = torch_resnet50_forward(sd, torch.from_numpy(images.transpose(0, 3, 1, 2)))
  ours = jax.jit(model.apply)(model.params, images)
  ours = {name.replace("/", "."): value for name, value in ours.items()}
  assert_layers_equal(ours, reference)
  assert set(reference) == set(ours) - {"logits"}
  np.testing.assert_allclose(ours["logits"], reference["fc"].numpy(), rtol=1e-4, atol=1e-4)
  assert model.layers["layer4"] == (7, 7, 2048) and model.labels[0] == "tench"

  # The input gradient (max-pool and ReLU gradients as in torch).
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
  torch_resnet50_forward(sd, x)["layer3.2"][:, 11].mean().backward()
  reference = x.grad.numpy().transpose(0, 2, 3, 1)
  grad = jax.jit(jax.grad(lambda im: model.apply(model.params, im)["layer3/2"][..., 11].mean()))(
      jnp.asarray(images))
  error = np.linalg.norm(np.asarray(grad) - reference) / np.linalg.norm(reference)
  assert error < 1e-4, error


# -- the converter's checks (no torch needed) ------------------------------------------------
@pytest.fixture(scope="module")
def inception_state():
  """A random state dict with torch-lucent's names, made from the Flax module's shapes."""
  rng = np.random.default_rng(0)
  variables = jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(np.float32),
                           inception_lib.template())
  return torch_weights.to_state_dict(variables)


def test_state_dict_round_trip_through_safetensors_and_npz(tmp_path, inception_state):
  assert "mixed4a_3x3_pre_relu_conv.weight" in inception_state
  assert inception_state["mixed4a_3x3_pre_relu_conv.weight"].shape == (204, 96, 3, 3)
  assert inception_state["softmax2_pre_activation_matmul.weight"].shape == (1008, 1024)
  save_file(inception_state, str(tmp_path / "w.safetensors"))
  np.savez(tmp_path / "w.npz", **inception_state)
  template = inception_lib.template()
  for name in ("w.safetensors", "w.npz"):
    variables = torch_weights.load(str(tmp_path / name), template)
    back = torch_weights.to_state_dict(variables)
    assert sorted(back) == sorted(inception_state)
    for key, value in inception_state.items():
      np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_converter_names_a_tensor_of_the_wrong_shape(tmp_path, inception_state):
  state = dict(inception_state)
  state["mixed4a_3x3_pre_relu_conv.weight"] = np.zeros((204, 96, 5, 5), np.float32)
  path = str(tmp_path / "bad.safetensors")
  save_file(state, path)
  with pytest.raises(fvjax.FvjaxError, match=r"'mixed4a_3x3_pre_relu_conv.weight' has shape "
                     r"\(204, 96, 5, 5\), the model expects \(204, 96, 3, 3\)"):
    torch_weights.load(path, inception_lib.template())


def test_converter_names_missing_and_unexpected_tensors(tmp_path, inception_state):
  state = dict(inception_state)
  del state["mixed5b_1x1_pre_relu_conv.bias"]
  state["aux_classifier.weight"] = np.zeros((3,), np.float32)
  path = str(tmp_path / "bad.npz")
  np.savez(path, **state)
  with pytest.raises(fvjax.FvjaxError, match=r"missing tensors \['mixed5b_1x1_pre_relu_conv"
                     r"\.bias'\], unexpected tensors \['aux_classifier\.weight'\]"):
    torch_weights.load(path, inception_lib.template())


def test_resnet_converter_names_tensors_with_torchvision_keys():
  template = resnet_lib.template()
  state = torch_weights.to_state_dict(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype),
                                                   template))
  assert state["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
  assert state["layer3.5.bn2.running_var"].shape == (256,)
  assert state["fc.weight"].shape == (1000, 2048)
  state["layer2.0.bn1.num_batches_tracked"] = np.zeros((), np.int64)  # ignored
  torch_weights.to_flax(state, template)
  state["layer2.3.conv2.weight"] = np.zeros((128, 128, 1, 3), np.float32)
  with pytest.raises(fvjax.FvjaxError, match=r"'layer2\.3\.conv2\.weight' has shape "
                     r"\(128, 128, 1, 3\), the model expects \(128, 128, 3, 3\)"):
    torch_weights.to_flax(state, template)


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
  monkeypatch.setenv("FVJAX_WEIGHTS_DIR", str(tmp_path))
  with pytest.raises(fvjax.FvjaxError, match=r"download_weights\('inception-v1'\)"):
    inception_lib.inception_v1()
  with pytest.raises(fvjax.FvjaxError, match=r"resnet50-0676ba61\.pth"):
    resnet_lib.resnet50()
  with pytest.raises(fvjax.FvjaxError, match="does not exist"):
    torch_weights.load_state_dict(str(tmp_path / "nothing.pth"))


def test_pth_without_torch_is_refused_with_the_way_out(tmp_path, monkeypatch):
  path = tmp_path / "w.pth"
  path.write_bytes(b"\x80\x02}q\x00.")  # a pickle: never unpickled without torch
  monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
  with pytest.raises(fvjax.FvjaxError, match="needs torch.*weights_only=True"):
    torch_weights.load_state_dict(str(path))


@needs_torch
def test_pth_is_read_with_the_weights_only_loader(tmp_path, inception_state):
  path = str(tmp_path / "w.pth")
  torch.save({k: torch.from_numpy(v) for k, v in inception_state.items()}, path)
  variables = torch_weights.load(path, inception_lib.template())
  back = torch_weights.to_state_dict(variables)
  np.testing.assert_array_equal(back["conv2d0_pre_relu_conv.weight"],
                                inception_state["conv2d0_pre_relu_conv.weight"])
  exported = torch_weights.export_safetensors(path)
  assert exported.endswith(".safetensors") and os.path.exists(exported)
  torch_weights.load(exported, inception_lib.template())

  class Payload:  # a pickle that would run code: the weights-only loader refuses it
    def __reduce__(self):
      return (os.system, ("echo should-not-run",))

  evil = str(tmp_path / "evil.pth")
  torch.save({"conv2d0_pre_relu_conv.weight": Payload()}, evil)
  with pytest.raises(fvjax.FvjaxError, match="weights_only=True"):
    torch_weights.load_state_dict(evil)
