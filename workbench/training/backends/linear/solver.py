"""L2-regularised linear models fitted on the cluster: ridge, logistic and multinomial logistic.

The model sees a *design* built block by block from the raw feature matrix: each numeric column
is standardised with the training mean and standard deviation (a missing value becomes 0, that
is the mean), and each categorical column, which holds integer codes ``0..L-1`` as floats, is
one-hot encoded in place with ``L`` columns (a missing or unknown code gives all zeros).

Fitting makes few passes over the data, each one ``dask.compute`` of per-block summaries summed
on the cluster in float64:

- a first pass for the column means and standard deviations and the checks on ``y``;
- ridge regression: one pass for ``D'D`` and ``D'y`` (``D`` the design with a column of ones),
  then a solve on the client;
- logistic regression (binary or multinomial): Newton's method (IRLS), one pass per iteration
  for the loss, the gradient and the Hessian, the Newton system solved on the client with
  NumPy, with step halving whenever a step does not lower the objective.

The objectives are those of scikit-learn, so the solutions agree with its estimators fitted on
the same design: ``Ridge(alpha=l2)`` for regression and ``LogisticRegression(C=1 / l2)`` for
classification (intercepts are never penalised; the multinomial model has one weight vector per
class, all penalised, and its intercepts sum to zero).

Blocks may be NumPy or CuPy arrays; block functions use the block's own array module and send
NumPy summaries back. CuPy is only imported when a block is not a NumPy array.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import dask.array as da
    import distributed

logger = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "regression")

# Blocks' partial summaries are added in groups of this many on the cluster.
_SPLIT_EVERY = 8
# A standard deviation this small relative to the mean is a constant column (scale 1.0).
_CONSTANT_STD = 1e-12
# Armijo constant of the step-halving line search, and the most halvings of one step.
_ARMIJO = 1e-4
_MAX_HALVINGS = 30


# --- array helpers ---------------------------------------------------------------------------
def _array_module(a: Any) -> Any:
    """NumPy for NumPy arrays, else the array's module as CuPy sees it (imported lazily)."""
    if isinstance(a, np.ndarray | np.generic):
        return np
    try:
        import cupy
    except ImportError:
        return np
    return cupy.get_array_module(a)


def _to_numpy(a: Any) -> np.ndarray:
    """``a`` as a NumPy array, copied from the device if it is a CuPy array."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return np.asarray(get() if callable(get) else a)


@dataclass(frozen=True)
class _Layout:
    """Where each input column lands in the design."""

    n_features: int
    num_idx: np.ndarray  # input columns that are numeric
    num_pos: np.ndarray  # their design columns
    cats: tuple[tuple[int, int, int], ...]  # (input column, first design column, levels)
    owner: np.ndarray  # input column of each design column
    n_design: int


def _layout(n_features: int, categorical: dict[int, int]) -> _Layout:
    num_idx, num_pos, cats, owner = [], [], [], []
    pos = 0
    for j in range(n_features):
        levels = categorical.get(j)
        if levels is None:
            num_idx.append(j)
            num_pos.append(pos)
            owner.append(j)
            pos += 1
        else:
            cats.append((j, pos, levels))
            owner.extend([j] * levels)
            pos += levels
    return _Layout(
        n_features=n_features,
        num_idx=np.asarray(num_idx, dtype=np.intp),
        num_pos=np.asarray(num_pos, dtype=np.intp),
        cats=tuple(cats),
        owner=np.asarray(owner, dtype=np.intp),
        n_design=pos,
    )


def _design(
    xb: Any,
    layout: _Layout,
    mean: np.ndarray,
    scale: np.ndarray,
    dtype: Any = None,
    intercept: bool = False,
) -> Any:
    """The design of one block, in the block's array module; a leading column of ones if asked."""
    xp = _array_module(xb)
    if dtype is None:
        dtype = xb.dtype if xb.dtype.kind == "f" else np.float64
    xb = xb.astype(dtype, copy=False)
    first = int(intercept)
    n = xb.shape[0]
    all_numeric = not layout.cats
    if all_numeric and not intercept:
        z = (xb - xp.asarray(mean, dtype=dtype)) / xp.asarray(scale, dtype=dtype)
        z[xp.isnan(z)] = 0
        return z
    out = xp.zeros((n, first + layout.n_design), dtype=dtype)
    if intercept:
        out[:, 0] = 1
    if layout.num_idx.size:
        cols = xb if all_numeric else xb[:, xp.asarray(layout.num_idx)]
        z = (cols - xp.asarray(mean, dtype=dtype)) / xp.asarray(scale, dtype=dtype)
        z[xp.isnan(z)] = 0
        if all_numeric:
            out[:, first:] = z
        else:
            out[:, xp.asarray(layout.num_pos + first)] = z
    for col, pos, levels in layout.cats:
        hot = xb[:, col : col + 1] == xp.arange(levels, dtype=dtype)[None, :]
        out[:, first + pos : first + pos + levels] = hot.astype(dtype)
    return out


