"""Time per unit against K units rendered together, memory, and achieved FLOP/s.

    python benchmarks/scaling.py --out benchmarks/results/scaling_cpu.json
    python benchmarks/scaling.py --ks 1,8,64,512 --size 128   # on a GPU

For each K: the first chunk's wall time (compile + run) and the median wall time of the
following chunks of ``--chunk`` steps, on Tiny Darknet at ``--size`` px with Lucid's
standard transforms and Fourier + decorrelated parameterization. FLOPs per step come from
XLA's cost analysis of the compiled chunk; memory is the process's peak resident set (CPU)
or the device's peak bytes in use (GPU). Writes JSON and a plot beside it.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import time

import jax
import jax.numpy as jnp

import fvjax
from fvjax._src import render as render_lib


def measure(model, k: int, size: int, chunk: int, repeats: int) -> dict:
  objective = fvjax.objectives.channel("leaky_re_lu_8", jnp.arange(k) % 256)
  _, stacked, _ = fvjax.objectives.stack(objective)
  settings = fvjax.optvis.broadcast(fvjax.optvis.Settings(size=size), k)
  keys = jax.random.split(jax.random.key(0), k)
  state = render_lib._init_all(keys, model, stacked, settings)
  length = render_lib._steps_per_call(chunk)  # 1 on CPU: one step per call, no loop
  start = time.perf_counter()
  with fvjax.count_compiles() as log:
    compiled = render_lib._run_all.lower(state, model, stacked, settings,
                                         length=length).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops_per_chunk = (chunk // length) * (float(cost.get("flops", float("nan"))) if cost
                                         else float("nan"))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(chunk // length):
      state, trace = compiled(state, model, stacked, settings)
    jax.block_until_ready(trace)
    times.append(time.perf_counter() - start)
  per_chunk = statistics.median(times)
  stats = jax.devices()[0].memory_stats() or {}
  return {
      "K": k, "compile_s": compile_s, "chunk_s_median": per_chunk,
      "steps_per_s": chunk / per_chunk, "unit_steps_per_s": k * chunk / per_chunk,
      "ms_per_unit_step": 1e3 * per_chunk / (k * chunk),
      "flops_per_step": flops_per_chunk / chunk,
      "achieved_gflops": flops_per_chunk / per_chunk / 1e9,
      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "device_peak_bytes": stats.get("peak_bytes_in_use"),
      "compiles": log.count("_run_all"),
  }


def plot(out: dict, path: str) -> None:
  """Time per unit-step and achieved FLOP/s against K (both axes from zero where linear)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows = out["rows"]
  ks = [r["K"] for r in rows]
  fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
  ax[0].semilogx(ks, [r["ms_per_unit_step"] for r in rows], "o-")
  ax[0].set_ylim(bottom=0)
  ax[0].set_xlabel("K units rendered together")
  ax[0].set_ylabel("ms per unit-step")
  ax[1].semilogx(ks, [r["achieved_gflops"] for r in rows], "o-")
  ax[1].set_ylim(bottom=0)
  ax[1].set_xlabel("K")
  ax[1].set_ylabel("achieved GFLOP/s (XLA cost analysis)")
  fig.suptitle(f"Tiny Darknet {out['size']}px, {out['device']}, {out['cpu_count']} CPU cores, "
               f"jax {out['jax']}", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--ks", default="1,2,4,8,16,32,64")
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--chunk", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--out", default="benchmarks/results/scaling_cpu.json")
  args = parser.parse_args()
  model = fvjax.zoo.load("tiny-darknet")
  device = jax.devices()[0]
  rows = []
  for k in [int(v) for v in args.ks.split(",")]:
    row = measure(model, k, args.size, args.chunk, args.repeats)
    rows.append(row)
    print(json.dumps({key: (round(v, 4) if isinstance(v, float) else v) for key, v in row.items()}))
  out = {"device": f"{device.platform}: {device.device_kind}", "devices": jax.device_count(),
         "cpu_count": os.cpu_count(), "machine": platform.machine(), "jax": jax.__version__,
         "size": args.size, "chunk_steps": args.chunk, "repeats": args.repeats, "rows": rows}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(out, f, indent=2)
  plot(out, os.path.splitext(args.out)[0] + ".png")
  print("wrote", args.out)


if __name__ == "__main__":
  main()
