"""Tests for fvjax._src.reliability.impossibility (Geirhos et al. 2023, part 4)."""

import jax
import numpy as np
import pytest

import fvjax
from fvjax._src.reliability import impossibility as im

N1 = 1025  # 1-D grid
N2 = 65  # 2-D grid per axis


def _cases():
    k1, k2 = jax.random.split(jax.random.PRNGKey(123))
    return {
        "ramp_1d": (im.linear_mlp([1.0], 0.0), im.grid_points(1, N1)),
        "mlp_1d": (im.init_relu_mlp(k1, 1, (16, 16)), im.grid_points(1, N1)),
        "mlp_2d": (im.init_relu_mlp(k2, 2, (16, 16)), im.grid_points(2, N2)),
    }


CASES = _cases()


@pytest.fixture(scope="module")
def twins():
    out = {}
    for name, (base, pts) in CASES.items():
        tw = im.make_twins(base, pts, delta_frac=1e-3, plateau_frac=0.5)
        vals = {k: im.mlp_apply_np(p, pts) for k, p in
                (("f", tw.base), ("g_plus", tw.g_plus), ("g_minus", tw.g_minus))}
        out[name] = (tw, pts, vals)
    return out


def test_grid_points_shape_and_bounds():
    g = im.grid_points(2, 5)
    assert g.shape == (25, 2)
    assert g.min() == 0.0 and g.max() == 1.0
    # ij ordering: reshape(n, n)[i, j] is at (axis[i], axis[j])
    assert np.allclose(g.reshape(5, 5, 2)[1, 3], [0.25, 0.75])


def test_feature_visualization_known_function():
    pts = im.grid_points(1, 101)
    vals = -((pts[:, 0] - 0.3) ** 2)  # max at 0.3, min at 1.0
    v = im.feature_visualization(vals, pts)
    assert np.allclose(v.argmax, [0.3]) and np.allclose(v.argmin, [1.0])
    assert v.fmax == pytest.approx(0.0) and v.fmin == pytest.approx(-0.49)
    assert v.midpoint == pytest.approx(-0.245) and v.value_range == pytest.approx(0.49)


def test_network_algebra_is_exact():
    pts = im.grid_points(2, 17)
    key = jax.random.PRNGKey(7)
    p = im.init_relu_mlp(key, 2, (8,))
    q = im.init_relu_mlp(jax.random.fold_in(key, 1), 2, (5, 6, 4))
    vp, vq = im.mlp_apply_np(p, pts), im.mlp_apply_np(q, pts)
    assert np.allclose(im.mlp_apply_np(im.deepen_mlp(p, 3), pts), vp, atol=1e-12)
    assert im.mlp_depth(im.deepen_mlp(p, 3)) == 4
    st = im.mlp_apply_np(im.stack_mlps(p, q), pts)
    assert st.shape == (len(pts), 2)
    assert np.allclose(st, np.stack([vp, vq], 1), atol=1e-12)
    assert np.allclose(im.mlp_apply_np(im.max_mlp(p, q), pts), np.maximum(vp, vq), atol=1e-12)
    assert np.allclose(im.mlp_apply_np(im.min_mlp(p, q), pts), np.minimum(vp, vq), atol=1e-12)
    # the float32 JAX path computes the same function
    assert np.allclose(np.asarray(im.mlp_apply(im.max_mlp(p, q), pts)), np.maximum(vp, vq),
                       atol=1e-5)
    # bump: height on the plateau, slope outside
    b = im.mlp_apply_np(im.plateau_bump_mlp([0.5, 0.5], 2.0, 4.0, radius=0.2), pts)
    l1 = np.abs(pts - 0.5).sum(1)
    assert np.allclose(b, 2.0 - 4.0 * np.maximum(l1 - 0.2, 0.0), atol=1e-6)


