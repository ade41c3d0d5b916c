"""Render many units on a multi-host TPU pod or GPU cluster, each host writing its own shard.

Run the same command on every host (e.g. with `gcloud compute tpus tpu-vm ssh --worker=all`
or one `srun` task per host):

    python examples/multihost_render.py --layer leaky_re_lu_8 --units 0:256 --out gs-or-nfs/run1

`jax.distributed.initialize()` discovers the cluster (TPU pods, SLURM, or the
COORDINATOR_ADDRESS / NUM_PROCESSES / PROCESS_ID variables). The K units are sharded over
every device of every host through one global mesh; each host then writes the images of the
units whose shards live on its own devices to ``<out>/host_<process_index>.npz`` (with the
unit indices), so no host gathers the whole batch. On one machine it runs as a single host.
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

import fvjax


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model", default="tiny-darknet")
  parser.add_argument("--layer", default="leaky_re_lu_8")
  parser.add_argument("--units", default="0:64")
  parser.add_argument("--steps", type=int, default=512)
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", required=True)
  parser.add_argument("--single-host", action="store_true", help="skip distributed init")
  args = parser.parse_args()
  if not args.single_host:
    jax.distributed.initialize()
  start, stop = (int(v) for v in args.units.split(":"))
  units = np.arange(start, stop)
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("units",))  # every device, all hosts
  model = fvjax.zoo.load(args.model)
  result = fvjax.render(model, fvjax.objectives.channel(args.layer, jnp.asarray(units)),
                        key=jax.random.key(args.seed), steps=args.steps, size=args.size,
                        mesh=mesh, progress=jax.process_index() == 0)
  # Units are split evenly over the mesh's devices in order; keep this host's devices' share.
  per_device = -(-len(units) // mesh.size)
  mine = [i for d, device in enumerate(mesh.devices.flat)
          if device.process_index == jax.process_index()
          for i in range(d * per_device, min((d + 1) * per_device, len(units)))]
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, f"host_{jax.process_index()}.npz")
  np.savez_compressed(path, units=units[mine], images=result.images[mine], final=result.final[mine])
  print(f"host {jax.process_index()}/{jax.process_count()}: wrote {len(mine)} units to {path}")


if __name__ == "__main__":
  main()
