"""Image loading: image folders and TFDS (see `fvjax._src.data`, `fvjax._src.tfds_data`)."""

from fvjax._src.data import ImageSet, image_folder, load_image
from fvjax._src.tfds_data import tfds_images

__all__ = ["ImageSet", "image_folder", "load_image", "tfds_images"]