def test_init_is_deterministic_and_key_dependent():
    a = im.init_relu_mlp(jax.random.PRNGKey(0), 1, (8, 8))
    b = im.init_relu_mlp(jax.random.PRNGKey(0), 1, (8, 8))
    c = im.init_relu_mlp(jax.random.PRNGKey(1), 1, (8, 8))
    x = im.grid_points(1, 33)
    assert np.array_equal(im.mlp_apply_np(a, x), im.mlp_apply_np(b, x))
    assert not np.allclose(im.mlp_apply_np(a, x), im.mlp_apply_np(c, x))


@pytest.mark.parametrize("name", list(CASES))
def test_twins_share_extremes_and_differ_by_half_range(twins, name):
    tw, pts, vals = twins[name]
    vis = {k: im.feature_visualization(v, pts) for k, v in vals.items()}
    f = vis["f"]
    for k in ("g_plus", "g_minus"):
        assert vis[k].imin == f.imin, k
        assert vis[k].imax == f.imax, k
        assert np.array_equal(vis[k].argmin, f.argmin)
        assert np.array_equal(vis[k].argmax, f.argmax)
        assert abs(vis[k].fmin - f.fmin) < 1e-12 * max(1.0, abs(f.fmin))
        assert abs(vis[k].fmax - f.fmax) < 1e-12 * max(1.0, abs(f.fmax))
    # the twins stay inside [min, max]; they are ReLU nets one layer deeper than
    # the deeper of (f, 2-hidden-layer bump)
    for k in ("g_plus", "g_minus"):
        assert vals[k].min() >= f.fmin - 1e-12 and vals[k].max() <= f.fmax + 1e-12
        assert im.mlp_depth(getattr(tw, k)) == max(im.mlp_depth(tw.base), 2) + 1
    r = f.value_range
    gap = im.sup_distance(vals["g_plus"], vals["g_minus"])
    assert gap >= 0.5 * r
    assert gap == pytest.approx((1 - 2e-3) * r, rel=1e-5)
    # one of the twins is also >= range/2 - delta away from the base net itself
    assert max(im.sup_distance(vals["f"], vals["g_plus"]),
               im.sup_distance(vals["f"], vals["g_minus"])) >= 0.5 * r - tw.delta - 1e-9


