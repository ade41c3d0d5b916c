"""Impossibility theorems for feature visualization, demonstrated numerically.

Reproduces part 4 (theory) of Geirhos et al. 2023, "Don't trust your eyes":
twin ReLU networks with identical feature visualizations (argmin, argmax,
min, max) that differ by (almost) the whole activation range elsewhere
(Theorem 1), disagree on "is f(x) above the midpoint of its range" on a large
set (Theorem 2), and the positive case (1-D affine functions are recovered
exactly from their extremes).

Reproduce (CPU, ~10 s):

    python experiments/geirhos/impossibility/main.py \
        --out experiments/geirhos/impossibility/results --seed 0

Writes ``config.json``, ``results.json``, ``fig_twins.png`` and
``fig_decoders.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from fvjax.experiment import jsonable, write_json
from fvjax.reliability import impossibility as im

DEFAULT_OUT = "experiments/geirhos/impossibility/results"


def _vis_dict(v: im.Extremes) -> dict:
    return {"argmin": v.argmin, "argmax": v.argmax, "min": v.fmin, "max": v.fmax,
            "imin": v.imin, "imax": v.imax}


def continuous_decoders(vis: im.Extremes, pts: np.ndarray, dim: int) -> dict:
    """Decoders that see only the visualization (name -> (N,) prediction)."""
    out = {
        "midpoint": im.decode_midpoint(vis, pts),
        "linear_interp": im.decode_linear_interpolation(vis, pts),
        "distance_weighted": im.decode_distance_weighted(vis, pts),
    }
    if dim == 1:
        out["affine_fit_1d"] = im.decode_affine_1d(vis, pts)
    return out


def run_example(name, base, dim, n_grid, n_verify, cfg, rng):
    pts = im.grid_points(dim, n_grid)
    twins = im.make_twins(base, pts, delta_frac=cfg["delta_frac"], plateau_frac=cfg["plateau_frac"])
    nets = {"f": twins.base, "g_plus": twins.g_plus, "g_minus": twins.g_minus}
    vals = {k: im.mlp_apply_np(p, pts) for k, p in nets.items()}
    vals32 = {k: np.asarray(im.mlp_apply(p, pts), np.float64) for k, p in nets.items()}
    vis = {k: im.feature_visualization(v, pts) for k, v in vals.items()}
    # Independent check on a finer grid that the twins' extremes are f's.
    vpts = im.grid_points(dim, n_verify)
    vvis = {k: im.feature_visualization(im.mlp_apply_np(p, vpts), vpts) for k, p in nets.items()}

    def same(vd):
        f = vd["f"]
        return {
            "argmin_identical": all(np.array_equal(vd[k].argmin, f.argmin) for k in vd),
            "argmax_identical": all(np.array_equal(vd[k].argmax, f.argmax) for k in vd),
            "max_abs_diff_min": max(abs(vd[k].fmin - f.fmin) for k in vd),
            "max_abs_diff_max": max(abs(vd[k].fmax - f.fmax) for k in vd),
        }

    v0 = vis["f"]
    r = v0.value_range
    gp, gm, f = vals["g_plus"], vals["g_minus"], vals["f"]
    gaps = {
        "range": r,
        "half_range_bound": 0.5 * r,
        "sup_gplus_gminus": im.sup_distance(gp, gm),
        "sup_f_gplus": im.sup_distance(f, gp),
        "sup_f_gminus": im.sup_distance(f, gm),
    }
    gaps["gap_over_range"] = gaps["sup_gplus_gminus"] / r
    gaps["gap_at_least_half_range"] = bool(gaps["sup_gplus_gminus"] >= 0.5 * r)

    # Theorem 1: any decoder sees the same visualization for both twins.
    decs = continuous_decoders(v0, pts, dim)
    decs["base_network_f"] = f  # even outputting the true reference network
    decs["pair_optimum"] = 0.5 * (gp + gm)  # best possible single output
    thm1 = {k: im.decoder_error_report(p, gp, gm, v0) for k, p in decs.items()}

    # Theorem 2: binary property "above the midpoint".
    bdecs = {
        "always_above": np.ones(len(pts), bool),
        "always_below": np.zeros(len(pts), bool),
        "coin_flip": rng.random(len(pts)) < 0.5,
    }
    for k in ("linear_interp", "distance_weighted", "base_network_f"):
        bdecs[k + ">mid"] = decs[k] > v0.midpoint
    thm2 = {k: im.midpoint_property_report(q, gp, gm, v0) for k, q in bdecs.items()}

    res = {
        "dim": dim,
        "n_grid_points": len(pts),
        "n_verify_points": len(vpts),
        "depths": {k: im.mlp_depth(p) for k, p in nets.items()},
        "widths": {k: [int(w.shape[1]) for w, _ in p] for k, p in nets.items()},
        "visualization": {k: _vis_dict(v) for k, v in vis.items()},
        "extremes_identical_grid": same(vis),
        "extremes_identical_fine_grid": same(vvis),
        "float32_vs_float64_max_abs_diff": max(
            float(np.max(np.abs(vals32[k] - vals[k]))) for k in vals),
        "construction": {"center": twins.center, "plateau_radius_l1": twins.radius,
                         "slope": twins.slope, "delta": twins.delta},
        "gaps": gaps,
        "theorem1_decoders": thm1,
        "theorem2_binary_decoders": thm2,
    }
    plot = {"pts": pts, "vals": vals, "vis": v0, "twins": twins, "n_grid": n_grid}
    return res, plot


def plot_twins(plots, path):
    fig = plt.figure(figsize=(16, 9.5))
    gs = fig.add_gridspec(2, 3, hspace=0.35, wspace=0.3)
    for col, name in enumerate(["ramp_1d", "mlp_1d"]):
        ax = fig.add_subplot(gs[0, col])
        p = plots[name]
        x = p["pts"][:, 0]
        v, vis = p["vals"], p["vis"]
        s = im.above_midpoint(v["g_plus"], vis) != im.above_midpoint(v["g_minus"], vis)
        ax.fill_between(x, vis.fmin, vis.fmax, where=s, color="0.88", lw=0,
                        label="Thm 2 disagreement set S")
        ax.plot(x, v["g_plus"], color="tab:red", lw=2, label=r"$g_+=\max(f,B)$")
        ax.plot(x, v["g_minus"], color="tab:blue", lw=2, label=r"$g_-=\min(f,A)$")
        ax.plot(x, v["f"], color="k", lw=1.2, ls="--", label="reference net $f$")
        for yv, ls in ((vis.fmin, ":"), (vis.fmax, ":"), (vis.midpoint, "-.")):
            ax.axhline(yv, color="0.5", lw=0.8, ls=ls)
        ax.plot(vis.argmax[0], vis.fmax, "*", ms=16, color="gold", mec="k", zorder=5,
                clip_on=False, label="shared argmax / max")
        ax.plot(vis.argmin[0], vis.fmin, "v", ms=11, color="tab:green", mec="k", zorder=5,
                clip_on=False, label="shared argmin / min")
        gap = im.sup_distance(v["g_plus"], v["g_minus"])
        ax.set_title(f"{name}: identical visualization,\n"
                     f"$\\|g_+-g_-\\|_\\infty$ = {gap:.3f} = {gap / vis.value_range:.3f} x range")
        ax.set_xlabel("x")
        ax.set_ylabel("activation")
        r = vis.value_range
        ax.set_ylim(vis.fmin - 0.05 * r, vis.fmax + 0.42 * r)
        if col == 0:
            ax.legend(fontsize=7.5, loc="upper center", ncol=2)

    p = plots["mlp_2d"]
    n = p["n_grid"]
    vis = p["vis"]
    vmin, vmax = vis.fmin, vis.fmax
    panels = [(gs[0, 2], "f", "2-D reference net $f$"),
              (gs[1, 0], "g_plus", r"2-D twin $g_+=\max(f,B)$"),
              (gs[1, 1], "g_minus", r"2-D twin $g_-=\min(f,A)$")]
    for spec, key, title in panels:
        ax = fig.add_subplot(spec)
        im_ = ax.imshow(p["vals"][key].reshape(n, n).T, origin="lower", extent=(0, 1, 0, 1),
                        cmap="viridis", vmin=vmin, vmax=vmax)
        ax.plot(*vis.argmax, "*", ms=16, color="gold", mec="k", clip_on=False, zorder=5)
        ax.plot(*vis.argmin, "v", ms=11, color="tab:green", mec="k", clip_on=False, zorder=5)
        ax.set_title(title)
        ax.set_xlabel("$x_0$")
        ax.set_ylabel("$x_1$")
        fig.colorbar(im_, ax=ax, fraction=0.046)
    ax = fig.add_subplot(gs[1, 2])
    diff = (p["vals"]["g_plus"] - p["vals"]["g_minus"]) / vis.value_range
    im_ = ax.imshow(diff.reshape(n, n).T, origin="lower", extent=(0, 1, 0, 1), cmap="magma",
                    vmin=0, vmax=1)
    ax.plot(*vis.argmax, "*", ms=16, color="gold", mec="k", clip_on=False, zorder=5)
    ax.plot(*vis.argmin, "v", ms=11, color="tab:green", mec="k", clip_on=False, zorder=5)
    ax.set_title(f"$(g_+-g_-)$ / range  (max {diff.max():.3f})")
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")
    fig.colorbar(im_, ax=ax, fraction=0.046)
    fig.suptitle("Theorem 1: ReLU twins with identical argmin / argmax / min / max "
                 "(star = argmax, triangle = argmin)", fontsize=13)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_decoders(results, path):
    examples = ["ramp_1d", "mlp_1d", "mlp_2d"]
    colors = ["tab:gray", "tab:orange", "tab:purple"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))

    ax = axes[0]
    decs = ["midpoint", "linear_interp", "distance_weighted", "affine_fit_1d",
            "base_network_f", "pair_optimum"]
    w = 0.26
    for j, ex in enumerate(examples):
        t1 = results["theorem1"][ex]["theorem1_decoders"]
        ys = [t1[d]["worst_over_range"] if d in t1 else np.nan for d in decs]
        ax.bar(np.arange(len(decs)) + (j - 1) * w, ys, w, color=colors[j], label=ex)
    ax.axhline(0.5, color="r", lw=1.5, label="bound: range / 2")
    ax.set_xticks(np.arange(len(decs)))
    ax.set_xticklabels(decs, rotation=30, ha="right")
    ax.set_ylabel(r"worst-case $\|h-g_\pm\|_\infty$ / range")
    ax.set_title("Thm 1: every decoder errs by >= ~range/2\non one twin (n/a bars: 1-D only)")
    ax.legend(fontsize=8)

    ax = axes[1]
    bdecs = list(results["theorem2"]["mlp_1d"].keys())
    for j, ex in enumerate(examples):
        t2 = results["theorem2"][ex]
        ys = [t2[d]["worst_acc_on_S"] for d in bdecs]
        xs = np.arange(len(bdecs)) + (j - 1) * w
        ax.bar(xs, ys, w, color=colors[j],
               label=f"{ex} (|S| = {100 * t2[bdecs[0]]['disagreement_fraction']:.0f}% of grid)")
        for xx, yy in zip(xs, ys):
            ax.text(xx, yy + 0.01, f"{yy:.2f}", ha="center", va="bottom", fontsize=6.5,
                    rotation=90)
    ax.axhline(0.5, color="r", lw=1.5, label="bound: 50 %")
    ax.set_xticks(np.arange(len(bdecs)))
    ax.set_xticklabels(bdecs, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy on S, worse of the two twins")
    ax.set_title('Thm 2: "f(x) > midpoint" on the disagreement set S\n'
                 "(acc(g+) + acc(g-) = 1 for every decoder)")
    ax.legend(fontsize=8)

    ax = axes[2]
    a = results["affine"]
    labels = ["1-D affine\n(max over %d)" % a["n_functions"], "1-D ReLU twins\n(mlp_1d)",
              "1-D ReLU twins\n(ramp_1d)", "2-D affine twins\n(best decoder)"]
    ys = [a["max_rel_error"],
          results["theorem1"]["mlp_1d"]["theorem1_decoders"]["affine_fit_1d"]["worst_over_range"],
          results["theorem1"]["ramp_1d"]["theorem1_decoders"]["affine_fit_1d"]["worst_over_range"],
          results["affine_2d_twins"]["best_decoder_worst_error_over_range"]]
    ax.bar(np.arange(4), ys, color=["tab:green", "tab:red", "tab:red", "tab:olive"])
    for i, y in enumerate(ys):
        ax.text(i, y * 1.4, f"{y:.2g}", ha="center", fontsize=9)
    ax.set_yscale("log")
    ax.set_ylim(1e-18, 10)
    ax.axhline(0.5, color="r", lw=1.0, ls="--", label="range / 2")
    ax.legend(fontsize=8, loc="center left")
    ax.set_xticks(np.arange(4))
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_ylabel("sup error / range")
    ax.set_title("Positive case: the extremes decoder is exact on 1-D affine\n"
                 "functions, not on ReLU twins nor on 2-D affine functions")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _twin_row(cls, x, gp, gm, *, same, theorem2=True, local=None, order=None, note=""):
    """One row of the function-class table from twin values ``gp``, ``gm`` on ``x``."""
    vp, vm = im.feature_visualization(gp, x), im.feature_visualization(gm, x)
    r = vp.value_range
    row = {"class": cls, "same_visualization": bool(same(vp, vm)),
           "argmin_equal": bool(vp.imin == vm.imin), "argmax_equal": bool(vp.imax == vm.imax),
           "max_abs_extreme_value_diff_over_range":
               max(abs(vp.fmin - vm.fmin), abs(vp.fmax - vm.fmax)) / r,
           "gap_over_range": im.sup_distance(gp, gm) / r,
           "best_decoder_worst_error_over_range": 0.5 * im.sup_distance(gp, gm) / r,
           "note": note}
    if theorem2:
        rep = im.midpoint_property_report(np.zeros(len(x), bool), gp, gm, vp)
        row["midpoint_disagreement_fraction"] = rep["disagreement_fraction"]
    if local is not None:
        row.update(local)
    if order is not None:
        row.update(order)
    return row


def function_classes(cfg, key):
    """The paper's function classes, each with twins inside the class that share a
    visualization, or with the decoder that succeeds; weaker notions of understanding."""
    k_mlp, k_erm, k_pairs = jax.random.split(key, 3)
    x = im.grid_points(1, cfg["n_grid_1d"])
    same_exact = lambda a, b: a.imin == b.imin and a.imax == b.imax and \
        abs(a.fmin - b.fmin) <= 1e-6 * a.value_range and abs(a.fmax - b.fmax) <= 1e-6 * a.value_range
    pairs = np.asarray(jax.random.randint(k_pairs, (cfg["n_pairs"], 2), 0, len(x)))
    rows = {}
    f = im.init_relu_mlp(k_mlp, 1, cfg["hidden"])
    fv = im.mlp_apply_np(f, x)
    vis = im.feature_visualization(fv, x)
    # black box: any function; a smooth non-network function, changed on a ball
    smooth = np.sin(7 * x[:, 0]) + 0.5 * np.cos(17 * x[:, 0] + 1.0)
    sv = im.feature_visualization(smooth, x)
    centre = 0.5 * (sv.argmin + sv.argmax)
    bp, bm = im.black_box_twins(smooth, x, centre, 0.25 * abs(sv.argmax[0] - sv.argmin[0]))
    rows["black box"] = _twin_row("black box (any function)", x, bp, bm, same=same_exact,
                                  note="sin(7x) + 0.5 cos(17x + 1), its values replaced on a "
                                       "ball: no network, not continuous")
    # ReLU networks: the twins of Theorem 1, and local twins next to the argmax
    tw = im.make_twins(f, x, delta_frac=cfg["delta_frac"], plateau_frac=cfg["plateau_frac"])
    gp, gm = im.mlp_apply_np(tw.g_plus, x), im.mlp_apply_np(tw.g_minus, x)
    order_pred = fv[pairs[:, 0]] > fv[pairs[:, 1]]  # order as the reference f does
    rows["relu"] = _twin_row("ReLU networks", x, gp, gm, same=same_exact,
                             order=_order(gp, gm, pairs, order_pred),
                             note="Theorem 1 twins of a random 1-32-32-1 ReLU MLP")
    local = {}
    for dist in cfg["local_distances"]:
        side = 1.0 if vis.argmax[0] + dist <= 1 else -1.0
        t = im.make_twins(f, x, delta_frac=cfg["delta_frac"], plateau_frac=0.0,
                          center=vis.argmax + side * dist)
        a, b = im.mlp_apply_np(t.g_plus, x), im.mlp_apply_np(t.g_minus, x)
        near = np.abs(x[:, 0] - vis.argmax[0]) <= 2 * dist
        va, vb = im.feature_visualization(a, x), im.feature_visualization(b, x)
        local[f"within_{2 * dist:g}_of_argmax_gap_over_range"] = \
            float(np.abs(a - b)[near].max() / vis.value_range)
        local[f"within_{2 * dist:g}_same_visualization"] = bool(same_exact(va, vb))
    rows["relu_local"] = _twin_row(
        "ReLU networks, locally (near the argmax)", x, a, b, same=same_exact, local=local,
        note="plateau-free twins centred at distance d of the argmax (steeper bumps)")
    # ERM-trained networks: the same architecture, init and optimizer, trained on g+ / g-
    p_plus, mse_p = im.train_relu_mlp(k_erm, x[::cfg["erm_stride"]], gp[::cfg["erm_stride"]],
                                      cfg["erm_hidden"], steps=cfg["erm_steps"])
    p_minus, mse_m = im.train_relu_mlp(k_erm, x[::cfg["erm_stride"]], gm[::cfg["erm_stride"]],
                                       cfg["erm_hidden"], steps=cfg["erm_steps"])
    ep, em = im.mlp_apply_np(p_plus, x), im.mlp_apply_np(p_minus, x)
    vep, vem = im.feature_visualization(ep, x), im.feature_visualization(em, x)
    rows["erm"] = _twin_row(
        "ERM-trained networks", x, ep, em,
        same=lambda a, b: abs(a.argmin[0] - b.argmin[0]) <= cfg["erm_tolerance"]
        and abs(a.argmax[0] - b.argmax[0]) <= cfg["erm_tolerance"]
        and max(abs(a.fmin - b.fmin), abs(a.fmax - b.fmax)) <= cfg["erm_tolerance"] * a.value_range,
        note=f"two 1-{'-'.join(map(str, cfg['erm_hidden']))}-1 ReLU nets, same init key, "
             f"Adam {cfg['erm_steps']} full-batch steps on MSE to g+ / g- at "
             f"{len(x[::cfg['erm_stride']])} points; training MSE / R^2 "
             f"{mse_p / vis.value_range ** 2:.1e}, {mse_m / vis.value_range ** 2:.1e}; "
             f"visualizations equal within {cfg['erm_tolerance']} (argmin/argmax in x, "
             "extreme values / R), not exactly",
        local={"argmin_abs_diff": abs(vep.argmin[0] - vem.argmin[0]),
               "argmax_abs_diff": abs(vep.argmax[0] - vem.argmax[0])})
    # monotonic: the extremes are the interval's ends; the values between are free
    mp, mm = im.monotone_twins_1d(vis.fmin, vis.fmax, eps=cfg["eps"])
    a, b = im.mlp_apply_np(mp, x), im.mlp_apply_np(mm, x)
    rows["monotone"] = _twin_row(
        "monotonic (1-D, increasing)", x, a, b, same=same_exact,
        order=_order(a, b, pairs, x[pairs[:, 0], 0] > x[pairs[:, 1], 0]),
        note="ReLU nets; the order decoder (x > y => f(x) > f(y), direction from argmin to "
             "argmax) is right on every pair")
    # convex: the chord and a function flat until near the argmax
    cp, cm = im.convex_twins_1d(vis.fmin, vis.fmax, argmin=cfg["convex_argmin"], eps=cfg["eps"])
    a, b = im.mlp_apply_np(cp, x), im.mlp_apply_np(cm, x)
    va = im.feature_visualization(a, x)
    d = np.abs(x[:, 0] - va.argmin[0])
    ray = np.sign(x[pairs[:, 0], 0] - va.argmin[0]) == np.sign(x[pairs[:, 1], 0] - va.argmin[0])
    rows["convex"] = _twin_row(
        "convex (1-D)", x, a, b, same=same_exact,
        order=_order(a, b, pairs[ray], d[pairs[ray, 0]] > d[pairs[ray, 1]]),
        note="maxima of affine pieces (ReLU nets); the order decoder along rays from the "
             "argmin (farther => larger) is right on every same-side pair")
    # Lipschitz with a known constant L: the envelopes are the twins; the decoder is their middle
    lip = {}
    for mult in cfg["lipschitz_multiples"]:
        big_l = mult * vis.value_range / abs(vis.argmax[0] - vis.argmin[0])
        up, lo = im.lipschitz_envelopes(vis, x, big_l)
        h = im.decode_lipschitz(vis, x, big_l)
        dist = np.minimum(np.abs(x[:, 0] - vis.argmin[0]), np.abs(x[:, 0] - vis.argmax[0]))
        err = np.maximum(np.abs(h - up), np.abs(h - lo))
        lip[f"L={mult:g}x"] = {
            "L": big_l, "gap_over_range": im.sup_distance(up, lo) / vis.value_range,
            "decoder_worst_error_over_range": float(err.max() / vis.value_range),
            "error_within_L_times_distance": bool(np.all(err <= big_l * dist + 1e-9)),
            "radius_with_error_below_R_over_10": float(
                dist[err <= 0.1 * vis.value_range].max())}
    up, lo = im.lipschitz_envelopes(vis, x, cfg["lipschitz_multiples"][1] * vis.value_range
                                    / abs(vis.argmax[0] - vis.argmin[0]))
    rows["lipschitz"] = _twin_row(
        "Lipschitz, L known", x, up, lo, same=lambda a, b: a.imin == b.imin and a.imax == b.imax,
        local={"by_L": lip},
        note="upper/lower envelopes with the visualization's extremes (the twins); L in "
             "multiples of the least possible R/|argmax - argmin|; the envelope-middle "
             "decoder errs by at most L x distance to the nearer extreme")
    return rows


def _order(gp, gm, pairs, pred):
    rep = im.order_accuracy(gp, gm, pairs, pred)
    return {"order_acc_plus": rep["acc_plus"], "order_acc_minus": rep["acc_minus"],
            "order_disagree": rep["disagree"]}


def main(argv=None):
    matplotlib.use("Agg")  # the script only saves figures
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    cfg = {
        "seed": args.seed,
        "delta_frac": 1e-3,
        "plateau_frac": 0.5,
        "hidden": [32, 32],
        "n_grid_1d": 4097,
        "n_verify_1d": 20001,
        "n_grid_2d": 201,
        "n_verify_2d": 401,
        "n_affine_functions": 1000,
        "n_affine_points": 1025,
        "affine_2d_t": 0.95,
        "delta_sweep": [0.25, 0.1, 0.01, 1e-3, 1e-4, 1e-5],
        "n_pairs": 20000,
        "local_distances": [0.05, 0.01],
        "eps": 0.05,
        "convex_argmin": 0.25,
        "lipschitz_multiples": [1.0, 2.0, 10.0],
        "erm_hidden": [32, 32],
        "erm_steps": 3000,
        "erm_stride": 8,
        "erm_tolerance": 0.01,
        "keys": "PRNGKey(seed) split into 3: mlp_1d, mlp_2d, affine; coin-flip decoder uses "
                "numpy default_rng(seed)",
    }
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    rng = np.random.default_rng(args.seed)

    bases = {
        "ramp_1d": (im.linear_mlp([1.0], 0.0), 1, cfg["n_grid_1d"], cfg["n_verify_1d"]),
        "mlp_1d": (im.init_relu_mlp(k1, 1, cfg["hidden"]), 1, cfg["n_grid_1d"], cfg["n_verify_1d"]),
        "mlp_2d": (im.init_relu_mlp(k2, 2, cfg["hidden"]), 2, cfg["n_grid_2d"], cfg["n_verify_2d"]),
    }
    results = {"theorem1": {}, "theorem2": {}}
    plots = {}
    for name, (base, dim, n, nv) in bases.items():
        res, plot = run_example(name, base, dim, n, nv, cfg, rng)
        results["theorem2"][name] = res.pop("theorem2_binary_decoders")
        results["theorem1"][name] = res
        plots[name] = plot

    # How close the pair bound gets to the theorem's range/2 as delta -> 0.
    pts1 = im.grid_points(1, cfg["n_grid_1d"])
    sweep = []
    for df in cfg["delta_sweep"]:
        tw = im.make_twins(bases["mlp_1d"][0], pts1, delta_frac=df, plateau_frac=cfg["plateau_frac"])
        gp, gm = im.mlp_apply_np(tw.g_plus, pts1), im.mlp_apply_np(tw.g_minus, pts1)
        vp, vm = im.feature_visualization(gp, pts1), im.feature_visualization(gm, pts1)
        ok = (vp.imin == vm.imin == tw.vis.imin) and (vp.imax == vm.imax == tw.vis.imax)
        sweep.append({"delta_frac": df, "extremes_identical": bool(ok),
                      "best_decoder_worst_error_over_range":
                          0.5 * im.sup_distance(gp, gm) / tw.vis.value_range,
                      "theorem_bound_over_range": 0.5})
    results["theorem1_delta_sweep_mlp_1d"] = sweep

    aff = im.affine_recovery_errors(k3, cfg["n_affine_functions"], cfg["n_affine_points"])
    aff.pop("per_function_abs_error")
    results["affine"] = aff

    pts2 = im.grid_points(2, cfg["n_grid_2d"])
    f1, f2 = im.affine_2d_twins(cfg["affine_2d_t"])
    v1, v2 = im.mlp_apply_np(f1, pts2), im.mlp_apply_np(f2, pts2)
    a1, a2 = im.feature_visualization(v1, pts2), im.feature_visualization(v2, pts2)
    results["affine_2d_twins"] = {
        "t": cfg["affine_2d_t"],
        "vis_1": _vis_dict(a1), "vis_2": _vis_dict(a2),
        "sup_gap": im.sup_distance(v1, v2),
        "range": a1.value_range,
        "best_decoder_worst_error_over_range": 0.5 * im.sup_distance(v1, v2) / a1.value_range,
    }

    results["function_classes"] = function_classes(cfg, jax.random.fold_in(
        jax.random.PRNGKey(args.seed), 7))

    # Headline numbers.
    summary = {}
    for name in bases:
        r1 = results["theorem1"][name]
        t1 = r1["theorem1_decoders"]
        t2 = results["theorem2"][name]
        summary[name] = {
            "extremes_identical": bool(
                r1["extremes_identical_grid"]["argmin_identical"]
                and r1["extremes_identical_grid"]["argmax_identical"]
                and r1["extremes_identical_fine_grid"]["argmin_identical"]
                and r1["extremes_identical_fine_grid"]["argmax_identical"]),
            "gap_over_range": r1["gaps"]["gap_over_range"],
            "min_decoder_worst_error_over_range": min(d["worst_over_range"] for d in t1.values()),
            "theorem1_bound_over_range": 0.5,
            "all_decoders_above_pair_bound": all(d["bound_satisfied"] for d in t1.values()),
            "disagreement_fraction": t2["always_above"]["disagreement_fraction"],
            "max_binary_worst_acc_on_S": max(d["worst_acc_on_S"] for d in t2.values()),
            "theorem2_bound_acc": 0.5,
        }
    summary["affine_1d_max_abs_error"] = aff["max_abs_error"]
    summary["affine_2d_twins_gap_over_range"] = results["affine_2d_twins"]["sup_gap"] / \
        results["affine_2d_twins"]["range"]
    results = {"summary": summary, **results}
    # runtime_s goes to timing.json: results.json is then identical on a rerun (float64
    # numpy on CPU, float32 JAX evaluations and training reproducible on one machine)

    write_json(os.path.join(args.out, "config.json"), cfg)
    write_json(os.path.join(args.out, "results.json"), results)
    write_json(os.path.join(args.out, "timing.json"), {"runtime_s": time.time() - t0})
    plot_twins(plots, os.path.join(args.out, "fig_twins.png"))
    plot_decoders(results, os.path.join(args.out, "fig_decoders.png"))
    print(json.dumps(jsonable(summary), indent=2))
    print(f"wrote {args.out} in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
