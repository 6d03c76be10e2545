"""The linear solver's passes over the data: argument checks and per-block summaries.

Each pass is one ``dask.compute`` of summaries of the blocks (column statistics, ``D'D`` and
``D'y``, or a Newton step's loss, gradient and Hessian), added in a tree on the cluster in
float64; :mod:`.solver` drives them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.training.backends.linear.model import _array_module, _design, _Layout, _to_numpy

if TYPE_CHECKING:
    import dask.array as da
    import distributed

logger = logging.getLogger(__name__)

# Blocks' partial summaries are added in groups of this many on the cluster.
_SPLIT_EVERY = 8


# --- argument checks -------------------------------------------------------------------------
def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} must be finite")
    return value


def _check_arrays(X: Any, y: Any) -> tuple[da.Array, da.Array]:
    import dask.array as da

    for name, a in (("X", X), ("y", y)):
        if not isinstance(a, da.Array):
            raise TypeError(
                f"{name} must be a dask.array.Array, got {type(a).__name__}; wrap it with "
                f"dask.array.from_array({name}, chunks=...)"
            )
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, features); got shape {X.shape}")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one value per row of X; got shape {y.shape}")
    nx, ny = X.shape[0], y.shape[0]
    if not (math.isnan(nx) or math.isnan(ny)) and nx != ny:
        raise ValueError(
            f"X has shape {X.shape} but y has shape {y.shape}; they need the same number of rows"
        )
    if nx == 0 or ny == 0:
        raise ValueError(f"X has shape {X.shape}: there are no rows to fit on")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if y.chunks[0] != X.chunks[0]:
        if any(math.isnan(c) for c in (*X.chunks[0], *y.chunks[0])):
            if X.numblocks[0] != y.numblocks[0]:
                raise ValueError(
                    f"X has {X.numblocks[0]} row chunks and y {y.numblocks[0]}, with unknown "
                    "sizes; make both from the same data (for a dataframe, "
                    "to_dask_array(lengths=True))"
                )
        else:
            y = y.rechunk((X.chunks[0],))
    return X, y


# --- block summaries -------------------------------------------------------------------------
def _block_stats(
    xb: Any, yb: Any, num_idx: np.ndarray, classify: bool, n_classes: int | None
) -> dict[str, Any]:
    """Column moments of the numeric columns and the checks on ``y`` for one block."""
    if xb.shape[0] != yb.shape[0]:
        raise ValueError(
            f"a block of X has {xb.shape[0]} rows but y's matching block {yb.shape[0]}; "
            "give X and y the same row chunks"
        )
    xp = _array_module(xb)
    x = xb[:, xp.asarray(num_idx)].astype(np.float64)
    finite = xp.isfinite(x)
    count = finite.sum(axis=0)
    mean = xp.where(finite, x, 0.0).sum(axis=0) / xp.maximum(count, 1)
    m2 = (xp.where(finite, x - mean, 0.0) ** 2).sum(axis=0)
    n_inf = int(xp.isinf(x).sum())

    yp = _array_module(yb)
    y = yb.astype(np.float64)
    finite_y = yp.isfinite(y)
    out: dict[str, Any] = {
        "n": int(xb.shape[0]),
        "count": _to_numpy(count).astype(np.float64),
        "mean": _to_numpy(mean),
        "m2": _to_numpy(m2),
        "x_inf": n_inf,
        "y_nonfinite": int((~finite_y).sum()),
        "y_bad": 0,
        "y_bad_example": math.nan,
        "classes": np.zeros(0, dtype=np.int64),
        "class_counts": np.zeros(0, dtype=np.int64),
    }
    if classify:
        yv = y[finite_y]
        ok = (yv == yp.floor(yv)) & (yv >= 0)
        if n_classes is not None:
            ok &= yv < n_classes
        bad = yv[~ok]
        out["y_bad"] = int(bad.size)
        if bad.size:
            out["y_bad_example"] = float(bad[0])
        values, counts = yp.unique(yv[ok], return_counts=True)
        out["classes"] = _to_numpy(values).astype(np.int64)
        out["class_counts"] = _to_numpy(counts).astype(np.int64)
    return out


def _merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge block statistics (Chan et al.'s update for the means and squared deviations)."""
    out = dict(parts[0])
    for p in parts[1:]:
        na, nb = out["count"], p["count"]
        n = na + nb
        safe = np.maximum(n, 1)
        delta = p["mean"] - out["mean"]
        out["mean"] = out["mean"] + delta * nb / safe
        out["m2"] = out["m2"] + p["m2"] + delta**2 * na * nb / safe
        out["count"] = n
        for key in ("n", "x_inf", "y_nonfinite", "y_bad"):
            out[key] = out[key] + p[key]
        if math.isnan(out["y_bad_example"]):
            out["y_bad_example"] = p["y_bad_example"]
        values = np.concatenate([out["classes"], p["classes"]])
        counts = np.concatenate([out["class_counts"], p["class_counts"]])
        uniq, inverse = np.unique(values, return_inverse=True)
        out["classes"] = uniq
        out["class_counts"] = np.bincount(inverse, weights=counts, minlength=uniq.size).astype(
            np.int64
        )
    return out