# --- the model -------------------------------------------------------------------------------
@dataclass(eq=False)
class LinearModel:
    """A fitted L2-regularised linear model and the transform that makes its design.

    Parameters
    ----------
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    n_features
        The number of columns of ``X``.
    categorical
        ``{column index: number of levels}`` of the categorical columns; they hold codes
        ``0..L-1`` as floats (NaN or any other value: missing).
    mean, scale
        Per numeric column (in column order): the training mean, which imputes missing values,
        and the standard deviation (1.0 for a constant column); the design holds
        ``(x - mean) / scale``.
    coef
        Weights on the design: shape ``(n_design,)`` for binary and regression, ``(K,
        n_design)`` for multiclass.
    intercept
        A float, or one per class (summing to zero) for multiclass.
    l2
        The L2 penalty the model was fitted with.
    iterations
        Passes over the data made by the solver (1 for regression).
    """

    task: str
    n_features: int
    categorical: dict[int, int]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float | np.ndarray
    l2: float
    iterations: int

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is not one of {', '.join(map(repr, TASKS))}")
        self.n_features = int(self.n_features)
        self.categorical = _check_categorical(self.categorical, self.n_features)
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
        self.coef = np.asarray(self.coef, dtype=np.float64)
        layout = self._layout()
        n_numeric = int(layout.num_idx.size)
        if self.mean.shape != (n_numeric,) or self.scale.shape != (n_numeric,):
            raise ValueError(
                f"mean and scale need one value per numeric column ({n_numeric}); "
                f"got {self.mean.size} and {self.scale.size}"
            )
        if self.task == "multiclass":
            intercept = np.asarray(self.intercept, dtype=np.float64).reshape(-1)
            k = intercept.size
            if k < 2 or self.coef.shape != (k, layout.n_design):
                raise ValueError(
                    f"a multiclass model needs coef of shape (K, {layout.n_design}) and K >= 2 "
                    f"intercepts; got coef {self.coef.shape} and {k} intercepts"
                )
            self.intercept = intercept
        else:
            if self.coef.shape != (layout.n_design,):
                raise ValueError(
                    f"a {self.task} model needs coef of shape ({layout.n_design},) for "
                    f"{self.n_features} features with categorical={self.categorical}; "
                    f"got {self.coef.shape}"
                )
            self.intercept = float(np.asarray(self.intercept).reshape(-1)[0])
        self.l2 = float(self.l2)
        self.iterations = int(self.iterations)

    def _layout(self) -> _Layout:
        return _layout(self.n_features, self.categorical)

    @property
    def n_design(self) -> int:
        """The number of design columns: numeric columns plus the levels of categorical ones."""
        return self._layout().n_design

    @property
    def n_classes(self) -> int | None:
        """2 for binary, K for multiclass, ``None`` for regression."""
        if self.task == "multiclass":
            return int(self.coef.shape[0])
        return 2 if self.task == "binary" else None

    def __repr__(self) -> str:
        classes = f", n_classes={self.n_classes}" if self.task == "multiclass" else ""
        return (
            f"LinearModel(task={self.task!r}{classes}, n_features={self.n_features}, "
            f"n_design={self.n_design}, l2={self.l2!r}, iterations={self.iterations})"
        )

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-serialisable values (lists, floats, ints, strings).

        Returns
        -------
        dict
            Keys are the fields of the dataclass; ``categorical`` has string keys, as JSON
            objects do. :meth:`from_dict` reads it back.
        """
        intercept: float | list[float]
        if isinstance(self.intercept, np.ndarray):
            intercept = [float(v) for v in self.intercept]
        else:
            intercept = float(self.intercept)
        return {
            "task": self.task,
            "n_features": int(self.n_features),
            "categorical": {str(k): int(v) for k, v in sorted(self.categorical.items())},
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": self.coef.tolist(),
            "intercept": intercept,
            "l2": float(self.l2),
            "iterations": int(self.iterations),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearModel:
        """Rebuild a model from :meth:`to_dict`'s output (also after a JSON round trip).

        Parameters
        ----------
        d
            The dictionary; ``categorical`` keys may be strings or ints.

        Returns
        -------
        LinearModel
        """
        if not isinstance(d, dict):
            raise TypeError(f"from_dict needs a dict from LinearModel.to_dict(), got {type(d)}")
        needed = ("task", "n_features", "categorical", "mean", "scale", "coef", "intercept")
        missing = [k for k in needed if k not in d]
        if missing:
            raise ValueError(
                f"the dict lacks {', '.join(map(repr, missing))}; pass the output of "
                "LinearModel.to_dict()"
            )
        return cls(
            task=d["task"],
            n_features=int(d["n_features"]),
            categorical={int(k): int(v) for k, v in dict(d["categorical"]).items()},
            mean=np.asarray(d["mean"], dtype=np.float64),
            scale=np.asarray(d["scale"], dtype=np.float64),
            coef=np.asarray(d["coef"], dtype=np.float64),
            intercept=(
                np.asarray(d["intercept"], dtype=np.float64)
                if d["task"] == "multiclass"
                else float(d["intercept"])
            ),
            l2=float(d.get("l2", 0.0)),
            iterations=int(d.get("iterations", 0)),
        )

    # --- prediction ------------------------------------------------------------------------
    def design(self, X_block: Any) -> Any:
        """The transformed design of one block of rows.

        Parameters
        ----------
        X_block
            A NumPy or CuPy array of shape ``(n, n_features)``.

        Returns
        -------
        array
            Shape ``(n, n_design)``, same array module, the block's float dtype (float64 for
            other dtypes): numeric columns standardised with missing values at 0, each
            categorical column one-hot in place (all zeros for a missing or unknown code).
        """
        shape = getattr(X_block, "shape", None)
        if shape is None or len(shape) != 2 or shape[1] != self.n_features:
            raise ValueError(
                f"design needs a block of shape (n, {self.n_features}); got shape {shape}"
            )
        return _design(X_block, self._layout(), self.mean, self.scale)

    def predict(self, X: da.Array) -> da.Array:
        """Predict lazily, block by block.

        Parameters
        ----------
        X
            A Dask array of shape ``(n, n_features)`` with NumPy or CuPy blocks; several
            column chunks are joined.

        Returns
        -------
        dask.array.Array
            Binary: the probability of class 1, shape ``(n,)``; multiclass: the class
            probabilities, shape ``(n, K)``; regression: the predicted values, shape ``(n,)``.
            The blocks use ``X``'s array module and its float dtype (float64 for other dtypes).
        """
        import dask.array as da
        from dask.array.utils import meta_from_array

        if not isinstance(X, da.Array):
            raise TypeError(
                f"predict needs a dask.array.Array, got {type(X).__name__}; wrap it with "
                "dask.array.from_array(X, chunks=(rows, -1))"
            )
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X has shape {X.shape}; this model needs 2-D X with {self.n_features} columns"
            )
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
        if self.task == "multiclass":
            k = int(self.coef.shape[0])
            return da.map_blocks(
                _predict_block,
                X,
                self,
                chunks=(X.chunks[0], (k,)),
                dtype=dtype,
                meta=meta_from_array(X, ndim=2, dtype=dtype),
            )
        return da.map_blocks(
            _predict_block,
            X,
            self,
            drop_axis=1,
            chunks=(X.chunks[0],),
            dtype=dtype,
            meta=meta_from_array(X, ndim=1, dtype=dtype),
        )

    def feature_importance(self, names: Sequence[str]) -> dict[str, float]:
        """The sum of ``|coef|`` per input column, over its one-hot columns and the classes.

        The weights are on the standardised scale, so numeric columns compare with each other.

        Parameters
        ----------
        names
            One name per input column, in column order.

        Returns
        -------
        dict
            ``{name: importance}`` in column order.
        """
        names = list(names)
        if len(names) != self.n_features:
            raise ValueError(
                f"feature_importance needs {self.n_features} names, one per column; "
                f"got {len(names)}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique; got {names}")
        layout = self._layout()
        per_design = np.abs(self.coef).reshape(-1, layout.n_design).sum(axis=0)
        per_feature = np.bincount(layout.owner, weights=per_design, minlength=self.n_features)
        return {name: float(v) for name, v in zip(names, per_feature, strict=True)}


def _predict_block(xb: Any, model: LinearModel) -> Any:
    xp = _array_module(xb)
    d = model.design(xb)
    coef = xp.asarray(model.coef, dtype=d.dtype)
    if model.task == "multiclass":
        eta = d @ coef.T + xp.asarray(model.intercept, dtype=d.dtype)
        eta = eta - eta.max(axis=1, keepdims=True)
        e = xp.exp(eta)
        return e / e.sum(axis=1, keepdims=True)
    eta = d @ coef + d.dtype.type(model.intercept)
    if model.task == "binary":
        return xp.exp(-xp.logaddexp(0, -eta))
    return eta


# --- argument checks -------------------------------------------------------------------------
def _check_categorical(categorical: Any, n_features: int) -> dict[int, int]:
    if categorical is None:
        return {}
    if not isinstance(categorical, dict):
        raise TypeError(
            f"categorical must be a dict {{column index: number of levels}}, "
            f"got {type(categorical).__name__}"
        )
    out = {}
    for col, levels in categorical.items():
        if isinstance(col, bool) or not isinstance(col, int | np.integer):
            raise TypeError(f"categorical column {col!r} must be an int column index")
        if not 0 <= col < n_features:
            raise ValueError(
                f"categorical column {col} is outside X's {n_features} columns "
                f"(0..{n_features - 1})"
            )
        if isinstance(levels, bool) or not isinstance(levels, int | np.integer) or levels < 1:
            raise ValueError(f"categorical column {col} has {levels!r} levels; give a positive int")
        out[int(col)] = int(levels)
    return dict(sorted(out.items()))


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


# --- fitting ---------------------------------------------------------------------------------
def fit(
    X: da.Array,
    y: da.Array,
    *,
    task: str,
    n_classes: int | None = None,
    categorical: dict[int, int] | None = None,
    l2: float = 1.0,
    max_iter: int = 50,
    tol: float = 1e-8,
    client: distributed.Client | None = None,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
) -> LinearModel:
    """Fit an L2-regularised linear model on Dask arrays.

    Parameters
    ----------
    X
        A Dask array ``(n, p)``, NumPy or CuPy blocks, chunked along rows (several column
        chunks are joined). Numeric columns may hold NaN (imputed with the mean); categorical
        columns hold codes ``0..L-1`` as floats.
    y
        A Dask array ``(n,)``: class indices ``0..K-1`` for classification, values for
        regression. It is rechunked to ``X``'s row chunks if they differ.
    task
        ``"binary"`` (logistic), ``"multiclass"`` (multinomial logistic) or ``"regression"``
        (ridge).
    n_classes
        For multiclass, K; ``None`` takes ``max(y) + 1``. Binary takes 2 (or ``None``);
        regression takes ``None``.
    categorical
        ``{column index: number of levels}``; each such column is one-hot encoded in place.
    l2
        The penalty. Regression minimises ``sum((y - b - Dw)**2) + l2 * ||w||**2``
        (``sklearn.linear_model.Ridge(alpha=l2)``), ``l2 >= 0``; classification minimises the
        summed log loss plus ``l2 / 2`` times the squared norm of all weights
        (``sklearn.linear_model.LogisticRegression(C=1 / l2)``), ``l2 > 0``. Intercepts are
        not penalised.
    max_iter
        The most passes over the data the Newton solver makes.
    tol
        Stop when half the Newton decrement, or the decrease of the objective after a full
        Newton step, is below ``tol`` times the objective.
    client
        The client to run on; ``None`` uses Dask's current scheduler.
    on_iteration
        Called as ``on_iteration(i, {"loss": objective per row, "step": step length})`` after
        each pass of the solver (once for regression).

    Returns
    -------
    LinearModel

    Raises
    ------
    TypeError
        ``X`` or ``y`` is not a numeric Dask array, or an option has the wrong type.
    ValueError
        Shapes that do not fit, no rows, infinite values in numeric columns of ``X``, NaN or
        infinite values in ``y``, class labels outside ``0..K-1``, a class without rows, fewer
        than 2 classes, an unknown ``task`` or an out-of-range ``l2``, ``max_iter`` or ``tol``.

    Notes
    -----
    ``X`` and ``y`` are persisted (on ``client``, else with Dask's current scheduler) for the
    fit, since every pass reads them, and released when it returns. Not converging within
    ``max_iter`` logs a warning on the ``workbench`` logger and returns the last iterate.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {', '.join(map(repr, TASKS))}")
    X, y = _check_arrays(X, y)
    n_features = int(X.shape[1])
    cats = _check_categorical(categorical, n_features)
    k = _check_n_classes(task, n_classes)
    l2 = _check_number("l2", l2)
    if task == "regression" and l2 < 0:
        raise ValueError(f"l2={l2} must be >= 0 for ridge regression")
    if task != "regression" and l2 <= 0:
        raise ValueError(
            f"l2={l2} must be > 0 for logistic regression (the unpenalised optimum may not "
            "exist); use a small value such as 1e-6 for a nearly unpenalised fit"
        )
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter={max_iter!r} must be a positive int")
    tol = _check_number("tol", tol)
    if tol < 0:
        raise ValueError(f"tol={tol} must be >= 0")
    if on_iteration is not None and not callable(on_iteration):
        raise TypeError(f"on_iteration must be callable, got {type(on_iteration).__name__}")

    X, y = _persist(X, y, client)
    layout = _layout(n_features, cats)
    blocks = _blocks(X, y)

    import dask

    stats_fn = dask.delayed(_block_stats, pure=True)
    stats = _compute(
        _tree(
            [stats_fn(xb, yb, layout.num_idx, task != "regression", k) for xb, yb in blocks],
            _merge_stats,
        ),
        client,
    )
    n = int(stats["n"])
    k = _check_stats(task, k, stats, X.shape)
    count = stats["count"]
    mean = np.where(count > 0, stats["mean"], 0.0)
    std = np.sqrt(stats["m2"] / np.maximum(count, 1))
    scale = np.where((std > 0) & (std > _CONSTANT_STD * np.abs(mean)), std, 1.0)

    spec = _Spec(task=task, layout=layout, mean=mean, scale=scale, n_classes=k or 1)
    spec_d = dask.delayed(spec, pure=True)
    m = layout.n_design + 1

    if task == "regression":
        gram_fn = dask.delayed(_block_gram, pure=True)
        gram, dty, yty = _compute(
            _tree([gram_fn(xb, yb, spec_d) for xb, yb in blocks], _add_parts), client
        )
        penalty = np.full(m, l2)
        penalty[0] = 0.0
        a = gram + np.diag(penalty)
        try:
            beta = np.linalg.solve(a, dty) if l2 > 0 else _lstsq(a, dty)
        except np.linalg.LinAlgError:
            beta = _lstsq(a, dty)
        sse = max(float(yty[0] - 2 * beta @ dty + beta @ gram @ beta), 0.0)
        if on_iteration is not None:
            on_iteration(1, {"loss": (sse + l2 * float(beta[1:] @ beta[1:])) / n, "step": 1.0})
        return LinearModel(
            task=task,
            n_features=n_features,
            categorical=cats,
            mean=mean,
            scale=scale,
            coef=beta[1:],
            intercept=float(beta[0]),
            l2=l2,
            iterations=1,
        )

    assert k is not None
    newton_fn = dask.delayed(_block_newton, pure=True)

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        theta_d = dask.delayed(theta, pure=True)
        loss, grad, hess = _compute(
            _tree([newton_fn(xb, yb, theta_d, spec_d) for xb, yb in blocks], _add_parts),
            client,
        )
        return float(loss[0]), grad, hess

    theta, iterations = _newton(
        evaluate,
        _initial_theta(task, k, m, stats),
        task=task,
        k=k,
        m=m,
        l2=l2,
        n=n,
        max_iter=int(max_iter),
        tol=tol,
        on_iteration=on_iteration,
    )
    if task == "binary":
        coef, intercept = theta[1:], float(theta[0])
        return LinearModel(task, n_features, cats, mean, scale, coef, intercept, l2, iterations)
    t = theta.reshape(k, m)
    return LinearModel(
        task, n_features, cats, mean, scale, t[:, 1:].copy(), t[:, 0].copy(), l2, iterations
    )


def _check_n_classes(task: str, n_classes: Any) -> int | None:
    if n_classes is None:
        return 2 if task == "binary" else None
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise TypeError(f"n_classes must be an int or None, got {n_classes!r}")
    if task == "regression":
        raise ValueError(f"n_classes={n_classes} makes no sense for regression; leave it None")
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes}: a classifier needs at least 2 classes")
    if task == "binary" and n_classes != 2:
        raise ValueError(
            f"n_classes={n_classes} with task='binary'; use task='multiclass' for more than 2"
        )
    return int(n_classes)


