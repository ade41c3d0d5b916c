"""Paired comparison of the deletion game's smallest boxes: the mask against each method,
photo by photo (the same photos, so the photo-to-photo spread cancels).

    python experiments/attribution/deletion/paired.py --out experiments/attribution/deletion/results

Reads ``results.json`` in ``--out`` (written by main.py, which also calls this) and writes
``paired.json``: per method and drop level, on how many photos the mask's box is smaller,
larger or equal, the two-sided sign-test p-value (ties left out), and the mean difference
(mask - method, in % of the image) with its standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from types import SimpleNamespace

import numpy as np

from fvjax import attribution as A
from fvjax.experiment import write_json

LEVELS = (0.2, 0.1, 0.05, 0.01)


def sign_test(wins: int, losses: int) -> float:
  """Two-sided exact binomial p-value of ``wins`` against ``losses`` under p = 1/2."""
  n = wins + losses
  if n == 0:
    return 1.0
  k = min(wins, losses)
  return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def paired(results: dict, reference: str = "mask") -> dict:
  per = results["per_image"]
  # minimal_deletion_area reads only a result's areas and normalised scores, which
  # results.json stores per method
  games = {m: SimpleNamespace(areas=np.asarray(per[m]["areas"]),
                              normalized=np.asarray(per[m]["normalized"])) for m in per}
  out = {}
  for level in LEVELS:
    area = {m: A.minimal_deletion_area(game, level) for m, game in games.items()}
    for method in per:
      if method == reference:
        continue
      diff = 100 * (area[reference] - area[method])
      wins, losses = int((diff < 0).sum()), int((diff > 0).sum())
      out.setdefault(method, {})[f"{level}"] = {
          "mask_smaller": wins, "mask_larger": losses, "equal": int((diff == 0).sum()),
          "sign_test_p": sign_test(wins, losses), "mean_difference": float(diff.mean()),
          "sem": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0}
  return {"reference": reference, "photos": len(results["photos"]),
          "difference": "reference - method, % of the image (negative: the mask is smaller)",
          "by_method": out}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="experiments/attribution/deletion/results")
  args = parser.parse_args(argv)
  with open(os.path.join(args.out, "results.json")) as f:
    results = json.load(f)
  table = paired(results)
  write_json(os.path.join(args.out, "paired.json"), table, digits=6)  # as main.py writes it
  for method, levels in table["by_method"].items():
    print(method, "  ".join(
        f"{100 * (1 - float(lv)):.0f}%: {v['mask_smaller']}/{v['mask_larger']} "
        f"p={v['sign_test_p']:.3f} d={v['mean_difference']:+.1f}+-{v['sem']:.1f}"
        for lv, v in levels.items()))


if __name__ == "__main__":
  main()
