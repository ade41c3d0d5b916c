"""Impossibility results for feature visualization, demonstrated numerically.

Part 4 of Geirhos, Zimmermann, Bilodeau, Brendel & Kim (2023), "Don't trust
your eyes: on the (un)reliability of feature visualizations", proves that a
feature visualization -- which only reveals where a unit is maximally and
minimally activated and how strongly, i.e. the tuple
``(argmin f, argmax f, min f, max f)`` -- cannot in general tell you what the
unit does anywhere else.  This module makes the argument concrete:

* **ReLU networks as explicit weights.**  A network is a tuple of
  ``(W, b)`` layers (:func:`mlp_apply`); small operations on weights
  (:func:`deepen_mlp`, :func:`stack_mlps`, :func:`max_mlp`, :func:`min_mlp`,
  :func:`plateau_bump_mlp`) build new ReLU networks *exactly*, so every
  function below is a genuine ReLU network, not just a piecewise-linear
  function evaluated with numpy.

* **Twin networks (Theorem 1).**  :func:`make_twins` takes any ReLU network
  ``f`` on ``[0, 1]^d`` and returns two ReLU networks
  ``g_plus = max(f, B)`` and ``g_minus = min(f, A)``, where ``B`` (``A``) is a
  flat-topped pyramid that rises to just below ``max f`` (falls to just above
  ``min f``) far from both extremes and is far below (above) ``f`` near
  them.  Both twins therefore share ``f``'s argmin, argmax, min and max -- so
  every feature visualization of the three is the same -- while
  ``||g_plus - g_minus||_inf = (max f - min f) - 2 delta``.  Any decoder
  ``D`` that maps the visualization to a predicted function ``h`` gives the
  same ``h`` for both twins, and by the triangle inequality
  ``max(||h - g_plus||, ||h - g_minus||) >= ||g_plus - g_minus|| / 2``, i.e.
  it errs by (almost) half the activation range on one of them.
  :func:`decoder_error_report` measures this for concrete decoders.

* **Binary property (Theorem 2).**  On the plateau the twins lie on opposite
  sides of the shared midpoint ``(min f + max f) / 2``, so the property
  "f(x) is above the midpoint" differs between them.  Any binary decoder
  makes one prediction per input, so on the disagreement set its accuracies
  on the two twins sum to exactly 1 and the worse one is at most 50 %
  (:func:`midpoint_property_report`).

* **Positive case.**  An affine function of one variable on an interval is
  determined by its extremes (:func:`decode_affine_1d`,
  :func:`affine_recovery_errors`); already in two variables it is not
  (:func:`affine_2d_twins`).

Conventions: inputs ``points`` are ``(N, d)`` float arrays (the domain is
``[0, 1]^d`` unless stated); function values are ``(N,)`` arrays.  Networks
are JAX float32 weights evaluated with :func:`mlp_apply` (JAX, float32) or
:func:`mlp_apply_np` (numpy, float64, used for the exactness checks); all
analysis (extremes, errors, decoders) is done in numpy float64.  Every random draw takes an explicit
``jax.random`` key or a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fvjax._src.errors import FvjaxError

__all__ = [
    "Extremes",
    "TwinPair",
    "grid_points",
    "init_relu_mlp",
    "linear_mlp",
    "mlp_apply",
    "mlp_apply_np",
    "mlp_depth",
    "deepen_mlp",
    "stack_mlps",
    "max_mlp",
    "min_mlp",
    "plateau_bump_mlp",
    "feature_visualization",
    "make_twins",
    "sup_distance",
    "decode_midpoint",
    "decode_linear_interpolation",
    "decode_distance_weighted",
    "decode_affine_1d",
    "decoder_error_report",
    "above_midpoint",
    "midpoint_property_report",
    "random_affine_1d",
    "affine_recovery_errors",
    "affine_2d_twins",
    "black_box_twins",
    "monotone_twins_1d",
    "convex_twins_1d",
    "lipschitz_envelopes",
    "decode_lipschitz",
    "train_relu_mlp",
    "order_accuracy",
]

# A ReLU network: ((W_1, b_1), ..., (W_L, b_L)); W_l has shape (d_{l-1}, d_l),
# b_l has shape (d_l,).  Hidden layers use ReLU, the last layer is linear.
MLPParams = tuple


# ----------------------------------------------------------------------------
# ReLU networks as explicit weights
# ----------------------------------------------------------------------------


def grid_points(dim: int, n_per_axis: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Regular grid on ``[lo, hi]^dim`` including the boundary.

    Returns:
      float64 array of shape ``(n_per_axis ** dim, dim)``; for ``dim == 2``
      the rows are ordered so that ``values.reshape(n, n)[i, j]`` is the value
      at ``(x_0 = axis[i], x_1 = axis[j])``.
    """
    if dim < 1 or n_per_axis < 2:
        raise FvjaxError(f"need dim >= 1 and n_per_axis >= 2, got {dim}, {n_per_axis}")
    axis = np.linspace(lo, hi, n_per_axis, dtype=np.float64)
    mesh = np.meshgrid(*([axis] * dim), indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1)