@dataclass(frozen=True)
class _Spec:
    """What the block functions need besides the data and the coefficients."""

    task: str
    layout: _Layout
    mean: np.ndarray
    scale: np.ndarray
    n_classes: int


def _block_gram(xb: Any, yb: Any, spec: _Spec) -> tuple[np.ndarray, ...]:
    """``D'D``, ``D'y`` and ``y'y`` of one block (``D`` with a leading column of ones)."""
    xp = _array_module(xb)
    d = _design(xb, spec.layout, spec.mean, spec.scale, np.float64, intercept=True)
    y = xp.asarray(yb).astype(np.float64)
    return _to_numpy(d.T @ d), _to_numpy(d.T @ y), _to_numpy(y @ y).reshape(1)


def _block_newton(xb: Any, yb: Any, theta: np.ndarray, spec: _Spec) -> tuple[np.ndarray, ...]:
    """Log loss, its gradient and its Hessian at ``theta`` over one block (unpenalised)."""
    xp = _array_module(xb)
    d = _design(xb, spec.layout, spec.mean, spec.scale, np.float64, intercept=True)
    y = xp.asarray(yb).astype(np.float64)
    if spec.task == "binary":
        eta = d @ xp.asarray(theta)
        loss = (xp.logaddexp(0, eta) - y * eta).sum()
        p = xp.exp(-xp.logaddexp(0, -eta))
        grad = d.T @ (p - y)
        hess = (d * (p * (1 - p))[:, None]).T @ d
        return _to_numpy(loss).reshape(1), _to_numpy(grad), _to_numpy(hess)
    k, m = spec.n_classes, d.shape[1]
    eta = d @ xp.asarray(theta).reshape(k, m).T
    top = eta.max(axis=1, keepdims=True)
    e = xp.exp(eta - top)
    total = e.sum(axis=1, keepdims=True)
    rows = xp.arange(d.shape[0])
    labels = y.astype(np.int64)
    loss = (xp.log(total[:, 0]) + top[:, 0] - eta[rows, labels]).sum()
    p = e / total
    r = p.copy()
    r[rows, labels] -= 1
    grad = (r.T @ d).reshape(-1)
    hess = xp.empty((k * m, k * m), dtype=np.float64)
    for a in range(k):
        dp = d * p[:, a : a + 1]
        for b in range(a, k):
            block = -((dp * p[:, b : b + 1]).T @ d)
            if a == b:
                block += dp.T @ d
            hess[a * m : (a + 1) * m, b * m : (b + 1) * m] = block
            if a != b:
                hess[b * m : (b + 1) * m, a * m : (a + 1) * m] = block.T
    return _to_numpy(loss).reshape(1), _to_numpy(grad), _to_numpy(hess)


def _add_parts(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    out = [a.copy() for a in parts[0]]
    for p in parts[1:]:
        for acc, a in zip(out, p, strict=True):
            acc += a
    return tuple(out)


# --- running on the cluster ------------------------------------------------------------------
def _tree(parts: list[Any], combine: Callable[[list[Any]], Any]) -> Any:
    """Reduce delayed partial results in a tree on the cluster."""
    import dask

    while len(parts) > 1:
        parts = [
            dask.delayed(combine, pure=True)(parts[i : i + _SPLIT_EVERY])
            for i in range(0, len(parts), _SPLIT_EVERY)
        ]
    return parts[0]


def _compute(obj: Any, client: distributed.Client | None) -> Any:
    if client is None:
        import dask

        (result,) = dask.compute(obj)
        return result
    return client.compute(obj, sync=True)


def _persist(
    X: da.Array, y: da.Array, client: distributed.Client | None
) -> tuple[da.Array, da.Array]:
    if client is None:
        import dask

        X, y = dask.persist(X, y)
        return X, y
    X, y = client.persist([X, y])
    return X, y


def _blocks(X: da.Array, y: da.Array) -> list[tuple[Any, Any]]:
    return list(zip(X.to_delayed().ravel(), y.to_delayed().ravel(), strict=True))
