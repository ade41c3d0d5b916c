"""fvjax against torch-lucent: the same feature visualizations, timed in one run.

    python benchmarks/vs_lucent.py --steps 8 --repeats 3 --ks 1,8,64 \\
        --out benchmarks/results/vs_lucent_cpu.json

Both render channels ``0..K-1`` of InceptionV1's ``mixed4a`` (the same random weights: the
Lucent model's, converted), 128x128 images, Fourier + decorrelated-colour parameterization
with sigmoid, Lucid's standard transforms (each library its own implementation), Adam(0.05),
``--steps`` steps; Lucent with its default redirected-ReLU gradient, and so fvjax here.

The model sees the same image size in both. By default that is the size Lucid's transforms
give a 128 px image, 140 px, which is what fvjax renders with by default; Lucent's
``render_vis`` always resizes the transformed image before the model (to 224 for images
smaller than 224), so it gets ``fixed_image_size=140``. ``--model-size 224`` instead
reproduces Lucent's default, upsampling to 224 (bilinear, ``align_corners=True``) in both.

For each K, the repeats alternate: fvjax (all K units in one ``fvjax.render``), Lucent one
unit at a time (``render_vis`` per unit), Lucent batched (one ``render_vis`` of a batch of K
images with the sum of K ``channel(..., batch=i)`` objectives). Every repeat renders other
units (``(r * K + arange(K)) % 508``) so a recompilation across units would show in the
trace count. Reported: unit-steps per second (K * steps / wall time) as medians over repeats,
the ratios, fvjax's first-call compile time separately (first call minus the median), and
fvjax's trace count. Lucent one-at-a-time renders at most ``--single-cap`` units per repeat:
sequential renders are independent, so its per-unit rate does not depend on K.

torch's thread count is the faster of 1 and 2 in a short calibration (``--torch-threads``
fixes it): on a loaded machine torch's spinning OpenMP threads can be ten times slower
with 2 threads than with 1; fvjax keeps XLA's default threading.

Needs torch and torch-lucent (see benchmarks/README.md); torchvision is replaced by a
stand-in when it does not import (Lucent uses only ``transforms.Normalize`` and the
``torchvision.models`` namespace).
"""

import argparse
import json
import os
import platform
import statistics
import time


import jax
import jax.numpy as jnp
import numpy as np

import fvjax
from fvjax.transforms import Transform
from fvjax._src.zoo import lucent_compat
from fvjax._src.zoo.inception_v1 import inception_v1

LAYER, CHANNELS = "mixed4a", 508


