"""Build the tour notebook from the cell sources below and execute it, saving its outputs.

    python notebooks/build_notebooks.py             # FVJAX_NOTEBOOK_FAST=1 sizes (what CI runs)
    python notebooks/build_notebooks.py --full      # the paper's steps and sizes (slow on CPU)
    python notebooks/build_notebooks.py --no-execute

This script is the one way to rebuild the notebooks: edit the cells here, run it, commit the
notebook with its outputs (its figures show on GitHub). A cell of kind "plot" must leave an
image output, "plot-photos" one when the shared photos are present (cell tags "figure" and
"figure-photos"; tests/test_notebooks.py checks both, and that the committed cells are these).
Each notebook reads FVJAX_NOTEBOOK_FAST=1 to shrink steps and sizes and FVJAX_PHOTOS for the
photo folder (default ../../shared/data/imagenet-sample, relative to notebooks/).
"""

import argparse
import os
import time

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
TAGS = {"plot": "figure", "plot-photos": "figure-photos"}

FEATURE_VISUALIZATION_TOUR = [
    ("md", """# Feature visualization with fvjax: a tour

Every capability of Olah et al. (2017), "Feature Visualization" (Distill), on the vendored Tiny
Darknet ImageNet classifier: objectives and how they compose, parameterizations (pixels, Fourier
with 1/f scaling, decorrelated colour, shared + separate, MACO, CPPN), transformation robustness,
regularizers, diversity, interpolation, random directions, preconditioning and dataset examples.
Every render below optimizes all of its units **in one compiled, vmapped loop**.

Set `FVJAX_NOTEBOOK_FAST=1` to run it in a minute or two (tiny sizes, few steps): CI does so, and so
were the outputs saved here made (`python notebooks/build_notebooks.py`), which is why the pictures
are small and barely optimized. Run it without the variable for the paper's 512 steps at 128 px."""),
    ("code", """import os
import jax, jax.numpy as jnp, numpy as np
import optax
import fvjax
from fvjax import objectives as O, param as P, transforms as T

FAST = os.environ.get("FVJAX_NOTEBOOK_FAST") == "1"
STEPS = 8 if FAST else 512
SIZE = 32 if FAST else 128
PHOTOS = os.environ.get("FVJAX_PHOTOS", "../../shared/data/imagenet-sample")
key = jax.random.key(0)

def show(images, titles=None, ncols=None, size=1.6):
    # fvjax.plot functions return a matplotlib Figure when given no path; display() shows it
    images = np.asarray(images).reshape(-1, *np.shape(images)[-3:])
    display(fvjax.plot.image_grid(images, labels=titles, ncols=ncols or len(images), tile_inches=size))"""),
    ("md", "## The model\n`fvjax.zoo.load` returns a `fvjax.Model`: a pure function from images in [0, 1] to a dict of named activations."),
    ("code", """model = fvjax.zoo.load("tiny-darknet")
for name in ["conv2d_1", "leaky_re_lu_4", "leaky_re_lu_8", "leaky_re_lu_12", "logits"]:
    print(f"{name:16s} {model.layers[name]}")
print(len(model.layers), "layers;", model.labels[:3])"""),
    ("md", "## Channels: 8 units, one compiled loop\nIndices are traced values, so another set of units reuses the compiled loop: `fvjax.count_compiles()` records the XLA compilations inside its block."),
    ("plot", """channels = jnp.arange(8)
result = fvjax.render(model, O.channel("leaky_re_lu_8", channels), key=key, steps=STEPS, size=SIZE,
                      snapshots=(STEPS // 4, STEPS // 2, STEPS))
show(result.images, [f"channel {c}" for c in channels], ncols=8)
others = channels + 8
with fvjax.count_compiles() as log:
    other = fvjax.render(model, O.channel("leaky_re_lu_8", others), key=key, steps=STEPS, size=SIZE, progress=False)
print(f"optimization loops compiled for the other units: {log.count('_run')} (compilations in all: {log.count()})")"""),
    ("md", "Snapshots along the optimization (early steps are noisy; the paper figures use 32 / 128 / 512):"),
    ("plot", """fvjax.plot.snapshot_strip({s: im[:4] for s, im in result.snapshots.items()}, labels=[f"channel {c}" for c in channels[:4]])"""),
    ("md", "## Neuron, layer (DeepDream), class logit and probability, objective arithmetic"),
    ("plot", """goldfish = model.labels.index("goldfish")
objectives = {
    "neuron 8:3 (centre)": O.neuron("leaky_re_lu_8", 3),
    "layer 6 (DeepDream)": O.layer("leaky_re_lu_6"),
    "logit goldfish": O.class_logit(goldfish),
    "probability goldfish": O.class_probability(goldfish),
    "unit 3 + unit 7": O.channel("leaky_re_lu_8", 3) + O.channel("leaky_re_lu_8", 7),
    "unit 3 - 0.5 * unit 7": O.channel("leaky_re_lu_8", 3) - 0.5 * O.channel("leaky_re_lu_8", 7),
}
images = [fvjax.render(model, o, key=key, steps=STEPS, size=SIZE, progress=False).images[0]
          for o in objectives.values()]
show(images, list(objectives), ncols=6)"""),
    ("md", "## Diversity: four images of one unit\nfvjax's `diversity` is a reward (minus the pairwise cosine similarity of Gram matrices), so add it."),
    ("plot", """objective = O.channel("leaky_re_lu_8", 3) + 1e2 * O.diversity("leaky_re_lu_8")
result = fvjax.render(model, objective, key=key, steps=STEPS, size=SIZE, batch=4)
print("diversity per image:", result.final)
show(result.images[0], [f"image {b}" for b in range(4)])"""),
    ("md", "## Directions: a vector in channel space, and random directions\nSzegedy et al.: random directions look as interpretable as units. All N render in one batch."),
    ("plot", """vectors = O.random_directions(jax.random.key(1), 6, model.layers["leaky_re_lu_8"][-1])
result = fvjax.render(model, O.direction("leaky_re_lu_8", vectors, cossim_pow=1.0), key=key, steps=STEPS, size=SIZE)
show(result.images, [f"random direction {i}" for i in range(6)])"""),
    ("md", "## Interpolation: shared + separate parameters and alignment\nA strip from unit 3 to unit 7; a parameter component shared by the batch keeps it smooth."),
    ("plot", """n = 6
objective = O.channel_interpolate("leaky_re_lu_8", 3, "leaky_re_lu_8", 7) + 1e-1 * O.alignment("leaky_re_lu_8")
result = fvjax.render(model, objective, key=key, steps=STEPS, batch=n, param=P.image(SIZE, batch=n, shared=True))
fvjax.plot.interpolation_strip(result.images[0], start="unit 3", end="unit 7")  # with a path, it writes a PNG"""),
    ("md", "## Regularizers: L1, total variation, blur\nPenalties are >= 0: subtract them. The four variants share one structure (only the weights differ), so they render as one batch."),
    ("plot", """weights = {"none": (0.0, 0.0, 0.0), "- 0.5 L1": (0.5, 0.0, 0.0), "- 2 TV": (0.0, 2.0, 0.0), "- 20 blur": (0.0, 0.0, 20.0)}
variants = [O.channel("leaky_re_lu_8", 13) - a * O.l1() - b * O.total_variation() - c * O.blur_penalty()
            for a, b, c in weights.values()]
result = fvjax.render(model, variants, key=key, steps=STEPS, param=P.pixel(SIZE))
show(result.images, list(weights))"""),
    ("md", "## Parameterizations: pixels, Fourier without/with decorrelated colour, MACO, CPPN"),
    ("plot", """cppn_opt = optax.adam(0.005)
params = {"pixel": (P.pixel(SIZE), None), "fourier (RGB)": (P.fourier(SIZE, decorrelate=False), None),
          "fourier + decorrelated": (P.image(SIZE), None),
          "MACO": (P.maco(SIZE), fvjax.presets.preset("maco", SIZE)["optimizer"]),
          "CPPN": (P.cppn(SIZE), cppn_opt)}
images = [fvjax.render(model, O.channel("leaky_re_lu_8", 13), key=key, steps=STEPS, param=p, optimizer=opt, progress=False).images[0]
          for p, opt in params.values()]
show(images, list(params))"""),
    ("md", "## Presets\n`fvjax.presets.preset(name, size)` gives the keyword arguments of a whole recipe."),
    ("plot", """for name, text in fvjax.presets.PRESETS.items():
    print(f"{name}: {text}")
settings = fvjax.presets.preset("maco", SIZE, batch=1)
settings["steps"] = STEPS
show(fvjax.render(model, O.channel("leaky_re_lu_8", jnp.arange(4)), key=key, **settings).images)"""),
    ("md", "## Preconditioning (Olah 2017): steepest ascent under three metrics\nPlain SGD on pixels (L2), sign SGD on pixels (L-infinity), plain SGD on decorrelated Fourier parameters: same unit, same steps. The full experiment is `experiments/preconditioning/main.py`."),
    ("plot", """sign_sgd = optax.chain(optax.stateless(lambda g, _: jax.tree.map(jnp.sign, g)), optax.sgd(0.03))
methods = {"pixel, L2 (sgd 1e3)": (P.pixel(SIZE), optax.sgd(1e3)),
           "pixel, L-inf (sign sgd)": (P.pixel(SIZE), sign_sgd),
           "decorrelated (sgd 1)": (P.image(SIZE), optax.sgd(1.0))}
runs = {name: fvjax.render(model, O.channel("leaky_re_lu_8", 13), key=key, steps=STEPS, param=p, optimizer=opt, progress=False)
        for name, (p, opt) in methods.items()}
show([r.images[0] for r in runs.values()], list(runs))
fvjax.plot.objective_curves({name: r.trace[0] for name, r in runs.items()}, title="objective per step")"""),
    ("md", "## Dataset examples\nStream natural photos through the model in compiled batches and keep the running top-k per unit (the Distill layout: the visualization beside its top natural images)."),
    ("plot-photos", """if os.path.isdir(PHOTOS):
    photos = fvjax.data.image_folder(PHOTOS, 224 if not FAST else 64, limit=None if not FAST else 48)
    units = jnp.arange(4)
    found = fvjax.dataset_examples(model, O.channel("leaky_re_lu_12", units), photos.images, k=4)
    vis = fvjax.render(model, O.channel("leaky_re_lu_12", units), key=key, steps=STEPS, size=SIZE, progress=False)
    display(fvjax.plot.dataset_examples_panel(vis.images, found, labels=[f"unit {u}" for u in units]))
else:
    print("no photos at", PHOTOS, "- set FVJAX_PHOTOS to an image folder")"""),
]


