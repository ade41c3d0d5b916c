"""Szegedy et al. 2014, section 3: units vs random directions of Tiny Darknet.

For layers of Tiny Darknet, the 9 shared ImageNet photos (1000, one per class) that maximise
a unit ``<phi(x), e_i>`` (a channel's spatial mean, as `fvjax.objectives.channel`) and those
that maximise a random direction ``<phi(x), v>`` (`fvjax.objectives.random_directions`),
side by side, with two numbers for how semantically coherent each top-9 set is:

* feature coherence: the mean pairwise cosine similarity of the images' penultimate features
  (Tiny Darknet's globally pooled ``leaky_re_lu_15``, centred on the dataset mean);
* label coherence: the fraction of image pairs in the set that share a coarse WordNet-level
  category of their true label (13 groups of the ImageNet-1k classes: fish, birds,
  amphibians, reptiles, invertebrates, dogs, other mammals, artifacts, food, geological
  formations, people, plants and fungi, other; read from the synset order).

Both are compared with random 9-image sets (the chance level) and between units and
directions (Mann-Whitney U test). The paper's claim is qualitative: directions look as
coherent as units, so "the space, rather than the individual units, contains the semantic
information".

Reproduce (2 shared CPU cores, default scale, ~5-10 min):

    python experiments/szegedy/units_vs_directions/main.py \
        --out experiments/szegedy/units_vs_directions/results --seed 0

The default uses every unit of three layers and as many random directions; ``--scale paper``
probes seven layers with 2048 directions each.
Writes config.json, results.json, results.md and PNG figures to ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402

import fvjax  # noqa: E402
from fvjax import objectives  # noqa: E402
from fvjax.experiment import shared_photos_dir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = str(shared_photos_dir())
FEATURES = "leaky_re_lu_15"
SCALES = {
    "default": dict(layers=("leaky_re_lu_8", "leaky_re_lu_12", "leaky_re_lu_14"), units=None,
                    directions=None, k=9, null_sets=5000, batch=20, show=6),
    "paper": dict(layers=("leaky_re_lu_4", "leaky_re_lu_6", "leaky_re_lu_8", "leaky_re_lu_10",
                          "leaky_re_lu_12", "leaky_re_lu_14", "leaky_re_lu_15"), units=None,
                  directions=2048, k=9, null_sets=20000, batch=20, show=12),
}
# Coarse categories by ImageNet-1k index (the sorted-synset order, which follows WordNet's
# lexicographer files); checked against the photo names.
GROUPS = [("fish", [(0, 6), (389, 397)]), ("bird", [(7, 24), (80, 100), (127, 146)]),
          ("amphibian", [(25, 32)]), ("reptile", [(33, 68)]),
          ("invertebrate", [(69, 79), (107, 126), (300, 329)]), ("dog", [(151, 268)]),
          ("other mammal", [(101, 106), (147, 150), (269, 299), (330, 388)]),
          ("artifact", [(398, 923), (999, 999)]), ("food", [(924, 969)]),
          ("geological formation", [(970, 980)]), ("person", [(981, 983)]),
          ("plant or fungus", [(984, 998)])]


def coarse_groups(synsets) -> np.ndarray:
  """Coarse group index of each synset, by its rank among the 1000 sorted synsets."""
  order = {s: i for i, s in enumerate(sorted(set(synsets)))}
  if len(order) != 1000:
    raise fvjax.FvjaxError(f"expected the 1000 ImageNet classes, got {len(order)} synsets")
  table = np.full(1000, -1)
  for g, (_, ranges) in enumerate(GROUPS):
    for a, b in ranges:
      table[a:b + 1] = g
  assert (table >= 0).all()
  return table[[order[s] for s in synsets]]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _features(apply, layers, params, images):
  acts = apply(params, images)
  return {name: acts[name].mean((1, 2)) for name in layers}


def coherence(sets: np.ndarray, feats: np.ndarray, groups: np.ndarray) -> dict:
  """Per set ``[S, k]`` of image indices: mean pairwise cosine of centred features and the
  fraction of pairs sharing a coarse group, and the largest group's share."""
  f = feats - feats.mean(0)
  f = f / np.linalg.norm(f, axis=1, keepdims=True)
  k = sets.shape[1]
  iu = np.triu_indices(k, 1)
  sims = np.einsum("skd,sjd->skj", f[sets], f[sets])[:, iu[0], iu[1]].mean(1)
  g = groups[sets]
  same = (g[:, :, None] == g[:, None, :])[:, iu[0], iu[1]].mean(1)
  majority = np.asarray([np.bincount(row).max() / k for row in g])
  return {"feature": sims, "label": same, "majority": majority}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--scale", choices=tuple(SCALES), default="default")
  parser.add_argument("--photos", default=PHOTOS)
  args = parser.parse_args(argv)
  cfg = dict(SCALES[args.scale])
  os.makedirs(args.out, exist_ok=True)
  timer = common.Timer()
  key = jax.random.key(args.seed)
  model = fvjax.zoo.load("tiny-darknet")
  data = fvjax.data.image_folder(args.photos, 224)
  groups = coarse_groups(data.labels)
  timer.lap("load photos")

  layers = tuple(cfg["layers"]) + (FEATURES,)
  outs = [_features(model.apply, layers, model.params, jnp.asarray(data.images[i:i + cfg["batch"]]))
          for i in range(0, len(data.images), cfg["batch"])]
  acts = {name: np.concatenate([np.asarray(o[name]) for o in outs]) for name in layers}
  feats = acts[FEATURES]
  timer.lap("forward pass")

  rng = np.random.default_rng(args.seed)
  k = cfg["k"]
  null_sets = np.stack([rng.choice(len(data.images), k, replace=False)
                        for _ in range(cfg["null_sets"])])
  null = coherence(null_sets, feats, groups)
  results = {"null": {m: {"mean": float(v.mean()), "std": float(v.std())}
                      for m, v in null.items()}, "layers": {}}
  config = dict(args=vars(args), scale=cfg, features=f"global mean of {FEATURES}, centred",
                groups=GROUPS, score="spatial mean of the layer's activations dotted with e_i "
                "or with v (unit-norm Gaussian, objectives.random_directions)",
                machine=common.machine())
  common.write_json(os.path.join(args.out, "config.json"), config)
  panels = {}
  for li, layer in enumerate(cfg["layers"]):
    a = acts[layer]
    channels = a.shape[1]
    n_units = cfg["units"] or channels
    n_dirs = cfg["directions"] or channels
    units = np.sort(rng.choice(channels, n_units, replace=False))
    v = np.asarray(objectives.random_directions(jax.random.fold_in(key, li), n_dirs, channels))
    unit_scores = a[:, units].T  # [U, N]
    dir_scores = v @ a.T  # [V, N]
    top_units = np.argsort(-unit_scores, axis=1)[:, :k]
    top_dirs = np.argsort(-dir_scores, axis=1)[:, :k]
    cu, cd = coherence(top_units, feats, groups), coherence(top_dirs, feats, groups)
    row = {"channels": channels, "units": units, "n_units": n_units, "n_directions": n_dirs}
    for m in ("feature", "label", "majority"):
      u_vs_d = stats.mannwhitneyu(cu[m], cd[m])
      row[m] = {"units_mean": float(cu[m].mean()), "units_std": float(cu[m].std()),
                "directions_mean": float(cd[m].mean()), "directions_std": float(cd[m].std()),
                "random_mean": float(null[m].mean()), "random_std": float(null[m].std()),
                "units_above_random_p95": float(np.mean(cu[m] > np.quantile(null[m], 0.95))),
                "directions_above_random_p95": float(np.mean(cd[m] > np.quantile(null[m],
                                                                                   0.95))),
                "mannwhitney_p_units_vs_directions": float(u_vs_d.pvalue)}
    row["per_unit"] = {"feature": cu["feature"], "label": cu["label"]}
    row["per_direction"] = {"feature": cd["feature"], "label": cd["label"]}
    row["top_units"] = [[data.names[i] for i in s] for s in top_units[:cfg["show"]]]
    row["top_directions"] = [[data.names[i] for i in s] for s in top_dirs[:cfg["show"]]]
    results["layers"][layer] = row
    panels[layer] = (units, top_units, top_dirs, cu, cd)
    _panel(data.images, units, top_units, top_dirs, cu, cd, cfg["show"], layer,
           os.path.join(args.out, f"fig_{layer}.png"))
    timer.lap(f"layer {layer}")
  _coherence_plot(results, null, panels, os.path.join(args.out, "fig_coherence.png"))
  results["timings"] = timer.phases
  results["runtime_s"] = timer.total()
  common.write_json(os.path.join(args.out, "results.json"), results)
  md = markdown(results)
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write(md)
  print(md)


