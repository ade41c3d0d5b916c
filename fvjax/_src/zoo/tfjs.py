"""Read Keras models saved in the TensorFlow.js layers format into Flax.

The format is a ``model.json`` (the Keras topology and a weights manifest) beside binary
little-endian weight shards. Supported: a chain of Conv2D, BatchNormalization, LeakyReLU,
ReLU / Activation('relu'), MaxPooling2D and GlobalAveragePooling2D layers, which covers
Darknet-style classifiers such as Tiny Darknet.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from fvjax._src.errors import FvjaxError

SUPPORTED = ("InputLayer", "Conv2D", "BatchNormalization", "LeakyReLU", "ReLU", "Activation",
             "MaxPooling2D", "GlobalAveragePooling2D")
_DTYPES = {"float32": np.float32, "int32": np.int32}


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """One Keras layer: its class, its name and the options the Flax module needs."""
  kind: str
  name: str
  options: tuple[tuple[str, Any], ...] = ()

  def get(self, key, default=None):
    return dict(self.options).get(key, default)


def read_weights(model_dir: str) -> dict[str, np.ndarray]:
  """All weight tensors of a TF.js model, by their Keras names (``layer/weight``)."""
  manifest = _read_json(model_dir)["weightsManifest"]
  tensors = {}
  for group in manifest:
    buffer = b"".join(_read_bytes(os.path.join(model_dir, p)) for p in group["paths"])
    offset = 0
    for entry in group["weights"]:
      dtype = _DTYPES.get(entry.get("dtype", "float32"))
      if dtype is None or "quantization" in entry:
        raise FvjaxError(f"weight {entry['name']!r}: unsupported dtype/quantization "
                         f"{entry.get('dtype')!r}; supported: {sorted(_DTYPES)} unquantized")
      count = int(np.prod(entry["shape"], dtype=np.int64))
      nbytes = count * np.dtype(dtype).itemsize
      if offset + nbytes > len(buffer):
        raise FvjaxError(f"weight shard of group {group['paths']} ends before tensor "
                         f"{entry['name']!r} (shape {entry['shape']}) is complete")
      tensors[entry["name"]] = np.frombuffer(buffer, dtype, count, offset).reshape(
          entry["shape"]).copy()
      offset += nbytes
  return tensors


def read_topology(model_dir: str) -> tuple[LayerSpec, ...]:
  """The Keras layer chain of a TF.js model as `LayerSpec`s, input to output."""
  config = _read_json(model_dir)["modelTopology"]["model_config"]["config"]
  specs, previous = [], None
  for layer in config["layers"]:
    kind, cfg = layer["class_name"], layer["config"]
    if kind not in SUPPORTED:
      raise FvjaxError(f"layer {layer['name']!r} has unsupported type {kind!r}; "
                       f"supported: {', '.join(SUPPORTED)}")
    inbound = [node[0] for nodes in layer.get("inbound_nodes", []) for node in nodes]
    if previous is not None and inbound != [previous]:
      raise FvjaxError(f"layer {layer['name']!r} takes {inbound}; only a chain of layers "
                       f"(each fed by the one before, {previous!r}) is supported")
    previous = layer["name"]
    if kind == "InputLayer":
      continue
    if kind == "Activation" and cfg["activation"] != "relu":
      raise FvjaxError(f"layer {layer['name']!r}: activation {cfg['activation']!r}; "
                       "supported: 'relu'")
    if kind == "Conv2D" and cfg.get("activation", "linear") != "linear":
      raise FvjaxError(f"layer {layer['name']!r}: fused activation {cfg['activation']!r}; "
                       "supported: 'linear'")
    keep = ("filters", "kernel_size", "strides", "padding", "use_bias", "epsilon", "alpha",
            "pool_size", "dilation_rate", "center", "scale")
    options = tuple((k, _freeze(cfg[k])) for k in keep if k in cfg)
    specs.append(LayerSpec(kind, layer["name"], options))
  return tuple(specs)


class KerasSequential(nn.Module):
  """A Flax module for a chain of Keras layers; submodules and activations keep Keras names.

  Input ``[B, H, W, C]``; output the last layer's activation (the logits for a classifier
  ending in global average pooling). Conv2D and BatchNormalization are submodules named as
  in Keras (their outputs are seen with ``capture_intermediates``); every other layer's
  output is sown into ``intermediates`` under its Keras name, so `fvjax.Model.from_flax`
  exposes all of them.
  """
  specs: Sequence[LayerSpec]

  @nn.compact
  def __call__(self, x):
    for spec in self.specs:
      if spec.kind == "Conv2D":
        x = nn.Conv(spec.get("filters"), tuple(spec.get("kernel_size")),
                    strides=tuple(spec.get("strides", (1, 1))),
                    kernel_dilation=tuple(spec.get("dilation_rate", (1, 1))),
                    padding=spec.get("padding", "valid").upper(),
                    use_bias=spec.get("use_bias", True), name=spec.name)(x)
      elif spec.kind == "BatchNormalization":
        x = nn.BatchNorm(use_running_average=True, epsilon=spec.get("epsilon", 1e-3),
                         use_bias=spec.get("center", True), use_scale=spec.get("scale", True),
                         name=spec.name)(x)
      elif spec.kind == "LeakyReLU":
        x = nn.leaky_relu(x, jnp.float32(spec.get("alpha", 0.3)))
      elif spec.kind in ("ReLU", "Activation"):
        x = nn.relu(x)
      elif spec.kind == "MaxPooling2D":
        pool = tuple(spec.get("pool_size", (2, 2)))
        x = nn.max_pool(x, pool, strides=tuple(spec.get("strides") or pool),
                        padding=spec.get("padding", "valid").upper())
      elif spec.kind == "GlobalAveragePooling2D":
        x = jnp.mean(x, axis=(1, 2))
      if spec.kind not in ("Conv2D", "BatchNormalization"):  # submodules are captured
        self.sow("intermediates", spec.name, x)
    return x


def to_flax_variables(specs: Sequence[LayerSpec], tensors: dict[str, np.ndarray]):
  """Map Keras weight names onto the variables of `KerasSequential` (or TinyDarknet)."""
  params, stats, used = {}, {}, set()

  def take(name):
    if name not in tensors:
      raise FvjaxError(f"weights file has no tensor {name!r}; it has: {', '.join(tensors)}")
    used.add(name)
    return np.asarray(tensors[name], np.float32)

  for spec in specs:
    if spec.kind == "Conv2D":
      params[spec.name] = {"kernel": take(f"{spec.name}/kernel")}
      if spec.get("use_bias", True):
        params[spec.name]["bias"] = take(f"{spec.name}/bias")
    elif spec.kind == "BatchNormalization":
      params[spec.name] = {}
      if spec.get("scale", True):
        params[spec.name]["scale"] = take(f"{spec.name}/gamma")
      if spec.get("center", True):
        params[spec.name]["bias"] = take(f"{spec.name}/beta")
      stats[spec.name] = {"mean": take(f"{spec.name}/moving_mean"),
                          "var": take(f"{spec.name}/moving_variance")}
  unused = sorted(set(tensors) - used)
  if unused:
    raise FvjaxError(f"weights file has tensors no layer uses: {', '.join(unused)}")
  return {"params": params, "batch_stats": stats}


def convert(model_dir: str):
  """Read a TF.js layers model: returns ``(specs, variables)`` for `KerasSequential`."""
  specs = read_topology(model_dir)
  return specs, to_flax_variables(specs, read_weights(model_dir))


def _freeze(value):
  return tuple(value) if isinstance(value, list) else value


def _read_json(model_dir: str) -> dict:
  path = os.path.join(model_dir, "model.json")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as err:
    raise FvjaxError(f"cannot read TF.js model file {path!r}: {err}") from err


def _read_bytes(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as err:
    raise FvjaxError(f"cannot read TF.js weight shard {path!r}: {err}") from err
