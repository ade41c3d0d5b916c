"""TensorFlow Datasets as `ImageSet`s: ``tfds_images("imagenette", "validation", ...)``.

Needs the ``tfds`` extra: ``pip install tensorflow-datasets tensorflow-cpu importlib_resources``
(``tensorflow`` works as well as ``tensorflow-cpu``; ``importlib_resources`` works around
TFDS 4.9.10 importing it without declaring it, tensorflow/datasets#11212, which breaks
``download_and_prepare``). TFDS imports without TensorFlow and can read a dataset prepared in the
``array_record`` (or ``parquet``) file format without it (`as_data_source`, images decoded
with Pillow); preparing a dataset with image features, reading the default ``tfrecord``
format and `tfds.ImageFolder` need TensorFlow. Nothing is downloaded unless
``download=True``.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np
from PIL import Image

from fvjax._src.data import ImageSet
from fvjax._src.errors import FvjaxError

PIP_COMMAND = "pip install tensorflow-datasets tensorflow-cpu importlib_resources"
_RANDOM_ACCESS = ("array_record", "parquet")


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError as err:
    raise FvjaxError(f"tfds_images needs TensorFlow Datasets: {PIP_COMMAND} "
                     f"(or pip install 'fvjax[tfds]'); import failed: {err}") from err
  return tfds


def _needs_tensorflow(what: str, err: Exception) -> FvjaxError:
  return FvjaxError(f"{what} needs TensorFlow, which is not installed: {PIP_COMMAND} "
                    f"(datasets prepared with file_format='array_record' read without it); "
                    f"{type(err).__name__}: {err}")


def _to_rgb(image: np.ndarray, size, crop: bool) -> np.ndarray:
  """uint8/float ``[h, w, c]`` -> float32 ``[H, W, 3]`` in [0, 1], resized like `load_image`."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise FvjaxError(f"a dataset image has shape {image.shape}; expected [H, W, 1|3|4]")
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  image = image[..., :3]
  if np.issubdtype(image.dtype, np.floating):
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
  img = Image.fromarray(image.astype(np.uint8))
  if size is not None:
    h, w = (size, size) if isinstance(size, int) else size
    if crop:
      scale = max(h / img.height, w / img.width)
      img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                       Image.BILINEAR)
      left, top = (img.width - w) // 2, (img.height - h) // 2
      img = img.crop((left, top, left + w, top + h))
    elif (img.height, img.width) != (h, w):
      img = img.resize((w, h), Image.BILINEAR)
  return np.asarray(img, np.float32) / 255.0


def _keys(tfds, info, image_key, label_key):
  features = info.features
  feature_names = list(features.keys()) if hasattr(features, "keys") else []
  supervised = info.supervised_keys if isinstance(info.supervised_keys, tuple) else None
  if image_key is None:
    if supervised and isinstance(supervised[0], str) and isinstance(
        features[supervised[0]], tfds.features.Image):
      image_key = supervised[0]
    else:
      images = [n for n in feature_names if isinstance(features[n], tfds.features.Image)]
      if not images:
        raise FvjaxError(f"dataset {info.name!r} has no image feature; features: "
                         + ", ".join(feature_names))
      image_key = images[0]
  elif image_key not in feature_names:
    raise FvjaxError(f"image_key {image_key!r} is not a feature of {info.name!r}; features: "
                     + ", ".join(feature_names))
  if label_key is None:
    if supervised and len(supervised) > 1 and isinstance(supervised[1], str):
      label_key = supervised[1]
    elif "label" in feature_names:
      label_key = "label"
  elif label_key not in feature_names:
    raise FvjaxError(f"label_key {label_key!r} is not a feature of {info.name!r}; features: "
                     + ", ".join(feature_names))
  name_key = next((n for n in ("image/filename", "file_name", "filename", "id")
                   if n in feature_names), None)
  return image_key, label_key, name_key


def _label_text(feature, value) -> str:
  if value is None:
    return ""
  if hasattr(feature, "int2str") and np.ndim(value) == 0:
    return feature.int2str(int(value))
  if isinstance(value, bytes):
    return value.decode("utf-8", "replace")
  return str(np.asarray(value).tolist())


def _examples(tfds, builder, split: str, limit: int | None) -> Iterator[dict[str, Any]]:
  file_format = getattr(builder.info.file_format, "value", builder.info.file_format)
  if str(file_format) in _RANDOM_ACCESS:
    source = builder.as_data_source(split=split)
    for i in range(len(source) if limit is None else min(limit, len(source))):
      yield source[i]
    return
  try:
    dataset = builder.as_dataset(split=split, shuffle_files=False)
  except ImportError as err:  # ModuleNotFoundError: no tensorflow
    raise _needs_tensorflow(f"reading {builder.name!r} (file format {file_format})", err)
  if limit is not None:
    dataset = dataset.take(limit)
  yield from tfds.as_numpy(dataset)