def markdown(r) -> str:
  rows = []
  for layer, v in r["layers"].items():
    for m, what in (("feature", "feature cosine"), ("label", "same coarse label (pairs)")):
      s = v[m]
      rows.append([layer, what, f"{s['units_mean']:.3f} ± {s['units_std']:.3f}",
                   f"{s['directions_mean']:.3f} ± {s['directions_std']:.3f}",
                   f"{s['random_mean']:.3f} ± {s['random_std']:.3f}",
                   common.pct(s["units_above_random_p95"]),
                   common.pct(s["directions_above_random_p95"]),
                   f"{s['mannwhitney_p_units_vs_directions']:.2g}"])
  return "\n".join([
      "# Units vs random directions (Tiny Darknet, 1000 shared ImageNet photos, top-9)\n",
      common.table(["layer", "coherence", "units", "random directions", "random 9-sets",
                    "units > random p95", "directions > random p95",
                    "p (units vs directions)"], rows),
      f"\nRun time: {r['runtime_s']:.0f} s.\n"])


def _thumb(img, size=56):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  im = Image.fromarray(np.uint8(np.clip(img, 0, 1) * 255)).resize((size, size), Image.BILINEAR)
  return np.asarray(im, np.float32) / 255


def _mosaic(images, idx, size=56, pad=2):
  """3x3 mosaic of the 9 images ``idx``."""
  side = 3 * size + 2 * pad
  out = np.ones((side, side, 3), np.float32)
  for j, i in enumerate(idx[:9]):
    r, c = divmod(j, 3)
    out[r * (size + pad):r * (size + pad) + size,
        c * (size + pad):c * (size + pad) + size] = _thumb(images[i], size)
  return out