def test_twins_extremes_hold_on_a_finer_grid(twins):
    tw, _, _ = twins["mlp_1d"]
    fine = im.grid_points(1, 8 * N1 + 3)  # not a refinement of the construction grid
    v = {k: im.feature_visualization(im.mlp_apply_np(p, fine), fine)
         for k, p in (("f", tw.base), ("g_plus", tw.g_plus), ("g_minus", tw.g_minus))}
    for k in ("g_plus", "g_minus"):
        assert v[k].imin == v["f"].imin and v[k].imax == v["f"].imax
        assert v[k].fmax == pytest.approx(v["f"].fmax, abs=1e-12)
        assert v[k].fmin == pytest.approx(v["f"].fmin, abs=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_every_decoder_errs_by_half_the_gap(twins, name):
    tw, pts, vals = twins[name]
    vis = im.feature_visualization(vals["f"], pts)
    gp, gm = vals["g_plus"], vals["g_minus"]
    preds = {
        "midpoint": im.decode_midpoint(vis, pts),
        "linear": im.decode_linear_interpolation(vis, pts),
        "dist": im.decode_distance_weighted(vis, pts),
        "base": vals["f"],
        "pair_optimum": 0.5 * (gp + gm),
    }
    r = vis.value_range
    for k, h in preds.items():
        rep = im.decoder_error_report(h, gp, gm, vis)
        assert rep["bound_satisfied"], k
        # (plateau heights are float32 weights: ~1e-7 relative slack)
        assert rep["worst"] >= 0.5 * (1 - 2e-3) * r - 1e-6 * r, k
        assert rep["theorem_bound"] == pytest.approx(0.5 * r)
    # the pair optimum attains the bound exactly on both twins
    rep = im.decoder_error_report(preds["pair_optimum"], gp, gm, vis)
    assert rep["err_plus"] == pytest.approx(rep["pair_bound"], rel=1e-9)
    assert rep["err_minus"] == pytest.approx(rep["pair_bound"], rel=1e-9)
    # decoders are exact at the extremes they were given
    for k in ("linear", "dist"):
        assert preds[k][vis.imax] == pytest.approx(vis.fmax)
        assert preds[k][vis.imin] == pytest.approx(vis.fmin)


def test_decoder_report_detects_a_violation():
    vis = im.feature_visualization(np.array([0.0, 1.0, 0.5]), np.array([[0.0], [1.0], [0.5]]))
    rep = im.decoder_error_report(np.array([0.0, 1.0, 0.5]), np.array([0.0, 1.0, 0.9]),
                                  np.array([0.0, 1.0, 0.1]), vis)
    assert rep["pair_bound"] == pytest.approx(0.4)
    assert rep["worst"] == pytest.approx(0.4)
    assert rep["bound_satisfied"]


@pytest.mark.parametrize("name", list(CASES))
def test_midpoint_property_differs_and_no_decoder_beats_chance(twins, name):
    tw, pts, vals = twins[name]
    vis = im.feature_visualization(vals["f"], pts)
    gp, gm = vals["g_plus"], vals["g_minus"]
    ap, am = im.above_midpoint(gp, vis), im.above_midpoint(gm, vis)
    s = ap != am
    assert s.sum() > 0.05 * len(pts)  # a sizable disagreement set
    ic = int(np.argmin(np.abs(pts - tw.center).sum(1)))
    assert ap[ic] and not am[ic]  # at the plateau centre they disagree
    rng = np.random.default_rng(0)
    preds = {
        "above": np.ones(len(pts), bool),
        "coin": rng.random(len(pts)) < 0.5,
        "linear": im.decode_linear_interpolation(vis, pts) > vis.midpoint,
        "base": vals["f"] > vis.midpoint,
    }
    for k, q in preds.items():
        rep = im.midpoint_property_report(q, gp, gm, vis)
        assert rep["disagreement_fraction"] == pytest.approx(s.mean())
        assert rep["worst_acc_on_S"] <= 0.5, k


def test_theorem2_on_random_inputs_where_the_construction_predicts():
    """Theorem 2 on a random 2-D ReLU net, checked at random inputs (not the construction
    grid) against what the construction must deliver: (a) the three nets share argmin,
    argmax, min and max on an independent finer grid; (b) every input within L1 distance
    ``radius + (max - delta - mid) / slope`` of the plateau centre has g+ above and g-
    below the shared midpoint (the disagreement set contains this ball); (c) beyond
    ``radius + (R - delta) / slope`` both twins equal f exactly, so nothing near the
    extremes moved; (d) any decoder of the visualization, even the reference net itself,
    is right on at most half of the ball for one of the twins. A twin built from the wrong
    bump (height, sign, slope, centre) or combined with the wrong max/min breaks (a)-(c)."""
    base = im.init_relu_mlp(jax.random.PRNGKey(11), 2, (16, 16))
    grid = im.grid_points(2, 49)
    tw = im.make_twins(base, grid, delta_frac=1e-2, plateau_frac=0.3)
    r = tw.vis.value_range
    fine = im.grid_points(2, 97 + 4)  # not a refinement of the 49-point grid
    vf = {k: im.feature_visualization(im.mlp_apply_np(p, fine), fine)
          for k, p in (("f", tw.base), ("p", tw.g_plus), ("m", tw.g_minus))}
    for k in ("p", "m"):
        assert vf[k].imin == vf["f"].imin and vf[k].imax == vf["f"].imax
        assert abs(vf[k].fmin - vf["f"].fmin) < 1e-9 * r
        assert abs(vf[k].fmax - vf["f"].fmax) < 1e-9 * r
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(5), (6000, 2)), np.float64)
    f, gp, gm = (im.mlp_apply_np(p, x) for p in (tw.base, tw.g_plus, tw.g_minus))
    d = np.abs(x - tw.center).sum(1)
    mid = tw.vis.midpoint
    ball = d <= tw.radius + (tw.vis.fmax - tw.delta - mid) / tw.slope
    assert ball.mean() > 0.03  # the ball holds hundreds of the random inputs
    assert np.all(gp[ball] > mid) and np.all(gm[ball] < mid)
    far = d >= tw.radius + (r - tw.delta) / tw.slope + 1e-9
    assert far.mean() > 0.3
    np.testing.assert_allclose(gp[far], f[far], rtol=0, atol=1e-9 * r)
    np.testing.assert_allclose(gm[far], f[far], rtol=0, atol=1e-9 * r)
    for q in (f > mid, im.decode_distance_weighted(tw.vis, x) > mid):
        acc_p, acc_m = np.mean(q[ball] == (gp[ball] > mid)), np.mean(q[ball] == (gm[ball] > mid))
        assert min(acc_p, acc_m) <= 0.5