def init_relu_mlp(
    key: jax.Array,
    in_dim: int,
    hidden: Sequence[int] = (32, 32),
    out_dim: int = 1,
) -> MLPParams:
    """Random ReLU network whose kinks all cross the domain ``[0, 1]^d``.

    Weights are He-normal.  Each hidden unit's bias is chosen so that its
    ReLU switches exactly at the (previous-layer image of a) point ``u``
    drawn uniformly from ``[0, 1]^d``: ``b_j = -h(u_j) . W[:, j]``.  This
    keeps every unit "alive" on the domain, so even a 1-D network is
    genuinely piecewise linear with several pieces there.  The output bias
    is 0.

    Args:
      key: ``jax.random`` key; the only source of randomness.
      in_dim: input dimension ``d``.
      hidden: widths of the hidden (ReLU) layers.
      out_dim: output dimension (1 for a scalar unit).

    Returns:
      ``((W_1, b_1), ..., (W_L, b_L))`` with float32 ``jax.Array`` leaves.
    """
    sizes = [in_dim, *hidden, out_dim]
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    params: list = []
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(keys[2 * i], (m, n), jnp.float32) * np.sqrt(2.0 / m)
        if i < len(sizes) - 2:
            u = jax.random.uniform(keys[2 * i + 1], (n, in_dim), jnp.float32)
            h = u
            for wp, bp in params:
                h = jax.nn.relu(h @ wp + bp)
            b = -jnp.sum(h * w.T, axis=1)  # unit j switches at u_j
        else:
            b = jnp.zeros((n,), jnp.float32)
        params.append((w, b))
    return tuple(params)


def linear_mlp(weight: Sequence[float], bias: float) -> MLPParams:
    """The affine function ``x -> <weight, x> + bias`` as a 0-hidden-layer net.

    Args:
      weight: length-``d`` coefficients.
      bias: scalar offset.

    Returns:
      ``((W, b),)`` with ``W`` of shape ``(d, 1)`` and ``b`` of shape ``(1,)``.
    """
    w = jnp.asarray(np.asarray(weight, np.float32).reshape(-1, 1))
    return ((w, jnp.asarray([bias], jnp.float32)),)


def mlp_apply(params: MLPParams, x) -> jax.Array:
    """Evaluate a ReLU network.

    Args:
      params: ``((W_1, b_1), ..., (W_L, b_L))``.
      x: inputs of shape ``(N, d)`` (any real values; the theory uses
        ``[0, 1]^d``).

    Returns:
      float32 array of shape ``(N,)`` when the output dimension is 1, else
      ``(N, out_dim)``.
    """
    h = jnp.asarray(x, jnp.float32)
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    out = h @ w + b
    return out[:, 0] if out.shape[-1] == 1 else out


def mlp_apply_np(params: MLPParams, x) -> np.ndarray:
    """Float64 numpy evaluation of the same network (for exact-ish checks).

    Same semantics and shapes as :func:`mlp_apply`; the float32 weights are
    cast exactly to float64, so rounding differences between mathematically
    identical networks are ~1e-16 instead of ~1e-7.
    """
    h = np.asarray(x, np.float64)
    for w, b in params[:-1]:
        h = np.maximum(h @ np.asarray(w, np.float64) + np.asarray(b, np.float64), 0.0)
    w, b = params[-1]
    out = h @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
    return out[:, 0] if out.shape[-1] == 1 else out


def mlp_depth(params: MLPParams) -> int:
    """Number of hidden (ReLU) layers."""
    return len(params) - 1


def _eye(n: int, dtype=jnp.float32) -> jax.Array:
    return jnp.eye(n, dtype=dtype)


def deepen_mlp(params: MLPParams, n_layers: int = 1) -> MLPParams:
    """Add ``n_layers`` hidden layers without changing the function.

    Uses ``z = relu(z) - relu(-z)`` on the output pre-activation (exact in
    floating point); the merged weights ``W [I, -I]`` are exact too, so
    outputs differ only by the matmul's summation order (~1 ulp).
    """
    params = tuple(params)
    for _ in range(n_layers):
        w, b = params[-1]
        k = w.shape[1]
        split = jnp.concatenate([_eye(k), -_eye(k)], axis=1)  # (k, 2k)
        merge = jnp.concatenate([_eye(k), -_eye(k)], axis=0)  # (2k, k)
        params = params[:-1] + ((w @ split, b @ split), (merge, jnp.zeros((k,), jnp.float32)))
    return params


