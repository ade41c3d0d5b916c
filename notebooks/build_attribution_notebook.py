"""Build notebooks/attribution.ipynb from the cell sources below and execute it, saving its
outputs (the same writer and options as build_notebooks.py):

    python notebooks/build_attribution_notebook.py    # FVJAX_NOTEBOOK_FAST=1 sizes (what CI runs)
    python notebooks/build_attribution_notebook.py --full

The notebook reads FVJAX_NOTEBOOK_FAST=1 to shrink sizes and steps and FVJAX_PHOTOS for the
photo folder (default ../../shared/data/imagenet-sample, relative to notebooks/); the photo
cells are skipped when the folder is absent.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from build_notebooks import build  # noqa: E402  (the same notebook writer)

CELLS = [
    ("md", """# Attribution and perturbation with fvjax

Which pixels does a classifier's decision depend on? This notebook runs the methods of
`fvjax.attribution` side by side on a few shared ImageNet photos and the vendored Tiny Darknet:

* **gradient saliency** (Simonyan et al. 2014) and **gradient x input**;
* **guided backprop** and **deconvnet** (Springenberg et al. 2015), obtained by rewriting the
  backward rule of the model's LeakyReLUs in the traced program (the model's code is untouched);
* **occlusion** (Zeiler & Fergus 2014), every window position evaluated in vmapped batches;
* **meaningful perturbation** (Fong & Vedaldi 2017), deletion and preservation games;
* **class model visualisation** (Simonyan et al. 2014);
* their evaluation: the **deletion game** (smallest blurred box that kills the score) and the
  **cascading-randomisation sanity check** (Adebayo et al. 2018);
* views: first-layer filters, activation maps of a layer, saliency overlays.

Set `FVJAX_NOTEBOOK_FAST=1` to run it in about a minute (small images, few steps): CI does so, and
so were the outputs saved here made (`python notebooks/build_attribution_notebook.py`). Every view
of `fvjax.attribution` writes a PNG when given a path and returns a matplotlib figure without one."""),
    ("code", """import os
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import fvjax
from fvjax import attribution as A

FAST = os.environ.get("FVJAX_NOTEBOOK_FAST") == "1"
SIZE = 64 if FAST else 224            # photo side (Tiny Darknet was trained at 224)
MASK_STEPS = 8 if FAST else 300       # Fong & Vedaldi: 300 Adam steps
CLASS_STEPS = 5 if FAST else 200
PHOTOS = os.environ.get("FVJAX_PHOTOS", "../../shared/data/imagenet-sample")
FILES = ["n01443537_goldfish.jpg", "n02099601_golden_retriever.jpg",
         "n03417042_garbage_truck.jpg", "n07749582_lemon.jpg"][: 2 if FAST else 4]
key = jax.random.key(0)"""),
    ("md", "## The model and its first-layer filters\n`fvjax.zoo.load` returns a `fvjax.Model`: a pure function from images in [0, 1] to a dict of named activations, plus `logits`."),
    ("plot", """model = fvjax.zoo.load("tiny-darknet")
A.filter_grid(model)"""),
    ("md", "## Photos\nA few shared photos and their class indices in the model's order (the vendored labels file maps synsets to indices)."),
    ("code", """labels_tsv = os.path.join(os.path.dirname(fvjax.__file__), "weights", "tiny_darknet_labels.tsv")
with open(labels_tsv) as f:
    synset_index = {line.split("\\t")[0]: i for i, line in enumerate(f) if line.strip()}
have_photos = os.path.isdir(PHOTOS) and all(os.path.exists(os.path.join(PHOTOS, f)) for f in FILES)
if have_photos:
    photos = fvjax.data.image_folder(PHOTOS, SIZE, files=FILES)
    x = photos.images
    classes = np.array([synset_index[s] for s in photos.labels])
    probs = jax.nn.softmax(model(x)["logits"])
    names = [f.split("_", 1)[1][:-4] for f in FILES]
    for n, c, p in zip(names, classes, probs):
        print(f"{n:18s} class {c:4d}  p(class) = {p[c]:.3f}  top-1: {model.labels[int(p.argmax())]}")
else:
    print("no photos at", PHOTOS, "- set FVJAX_PHOTOS to the shared imagenet-sample folder; photo cells are skipped")"""),
    ("md", """## Backpropagation maps