def test_monotone_and_convex_twins_stay_in_class_and_share_the_visualization():
    x = im.grid_points(1, 2049)
    for make, check in ((im.monotone_twins_1d, lambda v: np.all(np.diff(v) > 0)),
                        (im.convex_twins_1d, lambda v: np.all(np.diff(v, 2) >= -1e-9))):
        p, m = make(-1.0, 2.0)
        a, b = im.mlp_apply_np(p, x), im.mlp_apply_np(m, x)
        assert check(a) and check(b), make.__name__
        va, vb = im.feature_visualization(a, x), im.feature_visualization(b, x)
        assert va.imin == vb.imin and va.imax == vb.imax
        # float32 weights: extreme values equal to 6e-7 of the range (measured 5.2e-7)
        assert abs(va.fmax - vb.fmax) < 2e-6 * 3 and abs(va.fmin - vb.fmin) < 2e-6 * 3
        assert im.sup_distance(a, b) > 0.9 * 3.0  # measured 0.999 R (monotone), 0.93 R
    # the weaker notion the classes do allow: ordering (along rays from the argmin)
    p, m = im.monotone_twins_1d(0.0, 1.0)
    pairs = np.asarray(jax.random.randint(jax.random.PRNGKey(0), (500, 2), 0, len(x)))
    rep = im.order_accuracy(im.mlp_apply_np(p, x), im.mlp_apply_np(m, x), pairs,
                            x[pairs[:, 0], 0] > x[pairs[:, 1], 0])
    assert rep["acc_plus"] == rep["acc_minus"] == 1.0 and rep["disagree"] == 0.0


def test_lipschitz_envelopes_are_lipschitz_twins_and_bound_the_decoder():
    x = im.grid_points(1, 1025)
    v = np.sin(3 * x[:, 0])
    vis = im.feature_visualization(v, x)
    big_l = 3.0 * vis.value_range / abs(vis.argmax[0] - vis.argmin[0])
    up, lo = im.lipschitz_envelopes(vis, x, big_l)
    for e in (up, lo):
        assert np.max(np.abs(np.diff(e)) / np.diff(x[:, 0])) <= big_l * (1 + 1e-9)
        ve = im.feature_visualization(e, x)
        assert ve.imin == vis.imin and ve.imax == vis.imax
    # sin(3x) is 3-Lipschitz <= L, so it lies between the envelopes up to their slack
    # eta = 1e-3 L, which keeps the extremes unique
    eta = 1e-3 * big_l
    assert np.all(lo <= v + eta) and np.all(v <= up + eta)
    h = im.decode_lipschitz(vis, x, big_l)
    dist = np.minimum(np.abs(x[:, 0] - vis.argmin[0]), np.abs(x[:, 0] - vis.argmax[0]))
    assert np.all(np.abs(h - v) <= big_l * dist + eta)
    assert np.abs(h - v).max() > 0.1 * vis.value_range  # far from the extremes it errs
    with pytest.raises(fvjax.FvjaxError, match="at least"):
        im.lipschitz_envelopes(vis, x, 0.5 * vis.value_range)


