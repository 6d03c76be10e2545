"""The fitted linear model and the design it sees: standardised numbers, one-hot categories.

The model sees a *design* built block by block from the raw feature matrix: each numeric column
is standardised with the training mean and standard deviation (a missing value becomes 0, that
is the mean), and each categorical column, which holds integer codes ``0..L-1`` as floats, is
one-hot encoded in place with ``L`` columns (a missing or unknown code gives all zeros).
:mod:`.solver` fits it; this module predicts with it, saves and loads it.

Blocks may be NumPy or CuPy arrays; block functions use the block's own array module and send
NumPy summaries back. CuPy is only imported when a block is not a NumPy array.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import dask.array as da

logger = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "regression")


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
