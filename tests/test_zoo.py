import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fvjax
from fvjax._src.zoo import tfjs
from fvjax._src.zoo import weights as weights_io
from fvjax._src.zoo.registry import WEIGHTS_DIR
from tests.conftest import SHARED_MODEL, SHARED_PHOTOS, needs_shared


def test_layer_table_in_network_order(tiny_darknet):
  names = list(tiny_darknet.layers)
  assert names[:4] == ["conv2d_1", "batch_normalization_1", "leaky_re_lu_1", "max_pooling2d_1"]
  assert names[-1] == "logits" and tiny_darknet.layers["logits"] == (1000,)
  assert tiny_darknet.layers["leaky_re_lu_8"] == (28, 28, 256)
  assert tiny_darknet.layers["max_pooling2d_4"] == (14, 14, 256)
  assert len(tiny_darknet.labels) == 1000 and tiny_darknet.labels[0] == "kit fox"


def test_unknown_model_lists_valid_names():
  with pytest.raises(fvjax.FvjaxError, match="valid models: tiny-darknet"):
    fvjax.zoo.load("resnet-9000")


def test_unreadable_weights_file(tmp_path):
  path = tmp_path / "broken.safetensors"
  path.write_bytes(b"not a safetensors file")
  with pytest.raises(fvjax.FvjaxError, match="cannot read weights file"):
    fvjax.zoo.load("tiny-darknet", weights=str(path))


def test_mismatched_weights_name_tensor_and_both_shapes(tmp_path):
  from safetensors.numpy import load_file, save_file
  flat = load_file(os.path.join(WEIGHTS_DIR, "tiny_darknet.safetensors"))
  flat["params/conv2d_3/kernel"] = np.zeros((1, 1, 32, 17), np.float32)
  path = str(tmp_path / "bad.safetensors")
  save_file(flat, path)
  with pytest.raises(fvjax.FvjaxError, match=r"'params/conv2d_3/kernel' has shape "
                     r"\(1, 1, 32, 17\), the model expects \(1, 1, 32, 16\)"):
    fvjax.zoo.load("tiny-darknet", weights=path)
  del flat["params/conv2d_3/kernel"]
  save_file(flat, path)
  with pytest.raises(fvjax.FvjaxError, match="missing tensors.*conv2d_3/kernel"):
    fvjax.zoo.load("tiny-darknet", weights=path)


@needs_shared
def test_converter_reproduces_vendored_weights_exactly():
  _, converted = tfjs.convert(str(SHARED_MODEL))
  converted = weights_io.flatten(converted)
  from safetensors.numpy import load_file
  vendored = load_file(os.path.join(WEIGHTS_DIR, "tiny_darknet.safetensors"))
  assert sorted(converted) == sorted(vendored)
  for name, value in vendored.items():
    np.testing.assert_array_equal(converted[name], value, err_msg=name)


@needs_shared
def test_generic_keras_module_matches_tiny_darknet(tiny_darknet):
  specs, variables = tfjs.convert(str(SHARED_MODEL))
  generic = fvjax.Model.from_flax(tfjs.KerasSequential(specs), variables)
  images = jax.random.uniform(jax.random.key(0), (2, 64, 64, 3))
  a, b = generic(images), tiny_darknet(images)
  np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(a["leaky_re_lu_8"], b["leaky_re_lu_8"], rtol=1e-5, atol=1e-5)
  assert set(generic.layers) - {"global_average_pooling2d_1"} == set(tiny_darknet.layers)


def test_converter_rejects_unsupported_layers(tmp_path):
  import json
  (tmp_path / "model.json").write_text(json.dumps({"modelTopology": {"model_config": {
      "config": {"layers": [{"name": "d", "class_name": "Dense", "config": {},
                             "inbound_nodes": []}]}}}, "weightsManifest": []}))
  with pytest.raises(fvjax.FvjaxError, match="unsupported type 'Dense'; supported: InputLayer"):
    tfjs.read_topology(str(tmp_path))


@needs_shared
@pytest.mark.slow  # 1000 photos through the model, ~18 s: CI runs it (-m slow)
def test_vendored_model_accuracy_on_shared_photos(tiny_darknet):
  photos = fvjax.data.image_folder(str(SHARED_PHOTOS), 224)
  synsets = [line.split("\t")[0] for line in
             open(os.path.join(WEIGHTS_DIR, "tiny_darknet_labels.tsv")).read().splitlines()]
  target = np.array([synsets.index(s) for s in photos.labels])
  logits_fn = jax.jit(lambda p, x: tiny_darknet.apply(p, x)["logits"])
  logits = np.concatenate([np.asarray(logits_fn(tiny_darknet.params, photos.images[i:i + 125]))
                           for i in range(0, len(target), 125)])
  top5 = np.argsort(-logits, axis=1)[:, :5]
  top1_acc = float(np.mean(top5[:, 0] == target))
  top5_acc = float(np.mean((top5 == target[:, None]).any(axis=1)))
  assert len(target) == 1000
  assert top1_acc >= 0.57, top1_acc
  assert top5_acc >= 0.80, top5_acc
