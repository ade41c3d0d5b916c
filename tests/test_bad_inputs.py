"""Bad input, as a careless user gives it: one table of cases through the API and the CLI.

Each ``Bad`` case must raise one `fvjax.FvjaxError` (CLI: exit 2 and one line on stderr, no
traceback) whose message names the bad value (``names``), before any work: nothing here
renders past validation. Each ``Good`` case is an edge input whose correct behaviour is
checked (a 16-bit PNG scaled by its bit depth, float16 weights converted). The same table is
counted by ``scripts/bad_inputs_census.py`` against any checkout (clean error / raw
traceback / silent wrong result), which is how the before/after counts were measured.

The table builds everything it needs from a `Ctx` (a temporary folder of files, a tiny Flax
classifier, the vendored Tiny Darknet): nothing beyond the public API and ``cli.main``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import warnings
from typing import Any, Callable

import numpy as np
import pytest

# -- the context: files and models the cases use ---------------------------------------------
TD_LAYER = "leaky_re_lu_4"


class Ctx:
  """Lazily built inputs shared by all cases (one per test session / census run)."""

  def __init__(self, root: str):
    self.root = root
    self._cache: dict[str, Any] = {}
    self._outs = 0

  def _once(self, name, build):
    if name not in self._cache:
      self._cache[name] = build()
    return self._cache[name]

  def path(self, name: str) -> str:
    return os.path.join(self.root, name)

  def out(self) -> str:
    """A fresh (not yet existing) output folder."""
    self._outs += 1
    return self.path(f"out{self._outs}")

  # models
  @property
  def clf(self):
    """A 10-class Flax classifier on 16x16 images: conv1 [16,16,4], conv2 [8,8,8], logits."""
    def build():
      import flax.linen as nn
      import jax
      import jax.numpy as jnp
      import fvjax

      class Tiny(nn.Module):
        @nn.compact
        def __call__(self, x):
          x = nn.relu(nn.Conv(4, (3, 3), name="conv1")(x))
          x = nn.relu(nn.Conv(8, (3, 3), strides=2, name="conv2")(x))
          return nn.Dense(10, name="head")(x.mean(axis=(1, 2)))

      module = Tiny()
      # Weights drawn with NumPy at the shapes of an abstract init: nothing is compiled.
      shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
      rng = np.random.default_rng(0)
      variables = jax.tree.map(
          lambda s: (0.3 * rng.standard_normal(s.shape)).astype(np.float32), shapes)
      return fvjax.Model.from_flax(module, variables, input_size=(16, 16),
                                   labels=[f"c{i}" for i in range(10)], name="tiny")
    return self._once("clf", build)

  @property
  def detector(self):
    """Variables of a one-layer fooling detector (`_small_detector`)."""
    def build():
      import jax
      shapes = jax.eval_shape(
          lambda key: _fv().reliability.init_detector(key, _small_detector()), _key())
      return jax.tree.map(lambda s: np.full(s.shape, 0.1, np.float32), shapes)
    return self._once("detector", build)

  @property
  def td(self):
    import fvjax
    return self._once("td", lambda: fvjax.zoo.load("tiny-darknet"))

  # images
  @property
  def images(self):
    """Four good float32 images [4, 16, 16, 3] in [0, 1]."""
    return self._once("images", lambda: np.random.default_rng(0).uniform(
        0, 1, (4, 16, 16, 3)).astype(np.float32))

  def bad_images(self, kind: str):
    good = self.images
    if kind == "uint8":
      return (good * 255).round().astype(np.uint8)
    if kind == "uint16":
      return (good * 65535).round().astype(np.uint16)
    if kind == "float255":
      out = good * 255
      out[0, 0, 0, 0], out[0, 0, 0, 1] = 0.0, 255.0
      return out
    if kind == "nan":
      out = good.copy()
      out[1, 2, 3, 0] = np.nan
      return out
    if kind == "inf":
      out = good.copy()
      out[0, 0, 0, 2] = np.inf
      return out
    if kind == "signed":  # normalised to [-1, 1]
      out = good * 2 - 1
      out[0, 0, 0, 0] = -1.0
      return out
    if kind == "wide":  # saliency took images in [-500, 500]
      out = (good - 0.5) * 1000
      out[0, 0, 0, 0], out[0, 0, 0, 1] = -500.0, 500.0
      return out
    if kind == "channels_first":
      return good.transpose(0, 3, 1, 2)
    if kind == "empty":
      return good[:0]
    raise KeyError(kind)

  # files
  def file(self, name: str) -> str:
    return self._once("file:" + name, lambda: _make_file(self, name))


def _png16(path: str, arr: np.ndarray) -> None:
  """A 16-bit PNG written by hand (Pillow writes 16-bit grey only through mode I;16)."""
  import struct
  import zlib
  h, w, c = arr.shape
  raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

  def chunk(tag, data):
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

  with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _make_file(ctx: Ctx, name: str) -> str:
  from PIL import Image
  path = ctx.path(name)
  if name == "grey16.png":
    _png16(path, np.full((6, 6, 1), 30000, np.uint16))
  elif name == "rgb16.png":
    _png16(path, np.full((6, 6, 3), 30000, np.uint16))
  elif name == "clear_red.png":  # fully transparent red
    Image.new("RGBA", (6, 6), (255, 0, 0, 0)).save(path)
  elif name == "opaque_red.png":
    Image.new("RGBA", (6, 6), (255, 0, 0, 255)).save(path)
  elif name == "photo.jpg":
    noise = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=90)
  elif name == "zeroed_middle.jpg":  # 2000 bytes in the middle of the scan zeroed
    raw = open(ctx.file("photo.jpg"), "rb").read()
    n = len(raw) // 2
    open(path, "wb").write(raw[:n] + b"\0" * 2000 + raw[n + 2000:])
  elif name == "truncated.jpg":
    raw = open(ctx.file("photo.jpg"), "rb").read()
    open(path, "wb").write(raw[:len(raw) // 2])
  elif name == "empty.jpg":
    open(path, "wb").close()
  elif name == "text.png":
    open(path, "w").write("not an image\n")
  elif name == "folder":
    os.makedirs(path)
    for i in range(3):
      Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(os.path.join(path, f"n0{i}_x.png"))
  elif name == "empty_folder":
    os.makedirs(path)
  elif name.startswith("weights_"):
    _make_weights(path, name)
  else:
    raise KeyError(name)
  return path


def _td_tensors() -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file
  import fvjax
  return dict(load_file(os.path.join(os.path.dirname(fvjax.__file__), "weights",
                                     "tiny_darknet.safetensors")))


def _make_weights(path: str, name: str) -> None:
  from safetensors.numpy import save_file
  flat = _td_tensors()
  first = sorted(flat)[0]
  if name == "weights_valid.npz":
    np.savez(path, **flat)
  elif name == "weights_missing.npz":
    np.savez(path, **{k: v for k, v in flat.items() if k != first})
  elif name == "weights_f16.safetensors":
    save_file({k: v.astype(np.float16) for k, v in flat.items()}, path)
  elif name == "weights_bf16.safetensors":
    import ml_dtypes
    save_file({k: v.astype(ml_dtypes.bfloat16) for k, v in flat.items()}, path)
  elif name == "weights_nan.safetensors":
    flat[first] = flat[first].copy()
    flat[first].reshape(-1)[3] = np.nan
    save_file(flat, path)
  elif name == "weights_int.safetensors":
    flat[first] = flat[first].astype(np.int32)
    save_file(flat, path)
  elif name == "weights_text.safetensors":
    open(path, "w").write("hello")
  elif name == "weights_shape.safetensors":
    flat[first] = flat[first][..., :1]
    save_file(flat, path)
  else:
    raise KeyError(name)


# -- the cases ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Bad:
  """``call(ctx)`` must raise `FvjaxError` naming ``names`` (a substring of the message)."""
  id: str
  call: Callable[[Ctx], Any]
  names: str


@dataclasses.dataclass(frozen=True)
class Cli:
  """``fvjax <argv>`` must exit 2 with one stderr line naming ``names``."""
  id: str
  argv: Callable[[Ctx], list[str]]
  names: str


@dataclasses.dataclass(frozen=True)
class Good:
  """``call(ctx)`` must return a value for which ``check(value)`` is true."""
  id: str
  call: Callable[[Ctx], Any]
  check: Callable[[Any], bool]


def _key():
  import jax
  return jax.random.key(0)


def _fv():
  import fvjax
  return fvjax


def _obj():
  import fvjax
  return fvjax.objectives


def _small_detector():
  return _fv().reliability.Detector(features=(4,), input_size=8)


def _render_clf(c: Ctx, objective=None, **kwargs):
  """`fvjax.render` on the tiny classifier; every case fails in validation."""
  args = dict(key=_key(), steps=2, size=16, progress=False)
  args.update(kwargs)
  return _fv().render(c.clf, objective if objective is not None
                      else _obj().channel("conv2", 0), **args)


# Image-taking APIs, each called with the bad images ``x`` on the tiny classifier.
def _api_calls():
  def fv():
    return _fv()

  return {
      "saliency": lambda c, x: fv().attribution.saliency(c.clf, x, 1),
      "gradient_x_input": lambda c, x: fv().attribution.gradient_x_input(c.clf, x, 1),
      "guided_backprop": lambda c, x: fv().attribution.guided_backprop(c.clf, x, 1),
      "occlusion": lambda c, x: fv().attribution.occlusion(c.clf, x, 1, window=8, stride=8),
      "meaningful_perturbation": lambda c, x: fv().attribution.meaningful_perturbation(
          _key(), c.clf, x, 1, steps=2, mask_size=4),
      "deletion_game": lambda c, x: fv().attribution.deletion_game(
          c.clf, x, 1, np.ones(np.shape(x)[:3], np.float32)),
      "dataset_examples": lambda c, x: fv().dataset_examples(c.clf, "conv2", x, k=1,
                                                             progress=False),
      "layer_activations": lambda c, x: fv().reliability.layer_activations(c.clf, x, ["conv2"]),
      "natural_statistics": lambda c, x: fv().reliability.natural_statistics(
          c.clf, "conv2", x, path_layers=["conv1"]),
      "trust_report": lambda c, x: fv().reliability.trust_report(
          c.clf, "conv2", 0, x, key=_key(), visualizations=c.images[:1], top_k=1),
      "classify": lambda c, x: fv().reliability.classify(c.clf, x),
      "detector_logits": lambda c, x: fv().reliability.detector_logits(
          c.detector, x, detector=_small_detector()),
      "conv_module_input": lambda c, x: fv().reliability.conv_module_input(c.clf, "conv2", x),
      "minimal_distortion": lambda c, x: fv().adversarial.minimal_distortion(
          c.clf, None, x, np.ones(len(x), np.int32), steps=1),
  }


_BAD_IMAGES = {  # kind -> what the message must name
    "uint8": "uint8", "uint16": "uint16", "float255": "255", "nan": "non-finite",
    "inf": "non-finite",
    "signed": "-1", "wide": "-500", "channels_first": "(4, 3, 16, 16)", "empty": "(0, 16, 16, 3)",
}
_SKIP = {  # (api, kind) pairs where the kind is not bad input for that api
    ("dataset_examples", "empty"),  # an empty array is refused with its own message below
    ("detector_logits", "empty"),  # zero images, zero logits: see the Good cases
    ("classify", "empty"),
    ("minimal_distortion", "channels_first"),  # any [N, ...] examples for a logits_fn
}


def _image_cases() -> list:
  cases = []
  for api, call in _api_calls().items():
    for kind, names in _BAD_IMAGES.items():
      if (api, kind) in _SKIP:
        continue
      cases.append(Bad(f"{api}-{kind}", lambda c, call=call, kind=kind:
                       call(c, c.bad_images(kind)), names))
  return cases


def _api_cases() -> list:
  fv, O = _fv, _obj
  load_image = lambda *a, **k: fv().data.load_image(*a, **k)
  image_folder = lambda *a, **k: fv().data.image_folder(*a, **k)
  return [
      # -- image files ---------------------------------------------------------------------
      Good("png16-grey-scaled", lambda c: load_image(c.file("grey16.png")),
           lambda v: abs(float(v[0, 0, 0]) - 30000 / 65535) < 1e-6 and v.shape == (6, 6, 3)),
      Good("png16-rgb-scaled", lambda c: load_image(c.file("rgb16.png")),
           lambda v: abs(float(v[0, 0, 0]) - 30000 / 65535) < 2 / 255),
      Good("png16-resized", lambda c: load_image(c.file("grey16.png"), 3),
           lambda v: abs(float(v.mean()) - 30000 / 65535) < 1e-4),
      Bad("png-transparent", lambda c: load_image(c.file("clear_red.png")), "transparent"),
      Bad("png-transparent-folder", lambda c: image_folder(
          os.path.dirname(c.file("clear_red.png")), 8, files=["clear_red.png"]), "clear_red"),
      Good("png-transparent-on-white", lambda c: load_image(c.file("clear_red.png"),
                                                            background=1.0),
           lambda v: np.allclose(v, 1.0)),
      Good("png-transparent-on-black", lambda c: load_image(c.file("clear_red.png"),
                                                            background=(0, 0, 0)),
           lambda v: np.allclose(v, 0.0)),
      Good("png-opaque-alpha", lambda c: load_image(c.file("opaque_red.png")),
           lambda v: np.allclose(v[..., 0], 1) and np.allclose(v[..., 1:], 0)),
      Bad("background-2", lambda c: load_image(c.file("clear_red.png"), background=2.0), "2.0"),
      Bad("background-str", lambda c: load_image(c.file("clear_red.png"), background="white"),
          "white"),
      Bad("background-pair", lambda c: load_image(c.file("clear_red.png"),
                                                  background=(1, 1)), "(1, 1)"),
      Bad("jpeg-zeroed-middle", lambda c: load_image(c.file("zeroed_middle.jpg")),
          "zeroed_middle.jpg"),
      Bad("jpeg-truncated", lambda c: load_image(c.file("truncated.jpg")), "truncated.jpg"),
      Bad("jpeg-empty", lambda c: load_image(c.file("empty.jpg")), "empty.jpg"),
      Bad("png-text", lambda c: load_image(c.file("text.png")), "text.png"),
      Bad("image-missing", lambda c: load_image(c.path("nope.png")), "nope.png"),
      Bad("image-is-folder", lambda c: load_image(c.file("folder")), "folder"),
      Bad("image-size-0", lambda c: load_image(c.file("photo.jpg"), 0), "0"),
      Bad("image-size-neg", lambda c: load_image(c.file("photo.jpg"), -3), "-3"),
      Bad("image-size-float", lambda c: load_image(c.file("photo.jpg"), 2.5), "2.5"),
      Bad("image-size-pair0", lambda c: load_image(c.file("photo.jpg"), (0, 4)), "(0, 4)"),
      Bad("folder-is-file", lambda c: image_folder(c.file("photo.jpg")), "is a file"),
      Bad("folder-missing", lambda c: image_folder(c.path("nowhere")), "nowhere"),
      Bad("folder-empty", lambda c: image_folder(c.file("empty_folder")), "no images"),
      Bad("folder-limit-neg", lambda c: image_folder(c.file("folder"), 8, limit=-1), "-1"),
      Bad("folder-limit-0", lambda c: image_folder(c.file("folder"), 8, limit=0), "limit"),
      Bad("folder-limit-float", lambda c: image_folder(c.file("folder"), 8, limit=1.5), "1.5"),
      Bad("folder-limit-str", lambda c: image_folder(c.file("folder"), 8, limit="2"), "'2'"),
      Bad("folder-size-0", lambda c: image_folder(c.file("folder"), 0), "0"),
      Good("folder-limit-2", lambda c: image_folder(c.file("folder"), 8, limit=2),
           lambda v: v.names == ("n00_x.png", "n01_x.png")),
      # -- objectives ----------------------------------------------------------------------
      Bad("channel-1.5", lambda c: O().channel("conv2", 1.5), "1.5"),
      Bad("channel-empty", lambda c: O().channel("conv2", np.arange(0)), "empty"),
      Bad("channel-neg", lambda c: O().channel("conv2", -1), "-1"),
      Bad("channel-str", lambda c: O().channel("conv2", "3"), "'3'"),
      Bad("channel-2d", lambda c: O().channel("conv2", [[1, 2]]), "(1, 2)"),
      Bad("channel-float-array", lambda c: O().channel("conv2", np.array([1.0, 2.0])),
          "float64"),
      Bad("channel-out-of-range", lambda c: _render_clf(c, O().channel("conv2", 8)), "8"),
      Bad("channel-unknown-layer", lambda c: _render_clf(c, O().channel("nope", 0)), "nope"),
      Bad("neuron-500", lambda c: _render_clf(c, O().neuron("conv2", 3, y=500, x=500)), "500"),
      Bad("neuron-x-edge", lambda c: _render_clf(c, O().neuron("conv2", 3, y=0, x=8),
                                                 transforms=fv().transforms.identity()), "x=8"),
      Bad("neuron-neg", lambda c: O().neuron("conv2", 3, y=-1), "-1"),
      Bad("neuron-float", lambda c: O().neuron("conv2", 3, x=1.5), "1.5"),
      Bad("neuron-1.5", lambda c: O().neuron("conv2", 1.5), "1.5"),
      Bad("direction-neuron-500", lambda c: _render_clf(
          c, O().direction_neuron("conv2", np.ones(8), y=500)), "500"),
      Bad("class-99", lambda c: _render_clf(c, O().class_logit(99)), "99"),
      Bad("class-neg", lambda c: O().class_logit(-1), "-1"),
      Bad("class-2.0", lambda c: O().class_probability(2.0), "2.0"),
      Bad("direction-length", lambda c: _render_clf(c, O().direction("conv2", np.ones(5))),
          "length 5"),
      Bad("objective-str", lambda c: _render_clf(c, "channel:conv2:0"), "'channel:conv2:0'"),
      Bad("objective-lambda", lambda c: _render_clf(c, lambda acts: acts["conv2"].mean()),
          "function"),
      Bad("objective-inf-factor", lambda c: float("1e400") * O().channel("conv2", 0), "inf"),
      Bad("objective-nan-factor", lambda c: O().channel("conv2", 0) * float("nan"), "nan"),
      Bad("objective-plus-3", lambda c: O().channel("conv2", 0) + 3, "3"),
      Bad("objective-times-str", lambda c: O().channel("conv2", 0) * "2", "'2'"),
      # -- render ---------------------------------------------------------------------------
      Bad("render-key-0", lambda c: _render_clf(c, key=0), "0"),
      Bad("render-key-none", lambda c: _render_clf(c, key=None), "None"),
      Bad("render-key-str", lambda c: _render_clf(c, key="seed"), "seed"),
      Bad("render-batch-0", lambda c: _render_clf(c, batch=0), "0"),
      Bad("render-batch-neg", lambda c: _render_clf(c, batch=-2), "-2"),
      Bad("render-batch-float", lambda c: _render_clf(c, batch=1.5), "1.5"),
      Bad("render-size-0", lambda c: _render_clf(c, size=0), "0"),
      Bad("render-size-00", lambda c: _render_clf(c, size=(0, 0)), "(0, 0)"),
      Bad("render-size-float", lambda c: _render_clf(c, size=16.5), "16.5"),
      Bad("render-size-1tuple", lambda c: _render_clf(c, size=(16,)), "(16,)"),
      Bad("render-size-100000", lambda c: _render_clf(c, size=100000), "100000"),
      # 64 units at 8192 px: the activations alone are 2.4 GiB per unit (estimate refused).
      Bad("render-size-memory", lambda c: _render_clf(c, size=8192, objective=O().channel(
          "conv2", np.arange(8).repeat(8))), "GiB"),
      Bad("render-steps-0", lambda c: _render_clf(c, steps=0), "0"),
      Bad("render-steps-neg", lambda c: _render_clf(c, steps=-1), "-1"),
      Bad("render-steps-float", lambda c: _render_clf(c, steps=2.5), "2.5"),
      Bad("render-snapshot-neg", lambda c: _render_clf(c, snapshots=[-1]), "-1"),
      Bad("render-snapshot-late", lambda c: _render_clf(c, snapshots=[99]), "99"),
      Bad("render-hyper-unknown", lambda c: _render_clf(c, hyperparams={"nope": 1.0}), "nope"),
      Bad("render-hyper-nan", lambda c: _render_clf(
          c, hyperparams={"learning_rate": float("nan")}), "nan"),
      Bad("render-settings-str", lambda c: _render_clf(c, settings="lucid"), "lucid"),
      Bad("render-param-str", lambda c: _render_clf(c, param="fourier"), "fourier"),
      Bad("render-transforms-str", lambda c: _render_clf(c, transforms="standard"),
          "standard"),
      Bad("render-model-str", lambda c: fv().render("tiny-darknet", O().channel("x", 0),
                                                    key=_key()), "str"),
      Bad("adam-nan", lambda c: fv().optvis.Adam(float("nan")), "nan"),
      Bad("adam-bool", lambda c: fv().optvis.Adam(True), "True"),
      Bad("sgd-inf", lambda c: fv().optvis.SGD(float("inf")), "inf"),
      # -- transforms and parameterizations ----------------------------------------------
      Bad("pad-neg", lambda c: fv().transforms.pad(-4), "-4"),
      Bad("pad-nan-value", lambda c: fv().transforms.pad(4, value=float("nan")), "nan"),
      Bad("jitter-neg", lambda c: fv().transforms.jitter(-1), "-1"),
      Bad("scale-empty", lambda c: fv().transforms.random_scale([]), "[]"),
      Bad("rotate-empty", lambda c: fv().transforms.random_rotate([]), "[]"),
      Bad("scale-zero", lambda c: fv().transforms.random_scale([0.0]), "0"),
      Bad("scale-nan", lambda c: fv().transforms.random_scale([1.0, float("nan")]), "nan"),
      Bad("rotate-str", lambda c: fv().transforms.random_rotate("10"), "'10'"),
      Bad("param-size-0", lambda c: fv().param.image(0), "0"),
      Bad("param-size-neg", lambda c: fv().param.fourier(-8), "-8"),
      Bad("param-batch-0", lambda c: fv().param.image(16, batch=0), "0"),
      Bad("param-sd-nan", lambda c: fv().param.image(16, sd=float("nan")), "nan"),
      Bad("param-decay-inf", lambda c: fv().param.image(16, decay=float("inf")), "inf"),
      Bad("cppn-hidden-0", lambda c: fv().param.cppn(16, hidden=0), "0"),
      # -- models and weights ------------------------------------------------------------
      Bad("from-fn-size-00", lambda c: fv().Model.from_fn(
          lambda p, x: {"logits": x.mean((1, 2))}, {}, input_size=(0, 0)), "(0, 0)"),
      Bad("from-fn-size-neg", lambda c: fv().Model.from_fn(
          lambda p, x: {"logits": x.mean((1, 2))}, {}, input_size=(-1, 5)), "(-1, 5)"),
      Bad("from-fn-size-int", lambda c: fv().Model.from_fn(
          lambda p, x: {"logits": x.mean((1, 2))}, {}, input_size=224), "224"),
      Bad("from-fn-size-float", lambda c: fv().Model.from_fn(
          lambda p, x: {"logits": x.mean((1, 2))}, {}, input_size=(2.5, 3)), "2.5"),
      Bad("from-flax-not-module", lambda c: fv().Model.from_flax("resnet", {}), "str"),
      Bad("zoo-unknown", lambda c: fv().zoo.load("vgg99"), "vgg99"),
      Bad("weights-folder", lambda c: fv().zoo.load("tiny-darknet", weights=c.file("folder")),
          "folder"),
      Bad("weights-missing", lambda c: fv().zoo.load("tiny-darknet", weights=c.path("w.st")),
          "w.st"),
      Bad("weights-text", lambda c: fv().zoo.load(
          "tiny-darknet", weights=c.file("weights_text.safetensors")), "weights_text"),
      Bad("weights-npz-missing-tensor", lambda c: fv().zoo.load(
          "tiny-darknet", weights=c.file("weights_missing.npz")), "missing tensors"),
      Bad("weights-nan", lambda c: fv().zoo.load(
          "tiny-darknet", weights=c.file("weights_nan.safetensors")), "non-finite"),
      Bad("weights-int", lambda c: fv().zoo.load(
          "tiny-darknet", weights=c.file("weights_int.safetensors")), "int32"),
      Bad("weights-shape", lambda c: fv().zoo.load(
          "tiny-darknet", weights=c.file("weights_shape.safetensors")), "shape"),
      Good("weights-npz-valid", lambda c: fv().zoo.load(
          "tiny-darknet", weights=c.file("weights_valid.npz")),
          lambda m: _same_params(m, _fv().zoo.load("tiny-darknet"))),
      Good("weights-f16-converted", lambda c: _load_warned(c.file("weights_f16.safetensors")),
           lambda got: got[1] and _all_float32(got[0])),
      Good("weights-bf16-converted", lambda c: _load_warned(c.file("weights_bf16.safetensors")),
           lambda got: got[1] and _all_float32(got[0])),
      # -- adversarial -----------------------------------------------------------------------
      Bad("attack-class-99", lambda c: fv().adversarial.minimal_distortion(
          c.clf, None, c.images[:2], np.array([1, 99]), steps=1), "99"),
      Bad("attack-class-neg", lambda c: fv().adversarial.minimal_distortion(
          c.clf, None, c.images[:2], np.array([-1, 3]), steps=1), "-1"),
      Bad("attack-class-float", lambda c: fv().adversarial.minimal_distortion(
          c.clf, None, c.images[:2], np.array([1.5, 3.0]), steps=1), "float"),
      Bad("attack-class-count", lambda c: fv().adversarial.minimal_distortion(
          c.clf, None, c.images[:2], np.array([1]), steps=1), "(1,)"),
      Bad("attack-steps-0", lambda c: fv().adversarial.minimal_distortion(
          c.clf, None, c.images[:2], np.array([1, 2]), steps=0), "steps=0"),
      Bad("attack-c-neg", lambda c: fv().adversarial.minimal_distortion(
          c.clf, None, c.images[:2], np.array([1, 2]), c_init=-1.0, steps=1), "-1"),
      Bad("attack-backend", lambda c: fv().adversarial.minimal_distortion(
          c.clf, None, c.images[:2], np.array([1, 2]), backend="adam", steps=1), "adam"),
      Good("classify-empty", lambda c: fv().reliability.classify(c.clf, c.images[:0]),
           lambda v: np.shape(v) == (0, 10)),
      Good("detector-empty", lambda c: fv().reliability.detector_logits(
          c.detector, c.images[:0], detector=_small_detector()), lambda v: np.shape(v) == (0,)),
      Bad("predict-nan", lambda c: fv().adversarial.predict(
          fv().adversarial.logits_fn_of(c.clf)[0], c.clf.params, c.bad_images("nan")),
          "non-finite"),
      Bad("predict-uint8", lambda c: fv().adversarial.predict(
          fv().adversarial.logits_fn_of(c.clf)[0], c.clf.params, c.bad_images("uint8")),
          "uint8"),
      # -- attribution arguments -----------------------------------------------------------
      Bad("saliency-class-99", lambda c: fv().attribution.saliency(c.clf, c.images, 99), "99"),
      Bad("saliency-class-1.5", lambda c: fv().attribution.saliency(c.clf, c.images, 1.5),
          "1.5"),
      Bad("saliency-score", lambda c: fv().attribution.saliency(c.clf, c.images, 1,
                                                                score="odds"), "odds"),
      Bad("saliency-one-image", lambda c: fv().attribution.saliency(c.clf, c.images[0], 1),
          "(16, 16, 3)"),
      Bad("occlusion-window-0", lambda c: fv().attribution.occlusion(c.clf, c.images, 1,
                                                                     window=0), "0"),
      Bad("natural-views-rank4", lambda c: fv().reliability.natural_views(
          _key(), c.images, 8, 2), "(4, 16, 16, 3)"),
      Bad("natural-views-uint8", lambda c: fv().reliability.natural_views(
          _key(), c.bad_images("uint8")[0], 8, 2), "uint8"),
      Bad("picture-template-wide", lambda c: fv().reliability.picture_template(
          c.bad_images("wide")[0], 8), "-500"),
      # -- dataset examples ----------------------------------------------------------------
      Bad("examples-k-0", lambda c: fv().dataset_examples(c.clf, "conv2", c.images, k=0,
                                                          progress=False), "0"),
      Bad("examples-k-float", lambda c: fv().dataset_examples(c.clf, "conv2", c.images,
                                                              k=1.5, progress=False), "1.5"),
      Bad("examples-k-too-many", lambda c: fv().dataset_examples(c.clf, "conv2", c.images,
                                                                 k=9, progress=False), "9"),
      Bad("examples-batch-0", lambda c: fv().dataset_examples(
          c.clf, "conv2", c.images, k=1, batch_size=0, progress=False), "0"),
      Bad("examples-reduce", lambda c: fv().dataset_examples(
          c.clf, "conv2", c.images, k=1, reduce="median", progress=False), "median"),
      Bad("examples-layer", lambda c: fv().dataset_examples(c.clf, "conv9", c.images, k=1,
                                                            progress=False), "conv9"),
      Bad("examples-empty", lambda c: fv().dataset_examples(c.clf, "conv2", c.images[:0], k=1,
                                                            progress=False), "(0, 16, 16, 3)"),
      Bad("examples-str", lambda c: fv().dataset_examples(c.clf, "conv2", "photos/", k=1,
                                                          progress=False), "str"),
      # -- trust and paths -----------------------------------------------------------------
      Bad("trust-unit-float", lambda c: fv().reliability.trust_report(
          c.clf, "conv2", 1.5, c.images, key=_key(), visualizations=c.images[:1]), "1.5"),
      Bad("trust-unit-range", lambda c: fv().reliability.trust_report(
          c.clf, "conv2", 8, c.images, key=_key(), visualizations=c.images[:1]), "8"),
      Bad("trust-vis-uint8", lambda c: fv().reliability.trust_report(
          c.clf, "conv2", 1, c.images, key=_key(), visualizations=c.bad_images("uint8")[:1],
          top_k=1), "uint8"),
      Bad("trust-too-few", lambda c: fv().reliability.trust_report(
          c.clf, "conv2", 1, c.images, key=_key(), visualizations=c.images[:1]), "top_k"),
      Bad("paths-reduction", lambda c: fv().reliability.layer_activations(
          c.clf, c.images, ["conv2"], how="median"), "median"),
      # -- sweep ----------------------------------------------------------------------------
      Bad("sweep-grid-unknown", lambda c: fv().sweep(c.clf, O().channel("conv2", 0), key=_key(),
                                                     grid={"nope": [1.0]}, steps=2, size=16,
                                                     progress=False), "nope"),
      Bad("sweep-seed-0.5", lambda c: fv().sweep(c.clf, O().channel("conv2", 0), key=_key(),
                                                 grid={"seed": [0.5, 0.7]}, steps=2, size=16,
                                                 progress=False), "0.5"),
      Bad("sweep-chunk-0", lambda c: fv().sweep(c.clf, O().channel("conv2", 0), key=_key(),
                                                grid={"learning_rate": [0.1]}, steps=2, size=16,
                                                settings_per_chunk=0, progress=False), "0"),
      Bad("sweep-grid-empty", lambda c: fv().sweep(c.clf, O().channel("conv2", 0), key=_key(),
                                                   grid={"learning_rate": []}, steps=2, size=16,
                                                   progress=False), "learning_rate"),
      Bad("sweep-lr-nan", lambda c: fv().sweep(c.clf, O().channel("conv2", 0), key=_key(),
                                               grid={"learning_rate": [float("nan")]}, steps=2,
                                               size=16, progress=False), "nan"),
  ]


def _same_params(a, b) -> bool:
  import jax
  return all(bool(np.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a.params),
                                                        jax.tree.leaves(b.params)))


def _all_float32(model) -> bool:
  import jax
  return all(np.asarray(x).dtype == np.float32 for x in jax.tree.leaves(model.params))


def _load_warned(path):
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = _fv().zoo.load("tiny-darknet", weights=path)
  return model, any("converted to float32" in str(w.message) for w in caught)


RENDER = ["render", "--layer", TD_LAYER, "--channels", "0:2", "--steps", "2", "--size", "32",
          "--no-progress"]
SWEEP = ["sweep", "--layer", TD_LAYER, "--channels", "0:2", "--steps", "2", "--size", "32",
         "--no-progress"]


def _cli_cases() -> list:
  r = lambda *extra: (lambda c: RENDER + list(extra) + ["--out", c.out()])
  s = lambda *extra: (lambda c: SWEEP + list(extra) + ["--out", c.out()])
  return [
      Cli("render-batch-0", r("--batch", "0"), "0"),
      Cli("render-batch-neg", r("--batch", "-2"), "-2"),
      Cli("render-batch-word", r("--batch", "four"), "four"),
      Cli("render-size-0", r("--size", "0"), "0"),
      Cli("render-size-100000", r("--size", "100000"), "100000"),
      Cli("render-size-memory", lambda c: ["render", "--layer", TD_LAYER, "--channels", "0:64",
                                           "--steps", "2", "--size", "3000", "--no-progress",
                                           "--out", c.out()], "GiB"),
      Cli("render-steps-0", r("--steps", "0"), "0"),
      Cli("render-steps-neg", r("--steps", "-5"), "-5"),
      Cli("render-snapshots-ab", r("--snapshots", "a,b"), "a,b"),
      Cli("render-snapshots-late", r("--snapshots", "5"), "5"),
      Cli("render-snapshots-neg", r("--snapshots", "-1"), "-1"),
      Cli("render-seed-huge", r("--seed", str(10**23)), str(10**23)),
      Cli("render-seed-neg", r("--seed", "-1"), "-1"),
      Cli("render-lr-nan", r("--lr", "nan"), "nan"),
      Cli("render-lr-neg", r("--lr", "-1"), "-1"),
      Cli("render-lr-0", r("--lr", "0"), "0"),
      Cli("render-lr-inf", r("--lr", "inf"), "inf"),
      Cli("render-channels-reversed", r("--channels", "5:2"), "5:2"),
      Cli("render-channels-word", r("--channels", "3:x"), "3:x"),
      Cli("render-channels-float", r("--channels", "1.5"), "1.5"),
      Cli("render-channels-range", r("--channels", "999"), "999"),
      Cli("render-channels-neg", r("--channels", "-1"), "-1"),
      Cli("render-channels-empty", r("--channels", ""), "''"),
      Cli("render-layer-unknown", lambda c: ["render", "--layer", "nope", "--out", c.out()],
          "nope"),
      Cli("render-nothing", lambda c: ["render", "--out", c.out()], "--layer"),
      Cli("render-model-unknown", lambda c: ["render", "--model", "vgg99", "--layer", "x",
                                             "--out", c.out()], "vgg99"),
      Cli("render-weights-folder", r("--weights", "{folder}"), "folder"),
      Cli("render-weights-missing", r("--weights", "{missing}"), "missing.safetensors"),
      Cli("render-weights-text", r("--weights", "{text}"), "weights_text"),
      Cli("render-weights-nan", r("--weights", "{nan}"), "non-finite"),
      Cli("render-directions-0", lambda c: ["render", "--layer", TD_LAYER, "--directions", "0",
                                            "--out", c.out()], "0"),
      Cli("render-directions-neg", lambda c: ["render", "--layer", TD_LAYER, "--directions",
                                              "-3", "--out", c.out()], "-3"),
      Cli("render-objective-unknown", lambda c: ["render", "--objective", "bogus:x",
                                                 "--out", c.out()], "bogus"),
      Cli("render-objective-arity", lambda c: ["render", "--objective", f"channel:{TD_LAYER}",
                                               "--out", c.out()], "channel"),
      Cli("render-objective-inf", lambda c: ["render", "--objective",
                                             f"1e400*channel:{TD_LAYER}:3", "--out", c.out()],
          "1e400"),
      Cli("render-objective-float", lambda c: ["render", "--objective",
                                               f"channel:{TD_LAYER}:1.5", "--out", c.out()],
          "1.5"),
      Cli("render-objective-layer", lambda c: ["render", "--objective", "channel:nope:3",
                                               "--out", c.out()], "nope"),
      Cli("render-objective-diversity", lambda c: ["render", "--objective",
                                                   f"diversity:{TD_LAYER}", "--out", c.out()],
          "--batch"),
      Cli("render-objective-neuron-500", lambda c: RENDER[:1] + [
          "--objective", f"neuron:{TD_LAYER}:3:500:500", "--steps", "2", "--size", "32",
          "--no-progress", "--out", c.out()], "500"),
      Cli("render-objective-syntax", lambda c: ["render", "--objective", f"channel:{TD_LAYER}:3 +",
                                                "--out", c.out()], "+"),
      Cli("render-out-file", lambda c: RENDER + ["--out", c.file("photo.jpg")], "photo.jpg"),
      Cli("render-out-under-file", lambda c: RENDER + [
          "--out", os.path.join(c.file("photo.jpg"), "sub")], "photo.jpg"),
      Cli("render-preset-unknown", r("--preset", "fast"), "fast"),
      Cli("render-param-unknown", r("--param", "vqgan"), "vqgan"),
      Cli("sweep-seeds-nan", s("--seeds", "nan"), "nan"),
      Cli("sweep-seeds-half", s("--seeds", "0.5,0.7"), "0.5"),
      Cli("sweep-seeds-neg", s("--seeds", "-1"), "-1"),
      Cli("sweep-seeds-word", s("--seeds", "a"), "'a'"),
      Cli("sweep-seeds-huge", s("--seeds", str(2**40)), str(2**40)),
      Cli("sweep-seed-huge", s("--seed", str(10**23)), str(10**23)),
      Cli("sweep-lr-word", s("--learning-rate", "fast"), "fast"),
      Cli("sweep-lr-nan", s("--learning-rate", "nan"), "nan"),
      Cli("sweep-lr-neg", s("--learning-rate", "-0.1"), "-0.1"),
      Cli("sweep-lr-empty", s("--learning-rate", ","), "','"),
      Cli("sweep-decay-inf", s("--decay", "inf"), "inf"),
      Cli("sweep-strength-nan", s("--transform-strength", "nan"), "nan"),
      Cli("sweep-tv-word", s("--tv-weight", "x"), "'x'"),
      Cli("sweep-chunk-0", s("--settings-per-chunk", "0"), "0"),
      Cli("sweep-chunk-neg", s("--settings-per-chunk", "-1"), "-1"),
      Cli("sweep-steps-0", s("--steps", "0"), "0"),
      Cli("sweep-size-0", s("--size", "0"), "0"),
      Cli("sweep-size-100000", s("--size", "100000"), "100000"),
      Cli("sweep-channels-reversed", s("--channels", "5:2"), "5:2"),
      Cli("sweep-channels-range", s("--channels", "300"), "300"),
      Cli("sweep-layer-unknown", lambda c: ["sweep", "--layer", "nope", "--out", c.out()],
          "nope"),
      Cli("sweep-weights-folder", s("--weights", "{folder}"), "folder"),
      Cli("layers-model-unknown", lambda c: ["layers", "--model", "vgg99"], "vgg99"),
      Cli("layers-weights-folder", lambda c: ["layers", "--weights", c.file("folder")],
          "folder"),
      Cli("layers-weights-missing", lambda c: ["layers", "--weights", c.path("none.npz")],
          "none.npz"),
      Cli("layers-weights-npz-missing", lambda c: ["layers", "--weights",
                                                   c.file("weights_missing.npz")],
          "missing tensors"),
  ]


def _resolve(c: Ctx, argv: list[str]) -> list[str]:
  names = {"{folder}": lambda: c.file("folder"),
           "{missing}": lambda: c.path("missing.safetensors"),
           "{text}": lambda: c.file("weights_text.safetensors"),
           "{nan}": lambda: c.file("weights_nan.safetensors")}
  return [names[a]() if a in names else a for a in argv]


CASES = (_image_cases() + _api_cases()
         + [dataclasses.replace(c, id="cli-" + c.id) for c in _cli_cases()])


# -- running one case: the census's classification -------------------------------------------
def run_cli(argv: list[str]) -> tuple[int | None, str, BaseException | None]:
  """``(exit code, stderr, exception)`` of ``fvjax`` in this process."""
  from fvjax._src import cli
  err = io.StringIO()
  code, raised = None, None
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      code = cli.main(argv)
    except SystemExit as exit_:
      code = exit_.code
    except Exception as e:  # pylint: disable=broad-except  # a raw traceback: counted
      raised = e
  return code, err.getvalue(), raised


def classify(case, ctx: Ctx) -> tuple[str, str]:
  """``(outcome, detail)``: outcome is "clean" (FvjaxError / exit 2 in one line naming the
  value), "unclear" (a clean error that does not name it), "traceback" (any other exception)
  or "silent" (no error for bad input, or a wrong result for an edge input); "correct" for a
  `Good` case that behaves."""
  import fvjax
  if isinstance(case, Cli):
    code, err, raised = run_cli(_resolve(ctx, case.argv(ctx)))
    if raised is not None:
      return "traceback", f"{type(raised).__name__}: {raised}"[:300]
    lines = [l for l in err.strip().splitlines() if l.strip()]
    if code == 2:
      named = bool(lines) and case.names in lines[-1] and "error:" in lines[-1]
      one = len(lines) == 1 or lines[0].startswith("usage:")  # argparse: usage, then one line
      clean = named and one and "Traceback" not in err
      return ("clean" if clean else "unclear"), (lines[-1] if lines else "")[:300]
    return "silent", f"exit {code}: {err.strip()[-200:]}"
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      value = case.call(ctx)
  except fvjax.FvjaxError as e:
    if isinstance(case, Good):
      return "unclear", f"FvjaxError on good input: {e}"[:300]
    return ("clean" if case.names in str(e) else "unclear"), str(e)[:300]
  except Exception as e:  # pylint: disable=broad-except
    return "traceback", f"{type(e).__name__}: {e}"[:300]
  if isinstance(case, Good):
    try:
      ok = bool(case.check(value))
    except Exception:  # pylint: disable=broad-except
      ok = False
    return ("correct" if ok else "silent"), ""
  return "silent", f"returned {type(value).__name__}"


# -- the tests ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
  return Ctx(str(tmp_path_factory.mktemp("bad_inputs")))


def test_the_catalogue_is_large():
  bad = [c for c in CASES if not isinstance(c, Good)]
  assert len(bad) >= 200, len(bad)
  assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c, Bad)], ids=lambda c: c.id)
def test_api_bad_input_is_one_clear_error(case, ctx):
  import fvjax
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with pytest.raises(fvjax.FvjaxError) as info:
      case.call(ctx)
  assert case.names in str(info.value), str(info.value)


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c, Good)], ids=lambda c: c.id)
def test_edge_input_is_read_correctly(case, ctx):
  assert case.check(case.call(ctx))


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c, Cli)], ids=lambda c: c.id)
def test_cli_bad_input_exits_2_in_one_line(case, ctx, capsys):
  from fvjax._src import cli
  with pytest.raises(SystemExit) if case.id in _ARGPARSE else contextlib.nullcontext() as info:
    code = cli.main(_resolve(ctx, case.argv(ctx)))
  code = info.value.code if case.id in _ARGPARSE else code
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2, err
  if case.id in _ARGPARSE:  # argparse's own refusal: its usage, then one error line
    assert err[0].startswith("usage:") and "error:" in err[-1], err
  else:
    assert len(err) == 1 and err[0].startswith("fvjax "), err
  assert case.names in err[-1], err


_ARGPARSE = {"cli-render-batch-word", "cli-render-preset-unknown", "cli-render-param-unknown"}


def test_16bit_grey_png_keeps_its_levels(ctx):
  """Two 16-bit levels 1/257 apart (the same 8-bit value) stay apart."""
  path = ctx.path("levels16.png")
  _png16(path, np.array([[[30000], [30100]]], np.uint16))
  image = _fv().data.load_image(path)
  np.testing.assert_allclose(image[0, :, 0], [30000 / 65535, 30100 / 65535], atol=1e-7)


def test_alpha_is_composited_per_pixel(ctx):
  from PIL import Image
  path = ctx.path("half.png")
  Image.new("RGBA", (2, 1), (255, 0, 0, 128)).save(path)
  image = _fv().data.load_image(path, background=(0.0, 0.0, 1.0))
  np.testing.assert_allclose(image[0, 0], [128 / 255, 0, 1 - 128 / 255], atol=1e-6)


@pytest.mark.parametrize("argv", [  # two that fail before the model loads: ~5 s each
    ["render", "--seed", str(10**23), "--layer", TD_LAYER, "--out", "{out}"],
    ["sweep", "--layer", TD_LAYER, "--seeds", "nan", "--out", "{out}"],
])
def test_real_process_prints_one_line_and_no_traceback(argv, tmp_path):
  """Through the installed entry point's code path in a fresh interpreter."""
  argv = [str(tmp_path / "o") if a == "{out}" else a for a in argv]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
      + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
  done = subprocess.run([sys.executable, "-m", "fvjax._src.cli", *argv], capture_output=True,
                        text=True, env=env, timeout=300)
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 2 and len(lines) == 1, done.stderr
  assert "Traceback" not in done.stderr and lines[0].startswith(f"fvjax {argv[0]}: error:")
  assert not (tmp_path / "o").exists()  # refused before --out was created


