"""A first render in a fresh process, end to end: fvjax (cold and with a warm compilation
cache) against torch-lucent, the same InceptionV1 weights and settings as `vs_lucent.py`.

    python benchmarks/cold_start.py --steps 128 --repeats 2 \\
        --out benchmarks/results/cold_start_cpu.json

Each measurement is the wall time of a new Python process (``python -c``) from launch to
exit: imports, building the model from the same random weights (Lucent's InceptionV1, seed 0;
fvjax reads them from an ``.npz`` written beforehand), one unit of ``mixed4a`` rendered for
``--steps`` steps at 128 px with Lucid's transforms and Adam(0.05), images fetched. fvjax
"cold" starts with an empty persistent compilation cache; "warm" runs again on the cache the
cold run filled (what a second ``fvjax render`` of the same shapes sees; the CLI keeps the
cache in ``~/.cache/fvjax/jax``). The runs alternate cold, warm, Lucent.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

FVJAX = """
import time, numpy as np, jax
jax.config.update("jax_compilation_cache_dir", {cache!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
import fvjax
from fvjax._src.zoo.inception_v1 import inception_v1
with np.load({weights!r}) as f:
  model = inception_v1(dict(f), redirected_relu=True)
with fvjax.count_compiles() as log:
  result = fvjax.render(model, fvjax.objectives.channel("mixed4a", {unit}), key=jax.random.key(0),
                        steps={steps}, size=128, progress=False)
  np.asarray(result.images)
print("compiled", log.count("_run_all"))
"""

LUCENT = """
import torch
from fvjax._src.zoo import lucent_compat
lucent_compat.install_torchvision_stand_in()
from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1
from lucent.optvis import param, render
torch.manual_seed(0)
torch.set_num_threads({threads})
net = InceptionV1().eval()
for p in net.parameters():
  p.requires_grad_(False)
render.render_vis(net, "mixed4a:{unit}", param_f=lambda: param.image(128), thresholds=({steps},),
                  show_image=False, progress=False, fixed_image_size=140)
"""


def timed(code: str) -> tuple[float, str]:
  start = time.perf_counter()
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  elapsed = time.perf_counter() - start
  if done.returncode:
    raise RuntimeError(done.stderr[-3000:])
  return elapsed, done.stdout.strip()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--torch-threads", type=int, default=1)
  parser.add_argument("--out", default="benchmarks/results/cold_start_cpu.json")
  args = parser.parse_args()

  import torch
  from fvjax._src.zoo import lucent_compat
  lucent_compat.install_torchvision_stand_in()
  from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1
  torch.manual_seed(0)
  net = InceptionV1().eval()
  work = tempfile.mkdtemp(prefix="fvjax_cold_")
  weights = os.path.join(work, "inception_v1.npz")
  import numpy as np
  np.savez(weights, **{k: v.numpy() for k, v in net.state_dict().items()})

  times = {"fvjax_cold": [], "fvjax_warm": [], "lucent": []}
  notes = []
  for r in range(args.repeats):
    cache = os.path.join(work, f"cache_{r}")
    unit = r + 1
    fv = dict(cache=cache, weights=weights, unit=unit, steps=args.steps)
    t, out = timed(FVJAX.format(**fv))
    times["fvjax_cold"].append(t)
    notes.append(f"cold: {out}")
    t, out = timed(FVJAX.format(**(fv | {"unit": unit + 100})))  # another unit, same shapes
    times["fvjax_warm"].append(t)
    notes.append(f"warm: {out}")
    t, _ = timed(LUCENT.format(threads=args.torch_threads, unit=unit, steps=args.steps))
    times["lucent"].append(t)
    print({k: round(v[-1], 1) for k, v in times.items()}, flush=True)
  med = {k: statistics.median(v) for k, v in times.items()}
  out = {"env": {"cpu_count": os.cpu_count(), "machine": platform.machine(),
                 "processor": platform.processor(), "python": sys.version.split()[0],
                 "loadavg_end": os.getloadavg()},
         "args": vars(args), "seconds": times, "median_s": med, "notes": notes,
         "lucent_over_fvjax_cold": med["lucent"] / med["fvjax_cold"],
         "lucent_over_fvjax_warm": med["lucent"] / med["fvjax_warm"]}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(out, f, indent=2)
  print(json.dumps({k: out[k] for k in ("median_s", "lucent_over_fvjax_cold",
                                         "lucent_over_fvjax_warm")}, indent=2))


if __name__ == "__main__":
  main()
