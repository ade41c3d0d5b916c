"""Compute the natural magnitude spectrum MACO uses and vendor it in fvjax/weights.

    python scripts/natural_spectrum.py --photos ../shared/data/imagenet-sample

Each photo is resized to 224x224 (bilinear, as the model sees it), and the mean over photos of
``|rfft2|`` per colour channel is stored as float16 ``magnitude [3, 224, 113]`` in
``fvjax/weights/imagenet_magnitude.npz``.
"""

import argparse

import numpy as np

from fvjax._src.data import image_folder
from fvjax._src.param import MAGNITUDE_FILE


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--photos", default="../shared/data/imagenet-sample")
  parser.add_argument("--out", default=MAGNITUDE_FILE)
  args = parser.parse_args()
  photos = image_folder(args.photos, 224).images  # [N, 224, 224, 3]
  spectra = np.abs(np.fft.rfft2(np.moveaxis(photos, -1, 1), axes=(-2, -1)))
  magnitude = spectra.mean(axis=0)
  np.savez_compressed(args.out, magnitude=magnitude.astype(np.float16))
  print(f"wrote {args.out}: {magnitude.shape}, from {len(photos)} photos")


if __name__ == "__main__":
  main()