def _block_diag(a: jax.Array, b: jax.Array) -> jax.Array:
    top = jnp.concatenate([a, jnp.zeros((a.shape[0], b.shape[1]), a.dtype)], axis=1)
    bot = jnp.concatenate([jnp.zeros((b.shape[0], a.shape[1]), a.dtype), b], axis=1)
    return jnp.concatenate([top, bot], axis=0)


def stack_mlps(p: MLPParams, q: MLPParams) -> MLPParams:
    """One network computing ``[p(x), q(x)]`` (outputs concatenated).

    The shallower network is first deepened with :func:`deepen_mlp`; the two
    are then run side by side with block-diagonal weights.
    """
    dp, dq = mlp_depth(p), mlp_depth(q)
    if dp < dq:
        p = deepen_mlp(p, dq - dp)
    elif dq < dp:
        q = deepen_mlp(q, dp - dq)
    layers = []
    for i, ((wp, bp), (wq, bq)) in enumerate(zip(p, q)):
        w = jnp.concatenate([wp, wq], axis=1) if i == 0 else _block_diag(wp, wq)
        layers.append((w, jnp.concatenate([bp, bq])))
    return tuple(layers)


def _combine_pair(p: MLPParams, q: MLPParams, mix: np.ndarray, out: np.ndarray) -> MLPParams:
    """Append ``relu([p, q] @ mix) @ out`` to the stacked network ``[p, q]``."""
    s = stack_mlps(p, q)
    w, b = s[-1]
    mix = jnp.asarray(mix, jnp.float32)
    return s[:-1] + ((w @ mix, b @ mix), (jnp.asarray(out, jnp.float32), jnp.zeros((1,), jnp.float32)))


def max_mlp(p: MLPParams, q: MLPParams) -> MLPParams:
    """ReLU network for ``max(p(x), q(x))`` (scalar networks).

    Uses ``max(f, b) = relu(f) - relu(-f) + relu(b - f)``; depth is
    ``max(depth p, depth q) + 1``.
    """
    mix = np.array([[1.0, -1.0, -1.0], [0.0, 0.0, 1.0]])  # columns: f, -f, b - f
    return _combine_pair(p, q, mix, np.array([[1.0], [-1.0], [1.0]]))


def min_mlp(p: MLPParams, q: MLPParams) -> MLPParams:
    """ReLU network for ``min(p(x), q(x))`` (scalar networks).

    Uses ``min(f, a) = relu(f) - relu(-f) - relu(f - a)``.
    """
    mix = np.array([[1.0, -1.0, 1.0], [0.0, 0.0, -1.0]])  # columns: f, -f, f - a
    return _combine_pair(p, q, mix, np.array([[1.0], [-1.0], [-1.0]]))


def plateau_bump_mlp(center, height: float, slope: float, radius: float = 0.0) -> MLPParams:
    """Flat-topped L1 pyramid ``height - slope * relu(||x - center||_1 - radius)``.

    A 2-hidden-layer ReLU network: layer 1 computes ``relu(+-(x_i - c_i))``
    (whose sum is ``||x - c||_1``), layer 2 ``relu(||x - c||_1 - radius)``.
    With ``slope > 0`` it is a bump (maximum ``height`` on the L1 ball of the
    given radius); with ``slope < 0`` a dip (minimum ``height``).

    Args:
      center: shape ``(d,)``.
      height: value on the plateau.
      slope: decrease per unit L1 distance outside the plateau.
      radius: L1 radius of the plateau (>= 0).
    """
    c = np.asarray(center, np.float32).reshape(-1)
    d = c.shape[0]
    w1 = np.concatenate([np.eye(d), -np.eye(d)], axis=1).astype(np.float32)
    b1 = np.concatenate([-c, c]).astype(np.float32)
    w2 = np.ones((2 * d, 1), np.float32)
    b2 = np.array([-radius], np.float32)
    w3 = np.array([[-slope]], np.float32)
    b3 = np.array([height], np.float32)
    return tuple((jnp.asarray(w), jnp.asarray(b)) for w, b in ((w1, b1), (w2, b2), (w3, b3)))


# ----------------------------------------------------------------------------
# Feature visualization = (argmin, argmax, min, max)
# ----------------------------------------------------------------------------


class Extremes(NamedTuple):
    """What a (min/max) feature visualization reveals about a unit.

    Attributes:
      argmin: ``(d,)`` input of minimal activation.
      argmax: ``(d,)`` input of maximal activation.
      fmin: minimal activation (float).
      fmax: maximal activation (float).
      imin: row index of ``argmin`` in the evaluated ``points``.
      imax: row index of ``argmax`` in the evaluated ``points``.
    """

    argmin: np.ndarray
    argmax: np.ndarray
    fmin: float
    fmax: float
    imin: int
    imax: int

    @property
    def value_range(self) -> float:
        return self.fmax - self.fmin

    @property
    def midpoint(self) -> float:
        return 0.5 * (self.fmin + self.fmax)