def _check_stats(task: str, k: int | None, stats: dict[str, Any], shape: Any) -> int | None:
    """Raise on what the first pass found wrong; return the number of classes."""
    if stats["n"] == 0:
        raise ValueError(f"X has shape {shape} with no rows; there is nothing to fit")
    if stats["x_inf"]:
        raise ValueError(
            f"X holds {stats['x_inf']} infinite values in numeric columns; replace them "
            "(with NaN to impute the mean, or a finite value) before fitting"
        )
    if stats["y_nonfinite"]:
        raise ValueError(
            f"y holds {stats['y_nonfinite']} NaN or infinite values; drop those rows or fill "
            "the target before fitting"
        )
    if task == "regression":
        return None
    expected = f"0..{k - 1}" if k is not None else "integers 0..K-1"
    if stats["y_bad"]:
        raise ValueError(
            f"y for task={task!r} must hold class indices {expected}; {stats['y_bad']} values "
            f"do not (for example {stats['y_bad_example']!r}); encode the classes as integers "
            "0..K-1" + ("" if task == "binary" else " or pass n_classes=K")
        )
    classes, counts = stats["classes"], stats["class_counts"]
    present = classes[counts > 0]
    if present.size < 2:
        found = ", ".join(map(str, present.tolist())) or "none"
        raise ValueError(
            f"y holds fewer than 2 classes (found: {found}); a classifier needs rows of at "
            "least 2 classes"
        )
    if k is None:
        k = int(present.max()) + 1
    missing = sorted(set(range(k)) - set(present.tolist()))
    if missing:
        raise ValueError(
            f"classes {missing} of 0..{k - 1} have no rows in y, so their intercepts would "
            "diverge; renumber the classes present as 0..K-1 (and set n_classes)"
        )
    return k