def notebook(cells):
  """The unexecuted notebook of ``cells``: ``(kind, source)`` with kind "md", "code", "plot"
  or "plot-photos"."""
  nb = nbformat.v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
  for kind, src in cells:
    if kind == "md":
      nb.cells.append(nbformat.v4.new_markdown_cell(src))
    else:
      cell = nbformat.v4.new_code_cell(src)
      if kind in TAGS:
        cell.metadata["tags"] = [TAGS[kind]]
      nb.cells.append(cell)
  return nb


def execute(nb, *, fast=True, timeout=1200):
  """Run ``nb`` in a fresh python3 kernel with notebooks/ as working directory (in place);
  any cell error raises. Returns the seconds it took."""
  import nbclient  # pylint: disable=import-outside-toplevel
  env = {"FVJAX_NOTEBOOK_FAST": "1" if fast else "0"}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)  # the kernel inherits this environment
  start = time.perf_counter()
  try:
    # coalesce_streams: a progress bar's updates become one output, its final state
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            coalesce_streams=True,
                            resources={"metadata": {"path": HERE}}).execute()
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  return time.perf_counter() - start


def build(cells, path, argv=None):
  """Write ``cells`` to ``path``, executed (with outputs) unless ``--no-execute``."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--full", action="store_true", help="the full steps and sizes, not "
                      "FVJAX_NOTEBOOK_FAST=1")
  parser.add_argument("--no-execute", action="store_true", help="write the cells only")
  args = parser.parse_args(argv)
  nb = notebook(cells)
  if not args.no_execute:
    seconds = execute(nb, fast=not args.full)
    print(f"executed {os.path.basename(path)} in {seconds:.0f} s "
          f"({'full' if args.full else 'FVJAX_NOTEBOOK_FAST=1'})")
  nbformat.write(nb, path)
  print("wrote", path)


if __name__ == "__main__":
  build(FEATURE_VISUALIZATION_TOUR, os.path.join(HERE, "feature_visualization_tour.ipynb"))