# -- faults: nothing computed is lost -----------------------------------------------------------
@pytest.mark.slow  # a real fvjax sweep process killed and resumed, ~25 s: CI runs it (-m slow)
def test_sweep_killed_with_sigkill_resumes_bit_identically(tmp_path):
  """``kill -9`` a running ``fvjax sweep`` once its first chunk is on disk; the re-run loads
  the finished chunks (no partial file is left: chunks are renamed into place) and computes
  the rest, giving the images of an uninterrupted run bit for bit."""
  import signal
  import time
  from fvjax._src import cli
  args = ["sweep", "--layer", TD_LAYER, "--channels", "0:2", "--steps", "8", "--size", "32",
          "--learning-rate", "0.01,0.02,0.03,0.05,0.08,0.1", "--settings-per-chunk", "1",
          "--no-progress"]
  killed = tmp_path / "killed"
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
      + os.environ.get("PYTHONPATH", "").split(os.pathsep)), FVJAX_CACHE_DIR="off")
  proc = subprocess.Popen([sys.executable, "-m", "fvjax._src.cli", *args, "--out", str(killed)],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  first = killed / "sweep_chunks" / "chunk_0000.npz"
  deadline = time.time() + 240
  while not first.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, "the sweep ended before it was killed"
  done = sorted(p.name for p in (killed / "sweep_chunks").iterdir())
  assert "chunk_0000.npz" in done and "chunk_0005.npz" not in done, done
  assert all(name.startswith("chunk_") and name.endswith(".npz") for name in done), done
  assert not (killed / "results.json").exists()
  assert cli.main(args + ["--out", str(killed)]) == 0
  resumed = json.loads((killed / "results.json").read_text())
  assert len(resumed["loaded_chunks"]) >= 1 and len(resumed["computed_chunks"]) >= 1
  fresh = tmp_path / "fresh"
  assert cli.main(args + ["--out", str(fresh)]) == 0
  with np.load(killed / "images.npz") as a, np.load(fresh / "images.npz") as b:
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["final"], b["final"])