`saliency` is the max over colour of |d logit / d x|; `guided_backprop` and `deconvnet` replace the
rectifiers' backward rule (`A.with_backward_rule(model, "guided")` returns such a model)."""),
    ("plot-photos", """if have_photos:
    maps = {
        "gradient": A.saliency(model, x, classes),
        "gradient x input": A.gradient_x_input(model, x, classes),
        "guided backprop": A.guided_backprop(model, x, classes),
        "deconvnet": A.deconvnet(model, x, classes),
        "occlusion": A.occlusion(model, x, classes, window=SIZE // 7, stride=SIZE // 14),
    }
    display(A.attribution_panel(x, maps, labels=names))
    display(A.attribution_panel(x, maps, labels=names, overlay_maps=True))"""),
    ("md", """## Guided backprop on your own linen model
Nothing in the model needs to change: the traced program is rewritten, whatever module or
function produced the ReLUs (`nn.relu`, `jax.nn.leaky_relu`, `jnp.maximum(x, 0)`)."""),
    ("code", """import flax.linen as nn

class Small(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = jnp.maximum(nn.Conv(8, (3, 3))(x), 0)
        return nn.Dense(10)(x.mean(axis=(1, 2)))

small = Small()
variables = small.init(jax.random.key(1), jnp.zeros((1, 16, 16, 3)))
user_model = fvjax.Model.from_flax(small, variables, input_size=(16, 16))
print("rectifiers found:", A.count_rectifiers(user_model))
img = jax.random.uniform(jax.random.key(2), (1, 16, 16, 3))
for rule in ("gradient", "guided", "deconvnet"):
    g = A.backprop(user_model, img, 3, rule=rule)
    print(f"{rule:10s} |signal| mean {np.abs(g).mean():.4f}, negative entries {np.mean(g < 0):.2f}")"""),
    ("md", """## Meaningful perturbation
The deletion game learns the smallest blurred region that kills the class probability; the
preservation game the smallest region that keeps it. Library defaults are the paper's settings
(28x28 mask upsampled to the image and smoothed, lambda1 = 1e-4, lambda2 = 1e-2, beta = 3, blur
sigma 10, jitter 4, Adam 0.1, 300 steps); images are optimised together, vmapped."""),
    ("plot-photos", """if have_photos:
    mask_size = 28 if SIZE >= 28 else SIZE
    deletion = A.meaningful_perturbation(key, model, x, classes, steps=MASK_STEPS, mask_size=mask_size)
    preservation = A.meaningful_perturbation(key, model, x, classes, game="preservation", steps=MASK_STEPS,
                                             mask_size=mask_size)
    for i, n in enumerate(names):
        print(f"{n:18s} p = {deletion.base[i]:.3f}; after deleting {100 * (1 - deletion.masks[i]).mean():.1f}% "
              f"of the image: {deletion.perturbed[i]:.3f} (all blurred: {deletion.reference[i]:.3f}); "
              f"keeping {100 * preservation.masks[i].mean():.1f}%: {preservation.perturbed[i]:.3f}")
    blurred = A.gaussian_blur(jnp.asarray(x), 10.0)
    shown = {"deleted (1 - m)": deletion.saliency,
             "what the model saw": np.asarray(A.perturb(x, deletion.masks, blurred)),
             "kept (m)": preservation.saliency}
    display(A.attribution_panel(x, shown, labels=names))"""),
    ("md", "## Class model visualisation\nMaximise the class logit minus lambda ||I||^2 from the mean image (Simonyan et al.); blur and small-norm clipping (Yosinski et al.) are options. Importing fvjax leaves matplotlib's backend alone, so pyplot figures show as usual."),
    ("plot", """targets = [1, 200, 950]  # class indices in the model's order
plain = A.class_model(model, targets, size=SIZE, steps=CLASS_STEPS)
regular = A.class_model(model, targets, size=SIZE, steps=CLASS_STEPS, blur_every=4, norm_percentile=20)
print("logits before:", plain.initial.round(2), "after:", plain.scores.round(1), "regularised:", regular.scores.round(1))
fig, axes = plt.subplots(2, len(targets), figsize=(3 * len(targets), 6))
for j, t in enumerate(targets):
    axes[0, j].imshow(plain.images[j]); axes[0, j].set_title(model.labels[t][:24], fontsize=8)
    axes[1, j].imshow(regular.images[j])
for ax in axes.flat: ax.axis("off")
plt.show()"""),
    ("md", """## Deletion game
Threshold each map, blur the tight box around what is above the threshold, and find the smallest
box that brings the normalised probability (s - s_blur) / (s0 - s_blur) to 0.01 or below."""),
    ("code", """if have_photos:
    evaluated = dict(maps, mask=deletion.saliency)
    for name, m in evaluated.items():
        res = A.deletion_game(model, x, classes, m)
        print(f"{name:18s} smallest box for a 99% drop: {100 * A.minimal_deletion_area(res).mean():5.1f}% of the image")"""),
    ("md", """## Sanity check: cascading randomisation
Randomise the layers from the top down and compare each method's maps with the trained model's
(Spearman rank correlation of |map|). Maps that barely change explain the image, not the model."""),
    ("plot-photos", """if have_photos:
    stages = A.cascading_randomization(jax.random.key(3), model)
    stages = stages[:: 5 if FAST else 1]
    methods = {"gradient": A.saliency, "guided backprop": A.guided_backprop, "gradient x input": A.gradient_x_input}
    corr = {name: [1.0] + [A.rank_correlation(maps[name], fn(m, x, classes)).mean() for _, m in stages]
            for name, fn in methods.items()}
    display(A.sanity_curves(corr, ["original"] + [n for n, _ in stages]))"""),
    ("md", "## Activation maps of one layer\nEvery channel of a layer for one photo."),
    ("plot", """image = x[0] if have_photos else np.full((SIZE, SIZE, 3), 0.5, np.float32)
A.activation_grid(model, image, "leaky_re_lu_2")"""),
]


if __name__ == "__main__":
  build(CELLS, os.path.join(HERE, "attribution.ipynb"))
