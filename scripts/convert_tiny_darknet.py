"""Convert the TF.js Tiny Darknet in ../shared into the weights vendored in fvjax/weights.

    python scripts/convert_tiny_darknet.py --src ../shared/models/tiny-darknet

Writes ``fvjax/weights/tiny_darknet.safetensors`` (float32, keys ``params/conv2d_1/kernel``,
``batch_stats/batch_normalization_1/mean`` ...) and ``tiny_darknet_labels.tsv``.
"""

import argparse
import os
import shutil

from fvjax._src.zoo import tfjs, weights
from fvjax._src.zoo.registry import WEIGHTS_DIR


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--src", default="../shared/models/tiny-darknet")
  parser.add_argument("--dst", default=WEIGHTS_DIR)
  args = parser.parse_args()
  _, variables = tfjs.convert(args.src)
  os.makedirs(args.dst, exist_ok=True)
  weights.save(os.path.join(args.dst, "tiny_darknet.safetensors"), variables)
  shutil.copy(os.path.join(args.src, "labels.tsv"),
              os.path.join(args.dst, "tiny_darknet_labels.tsv"))
  print(f"wrote {args.dst}")


if __name__ == "__main__":
  main()
