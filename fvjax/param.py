"""Image parameterizations (see `fvjax._src.param`)."""

from fvjax._src.param import (COLOR_CORRELATION_NORMALIZED, COLOR_CORRELATION_SVD_SQRT,
                              MAX_NORM_SVD_SQRT, Cppn, Image, ImageParam, Maco, cppn,
                              decorrelate_colors, fourier, fourier_scale, image, maco,
                              natural_magnitude, pixel, rfft2d_freqs)

__all__ = [
    "ImageParam", "Image", "Maco", "Cppn", "image", "pixel", "fourier", "maco", "cppn",
    "rfft2d_freqs", "fourier_scale", "natural_magnitude", "decorrelate_colors",
    "COLOR_CORRELATION_SVD_SQRT", "MAX_NORM_SVD_SQRT", "COLOR_CORRELATION_NORMALIZED",
]
