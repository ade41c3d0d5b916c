"""PyTorch state dicts -> Flax variables, read without unpickling untrusted data.

A state dict maps torch module paths to tensors (``layer1.0.conv1.weight``). The Flax
modules of this package name their submodules after the torch modules, so the variable
``params/layer1/0/conv1/kernel`` is the tensor ``layer1.0.conv1.weight``; layouts differ:

====================================  ===============================  ======================
Flax variable                         torch tensor                     layout change
====================================  ===============================  ======================
``params/<path>/kernel`` (4-d)        ``<path>.weight`` (conv)         OIHW -> HWIO
``params/<path>/kernel`` (2-d)        ``<path>.weight`` (linear)       [out, in] -> [in, out]
``params/<path>/bias``                ``<path>.bias``
``params/<path>/scale``               ``<path>.weight`` (BatchNorm)
``batch_stats/<path>/mean`` / ``var`` ``<path>.running_mean`` / ``_var``
====================================  ===============================  ======================

BatchNorm's ``num_batches_tracked`` counters are ignored. Weight files are read as

* ``.safetensors`` (with the state dict's key names), with the ``safetensors`` package;
* ``.npz`` (one array per key, as ``np.savez(path, **state_dict)`` writes), with
  ``allow_pickle=False``;
* ``.pth`` / ``.pt`` only through ``torch.load(..., weights_only=True)``, torch's restricted
  loader that rebuilds tensors but runs no code from the file; torch must be installed.
  `export_safetensors` converts a ``.pth`` once, after which torch is no longer needed.

`download_weights` fetches the published weights (needs network; never used by the tests).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from typing import Any, Mapping

import numpy as np

from fvjax._src.errors import FvjaxError
from fvjax._src.zoo import weights as weights_io

# name -> (URL of the published weights, file name, what they are).
PUBLISHED = {
    "inception-v1": (
        "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
        "inception5h.pth",
        "Lucid's InceptionV1 (inception5h), converted to PyTorch by ProGamerGov; the file "
        "torch-lucent's inceptionv1(pretrained=True) loads"),
    "resnet50": (
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        "resnet50-0676ba61.pth",
        "torchvision's ResNet50_Weights.IMAGENET1K_V1 (what resnet50(pretrained=True) loads)"),
}
_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
_MAX_LISTED = 12


def cache_dir() -> str:
  """Where `download_weights` puts files by default and model builders look for them:
  ``$FVJAX_WEIGHTS_DIR``, else ``$XDG_CACHE_HOME/fvjax`` (``~/.cache/fvjax``)."""
  if os.environ.get("FVJAX_WEIGHTS_DIR"):
    return os.environ["FVJAX_WEIGHTS_DIR"]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "fvjax")


def default_path(name: str) -> str | None:
  """The cached weights file of published model ``name``: its ``.safetensors`` export if
  present, else the downloaded file if present, else None."""
  _check_name(name)
  filename = PUBLISHED[name][1]
  stem = os.path.join(cache_dir(), os.path.splitext(filename)[0])
  for candidate in (stem + ".safetensors", os.path.join(cache_dir(), filename)):
    if os.path.isfile(candidate):
      return candidate
  return None


def missing_weights_message(name: str) -> str:
  """How to get the weights of published model ``name`` (for a missing-weights error)."""
  _check_name(name)
  url, filename, what = PUBLISHED[name]
  return (f"no weights for {name!r}: fvjax does not ship them and none were found in "
          f"{cache_dir()} ($FVJAX_WEIGHTS_DIR). With network access run\n"
          f"    python -c \"import fvjax.zoo; fvjax.zoo.download_weights({name!r})\"\n"
          f"or download {url} ({what}) yourself and pass weights=<path>. A .pth file needs "
          f"torch to read (pip install 'fvjax[torch]'); .safetensors and .npz exports with the "
          f"same key names do not.")


def download_weights(name: str, path: str | None = None, *, overwrite: bool = False) -> str:
  """Download the published weights of ``name`` (``"inception-v1"``, ``"resnet50"``).

  Needs network access (urllib). ``path`` defaults to ``cache_dir()/<published file name>``,
  where `fvjax.zoo.load` finds it without a ``weights=`` argument. An existing file is kept
  unless ``overwrite``. torchvision's files embed the first 8 hex digits of their SHA-256 in
  their name; the download is checked against them. Returns the path.
  """
  _check_name(name)
  url, filename, _ = PUBLISHED[name]
  path = path or os.path.join(cache_dir(), filename)
  if os.path.exists(path) and not overwrite:
    return path
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  digest = hashlib.sha256()
  fd, partial = tempfile.mkstemp(prefix=".download-", dir=os.path.dirname(os.path.abspath(path)))
  try:
    with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
      while chunk := response.read(1 << 20):
        digest.update(chunk)
        out.write(chunk)
    expected = _hash_prefix(filename)
    if expected and not digest.hexdigest().startswith(expected):
      raise FvjaxError(f"download of {url} is corrupt: SHA-256 {digest.hexdigest()[:8]}..., "
                       f"expected {expected}...")
    shutil.move(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  return path


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Read a state dict from ``.safetensors``, ``.npz`` or (with torch) ``.pth``, as NumPy."""
  path = os.fspath(path)
  if os.path.isdir(path):
    raise FvjaxError(f"weights {path!r} is a folder; give a .safetensors, .npz or .pth file")
  if not os.path.isfile(path):
    raise FvjaxError(f"weights file {path!r} does not exist")
  kind = _file_kind(path)
  if kind == "safetensors":
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
      return dict(load_file(path))
    except (OSError, SafetensorError, ValueError) as err:
      raise FvjaxError(f"cannot read weights file {path!r} as safetensors: {err}") from err
  if kind == "npz":
    try:
      with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
      raise FvjaxError(f"cannot read weights file {path!r} as .npz (arrays only, no pickled "
                       f"objects): {err}") from err
  return _load_torch(path)