def _interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
  """Bilinear weights with ``align_corners=True``: ``[n_out, n_in]``."""
  pos = np.arange(n_out) * ((n_in - 1) / max(n_out - 1, 1))
  lo = np.clip(np.floor(pos).astype(int), 0, n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  frac = (pos - lo).astype(np.float32)
  m = np.zeros((n_out, n_in), np.float32)
  m[np.arange(n_out), lo] += 1 - frac
  m[np.arange(n_out), hi] += frac
  return m


@fvjax.pytree.dataclass
class Upsample(Transform):
  """torch's ``Upsample(size, mode="bilinear", align_corners=True)``, as Lucent appends."""
  size: int = fvjax.pytree.static()

  def __call__(self, key, images, strength=1.0):
    _, h, w, _ = images.shape
    my = jnp.asarray(_interpolation_matrix(self.size, h))
    mx = jnp.asarray(_interpolation_matrix(self.size, w))
    return jnp.einsum("oh,bhwc,pw->bopc", my, images, mx)

  def output_size(self, size):
    return self.size, self.size


def units(k: int, repeat: int) -> np.ndarray:
  return (repeat * k + np.arange(k)) % CHANNELS


def run_fvjax(model, k, repeat, args, transforms):
  objective = fvjax.objectives.channel(LAYER, jnp.asarray(units(k, repeat)))
  param = fvjax.param.image(args.size)
  start = time.perf_counter()
  with fvjax.count_compiles() as log:
    result = fvjax.render(model, objective, key=jax.random.key(repeat), steps=args.steps,
                          param=param, transforms=transforms, progress=False)
    np.asarray(result.images)
  return time.perf_counter() - start, log.count("_run_all")


def _clear_hooks(net):
  # Lucent's render_vis hooks every module and never removes the hooks; without this they
  # would pile up over the repeats and slow Lucent down.
  for module in net.modules():
    module._forward_hooks.clear()


def run_lucent(net, k, repeat, args, batched):
  import torch
  from lucent.optvis import objectives, param, render
  torch.manual_seed(repeat)
  np.random.seed(repeat)
  chosen = units(k, repeat)
  fixed = args.lucent_fixed_size
  start = time.perf_counter()
  if batched:
    objective = objectives.Objective.sum(
        [objectives.channel(LAYER, int(u), batch=i) for i, u in enumerate(chosen)])
    render.render_vis(net, objective, param_f=lambda: param.image(args.size, batch=k),
                      thresholds=(args.steps,), show_image=False, progress=False,
                      fixed_image_size=fixed)
  else:
    for u in chosen[:args.single_cap]:
      render.render_vis(net, f"{LAYER}:{int(u)}", param_f=lambda: param.image(args.size),
                        thresholds=(args.steps,), show_image=False, progress=False,
                        fixed_image_size=fixed)
  elapsed = time.perf_counter() - start
  _clear_hooks(net)
  return elapsed, min(k, args.single_cap) if not batched else k


def calibrate_threads(net, size: int) -> int:
  """The faster torch thread count (1 or 2) for one forward + backward of ``net``."""
  import torch
  best, seen = {}, {}
  hook = getattr(net, LAYER).register_forward_hook(lambda m, i, o: seen.__setitem__(LAYER, o))
  for threads in (1, 2, 1, 2):
    torch.set_num_threads(threads)
    x = torch.rand(1, 3, size, size, requires_grad=True)
    start = time.perf_counter()
    for _ in range(2):
      try:
        net(x * 255 - 117)
      except RuntimeError:  # the 7x7 average pool needs 224 px; Lucent catches this too
        pass
      seen[LAYER][:, 0].mean().backward()
    best[threads] = min(best.get(threads, float("inf")), time.perf_counter() - start)
  hook.remove()
  print(f"torch calibration (s for 2 forward+backward): {best}", flush=True)
  return min(best, key=best.get)


def plot(out: dict, path: str) -> None:
  """Bars of unit-steps/s per K for fvjax, Lucent one at a time and Lucent batched."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows = out["rows"]
  names = [("fvjax", "fvjax (K units in one render)"),
           ("lucent_single", "Lucent, one unit at a time"),
           ("lucent_batched", "Lucent, batched render_vis")]
  fig, ax = plt.subplots(figsize=(6.5, 3.6))
  width = 0.8 / len(names)
  for j, (name, label) in enumerate(names):
    vals = [r["unit_steps_per_s"].get(name, float("nan")) for r in rows]
    ax.bar(np.arange(len(rows)) + (j - 1) * width, vals, width, label=label)
  ax.set_xticks(np.arange(len(rows)))
  ax.set_xticklabels([f"K = {r['K']}" for r in rows])
  ax.set_ylabel("unit-steps per second (median)")
  env = out["env"]
  ax.set_title(f"InceptionV1 mixed4a, {out['args']['size']} px, {out['args']['steps']} steps; "
               f"{env['cpu_count']} CPU cores, jax {env['jax']}, torch {env['torch']}",
               fontsize=8)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--ks", default="1,8,64")
  parser.add_argument("--steps", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--model-size", type=int, default=0,
                      help="side the transformed image is resized to before the model; 0 "
                           "(default): no resize in fvjax, Lucent resizes to fvjax's size; "
                           "224: Lucent's default for small images, in both")
  parser.add_argument("--torch-threads", type=int, default=0,
                      help="torch threads; 0: the faster of 1 and 2 in a calibration")
  parser.add_argument("--single-cap", type=int, default=8,
                      help="at most this many units per repeat for Lucent one-at-a-time")
  parser.add_argument("--no-batched-lucent-above", type=int, default=10**9,
                      help="skip Lucent's batched form for K above this")
  parser.add_argument("--out", default="benchmarks/results/vs_lucent_cpu.json")
  args = parser.parse_args()

  shim = lucent_compat.install_torchvision_stand_in()
  import torch
  from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1
  torch.manual_seed(0)
  net = InceptionV1().eval()  # random weights, redirected ReLU (Lucent's defaults)
  for p in net.parameters():  # spares Lucent the weight gradients it computes by default
    p.requires_grad_(False)
  model = inception_v1({k: v.numpy() for k, v in net.state_dict().items()},
                       redirected_relu=True)
  transforms = fvjax.transforms.standard()
  seen = transforms.output_size((args.size, args.size))[0]
  if args.model_size and args.model_size != seen:
    transforms = fvjax.transforms.compose(*transforms.transforms, Upsample(args.model_size))
  args.lucent_fixed_size = None if args.model_size == 224 else (args.model_size or seen)
  args.torch_threads = args.torch_threads or calibrate_threads(net, args.model_size or seen)
  torch.set_num_threads(args.torch_threads)
  env = {"cpu_count": os.cpu_count(), "machine": platform.machine(),
         "processor": platform.processor(), "jax": jax.__version__,
         "jax_device": str(jax.devices()[0].device_kind), "torch": torch.__version__,
         "torch_threads": torch.get_num_threads(), "torchvision": shim,
         "loadavg_start": os.getloadavg()}
  print(json.dumps(env))
  rows = []
  variants = ["fvjax"]
  for k in [int(v) for v in args.ks.split(",")]:
    rates = {name: [] for name in variants + ["lucent_single", "lucent_batched"]}
    first, first_traces, retraces = {}, {}, {}
    for name in variants:  # compile for this K (other units than any repeat renders)
      first[name], first_traces[name] = run_fvjax(model, k, -1, args, transforms)
      retraces[name] = 0
    for r in range(args.repeats):
      for name in variants:
        elapsed, traced = run_fvjax(model, k, r, args, transforms)
        rates[name].append(k * args.steps / elapsed)
        retraces[name] += traced
      elapsed, count = run_lucent(net, k, r, args, batched=False)
      rates["lucent_single"].append(count * args.steps / elapsed)
      if 1 < k <= args.no_batched_lucent_above:
        elapsed, count = run_lucent(net, k, r, args, batched=True)
        rates["lucent_batched"].append(count * args.steps / elapsed)
      print(f"K={k} repeat {r}: " + ", ".join(
          f"{name} {v[-1]:.3f}" for name, v in rates.items() if v), flush=True)
    med = {name: statistics.median(v) for name, v in rates.items() if v}
    lucent_best = max(med.get("lucent_batched", 0.0), med["lucent_single"])
    row = {"K": k, "unit_steps_per_s": med, "all": rates, "steps": args.steps,
           "loadavg": os.getloadavg()}
    for name in variants:
      row[f"{name}_first_call_s"] = first[name]
      row[f"{name}_compile_s"] = first[name] - k * args.steps / med[name]
      row[f"{name}_traces_first_call"] = first_traces[name]
      row[f"{name}_retraces_across_units"] = retraces[name]
      row[f"{name}_vs_lucent_single"] = med[name] / med["lucent_single"]
      row[f"{name}_vs_lucent_best"] = med[name] / lucent_best
    rows.append(row)
    print(json.dumps({key: v for key, v in row.items() if key != "all"}), flush=True)
  env["loadavg_end"] = os.getloadavg()
  out = {"env": env, "args": vars(args), "rows": rows}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(out, f, indent=2)
  plot(out, os.path.splitext(args.out)[0] + ".png")
  print("\n| K | " + " | ".join(f"{n} unit-steps/s" for n in variants) + " | Lucent one-at-a-time "
        "| Lucent batched | " + " | ".join(f"{n} / Lucent one-at-a-time | {n} / Lucent best"
                                          for n in variants)
        + " | " + " | ".join(f"{n} compile s | {n} retraces" for n in variants) + " |")
  print("|" + "---|" * (3 + 5 * len(variants)))
  for row in rows:
    m = row["unit_steps_per_s"]
    cells = [str(row["K"])] + [f"{m[n]:.2f}" for n in variants]
    cells += [f"{m['lucent_single']:.2f}", f"{m['lucent_batched']:.2f}" if "lucent_batched" in m
              else "(= one-at-a-time)"]
    cells += [f"{row[f'{n}_vs_lucent_single']:.2f}x | {row[f'{n}_vs_lucent_best']:.2f}x"
              for n in variants]
    cells += [f"{row[f'{n}_compile_s']:.0f} | {row[f'{n}_retraces_across_units']}"
              for n in variants]
    print("| " + " | ".join(cells) + " |")
  print("wrote", args.out)


if __name__ == "__main__":
  main()