def _initial_theta(task: str, k: int, m: int, stats: dict[str, Any]) -> np.ndarray:
    """Zero weights and the intercepts of the class frequencies (the intercept-only fit)."""
    freq = np.zeros(k)
    freq[stats["classes"]] = stats["class_counts"]
    log_freq = np.log(freq / freq.sum())
    if task == "binary":
        theta = np.zeros(m)
        theta[0] = log_freq[1] - log_freq[0]
        return theta
    t = np.zeros((k, m))
    t[:, 0] = log_freq - log_freq.mean()
    return t.reshape(-1)


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.lstsq(a, b, rcond=None)[0])


def _newton_step(hess: np.ndarray, grad: np.ndarray, task: str, k: int, m: int) -> np.ndarray:
    """Solve ``hess @ step = -grad``.

    The multinomial Hessian is singular along one direction: adding the same value to every
    intercept changes nothing. A rank-one term on that direction makes it invertible without
    changing the step, whose intercepts are then centred.
    """
    if task == "multiclass":
        u = np.zeros((k, m))
        u[:, 0] = 1.0 / math.sqrt(k)
        hess = hess + max(float(np.mean(np.diag(hess))), 1.0) * np.outer(u, u)
    try:
        step = np.linalg.solve(hess, -grad)
        if not np.all(np.isfinite(step)):
            raise np.linalg.LinAlgError("non-finite step")
    except np.linalg.LinAlgError:
        step = _lstsq(hess, -grad)
    if task == "multiclass":
        s = step.reshape(k, m)
        s[:, 0] -= s[:, 0].mean()
    return step


