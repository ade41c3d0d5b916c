"""Image loading (see `fvjax._src.data`)."""

from fvjax._src.data import ImageSet, image_folder, load_image

__all__ = ["ImageSet", "image_folder", "load_image"]
