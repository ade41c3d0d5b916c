"""Count how the bad-input catalogue of tests/test_bad_inputs.py is handled by the fvjax on
``PYTHONPATH`` (this checkout, or an older one):

    python scripts/bad_inputs_census.py [--json out.json]
    PYTHONPATH=/path/to/old/checkout python scripts/bad_inputs_census.py   # before

Each case is one of: clean (one FvjaxError / CLI exit 2 in one line, naming the bad value),
unclear (a clean error that does not name it), traceback (any other exception), silent (no
error for bad input, or a wrong value for an edge input), correct (an edge input read right).
"""

import argparse
import collections
import importlib.util
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("FVJAX_CACHE_DIR", "off")
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--json", help="write every case's outcome and message here")
  parser.add_argument("--only", default="", help="comma-separated case ids")
  parser.add_argument("--skip", default="", help="comma-separated case ids not to run (e.g. "
                      "cases that allocate tens of GiB in an old checkout)")
  args = parser.parse_args()
  spec = importlib.util.spec_from_file_location(
      "bad_inputs_table", os.path.join(HERE, "tests", "test_bad_inputs.py"))
  table = importlib.util.module_from_spec(spec)
  sys.modules["bad_inputs_table"] = table
  spec.loader.exec_module(table)
  import fvjax
  print(f"fvjax from {os.path.dirname(fvjax.__file__)}", file=sys.stderr)
  only = set(filter(None, args.only.split(",")))
  skip = set(filter(None, args.skip.split(",")))
  counts, rows = collections.Counter(), []
  start = time.time()
  with tempfile.TemporaryDirectory() as root:
    ctx = table.Ctx(root)
    for case in table.CASES:
      if (only and case.id not in only) or case.id in skip:
        counts["skipped"] += 1
        continue
      t = time.time()
      outcome, detail = table.classify(case, ctx)
      counts[outcome] += 1
      kind = type(case).__name__.lower()
      rows.append({"id": case.id, "kind": kind, "outcome": outcome, "detail": detail,
                   "seconds": round(time.time() - t, 2)})
      print(f"{outcome:9s} {kind:4s} {case.id}: {detail[:150]}", flush=True)
  total = sum(counts.values()) - counts["skipped"]
  summary = {k: counts[k] for k in ("clean", "unclear", "traceback", "silent", "correct",
                                    "skipped")}
  print(f"\n{total} cases in {time.time() - start:.0f} s: "
        + ", ".join(f"{k} {v}" for k, v in summary.items()))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"fvjax": os.path.dirname(fvjax.__file__), "summary": summary, "cases": rows},
                f, indent=1)


if __name__ == "__main__":
  main()
