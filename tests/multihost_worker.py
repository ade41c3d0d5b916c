"""One process of tests/test_multihost.py: the README's multi-host command, then a sweep and
dataset examples of this process's own data shard, on a mesh over every process's devices.

    python tests/multihost_worker.py OUT COORDINATOR PROCESS_ID   # one of 2 processes
    python tests/multihost_worker.py OUT                          # the single-process reference
"""

import json
import os
import runpy
import sys

import jax
import jax.numpy as jnp
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNITS, STEPS, SIZE = "0:6", 2, 32  # 6 units padded to 8 over 4 devices: 2 per device; the sweep
# (2 settings x 3 units) reuses the same compiled loop


def main():
  out = sys.argv[1]
  flags = ["--units", UNITS, "--steps", str(STEPS), "--size", str(SIZE), "--out", out]
  if len(sys.argv) > 2:  # exactly the README's command: the example's own flags
    flags += ["--coordinator", sys.argv[2], "--num-processes", "2", "--process-id", sys.argv[3]]
  else:
    flags += ["--single-host"]
  sys.argv = [os.path.join(REPO, "examples", "multihost_render.py"), *flags]
  runpy.run_path(sys.argv[0], run_name="__main__")

  import fvjax
  from fvjax import objectives as O
  me, count = jax.process_index(), jax.process_count()
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("units",))
  model = fvjax.zoo.load("tiny-darknet")
  kwargs = dict(key=jax.random.key(1), grid={"learning_rate": [0.02, 0.1]}, steps=STEPS,
                size=SIZE, progress=False, mesh=mesh, out=os.path.join(out, "sweep"))
  swept = fvjax.sweep(model, O.channel("leaky_re_lu_8", jnp.arange(3)), **kwargs)
  again = fvjax.sweep(model, O.channel("leaky_re_lu_8", jnp.arange(3)), **kwargs)

  photos = np.asarray(jax.random.uniform(jax.random.key(2), (13, 48, 48, 3)))
  if count == 1:
    shard = photos
  elif me == 0:
    shard = photos[:7]
  else:  # a stream of two batches: process 1 has 6 images, process 0 has 7
    shard = [photos[7:11], photos[11:]]
  examples = fvjax.dataset_examples(model, "leaky_re_lu_4", shard, 3, batch_size=4,
                                    progress=False, mesh=mesh)
  np.savez(os.path.join(out, f"more_{me}.npz"), sweep_images=swept.images,
           sweep_final=swept.final, top_images=examples.top.images,
           top_scores=examples.top.scores, top_indices=examples.top.indices,
           bottom_indices=examples.bottom.indices, bottom_scores=examples.bottom.scores)
  with open(os.path.join(out, f"more_{me}.json"), "w") as f:
    json.dump({"count": examples.count, "names": examples.top.names,
               "sweep_loaded": again.loaded, "sweep_computed": swept.computed}, f)


if __name__ == "__main__":
  main()
