"""Image loading and batching: image folders, TFDS, and `map_batches` (see
`fvjax._src.data`, `fvjax._src.tfds_data`, `fvjax._src.batching`)."""

from fvjax._src.batching import map_batches
from fvjax._src.data import IMAGE_EXTENSIONS, ImageSet, image_folder, load_image
from fvjax._src.tfds_data import tfds_images

__all__ = ["ImageSet", "image_folder", "load_image", "tfds_images", "map_batches",
           "IMAGE_EXTENSIONS"]