def feature_visualization(values, points) -> Extremes:
    """Exhaustive "feature visualization" of a function sampled on ``points``.

    Args:
      values: ``(N,)`` function values at ``points``.
      points: ``(N, d)`` inputs (e.g. a dense grid of ``[0, 1]^d``).

    Returns:
      :class:`Extremes` (first index wins on exact ties, as ``np.argmax``).
    """
    v = np.asarray(values, np.float64).reshape(-1)
    p = np.asarray(points, np.float64).reshape(v.shape[0], -1)
    imin, imax = int(np.argmin(v)), int(np.argmax(v))
    return Extremes(p[imin].copy(), p[imax].copy(), float(v[imin]), float(v[imax]), imin, imax)


def sup_distance(a, b) -> float:
    """``max_i |a_i - b_i|`` (the sup-norm distance on the sampled points)."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# ----------------------------------------------------------------------------
# Twin networks with identical feature visualizations
# ----------------------------------------------------------------------------


class TwinPair(NamedTuple):
    """Two ReLU networks with the same feature visualization as ``base``.

    Attributes:
      base: the reference network ``f``.
      g_plus: ``max(f, bump)``; reaches ``max f - delta`` on the plateau.
      g_minus: ``min(f, dip)``; reaches ``min f + delta`` on the plateau.
      vis: :class:`Extremes` of ``base`` on the construction grid.
      center: ``(d,)`` plateau centre (grid point farthest, in L1, from both
        extremes).
      radius: L1 radius of the plateau.
      slope: slope of the bump/dip outside the plateau.
      delta: gap kept between the plateau and the extreme values.
    """

    base: MLPParams
    g_plus: MLPParams
    g_minus: MLPParams
    vis: Extremes
    center: np.ndarray
    radius: float
    slope: float
    delta: float


def make_twins(
    base: MLPParams,
    points,
    delta_frac: float = 1e-3,
    plateau_frac: float = 0.5,
    center=None,
) -> TwinPair:
    """Build ReLU twins ``g_plus = max(f, B)``, ``g_minus = min(f, A)``.

    Let ``f = base``, ``R = max f - min f`` (on ``points``), ``delta =
    delta_frac * R``.  ``B`` is a flat-topped pyramid of height
    ``max f - delta`` and ``A`` a flat-bottomed dip of depth
    ``min f + delta``, both centred at the grid point ``c`` maximising the L1
    distance ``rho`` to the nearer of ``argmin f`` / ``argmax f``, with plateau
    radius ``r = plateau_frac * rho`` and slope ``k = 2 R / (rho - r)``.

    Guarantees:
      * ``B <= max f - delta < max f`` so ``max g_plus = max f`` with the same
        argmax set (on the grid and on the continuum).  ``g_plus >= f`` with
        equality wherever ``B <= f``; on the L1 ball of radius
        ``(rho - r) / 2`` around ``argmin f`` we have
        ``B <= min f - delta`` (``min f`` = grid minimum), so ``min`` and
        ``argmin`` are kept (on the continuum too, as long as the grid minimum
        is within ``delta`` of the true one).  Symmetrically for ``g_minus``.
      * ``g_plus(c) - g_minus(c) >= R - 2 delta``, so
        ``||g_plus - g_minus||_inf >= (1 - 2 delta_frac) R >= R / 2``.

    Args:
      base: scalar ReLU network on ``[0, 1]^d``.
      points: ``(N, d)`` dense grid used to find the extremes of ``base``.
      delta_frac: in ``(0, 0.25]``; smaller means twins closer to the extremes.
      plateau_frac: in ``[0, 1)``; plateau radius as a fraction of ``rho``.
      center: ``(d,)`` the plateau centre, or None for the grid point farthest from both
        extremes; any point other than the extremes works (``rho`` is then its L1
        distance to the nearer extreme, and the bump is correspondingly steeper): put it
        next to ``argmax`` to show that even the function *near* the argmax is not
        determined.

    Returns:
      :class:`TwinPair`.
    """
    if not 0.0 < delta_frac <= 0.25:
        raise FvjaxError(f"delta_frac must be in (0, 0.25], got {delta_frac!r}")
    if not 0.0 <= plateau_frac < 1.0:
        raise FvjaxError(f"plateau_frac must be in [0, 1), got {plateau_frac!r}")
    pts = np.asarray(points, np.float64)
    vals = mlp_apply_np(base, pts)
    vis = feature_visualization(vals, pts)
    r_val = vis.value_range
    if not r_val > 0:
        raise FvjaxError("base network is constant on the grid; nothing to hide")
    if center is None:
        d_min = np.abs(pts - vis.argmin).sum(axis=1)
        d_max = np.abs(pts - vis.argmax).sum(axis=1)
        score = np.minimum(d_min, d_max)
        ic = int(np.argmax(score))
        center, rho = pts[ic].copy(), float(score[ic])
    else:
        center = np.asarray(center, np.float64).reshape(-1)
        if center.shape != (pts.shape[1],):
            raise FvjaxError(f"center must have shape ({pts.shape[1]},), got {center.shape}")
        rho = float(min(np.abs(center - vis.argmin).sum(), np.abs(center - vis.argmax).sum()))
        if not rho > 0:
            raise FvjaxError(f"center {center.tolist()} is an extreme of the base network; "
                             "put it anywhere else")
    radius = plateau_frac * rho
    slope = 2.0 * r_val / (rho - radius)
    delta = delta_frac * r_val
    bump = plateau_bump_mlp(center, vis.fmax - delta, slope, radius)
    dip = plateau_bump_mlp(center, vis.fmin + delta, -slope, radius)
    return TwinPair(
        base=base,
        g_plus=max_mlp(base, bump),
        g_minus=min_mlp(base, dip),
        vis=vis,
        center=center,
        radius=float(radius),
        slope=float(slope),
        delta=float(delta),
    )


# ----------------------------------------------------------------------------
# Decoders: functions of the visualization only
# ----------------------------------------------------------------------------


def decode_midpoint(vis: Extremes, points) -> np.ndarray:
    """Predict the constant ``(min + max) / 2`` everywhere. Returns ``(N,)``."""
    n = np.asarray(points).shape[0]
    return np.full((n,), vis.midpoint, np.float64)


def decode_linear_interpolation(vis: Extremes, points) -> np.ndarray:
    """Interpolate linearly from ``min`` at ``argmin`` to ``max`` at ``argmax``.

    ``h(x) = min + R * clip(t, 0, 1)`` with ``t`` the projection of ``x`` on
    the segment ``argmin -> argmax``.  In 1-D this is the affine function
    through the two extremes (:func:`decode_affine_1d`). Returns ``(N,)``.
    """
    p = np.asarray(points, np.float64)
    u = vis.argmax - vis.argmin
    uu = float(u @ u)
    if uu == 0.0:
        return np.full((p.shape[0],), vis.fmax, np.float64)
    t = np.clip((p - vis.argmin) @ u / uu, 0.0, 1.0)
    return vis.fmin + vis.value_range * t


def decode_distance_weighted(vis: Extremes, points) -> np.ndarray:
    """Inverse-distance blend: ``min + R * d_min / (d_min + d_max)``.

    ``d_min``/``d_max`` are Euclidean distances to ``argmin``/``argmax``;
    exact at both extremes. Returns ``(N,)``.
    """
    p = np.asarray(points, np.float64)
    dmin = np.linalg.norm(p - vis.argmin, axis=1)
    dmax = np.linalg.norm(p - vis.argmax, axis=1)
    tot = dmin + dmax
    w = np.where(tot > 0, dmin / np.where(tot > 0, tot, 1.0), 1.0)
    return vis.fmin + vis.value_range * w


def decode_affine_1d(vis: Extremes, x) -> np.ndarray:
    """Recover an affine ``f(x) = a x + b`` on an interval from its extremes.

    ``a = (max - min) / (argmax - argmin)``, ``b = min - a * argmin``; if
    ``argmax == argmin`` the function is constant ``= max``.

    Args:
      vis: :class:`Extremes` of a 1-D function (``argmin``/``argmax`` shape
        ``(1,)``).
      x: ``(N,)`` or ``(N, 1)`` inputs.

    Returns:
      ``(N,)`` float64 predictions.
    """
    x = np.asarray(x, np.float64).reshape(-1)
    lo, hi = float(vis.argmin[0]), float(vis.argmax[0])
    if hi == lo:
        return np.full_like(x, vis.fmax)
    a = (vis.fmax - vis.fmin) / (hi - lo)
    return a * (x - lo) + vis.fmin


def decoder_error_report(pred, values_plus, values_minus, vis: Extremes) -> dict:
    """Sup-norm errors of one prediction against both twins, with bounds.

    Because the decoder sees the same visualization for both twins it outputs
    the same ``pred``; the triangle inequality gives
    ``worst >= pair_bound = ||g_plus - g_minus|| / 2``, which approaches the
    theorem's ``R / 2`` as ``delta -> 0``.

    Args:
      pred: ``(N,)`` predicted values.
      values_plus, values_minus: ``(N,)`` values of the twins.
      vis: their shared :class:`Extremes` (gives ``R``).

    Returns:
      dict of floats: ``err_plus``, ``err_minus``, ``worst``, ``pair_bound``,
      ``theorem_bound`` (``R / 2``), ``worst_over_range``,
      ``bound_satisfied`` (bool: ``worst >= pair_bound`` up to 1e-9 R).
    """
    e_p = sup_distance(pred, values_plus)
    e_m = sup_distance(pred, values_minus)
    worst = max(e_p, e_m)
    pair_bound = 0.5 * sup_distance(values_plus, values_minus)
    r = vis.value_range
    return {
        "err_plus": e_p,
        "err_minus": e_m,
        "worst": worst,
        "pair_bound": pair_bound,
        "theorem_bound": 0.5 * r,
        "worst_over_range": worst / r,
        "bound_satisfied": bool(worst >= pair_bound - 1e-9 * r),
    }


# ----------------------------------------------------------------------------
# Theorem 2: the binary "above the midpoint" property
# ----------------------------------------------------------------------------


def above_midpoint(values, vis: Extremes) -> np.ndarray:
    """Boolean ``(N,)``: ``f(x) > (min f + max f) / 2``."""
    return np.asarray(values, np.float64) > vis.midpoint


def midpoint_property_report(pred_above, values_plus, values_minus, vis: Extremes) -> dict:
    """Accuracy of a binary prediction of "above midpoint" on both twins.

    On the disagreement set ``S = {x : above(g_plus) != above(g_minus)}``
    exactly one twin agrees with any fixed prediction, so
    ``acc_plus_on_S + acc_minus_on_S == 1`` and the worse is ``<= 0.5``.

    Args:
      pred_above: ``(N,)`` boolean predictions (a function of ``vis`` only).
      values_plus, values_minus: ``(N,)`` twin values.
      vis: shared :class:`Extremes` (gives the midpoint).

    Returns:
      dict: ``disagreement_fraction`` (|S| / N), ``acc_plus_on_S``,
      ``acc_minus_on_S``, ``worst_acc_on_S``, ``acc_sum_on_S``,
      ``acc_plus_all``, ``acc_minus_all`` (accuracy on all N points).
    """
    q = np.asarray(pred_above, bool).reshape(-1)
    yp = above_midpoint(values_plus, vis)
    ym = above_midpoint(values_minus, vis)
    s = yp != ym
    n_s = int(s.sum())
    if n_s == 0:
        acc_p = acc_m = float("nan")
    else:
        acc_p = float(np.mean(q[s] == yp[s]))
        acc_m = float(np.mean(q[s] == ym[s]))
    return {
        "disagreement_fraction": n_s / q.shape[0],
        "acc_plus_on_S": acc_p,
        "acc_minus_on_S": acc_m,
        "worst_acc_on_S": min(acc_p, acc_m),
        "acc_sum_on_S": acc_p + acc_m,
        "acc_plus_all": float(np.mean(q == yp)),
        "acc_minus_all": float(np.mean(q == ym)),
    }


# ----------------------------------------------------------------------------
# Positive case: affine functions of one variable
# ----------------------------------------------------------------------------


def random_affine_1d(key: jax.Array, n: int) -> dict:
    """Draw ``n`` random affine functions ``a x + b`` on random intervals.

    ``a, b ~ N(0, 2^2)``; the interval is ``[lo, lo + w]`` with
    ``lo ~ U(-2, 1)``, ``w ~ U(0.25, 3)``.  Every 10th function has ``a = 0``
    (constant; argmin == argmax) to exercise the degenerate case.

    Returns:
      dict of float64 ``(n,)`` arrays ``a``, ``b``, ``lo``, ``hi``.
    """
    ka, kb, kl, kw = jax.random.split(key, 4)
    a = 2.0 * np.asarray(jax.random.normal(ka, (n,)), np.float64)
    a[::10] = 0.0
    b = 2.0 * np.asarray(jax.random.normal(kb, (n,)), np.float64)
    lo = np.asarray(jax.random.uniform(kl, (n,), minval=-2.0, maxval=1.0), np.float64)
    w = np.asarray(jax.random.uniform(kw, (n,), minval=0.25, maxval=3.0), np.float64)
    return {"a": a, "b": b, "lo": lo, "hi": lo + w}


def affine_recovery_errors(key: jax.Array, n_functions: int = 1000, n_points: int = 1025) -> dict:
    """Recover random 1-D affine functions from their visualization.

    For each function the extremes are found on ``n_points`` equispaced
    points of its interval (endpoints included), :func:`decode_affine_1d`
    predicts all values, and the sup-norm error is measured (float64).

    Returns:
      dict: ``max_abs_error``, ``max_rel_error`` (error / max(range, |f|_inf,
      1)), ``n_functions``, ``n_points``, ``per_function_abs_error`` (list).
    """
    fns = random_affine_1d(key, n_functions)
    errs, rels = [], []
    for a, b, lo, hi in zip(fns["a"], fns["b"], fns["lo"], fns["hi"]):
        x = np.linspace(lo, hi, n_points)
        y = a * x + b
        vis = feature_visualization(y, x[:, None])
        err = sup_distance(decode_affine_1d(vis, x), y)
        errs.append(err)
        rels.append(err / max(vis.value_range, float(np.max(np.abs(y))), 1.0))
    return {
        "max_abs_error": float(np.max(errs)),
        "max_rel_error": float(np.max(rels)),
        "n_functions": n_functions,
        "n_points": n_points,
        "per_function_abs_error": [float(e) for e in errs],
    }


def affine_2d_twins(t: float = 0.95) -> tuple[MLPParams, MLPParams]:
    """Two affine functions on ``[0, 1]^2`` with the same visualization.

    ``f1 = t x_0 + (1 - t) x_1`` and ``f2 = (1 - t) x_0 + t x_1`` with
    ``t in (0.5, 1)`` both have argmin ``(0, 0)``, argmax ``(1, 1)``,
    min 0, max 1, yet differ by ``2 t - 1`` at ``(1, 0)``: the positive result
    for affine functions does not extend beyond one input dimension.
    """
    if not 0.5 < t < 1.0:
        raise FvjaxError(f"t must be in (0.5, 1), got {t!r}")
    return linear_mlp([t, 1.0 - t], 0.0), linear_mlp([1.0 - t, t], 0.0)


# ----------------------------------------------------------------------------
# More function classes: black box, monotonic, convex, Lipschitz, ERM-trained
# ----------------------------------------------------------------------------


def black_box_twins(values, points, center, radius: float, delta_frac: float = 1e-3):
    """Twins of an arbitrary function given by its ``(N,)`` values on ``points``: on the L1
    ball of ``radius`` around ``center`` (which must not contain an extreme), ``g_plus`` is
    ``max f - delta`` and ``g_minus`` is ``min f + delta``; elsewhere both equal ``f``. No
    continuity, no network: the black-box case. Returns ``(g_plus, g_minus)`` ``(N,)``."""
    v = np.asarray(values, np.float64)
    pts = np.asarray(points, np.float64)
    vis = feature_visualization(v, pts)
    ball = np.abs(pts - np.asarray(center, np.float64)).sum(axis=1) <= radius
    if ball[vis.imin] or ball[vis.imax]:
        raise FvjaxError("the ball around center contains an extreme; pick another center or "
                         "a smaller radius")
    delta = delta_frac * vis.value_range
    return (np.where(ball, vis.fmax - delta, v), np.where(ball, vis.fmin + delta, v))


def monotone_twins_1d(fmin: float, fmax: float, eps: float = 0.05,
                      delta_frac: float = 1e-3) -> tuple[MLPParams, MLPParams]:
    """Two strictly increasing ReLU networks on ``[0, 1]`` with argmin 0, argmax 1, min
    ``fmin`` and max ``fmax``: ``g_plus`` rises to ``max - delta`` within ``eps`` of 0,
    ``g_minus`` stays within ``delta`` of ``min`` until ``1 - eps``
    (``delta = delta_frac * (fmax - fmin)`` is a slope that keeps them strictly
    increasing). They differ by ``(1 - 2 eps)(R - delta)`` or more at ``x = 1/2``."""
    r = float(fmax) - float(fmin)
    if not r > 0 or not 0 < eps < 0.5:
        raise FvjaxError(f"need fmax > fmin and eps in (0, 0.5), got {fmin}, {fmax}, {eps}")
    delta = delta_frac * r
    w1 = jnp.asarray([[1.0, 1.0, 1.0]], jnp.float32)
    b1 = jnp.asarray([0.0, -eps, -(1.0 - eps)], jnp.float32)
    k = (r - delta) / eps
    plus = ((w1, b1), (jnp.asarray([[delta + k], [-k], [0.0]], jnp.float32),
                       jnp.asarray([fmin], jnp.float32)))
    minus = ((w1, b1), (jnp.asarray([[delta], [0.0], [k]], jnp.float32),
                        jnp.asarray([fmin], jnp.float32)))
    return plus, minus


def _max_affine(lines) -> MLPParams:
    """``max_i (a_i x + b_i)`` of 1-D affine pieces as a ReLU network."""
    net = linear_mlp([lines[0][0]], lines[0][1])
    for a, b in lines[1:]:
        net = max_mlp(net, linear_mlp([a], b))
    return net


def convex_twins_1d(fmin: float, fmax: float, argmin: float = 0.25, eps: float = 0.05,
                    delta_frac: float = 1e-3) -> tuple[MLPParams, MLPParams]:
    """Two convex ReLU networks (maxima of affine pieces) on ``[0, 1]`` with argmin
    ``argmin``, argmax 1, min ``fmin``, max ``fmax``: ``g_plus`` is the chord from
    ``(argmin, fmin)`` to ``(1, fmax)`` (the largest convex function allowed there),
    ``g_minus`` stays within ``delta`` of ``fmin`` until ``1 - eps`` and then rises
    steeply. Left of ``argmin`` both rise by only ``delta``, so argmax stays at 1."""
    r = float(fmax) - float(fmin)
    if not r > 0 or not 0 < argmin < 1 - eps or not 0 < eps < 1:
        raise FvjaxError(f"need fmax > fmin, 0 < argmin < 1 - eps; got {fmin}, {fmax}, "
                         f"{argmin}, {eps}")
    delta = delta_frac * r
    a = float(argmin)
    left = (-delta / a, fmin + delta)                      # fmin + delta (a - x) / a
    chord = (r / (1 - a), fmin - r * a / (1 - a))          # through (a, fmin), (1, fmax)
    flat = (delta / (1 - a), fmin - delta * a / (1 - a))   # fmin + delta (x - a) / (1 - a)
    steep = (r / eps, fmax - r / eps)                      # fmax at 1, fmin at 1 - eps
    return _max_affine([left, chord]), _max_affine([left, flat, steep])


def lipschitz_envelopes(vis: Extremes, points, lipschitz: float, eta_frac: float = 1e-3):
    """The largest and smallest ``L``-Lipschitz functions (Euclidean norm) with the
    visualization ``vis``: ``upper = min(max - eta |x - argmax|, min + L |x - argmin|)`` and
    ``lower = max(min + eta |x - argmin|, max - L |x - argmax|)`` (``eta = eta_frac * L``
    keeps the extremes unique). Every ``L``-Lipschitz function with these extremes lies
    between them (up to ``eta``), and both are such functions, so the envelope width is
    exactly what the visualization leaves open. Needs ``L >= R / |argmax - argmin|``.
    Returns ``(upper, lower)`` ``(N,)``."""
    pts = np.asarray(points, np.float64)
    dmin = np.linalg.norm(pts - vis.argmin, axis=1)
    dmax = np.linalg.norm(pts - vis.argmax, axis=1)
    need = vis.value_range / float(np.linalg.norm(vis.argmax - vis.argmin))
    if lipschitz < need * (1 - 1e-12):
        raise FvjaxError(f"no {lipschitz}-Lipschitz function has this visualization: L must "
                         f"be at least range / |argmax - argmin| = {need}")
    eta = eta_frac * lipschitz
    upper = np.minimum(vis.fmax - eta * dmax, vis.fmin + lipschitz * dmin)
    lower = np.maximum(vis.fmin + eta * dmin, vis.fmax - lipschitz * dmax)
    return upper, lower


def decode_lipschitz(vis: Extremes, points, lipschitz: float) -> np.ndarray:
    """The best decoder for ``L``-Lipschitz functions: the middle of the envelope of
    `lipschitz_envelopes`; its error is at most half the envelope width, which is at most
    ``L`` times the distance to the nearer extreme. Returns ``(N,)``."""
    upper, lower = lipschitz_envelopes(vis, points, lipschitz)
    return 0.5 * (upper + lower)


def train_relu_mlp(key: jax.Array, points, targets, hidden: Sequence[int] = (32, 32), *,
                   steps: int = 3000, learning_rate: float = 1e-2) -> tuple[MLPParams, float]:
    """Empirical risk minimisation: a ReLU MLP (`init_relu_mlp` with ``key``) trained by
    full-batch Adam on the mean squared error to ``targets`` ``(N,)`` at ``points``
    ``(N, d)``. Returns ``(params, final training MSE)``."""
    x = jnp.asarray(points, jnp.float32)
    y = jnp.asarray(targets, jnp.float32)
    params = init_relu_mlp(key, x.shape[1], tuple(hidden))
    tx = optax.adam(learning_rate)

    def loss(p):
        return jnp.mean((mlp_apply(p, x) - y) ** 2)

    def step(carry, _):
        p, s = carry
        value, g = jax.value_and_grad(loss)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), value

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=int(steps))
    return params, float(loss(params))


def order_accuracy(values_plus, values_minus, pairs, predict_first_larger) -> dict:
    """A weaker notion of understanding: "which of two inputs activates the unit more?".

    Args:
      values_plus, values_minus: ``(N,)`` twin values.
      pairs: ``(P, 2)`` indices into the N points.
      predict_first_larger: ``(P,)`` bool predictions (from the visualization only).

    Returns:
      dict: ``acc_plus``, ``acc_minus`` (fraction of pairs ordered right, ties excluded),
      ``worst``, ``disagree`` (fraction of pairs the twins order differently; on those any
      prediction is right for exactly one twin).
    """
    i, j = np.asarray(pairs).T
    q = np.asarray(predict_first_larger, bool)
    out = {}
    orders = []
    for name, v in (("plus", values_plus), ("minus", values_minus)):
        v = np.asarray(v, np.float64)
        strict = v[i] != v[j]
        truth = v[i] > v[j]
        orders.append(np.where(strict, truth, -1))
        out[f"acc_{name}"] = float(np.mean(q[strict] == truth[strict])) if strict.any() \
            else float("nan")
    out["worst"] = min(out["acc_plus"], out["acc_minus"])
    both = (orders[0] >= 0) & (orders[1] >= 0)
    out["disagree"] = float(np.mean(orders[0][both] != orders[1][both])) if both.any() else 0.0
    return out