def to_flax(state_dict: Mapping[str, Any], template: Any, *, source: str = "state dict") -> dict:
  """Flax variables (NumPy float32) shaped like ``template`` from a torch ``state_dict``.

  Raises `FvjaxError` naming ``source`` and the torch tensor when a tensor is missing, is
  unexpected, or has another shape than the model's (both shapes given, in torch's layout).
  """
  expected = {}  # torch key -> (flax key, torch shape)
  for flax_key, leaf in weights_io.flatten(template).items():
    torch_key, torch_shape = _torch_name(flax_key, tuple(leaf.shape))
    expected[torch_key] = (flax_key, torch_shape)
  given = {k: v for k, v in state_dict.items() if not k.endswith(".num_batches_tracked")}
  missing = sorted(set(expected) - set(given))
  extra = sorted(set(given) - set(expected))
  if missing or extra:
    raise FvjaxError(f"{source} does not match the model: missing tensors "
                     f"{_listing(missing)}, unexpected tensors {_listing(extra)}")
  given = weights_io.check_tensors({k: _to_numpy(given[k]) for k in expected}, source)
  flat = {}
  for torch_key, (flax_key, torch_shape) in expected.items():
    value = given[torch_key]
    if value.shape != torch_shape:
      raise FvjaxError(f"{source}: tensor {torch_key!r} has shape {value.shape}, the model "
                       f"expects {torch_shape}")
    flat[flax_key] = _torch_to_flax_layout(value)
  return weights_io.unflatten(flat)


def to_state_dict(variables: Any) -> dict[str, np.ndarray]:
  """The inverse of `to_flax`: torch key names and layouts (no ``num_batches_tracked``)."""
  out = {}
  for flax_key, value in weights_io.flatten(variables).items():
    value = np.asarray(value, np.float32)
    torch_key, _ = _torch_name(flax_key, value.shape)
    if value.ndim == 4:
      value = value.transpose(3, 2, 0, 1)
    elif value.ndim == 2:
      value = value.T
    out[torch_key] = np.ascontiguousarray(value)
  return out


