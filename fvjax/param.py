"""Image parameterizations (see `fvjax._src.param`)."""

from fvjax._src.param import (COLOR_CORRELATION_NORMALIZED, COLOR_CORRELATION_SVD_SQRT,
                              MAX_NORM_SVD_SQRT, Image, ImageParam, decorrelate_colors,
                              fourier, fourier_scale, image, pixel, rfft2d_freqs)

__all__ = [
    "ImageParam", "Image", "image", "pixel", "fourier", "rfft2d_freqs", "fourier_scale",
    "decorrelate_colors", "COLOR_CORRELATION_SVD_SQRT", "MAX_NORM_SVD_SQRT",
    "COLOR_CORRELATION_NORMALIZED",
]