def test_black_box_twins_and_local_relu_twins():
    x = im.grid_points(1, 1025)
    v = np.cos(5 * x[:, 0])
    vis = im.feature_visualization(v, x)
    bp, bm = im.black_box_twins(v, x, [0.5], 0.1)
    assert im.feature_visualization(bp, x).imax == vis.imax
    assert im.sup_distance(bp, bm) == pytest.approx(0.998 * vis.value_range)
    with pytest.raises(fvjax.FvjaxError, match="extreme"):
        im.black_box_twins(v, x, vis.argmax, 0.1)
    # ReLU twins differing by ~R within 0.02 of the argmax, same visualization
    base = im.init_relu_mlp(jax.random.PRNGKey(2), 1, (16, 16))
    fv = im.feature_visualization(im.mlp_apply_np(base, x), x)
    side = 1.0 if fv.argmax[0] < 0.9 else -1.0
    tw = im.make_twins(base, x, plateau_frac=0.0, center=fv.argmax + side * 0.01)
    a, b = im.mlp_apply_np(tw.g_plus, x), im.mlp_apply_np(tw.g_minus, x)
    near = np.abs(x[:, 0] - fv.argmax[0]) <= 0.02
    assert np.abs(a - b)[near].max() > 0.9 * fv.value_range
    for e in (a, b):
        ve = im.feature_visualization(e, x)
        assert ve.imin == fv.imin and ve.imax == fv.imax
    with pytest.raises(fvjax.FvjaxError, match="extreme"):
        im.make_twins(base, x, center=fv.argmax)


def test_affine_1d_recovered_exactly():
    rep = im.affine_recovery_errors(jax.random.PRNGKey(3), n_functions=200, n_points=257)
    assert rep["n_functions"] == 200
    assert rep["max_abs_error"] < 1e-12
    assert rep["max_rel_error"] < 1e-13
    fns = im.random_affine_1d(jax.random.PRNGKey(3), 200)
    assert np.all(fns["hi"] > fns["lo"]) and np.any(fns["a"] == 0.0)


def test_affine_decoder_handles_decreasing_and_constant():
    x = np.linspace(-1.0, 2.0, 31)
    for a, b in ((-3.0, 0.5), (0.0, 2.0), (1.5, -1.0)):
        y = a * x + b
        v = im.feature_visualization(y, x[:, None])
        assert np.allclose(im.decode_affine_1d(v, x), y, atol=1e-12)


def test_affine_decoder_fails_on_relu_twins(twins):
    _, pts, vals = twins["mlp_1d"]
    vis = im.feature_visualization(vals["f"], pts)
    h = im.decode_affine_1d(vis, pts)
    rep = im.decoder_error_report(h, vals["g_plus"], vals["g_minus"], vis)
    assert rep["worst_over_range"] > 0.49


def test_affine_2d_twins_share_visualization_but_differ():
    pts = im.grid_points(2, 33)
    f1, f2 = im.affine_2d_twins(0.9)
    v1, v2 = im.mlp_apply_np(f1, pts), im.mlp_apply_np(f2, pts)
    a1, a2 = im.feature_visualization(v1, pts), im.feature_visualization(v2, pts)
    assert a1.imin == a2.imin and a1.imax == a2.imax
    assert np.allclose(a1.argmax, [1, 1]) and np.allclose(a1.argmin, [0, 0])
    assert a1.fmax == pytest.approx(a2.fmax) and a1.fmin == pytest.approx(a2.fmin)
    assert im.sup_distance(v1, v2) == pytest.approx(0.8, abs=1e-6)
    with pytest.raises(ValueError):
        im.affine_2d_twins(0.4)


def test_make_twins_rejects_constant_and_bad_args():
    pts = im.grid_points(1, 33)
    with pytest.raises(ValueError):
        im.make_twins(im.linear_mlp([0.0], 1.0), pts)
    with pytest.raises(ValueError):
        im.make_twins(im.linear_mlp([1.0], 0.0), pts, delta_frac=0.0)
    with pytest.raises(ValueError):
        im.make_twins(im.linear_mlp([1.0], 0.0), pts, plateau_frac=1.0)
