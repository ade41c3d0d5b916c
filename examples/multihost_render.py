"""Render many units on several hosts (or processes), each host writing its own units.

Run the same command once per process. On a TPU pod slice or under SLURM, with no flags,
`jax.distributed.initialize()` finds the coordinator, the process count and this process's
id itself (e.g. `gcloud compute tpus tpu-vm ssh --worker=all --command "python
examples/multihost_render.py --out run1"`, or one `srun` task per host). Elsewhere give them:

    python examples/multihost_render.py --coordinator 10.0.0.1:1234 --num-processes 2 \
        --process-id 0 --units 0:64 --out run1      # on host 0
    python examples/multihost_render.py --coordinator 10.0.0.1:1234 --num-processes 2 \
        --process-id 1 --units 0:64 --out run1      # on host 1

(tests/test_multihost.py runs exactly this with two processes on 127.0.0.1.) The K units are
sharded over every device of every process through one global mesh; each process writes the
units its own devices computed (`fvjax.process_units`) to ``<out>/host_<process_index>.npz``
(``units``, ``images [n, H, W, 3]``, ``final [n]``). ``--single-host`` skips
`jax.distributed` (one process, its local devices).
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

import fvjax


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model", default="tiny-darknet")
  parser.add_argument("--layer", default="leaky_re_lu_8")
  parser.add_argument("--units", default="0:64", help="START:STOP channels of --layer")
  parser.add_argument("--steps", type=int, default=512)
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", required=True)
  parser.add_argument("--coordinator", default=None,
                      help="HOST:PORT of process 0 (default: auto-detected on TPU / SLURM)")
  parser.add_argument("--num-processes", type=int, default=None)
  parser.add_argument("--process-id", type=int, default=None)
  parser.add_argument("--single-host", action="store_true", help="skip jax.distributed")
  args = parser.parse_args(argv)
  given = [args.coordinator is not None, args.num_processes is not None,
           args.process_id is not None]
  if any(given) and not all(given):
    parser.error("give all of --coordinator, --num-processes and --process-id, or none "
                 "(auto-detection on a TPU pod or under SLURM)")
  if not args.single_host:
    if all(given):
      jax.distributed.initialize(coordinator_address=args.coordinator,
                                 num_processes=args.num_processes, process_id=args.process_id)
    else:
      jax.distributed.initialize()
  start, stop = (int(v) for v in args.units.split(":"))
  units = np.arange(start, stop)
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("units",))  # every device, all hosts
  model = fvjax.zoo.load(args.model)
  result = fvjax.render(model, fvjax.objectives.channel(args.layer, jnp.asarray(units)),
                        key=jax.random.key(args.seed), steps=args.steps, size=args.size,
                        mesh=mesh, progress=jax.process_index() == 0)
  mine = fvjax.process_units(mesh, len(units))
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, f"host_{jax.process_index()}.npz")
  np.savez_compressed(path, units=units[mine], images=result.images[mine],
                      final=result.final[mine])
  print(f"host {jax.process_index()}/{jax.process_count()}: wrote {len(mine)} units to {path}")


if __name__ == "__main__":
  main()
