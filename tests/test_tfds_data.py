"""The TFDS loader, for real: tiny datasets built on local files with TFDS's own builders
(a `GeneratorBasedBuilder` prepared with `download_and_prepare`, and `tfds.ImageFolder`) are
read back through `tfds_images` and their pixels and labels checked. No network."""

import os

import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip(
    "tensorflow_datasets",
    reason="TensorFlow Datasets is not installed (pip install tensorflow-datasets tensorflow-cpu)")

from fvjax import FvjaxError  # noqa: E402
from fvjax._src.data import ImageSet  # noqa: E402
from fvjax._src.tfds_data import tfds_images  # noqa: E402

CLASSES = ["apple", "pear", "plum"]


def _picture(i: int, h: int = 12, w: int = 10) -> np.ndarray:
  """A distinct uint8 picture per example: a colour ramp whose base encodes ``i``."""
  yy, xx = np.mgrid[0:h, 0:w]
  return np.stack([np.full((h, w), 20 * i), 5 * yy, 7 * xx], axis=-1).astype(np.uint8)


def _label(i: int) -> int:
  return i % len(CLASSES)


class FvjaxTinyFruit(tfds.core.GeneratorBasedBuilder):
  """Seven train and three test pictures of 12x10 px, and two of other sizes ("mixed")."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=CLASSES),
            "image/filename": tfds.features.Text(),
        }),
        supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is local
    return {"train": self._generate_examples(range(7)),
            "test": self._generate_examples(range(7, 10)),
            "mixed": self._generate_examples(range(10, 12), widths=(9, 13))}

  def _generate_examples(self, indices, widths=None):
    for j, i in enumerate(indices):
      image = _picture(i) if widths is None else _picture(i, w=widths[j])
      yield i, {"image": image, "label": _label(i), "image/filename": f"fruit_{i}.png"}


def _index(filename: str) -> int:
  return int(filename.split("_")[1].split(".")[0])


@pytest.fixture(scope="module", params=["array_record", "tfrecord"])
def prepared(request, tmp_path_factory):
  """The dataset prepared on disk in one file format; returns its data_dir."""
  if request.param == "tfrecord":
    pytest.importorskip("tensorflow", reason="reading tfrecord files needs TensorFlow "
                        "(pip install tensorflow-cpu)")
  pytest.importorskip("tensorflow", reason="preparing image datasets with TFDS encodes the "
                      "images with TensorFlow (pip install tensorflow-cpu)")
  data_dir = tmp_path_factory.mktemp(f"tfds_{request.param}")
  builder = FvjaxTinyFruit(data_dir=str(data_dir), file_format=request.param)
  builder.download_and_prepare()
  return str(data_dir)


def test_reads_pixels_labels_and_names(prepared):
  # size=None keeps the stored pixels: check them exactly (PNG is lossless).
  train = tfds_images("fvjax_tiny_fruit", "train", data_dir=prepared, size=None)
  assert isinstance(train, ImageSet)
  assert train.images.shape == (7, 12, 10, 3) and train.images.dtype == np.float32
  assert sorted(_index(n) for n in train.names) == list(range(7))
  for image, name, label in zip(train.images, train.names, train.labels):
    i = _index(name)
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), _picture(i))
    assert label == CLASSES[_label(i)]
  # the stored size asked for explicitly: no resampling
  same = tfds_images("fvjax_tiny_fruit", "train", data_dir=prepared, size=(12, 10))
  np.testing.assert_array_equal(same.images, train.images)
  assert same.names == train.names and same.labels == train.labels


def test_images_of_different_sizes(prepared):
  with pytest.raises(FvjaxError, match="differ in size"):
    tfds_images("fvjax_tiny_fruit", "mixed", data_dir=prepared, size=None)
  mixed = tfds_images("fvjax_tiny_fruit", "mixed", data_dir=prepared, size=16, crop=True)
  assert mixed.images.shape == (2, 16, 16, 3)
  for image, name in zip(mixed.images, mixed.names):
    np.testing.assert_allclose(image[..., 0], 20 * _index(name) / 255.0, atol=1e-6)


def test_resize_limit_batches_and_split_slices(prepared):
  test = tfds_images("fvjax_tiny_fruit", "test", data_dir=prepared, size=8)
  assert test.images.shape == (3, 8, 8, 3)
  assert sorted(_index(n) for n in test.names) == [7, 8, 9]
  # the red channel is constant 20*i, so resizing keeps it exactly
  for image, name in zip(test.images, test.names):
    np.testing.assert_allclose(image[..., 0], 20 * _index(name) / 255.0, atol=1e-6)
  few = tfds_images("fvjax_tiny_fruit", "train", data_dir=prepared, size=8, limit=3)
  assert len(few.images) == 3
  sliced = tfds_images("fvjax_tiny_fruit", "train[:4]", data_dir=prepared, size=8)
  assert len(sliced.images) == 4
  batches = list(tfds_images("fvjax_tiny_fruit", "train", data_dir=prepared, size=8,
                             batch_size=3))
  assert [len(b.images) for b in batches] == [3, 3, 1]
  whole = tfds_images("fvjax_tiny_fruit", "train", data_dir=prepared, size=8)
  np.testing.assert_array_equal(np.concatenate([b.images for b in batches]), whole.images)
  assert sum((b.labels for b in batches), ()) == whole.labels


def test_unprepared_dataset_is_not_downloaded(tmp_path):
  # a registered catalog dataset that is not on disk: a clear error, no network access
  with pytest.raises(FvjaxError, match="download=True"):
    tfds_images("mnist", "test", data_dir=str(tmp_path), size=28)
  assert not any(p.is_file() for p in tmp_path.rglob("*")), "nothing may be written"
  with pytest.raises(FvjaxError, match="no dataset"):
    tfds_images("no_such_dataset_fvjax", "train", data_dir=str(tmp_path))


def test_bad_split_and_keys(prepared):
  with pytest.raises(FvjaxError, match="splits: .*train"):
    tfds_images("fvjax_tiny_fruit", "validation", data_dir=prepared)
  with pytest.raises(FvjaxError, match="features"):
    tfds_images("fvjax_tiny_fruit", "train", data_dir=prepared, image_key="photo")
  with pytest.raises(FvjaxError, match="limit"):
    tfds_images("fvjax_tiny_fruit", "train", data_dir=prepared, limit=-1)


def test_image_folder_builder(tmp_path):
  pytest.importorskip("tensorflow", reason="tfds.ImageFolder reads with TensorFlow "
                      "(pip install tensorflow-cpu)")
  root = tmp_path / "photos"
  expected = {}
  for split, indices in (("train", range(6)), ("test", range(6, 8))):
    for i in indices:
      folder = root / split / CLASSES[_label(i)]
      folder.mkdir(parents=True, exist_ok=True)
      Image.fromarray(_picture(i)).save(folder / f"fruit_{i}.png")
      expected[f"fruit_{i}.png"] = i
  train = tfds_images(tfds.ImageFolder(str(root)), "train", size=None)
  assert len(train.images) == 6
  for image, name, label in zip(train.images, train.names, train.labels):
    i = expected[os.path.basename(name)]
    assert label == CLASSES[_label(i)]
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), _picture(i))


def test_download_true_prepares_a_registered_builder(tmp_path):
  # `download=True` runs the builder's download_and_prepare; this builder is local, so
  # the whole path runs without network.
  pytest.importorskip("tensorflow", reason="preparing image datasets with TFDS encodes the "
                      "images with TensorFlow (pip install tensorflow-cpu)")
  with pytest.raises(FvjaxError, match="not prepared"):
    tfds_images("fvjax_tiny_fruit", "test", data_dir=str(tmp_path))
  test = tfds_images("fvjax_tiny_fruit", "test", data_dir=str(tmp_path), size=None,
                     download=True)
  assert sorted(_index(n) for n in test.names) == [7, 8, 9]
  for image, name in zip(test.images, test.names):
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), _picture(_index(name)))