def _newton(
    evaluate: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
    theta: np.ndarray,
    *,
    task: str,
    k: int,
    m: int,
    l2: float,
    n: int,
    max_iter: int,
    tol: float,
    on_iteration: Callable[[int, dict[str, float]], None] | None,
) -> tuple[np.ndarray, int]:
    """Damped Newton's method on the penalised objective; one ``evaluate`` per iteration."""
    penalised = np.ones((k if task == "multiclass" else 1, m))
    penalised[:, 0] = 0.0
    mask = penalised.reshape(-1)
    diag = np.arange(mask.size)

    def objective(t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loss, grad, hess = evaluate(t)
        w = t * mask
        hess[diag, diag] += l2 * mask
        return loss + 0.5 * l2 * float(w @ w), grad + l2 * w, hess

    def notify(i: int, f: float, step: float) -> None:
        if on_iteration is not None:
            on_iteration(i, {"loss": f / n, "step": step})

    f, g, h = objective(theta)
    iterations = 1
    notify(iterations, f, 0.0)
    change = math.inf  # relative decrease of the objective after the last full Newton step
    decrement = math.inf
    while True:
        step = _newton_step(h, g, task, k, m)
        slope = float(g @ step)
        decrement = -0.5 * slope / max(abs(f), np.finfo(float).tiny)
        if decrement < tol or change < tol:
            # Near the optimum the Newton step is safe, and makes the solution exact to
            # about the square of the remaining error; take it.
            return theta + step, iterations
        if iterations >= max_iter:
            break
        t = 1.0
        accepted = False
        for _ in range(_MAX_HALVINGS + 1):
            if iterations >= max_iter:
                break
            trial = theta + t * step
            f2, g2, h2 = objective(trial)
            iterations += 1
            if f2 <= f + _ARMIJO * t * slope or f2 - f <= 1e-13 * abs(f):
                accepted = True
                notify(iterations, f2, t)
                break
            notify(iterations, f, t)
            t *= 0.5
        if not accepted:
            break
        change = (f - f2) / max(abs(f2), np.finfo(float).tiny) if t == 1.0 else math.inf
        theta, f, g, h = trial, f2, g2, h2
    logger.warning(
        "the linear %s model did not converge in %d iterations: the last Newton decrement is "
        "%.3g of the objective and the last change %.3g (tol=%.3g); raise max_iter or l2, "
        "or loosen tol",
        task,
        iterations,
        decrement,
        change,
        tol,
    )
    return theta, iterations
