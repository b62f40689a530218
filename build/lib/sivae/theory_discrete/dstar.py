"""d* of Eq. 6 / Eq. 16 and the checks around it (paper section 4.1, Appendix 9.6).

Discrete x in {0..K-1}. d* = argmin_d KL(p_data || d) + gamma * H(d) is found
globally by enumerating the KKT points on the simplex (the problem is non-convex
once gamma > min p_data) and is checked with ``kkt_report``. Also: Assumption 1 / 5
(``assumption1_holds``), Lemma 4's encoder best response (``lemma4_kl``), the
gamma sweep behind Theorem 7 (``dstar_path``), input checks and example p_data.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, check_nonnegative

PDATA_NAMES = ("smooth", "peaked", "sparse")


# ----------------------------------------------------------------- validation
def check_pdata(p_data, atol=1e-8):
    """Validate a data distribution on {0..K-1}.

    Args:
        p_data: array-like of K probabilities.
        atol: tolerance on the sum being 1.
    Returns:
        float64 numpy array.
    """
    p = np.asarray(p_data, dtype=np.float64)
    if p.ndim != 1:
        raise ConfigError(f"p_data must be 1-D, got shape {p.shape}")
    if p.size < 2:
        raise ConfigError(f"K must be >= 2, got K={p.size}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ConfigError(f"p_data must be finite and non-negative, got {p.tolist()}")
    if abs(p.sum() - 1.0) > atol:
        raise ConfigError(f"p_data must sum to 1, got sum={p.sum():.6g}")
    return p


def check_gamma(gamma):
    """Return gamma as a float, or raise ConfigError unless it is a finite number >= 0."""
    return check_nonnegative("gamma", gamma)


def check_alpha(alpha):
    """Return alpha as a float, or raise ConfigError unless it is a finite number > 0."""
    a = check_nonnegative("alpha", alpha)
    if a == 0:
        raise ConfigError(f"alpha must be > 0, got alpha={alpha!r}")
    return a


def make_pdata(name, K):
    """Example data distributions on K states.

    Args:
        name: "smooth" (a discretised bump), "peaked" (geometric, one dominant
            state) or "sparse" (every odd state has probability 0).
        K: number of states, >= 2.
    Returns:
        float64 array of shape (K,).
    """
    if K < 2:
        raise ConfigError(f"K must be >= 2, got K={K}")
    k = np.arange(K, dtype=np.float64)
    if name == "smooth":
        w = np.exp(-0.5 * ((k - 0.45 * (K - 1)) / (K / 3.0)) ** 2) + 0.3 * np.cos(k) ** 2
    elif name == "peaked":
        w = 0.45 ** k
    elif name == "sparse":
        w = np.where(k % 2 == 0, K - k, 0.0)
    else:
        raise ConfigError(f"name must be one of {PDATA_NAMES}, got name={name!r}")
    return w / w.sum()


# ------------------------------------------------------------- distributions
def entropy(p):
    """Shannon entropy H(p) in nats (0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    nz = p > 0
    return float(-np.sum(p[nz] * np.log(p[nz])))


def kl_divergence(p, q):
    """KL(p || q) in nats; inf if q misses mass of p."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    nz = p > 0
    if np.any(q[nz] <= 0):
        return float("inf")
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


def tv_distance(p, q):
    """Total-variation distance 1/2 * sum |p - q|."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


# ---------------------------------------------------------------------- d*
def dstar_objective(d, p_data, gamma):
    """Eq. 6 / 16: KL(p_data || d) + gamma * H(d)."""
    return kl_divergence(p_data, d) + gamma * entropy(d)


def _small_root(p, gamma, c):
    """Root d in (0, p/gamma] of p/d + gamma*log(d) = c (the convex branch).

    With d = p / (gamma*u) this is u - log u = a, u >= 1. Newton from
    u0 = a + log(2a) + 1 (above the root; the function is convex) decreases
    monotonically to it. c below the branch minimum gives d = p/gamma.
    """
    a = np.maximum(c / gamma - np.log(p / gamma), 1.0)
    u = a + np.log(2 * a) + 1.0
    for _ in range(200):
        step = (u - np.log(u) - a) / np.maximum(1.0 - 1.0 / u, 1e-300)
        u = np.maximum(u - step, 1.0)
        if np.all(np.abs(step) <= 1e-15 * u):
            break
    return p / (gamma * u)


def _bisect(fun, lo, hi, n_iter=60):
    """Vectorised bisection on brackets [lo, hi] where fun changes sign."""
    f_lo = np.sign(fun(lo))
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        same = np.sign(fun(mid)) == f_lo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    return 0.5 * (lo + hi)


def _kkt_candidates(p, gamma, n_grid):
    """All stationary points of Eq. 6 on the simplex over p's support.

    Stationarity reads p_i/d_i + gamma*log(d_i) = c for all i. Each d_i sits on
    the convex branch d_i <= p_i/gamma or the concave one; second-order
    conditions allow at most one concave coordinate k, so we enumerate
    "none" (monotone in c, bisection) and each k (scan d_k on a grid).
    """
    n, cands = p.size, []
    gmin = gamma * (1 + np.log(p / gamma))               # branch minima of g_i
    total = lambda c: _small_root(p, gamma, np.full(n, c)).sum() - 1.0
    c_lo = gmin.max()
    if total(c_lo) >= 0:                                 # sum of roots is <= 1/c
        c = _bisect(np.vectorize(total), np.array(c_lo), np.array(max(c_lo, 1.0)))
        cands.append(_small_root(p, gamma, np.full(n, float(c))))
    for k in np.flatnonzero(p / gamma < 1):
        rest = np.arange(n) != k

        def resid(dk, k=k, rest=rest):
            c = p[k] / dk + gamma * np.log(dk)
            d_rest = _small_root(p[rest], gamma, c[..., None])
            ok = np.all(c[..., None] >= gmin[rest], axis=-1)
            return np.where(ok, dk + d_rest.sum(-1) - 1.0, np.nan)

        grid = np.linspace(p[k] / gamma, 1.0, n_grid)
        r = resid(grid)
        j = np.flatnonzero(np.isfinite(r[:-1]) & np.isfinite(r[1:]) & (r[:-1] * r[1:] <= 0))
        for dk in np.atleast_1d(_bisect(resid, grid[j], grid[j + 1])):
            c = p[k] / dk + gamma * np.log(dk)
            d = np.empty(n)
            d[k], d[rest] = dk, _small_root(p[rest], gamma, np.full(n - 1, c))
            cands.append(d)
    return cands


def solve_dstar(p_data, gamma, n_grid=1000):
    """d* = argmin_d KL(p_data || d) + gamma * H(d)  (Eq. 6 / 16).

    Non-convex for gamma > min p_data, so all KKT points are enumerated and the
    best one kept (global up to roots closer than the scan grid's spacing).
    Mass off p_data's support is 0: moving it onto the support lowers both terms.
    Args:
        p_data: data distribution, shape (K,).
        gamma: entropy weight, >= 0.
        n_grid: scan resolution for the concave-branch coordinate.
    Returns:
        d*, shape (K,).
    """
    p, gamma = check_pdata(p_data), check_gamma(gamma)
    sup = p > 0
    if gamma == 0 or sup.sum() == 1:
        return p.copy()
    cands = _kkt_candidates(p[sup], gamma, n_grid)
    best = min(cands, key=lambda d: dstar_objective(d, p[sup], gamma))
    out = np.zeros_like(p)
    out[sup] = best / best.sum()
    return out


def kkt_report(d, p_data, gamma):
    """KKT check of d for Eq. 6 on the simplex.

    Args:
        d, p_data: distributions, shape (K,).
        gamma: entropy weight.
    Returns:
        dict: stationarity (spread of the gradient over the support, 0 at a KKT
        point), sum_residual, off_support_mass, min_curvature (smallest
        eigenvalue of the Hessian on the tangent space, >= 0 at a local min).
    """
    p, d = check_pdata(p_data), np.asarray(d, dtype=np.float64)
    sup = p > 0
    ds, ps = d[sup], p[sup]
    grad = -ps / ds - gamma * (np.log(ds) + 1)           # dF/dd_i on the support
    hess = np.diag((ps - gamma * ds) / ds ** 2)
    proj = np.eye(ds.size) - 1.0 / ds.size               # tangent space of the simplex
    curv = np.linalg.eigvalsh(proj @ hess @ proj)
    curv = np.sort(curv)[1:] if ds.size > 1 else np.zeros(1)  # drop the normal direction
    return {"stationarity": float(np.ptp(grad) / np.abs(grad).max()),
            "sum_residual": float(abs(d.sum() - 1)),
            "off_support_mass": float(d[~sup].sum()),
            "min_curvature": float(curv.min())}


def assumption1_holds(p_data, d, alpha, tol=1e-12):
    """Assumption 1 / 5: d(x)^(alpha+1) <= p_data(x) wherever p_data(x) > 0."""
    p, d, alpha = check_pdata(p_data), np.asarray(d), check_alpha(alpha)
    sup = p > 0
    return bool(np.all(d[sup] ** (alpha + 1) <= p[sup] + tol))


def lemma4_kl(p_data, p_d, alpha):
    """Lemma 4: the encoder's best-response KL(q(.|x) || p_d(.|x)) per state.

    Maximising p_data*log y - p_d^(alpha+1)*y^alpha/alpha over y = exp(-KL) in
    (0, 1] gives KL = max(0, log(p_d^(alpha+1)/p_data)/alpha); inf off support.
    """
    p, pd = np.asarray(p_data, dtype=np.float64), np.asarray(p_d, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.log(pd ** (alpha + 1) / p) / alpha
    return np.where(p > 0, np.maximum(kl, 0.0), np.inf)


def dstar_path(p_data, gammas, alphas):
    """d* along a gamma sweep, for Theorem 7 and the 'sharper support' claim.

    Returns:
        dict of numpy arrays: gammas (G,), p_data (K,), dstar (G, K), tv, kl, entropy (G,),
        pinsker (G,) = sqrt(gamma * H(p_data) / 2) >= TV, and holds[alpha] (G,).
    """
    p = check_pdata(p_data)
    ds = np.stack([solve_dstar(p, g) for g in gammas])
    return {"gammas": np.asarray(gammas, dtype=np.float64), "p_data": p, "dstar": ds,
            "tv": np.array([tv_distance(d, p) for d in ds]),
            "kl": np.array([kl_divergence(p, d) for d in ds]),
            "entropy": np.array([entropy(d) for d in ds]),
            "pinsker": np.sqrt(np.asarray(gammas) * entropy(p) / 2),
            "holds": {a: np.array([assumption1_holds(p, d, a) for d in ds]) for a in alphas}}