def _panel(images, units, top_units, top_dirs, cu, cd, show, layer, path):
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  cols = min(show, len(top_units), len(top_dirs))
  fig, axes = plt.subplots(2, cols, figsize=(2.1 * cols, 5.5), squeeze=False)
  for j in range(cols):
    for row, (tops, coh, name) in enumerate(((top_units, cu, f"unit e_{units[j]}"),
                                             (top_dirs, cd, f"direction v_{j}"))):
      ax = axes[row, j]
      ax.imshow(_mosaic(images, tops[j]))
      ax.set_title(f"{name}\ncos {coh['feature'][j]:.2f}, label {coh['label'][j]:.2f}",
                   fontsize=7)
      ax.axis("off")
  fig.suptitle(f"{layer}: top-9 photos of units (top row) and random directions (bottom row)",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _coherence_plot(results, null, panels, path):
  """Left: densities of the feature coherence; right: empirical CDFs of the (discrete)
  label coherence."""
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  bins = np.linspace(min(null["feature"].min(), 0), 1, 40)
  axes[0].hist(null["feature"], bins=bins, density=True, histtype="stepfilled", alpha=0.3,
               color="gray", label="random 9-sets")
  ecdf = lambda v: (np.sort(v), np.arange(1, len(v) + 1) / len(v))  # noqa: E731
  axes[1].step(*ecdf(null["label"]), where="post", color="gray", label="random 9-sets")
  for layer, (_, _, _, cu, cd) in panels.items():
    line = axes[0].hist(cu["feature"], bins=bins, density=True, histtype="step",
                        label=f"{layer} units")
    color = line[2][0].get_edgecolor()
    axes[0].hist(cd["feature"], bins=bins, density=True, histtype="step", linestyle="--",
                 color=color, label=f"{layer} directions")
    axes[1].step(*ecdf(cu["label"]), where="post", color=color, label=f"{layer} units")
    axes[1].step(*ecdf(cd["label"]), where="post", color=color, linestyle="--",
                 label=f"{layer} directions")
  axes[0].set_xlabel("mean pairwise cosine of penultimate features (density)", fontsize=8)
  axes[1].set_xlabel("fraction of pairs with the same coarse label (cumulative)", fontsize=8)
  axes[0].legend(fontsize=6)
  axes[1].legend(fontsize=6, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


if __name__ == "__main__":
  main()