def load(weights: str | os.PathLike | Mapping[str, Any], template: Any) -> dict:
  """`to_flax` of a weights file (see `load_state_dict`) or of an in-memory state dict."""
  if isinstance(weights, Mapping):
    return to_flax(weights, template)
  path = os.fspath(weights)
  return to_flax(load_state_dict(path), template, source=f"weights file {path!r}")


def export_safetensors(src: str | os.PathLike, dst: str | os.PathLike | None = None) -> str:
  """Rewrite a state dict file (e.g. a ``.pth``, read with torch's weights-only loader) as
  ``.safetensors`` with the same key names, so that reading it no longer needs torch.
  ``dst`` defaults to ``src`` with the suffix ``.safetensors``. Returns ``dst``."""
  from safetensors.numpy import save_file
  src = os.fspath(src)
  dst = os.fspath(dst) if dst is not None else os.path.splitext(src)[0] + ".safetensors"
  state = load_state_dict(src)
  save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, dst)
  return dst


# -- helpers --------------------------------------------------------------------------------
def _check_name(name: str) -> None:
  if name not in PUBLISHED:
    raise FvjaxError(f"no published weights for {name!r}; known: {', '.join(PUBLISHED)}")


def _hash_prefix(filename: str) -> str | None:
  stem = os.path.splitext(filename)[0]
  tail = stem.rsplit("-", 1)[-1]
  if "-" in stem and len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail):
    return tail
  return None


def _file_kind(path: str) -> str:
  lower = path.lower()
  if lower.endswith(".safetensors"):
    return "safetensors"
  if lower.endswith(".npz"):
    return "npz"
  if lower.endswith(_TORCH_SUFFIXES):
    return "torch"
  if zipfile.is_zipfile(path):  # both .npz and torch's zip format are zip archives
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
    if any(n.endswith("data.pkl") for n in names):
      return "torch"
    return "npz"
  return "safetensors"


def _load_torch(path: str) -> dict[str, np.ndarray]:
  try:
    import torch
  except ImportError as err:
    raise FvjaxError(
        f"weights file {path!r} is a PyTorch pickle; reading it needs torch (pip install "
        f"'fvjax[torch]'), which loads it with weights_only=True. Or convert it once where "
        f"torch is installed (fvjax.zoo.export_safetensors) or pass a .safetensors / .npz "
        f"file with the same tensor names.") from err
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for bad files
    raise FvjaxError(f"cannot read weights file {path!r} with torch.load(weights_only=True) "
                     f"(only tensors and plain containers are allowed): {err}") from err
  if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                for v in state.values()):
    raise FvjaxError(f"weights file {path!r} does not hold a flat state dict "
                     f"(name -> tensor); got {type(state).__name__}")
  return {k: v.detach().cpu().numpy() for k, v in state.items()}


def _to_numpy(value) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch tensor
    value = value.detach().cpu().numpy()
  return np.asarray(value)


def _torch_name(flax_key: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
  """The torch key and torch-layout shape of the Flax variable ``flax_key``."""
  collection, *path, leaf = flax_key.split("/")
  module = ".".join(path)
  names = {("params", "kernel"): "weight", ("params", "bias"): "bias",
           ("params", "scale"): "weight", ("batch_stats", "mean"): "running_mean",
           ("batch_stats", "var"): "running_var"}
  if (collection, leaf) not in names:
    raise FvjaxError(f"variable {flax_key!r} has no torch counterpart")
  if leaf == "kernel" and len(shape) == 4:
    shape = (shape[3], shape[2], shape[0], shape[1])
  elif leaf == "kernel" and len(shape) == 2:
    shape = (shape[1], shape[0])
  return f"{module}.{names[collection, leaf]}", shape


def _torch_to_flax_layout(value: np.ndarray) -> np.ndarray:
  if value.ndim == 4:
    return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
  if value.ndim == 2:
    return np.ascontiguousarray(value.T)
  return value


def _listing(keys: list[str]) -> str:
  if not keys:
    return "none"
  shown = ", ".join(repr(k) for k in keys[:_MAX_LISTED])
  more = len(keys) - _MAX_LISTED
  return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"