def tfds_images(name, split: str = "train", *, data_dir: str | os.PathLike | None = None,
                size: int | tuple[int, int] | None = 224, limit: int | None = None,
                crop: bool = False, download: bool = False, batch_size: int | None = None,
                image_key: str | None = None, label_key: str | None = None,
                ) -> ImageSet | Iterator[ImageSet]:
  """Images of a TensorFlow Datasets split as an `ImageSet` (floats ``[N, H, W, 3]`` in [0, 1]).

  Args:
    name: a TFDS name (``"imagenette/320px-v2"``, ``"cifar10"``, ``"my_ds:1.0.0"``); a
      dataset prepared under ``data_dir`` is read from its files even without its builder
      code. Or a TFDS builder object, e.g. ``tfds.ImageFolder(root)`` over
      ``root/<split>/<label>/<image>`` files (``data_dir`` is then ignored).
    split: a split, with TFDS slicing (``"validation"``, ``"train[:1000]"``).
    data_dir: where TFDS keeps prepared datasets (TFDS's default, ``~/tensorflow_datasets``,
      when None).
    size: resize each image to ``size x size`` (or ``(H, W)``; bilinear, like
      `fvjax.data.load_image`); None keeps the stored size (all images must then agree).
    limit: read at most this many examples (in the split's stored order).
    crop: resize the shorter side to ``size`` and crop the centre, keeping the aspect ratio.
    download: when the dataset is not prepared under ``data_dir``, download and prepare it
      (needs network and, for image datasets, TensorFlow). False (the default) never touches
      the network and raises a clear error instead.
    batch_size: None returns one `ImageSet`; an int returns an iterator of `ImageSet`
      batches of that size (the last may be smaller), read lazily, e.g. to stream into
      `fvjax.dataset_examples`.
    image_key, label_key: the features to read; default the dataset's supervised keys, else
      its first image feature and its ``"label"`` feature.

  Returns:
    An `ImageSet` whose names are the examples' file names (``image/filename`` when the
    dataset has one, else ``"<name>/<split>/<i>"``) and labels the class names (ClassLabel
    names), or an iterator of them with ``batch_size``.
  """
  if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
    raise FvjaxError(f"limit must be a non-negative int or None, got {limit!r}")
  if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                 or batch_size < 1):
    raise FvjaxError(f"batch_size must be a positive int or None, got {batch_size!r}")
  tfds = _import_tfds()
  data_dir = None if data_dir is None else os.fspath(data_dir)
  if isinstance(name, tfds.core.DatasetBuilder):
    builder, name = name, name.name
  elif isinstance(name, str):
    try:
      builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
      raise FvjaxError(f"TFDS has no dataset {name!r} (neither registered nor prepared under "
                       f"data_dir={data_dir!r}); see https://www.tensorflow.org/datasets/catalog"
                       f" or `tfds.list_builders()`: {err}") from err
  else:
    raise FvjaxError(f"name must be a TFDS dataset name or a tfds builder, got {name!r}")
  reads_files = isinstance(builder, tfds.ImageFolder)  # reads its folder; nothing to prepare
  if not reads_files and not builder.is_prepared():
    if not download:
      raise FvjaxError(f"TFDS dataset {name!r} is not prepared under {builder.data_dir!r}; pass "
                       "download=True to download and prepare it (needs network), or prepare "
                       "it yourself with TFDS")
    try:
      builder.download_and_prepare()
    except ImportError as err:
      raise _needs_tensorflow(f"preparing {name!r}", err)
  splits = list(builder.info.splits.keys())
  base = split.split("[")[0].split("+")[0]
  if base not in splits:
    raise FvjaxError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(splits)}")
  image_key, label_key, name_key = _keys(tfds, builder.info, image_key, label_key)
  label_feature = builder.info.features[label_key] if label_key else None

  def convert(i: int, example) -> tuple[np.ndarray, str, str]:
    label = _label_text(label_feature, example[label_key]) if label_key else ""
    ident = example[name_key] if name_key else f"{name}/{split}/{i}"
    if isinstance(ident, bytes):
      ident = ident.decode("utf-8", "replace")
    return _to_rgb(example[image_key], size, crop), str(ident), label

  def as_set(rows) -> ImageSet:
    try:
      images = np.stack([r[0] for r in rows])
    except ValueError as err:
      raise FvjaxError(f"images of {name!r} differ in size; pass size=... to resize them: "
                       f"{err}") from err
    return ImageSet(images, tuple(r[1] for r in rows), tuple(r[2] for r in rows))

  examples = _examples(tfds, builder, split, limit)
  if batch_size is None:
    rows = [convert(i, ex) for i, ex in enumerate(examples)]
    if not rows:
      raise FvjaxError(f"split {split!r} of {name!r} is empty")
    return as_set(rows)

  def batches() -> Iterator[ImageSet]:
    rows = []
    for i, ex in enumerate(examples):
      rows.append(convert(i, ex))
      if len(rows) == batch_size:
        yield as_set(rows)
        rows = []
    if rows:
      yield as_set(rows)

  return batches()
