"""Evaluation metrics on Dask arrays, computed where the data lives.

:func:`evaluate` turns each pair of row blocks of ``y_true`` and ``pred`` into a small summary on
the worker that holds them, merges the summaries in a tree on the cluster and brings back only a
handful of numbers: every requested metric comes from one pass over the data, in one
``dask.compute`` call.

Blocks may be NumPy or CuPy arrays. The per-block work runs in the block's own array module (a
GPU block is summarised on its GPU) and only the small summaries are moved to host memory.
CuPy is imported only when a block turns out to be a GPU array, recognised by
``__cuda_array_interface__``.

Each metric matches its scikit-learn counterpart: ``roc_auc_score`` (exact, ties count half),
``average_precision_score``, ``log_loss``, ``accuracy_score``, ``root_mean_squared_error``,
``mean_absolute_error`` and ``r2_score``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np

if TYPE_CHECKING:
    import distributed
    from dask.delayed import Delayed

__all__ = ["METRICS", "check_metrics", "default_metrics", "evaluate"]

METRICS: dict[str, str] = {
    "auc": "Area under the ROC curve, exact with ties; one-vs-rest macro average for multiclass.",
    "aucpr": "Average precision: the area under the precision-recall curve, step-wise.",
    "logloss": "Mean negative log-likelihood of the true class (cross-entropy).",
    "accuracy": "Fraction of rows whose predicted class is the true class.",
    "rmse": "Root mean squared error.",
    "mae": "Mean absolute error.",
    "r2": "Coefficient of determination R^2.",
}

# The metrics that apply to each task, in the order default_metrics returns them.
_TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "aucpr", "logloss", "accuracy"),
    "multiclass": ("logloss", "accuracy", "auc"),
    "regression": ("rmse", "mae", "r2"),
}

# How many summaries one merge task combines; the tree has ceil(log_8(blocks)) levels.
_SPLIT_EVERY = 8

# The float types scikit-learn's log_loss keeps as they are; anything else is cast to float64.
_LOGLOSS_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

_Curve = tuple[np.ndarray, np.ndarray, np.ndarray]


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_task(task: object) -> str:
    """Return ``task`` if it names a known task; raise otherwise."""
    known = ", ".join(repr(t) for t in _TASK_METRICS)
    if not isinstance(task, str):
        raise TypeError(f"task must be a str, one of {known}; got {type(task).__name__}")
    if task not in _TASK_METRICS:
        raise ValueError(
            f"unknown task {task!r}{_did_you_mean(task, list(_TASK_METRICS))}; use one of {known}"
        )
    return task


def default_metrics(task: str) -> list[str]:
    """The metrics :func:`evaluate` computes for ``task`` when none are asked for.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        The learning task.

    Returns
    -------
    list of str
        ``["auc", "aucpr", "logloss", "accuracy"]`` for ``"binary"``,
        ``["logloss", "accuracy", "auc"]`` for ``"multiclass"`` and
        ``["rmse", "mae", "r2"]`` for ``"regression"``; a new list on every call.

    Raises
    ------
    ValueError
        If ``task`` is not one of the three tasks.
    TypeError
        If ``task`` is not a string.
    """
    return list(_TASK_METRICS[_check_task(task)])


def check_metrics(metrics: str | Sequence[str] | None, task: str) -> list[str]:
    """Validate metric names for a task and return them as a list.

    Parameters
    ----------
    metrics : str, sequence of str or None
        One metric name, several, or ``None`` for :func:`default_metrics` of ``task``. The names
        are the keys of :data:`METRICS`. A name given twice is kept once, at its first place.
    task : {"binary", "multiclass", "regression"}
        The learning task the metrics are for.

    Returns
    -------
    list of str
        The metric names, in the order given.

    Raises
    ------
    ValueError
        If the task is unknown, the sequence is empty, a name is not a known metric (the message
        lists the known ones and a close match), or a metric does not apply to the task (the
        message lists those that do).
    TypeError
        If ``metrics`` is neither a string, a sequence of strings nor ``None``.
    """
    task = _check_task(task)
    if metrics is None:
        return default_metrics(task)
    names: list[object]
    if isinstance(metrics, str):
        names = [metrics]
    elif isinstance(metrics, Sequence):
        names = list(metrics)
    else:
        raise TypeError(
            "metrics must be a metric name, a sequence of names or None; "
            f"got {type(metrics).__name__}"
        )
    if not names:
        raise ValueError(
            f"metrics is empty; name at least one of {', '.join(_TASK_METRICS[task])}, "
            "or pass None for the defaults"
        )
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"metric names must be strings; got {name!r} ({type(name).__name__})")
        if name not in METRICS:
            raise ValueError(
                f"unknown metric {name!r}{_did_you_mean(name, list(METRICS))}; "
                f"known metrics: {', '.join(METRICS)}"
            )
        if name not in _TASK_METRICS[task]:
            applies = [t for t, names_ in _TASK_METRICS.items() if name in names_]
            raise ValueError(
                f"metric {name!r} does not apply to task {task!r} (it is for "
                f"{' and '.join(repr(t) for t in applies)}); metrics for {task!r}: "
                f"{', '.join(_TASK_METRICS[task])}"
            )
        if name not in out:
            out.append(name)
    return out


# --------------------------------------------------------------------------------------------
# Per-block summaries, their merge and the finish on the cluster
# --------------------------------------------------------------------------------------------


@dataclass
class _Summary:
    """What one block (or a merged group of blocks) contributes to the metrics."""

    n: int = 0
    mismatch: tuple[int, int, int] | None = None  # (block, rows of y_true, rows of pred)
    y_nonfinite: int = 0
    p_nonfinite: int = 0
    bad_labels: int = 0
    bad_label: float | None = None  # one offending label, for the message
    p_min: float = math.inf
    p_max: float = -math.inf
    logloss_sum: float = 0.0
    correct: int = 0
    # Per class: distinct scores (ascending) with the positive and negative rows at each.
    curves: list[_Curve] | None = None
    # Per class, once finished: (positives, negatives, auc, average precision).
    curve_stats: list[tuple[int, int, float, float]] | None = None
    mean: float = 0.0  # of y_true (regression), with m2 the sum of squared deviations from it
    m2: float = 0.0
    sse: float = 0.0
    sae: float = 0.0

    @property
    def valid(self) -> bool:
        """Whether the rows seen so far are usable (no mismatch, non-finite value or bad label)."""
        return not (self.mismatch or self.y_nonfinite or self.p_nonfinite or self.bad_labels)


def _namespace(*arrays: Any) -> Any:
    """The array module of the blocks: CuPy if any is a GPU array, else NumPy."""
    for a in arrays:
        if hasattr(a, "__cuda_array_interface__"):
            import cupy

            return cupy
    return np


def _host(a: Any) -> np.ndarray:
    """A NumPy copy of a (small) NumPy or CuPy array."""
    return np.asarray(a.get() if hasattr(a, "__cuda_array_interface__") else a)


def _curve(xp: Any, score: Any, positive: Any) -> _Curve:
    """Distinct scores of a block with the positive and negative rows at each, on the host."""
    distinct, inverse, counts = xp.unique(score, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    pos = xp.bincount(inverse[positive], minlength=distinct.shape[0])
    return (
        _host(distinct),
        _host(pos).astype(np.int64),
        _host(counts - pos).astype(np.int64),
    )


def _summarize_block(
    index: int,
    y: Any,
    p: Any,
    task: str,
    k: int,
    metrics: tuple[str, ...],
    float_dtype: np.dtype,
) -> _Summary:
    """Summarise block ``index`` of ``y_true`` and ``pred``; runs on a worker."""
    xp = _namespace(y, p)
    y = xp.asarray(y)
    p = xp.asarray(p)
    rows = int(y.shape[0])
    if int(p.shape[0]) != rows:
        return _Summary(mismatch=(index, rows, int(p.shape[0])))
    s = _Summary(n=rows)
    if y.dtype.kind == "f":
        s.y_nonfinite = int(xp.count_nonzero(~xp.isfinite(y)))
    if p.dtype.kind == "f":
        s.p_nonfinite = int(xp.count_nonzero(~xp.isfinite(p)))
    if rows == 0 or not s.valid:
        return s

    if task == "regression":
        yf = y.astype(xp.float64)
        diff = yf - p.astype(xp.float64)
        s.sse = float((diff * diff).sum())
        s.sae = float(xp.abs(diff).sum())
        if "r2" in metrics:
            s.mean = float(yf.mean())
            dev = yf - s.mean
            s.m2 = float((dev * dev).sum())
        return s

    bad = (y < 0) | (y > k - 1)
    if y.dtype.kind == "f":
        bad |= y != xp.floor(y)
    s.bad_labels = int(xp.count_nonzero(bad))
    if s.bad_labels:
        s.bad_label = float(y[bad][0])
        return s
    labels = y.astype(xp.int64)
    s.p_min = float(p.min())
    s.p_max = float(p.max())
    binary = task == "binary"

    if "logloss" in metrics:
        # As sklearn.metrics.log_loss: probabilities in their own float type, clipped to
        # [eps, 1 - eps] of that type; the logarithms and their sum are taken in float64.
        eps = np.finfo(float_dtype).eps
        q = p.astype(float_dtype)
        if binary:
            q = xp.where(labels == 1, q, 1 - q)
        else:
            q = xp.take_along_axis(q, labels[:, None], axis=1)[:, 0]
        q = xp.clip(q, eps, 1 - eps)
        s.logloss_sum = -float(xp.log(q.astype(xp.float64)).sum())

    if "accuracy" in metrics:
        hit = (p > 0.5) == (labels == 1) if binary else xp.argmax(p, axis=1) == labels
        s.correct = int(xp.count_nonzero(hit))

    if binary and ("auc" in metrics or "aucpr" in metrics):
        s.curves = [_curve(xp, p, labels == 1)]
    elif "auc" in metrics:
        s.curves = [_curve(xp, p[:, c], labels == c) for c in range(k)]
    return s


def _merge_curves(parts: list[_Curve]) -> _Curve:
    """Merge sorted distinct-score summaries, adding the counts of scores they share."""
    scores = np.concatenate([c[0] for c in parts])
    pos = np.concatenate([c[1] for c in parts])
    neg = np.concatenate([c[2] for c in parts])
    if scores.size == 0:
        return scores, pos, neg
    order = np.argsort(scores, kind="stable")
    scores, pos, neg = scores[order], pos[order], neg[order]
    starts = np.flatnonzero(np.concatenate(([True], scores[1:] != scores[:-1])))
    return scores[starts], np.add.reduceat(pos, starts), np.add.reduceat(neg, starts)


def _merge(*parts: _Summary) -> _Summary:
    """Combine the summaries of disjoint groups of rows; runs on a worker."""
    out = _Summary()
    curves: list[list[_Curve]] | None = None
    for s in parts:
        if s.mismatch is not None and out.mismatch is None:
            out.mismatch = s.mismatch
        if s.bad_label is not None and out.bad_label is None:
            out.bad_label = s.bad_label
        out.y_nonfinite += s.y_nonfinite
        out.p_nonfinite += s.p_nonfinite
        out.bad_labels += s.bad_labels
        out.p_min = min(out.p_min, s.p_min)
        out.p_max = max(out.p_max, s.p_max)
        out.logloss_sum += s.logloss_sum
        out.correct += s.correct
        out.sse += s.sse
        out.sae += s.sae
        if s.curves is not None:
            if curves is None:
                curves = [[] for _ in s.curves]
            for acc, c in zip(curves, s.curves, strict=True):
                acc.append(c)
        if s.n:
            # Chan et al.'s pairwise update of the mean and the sum of squared deviations.
            n = out.n + s.n
            delta = s.mean - out.mean
            out.m2 += s.m2 + delta * delta * out.n * s.n / n
            out.mean += delta * s.n / n
            out.n = n
    if curves is not None and out.valid:
        out.curves = [_merge_curves(c) for c in curves]
    return out


def _curve_stats(curve: _Curve) -> tuple[int, int, float, float]:
    """Positives, negatives, ROC AUC and average precision of a merged curve summary."""
    _, pos, neg = curve
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return n_pos, n_neg, math.nan, math.nan
    pos_f = pos.astype(np.float64)
    neg_f = neg.astype(np.float64)
    # ROC AUC, the Mann-Whitney form: each positive beats the negatives scored below it and
    # ties with those at its own score, which count half.
    below = np.cumsum(neg_f) - neg_f
    auc = float(np.sum(pos_f * (below + 0.5 * neg_f)) / (n_pos * n_neg))
    # Average precision: thresholds at the distinct scores, from the highest down; each adds
    # its gain in recall times the precision at that threshold.
    pos_d, neg_d = pos_f[::-1], neg_f[::-1]
    tps = np.cumsum(pos_d)
    precision = tps / (tps + np.cumsum(neg_d))
    ap = float(np.sum(pos_d * precision) / n_pos)
    return n_pos, n_neg, auc, ap


def _finish(*parts: _Summary) -> _Summary:
    """Merge the last summaries and reduce the curves to four numbers per class."""
    s = _merge(*parts)
    if s.curves is not None:
        s.curve_stats = [_curve_stats(c) for c in s.curves]
        s.curves = None
    return s


def _reduce(parts: list[Delayed]) -> Delayed:
    """Tree-reduce per-block summaries, ``_SPLIT_EVERY`` at a time."""
    merge = dask.delayed(_merge, pure=True)
    while len(parts) > _SPLIT_EVERY:
        parts = [merge(*parts[i : i + _SPLIT_EVERY]) for i in range(0, len(parts), _SPLIT_EVERY)]
    result: Delayed = dask.delayed(_finish, pure=True)(*parts)
    return result


# --------------------------------------------------------------------------------------------
# Checks on the client, before and after the pass
# --------------------------------------------------------------------------------------------


def _short(chunks: tuple[float, ...]) -> str:
    """The row chunks for a message, shortened when there are many."""
    if len(chunks) <= 8:
        return str(chunks)
    head = ", ".join(str(c) for c in chunks[:4])
    return f"({head}, ... {len(chunks) - 4} more)"


def _check_arrays(y_true: object, pred: object, task: str) -> int:
    """Check what can be checked without computing; return the number of classes (0 if none)."""
    for name, a in (("y_true", y_true), ("pred", pred)):
        if not isinstance(a, da.Array):
            raise TypeError(
                f"{name} must be a dask.array.Array; got {type(a).__name__}. "
                "Wrap in-memory data with dask.array.from_array(x, chunks=...)"
            )
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers; got dtype {a.dtype}")
    assert isinstance(y_true, da.Array) and isinstance(pred, da.Array)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D with shape (n,); got shape {y_true.shape}")

    k = 0
    if task == "multiclass":
        if pred.ndim != 2:
            raise ValueError(
                f"multiclass pred must hold class probabilities with shape (n, n_classes); "
                f"got shape {pred.shape}"
            )
        if math.isnan(pred.shape[1]):
            raise ValueError(
                "multiclass pred has an unknown number of columns; "
                "call pred.compute_chunk_sizes() first"
            )
        k = int(pred.shape[1])
        if k < 2:
            raise ValueError(
                f"multiclass pred needs at least 2 columns, one per class; got shape {pred.shape}"
            )
    elif pred.ndim != 1:
        what = "the probability of class 1" if task == "binary" else "the predicted values"
        column = "1" if task == "binary" and pred.ndim == 2 and pred.shape[1] == 2 else "0"
        fix = f"; pass pred[:, {column}]" if pred.ndim == 2 else ""
        raise ValueError(
            f"{task} pred must be 1-D with shape (n,), {what}; got shape {pred.shape}{fix}"
        )
    elif task == "binary":
        k = 2

    rows_y, rows_p = y_true.chunks[0], pred.chunks[0]
    known = not any(math.isnan(c) for c in (*rows_y, *rows_p))
    if known and y_true.shape[0] != pred.shape[0]:
        raise ValueError(
            f"y_true has shape {y_true.shape} and pred has shape {pred.shape}; "
            "they need the same number of rows"
        )
    if (known and rows_y != rows_p) or len(rows_y) != len(rows_p):
        raise ValueError(
            f"y_true (shape {y_true.shape}, row chunks {_short(rows_y)}) and pred "
            f"(shape {pred.shape}, row chunks {_short(rows_p)}) must have the same row chunks; "
            "rechunk one to the other, e.g. pred = pred.rechunk({0: y_true.chunks[0]})"
        )
    if known and y_true.shape[0] == 0:
        raise ValueError("y_true and pred have no rows; there is nothing to evaluate")
    return k


def _check_summary(s: _Summary, task: str, metrics: list[str], k: int) -> None:
    """Raise for what the pass found wrong with the data."""
    if s.mismatch is not None:
        block, rows_y, rows_p = s.mismatch
        raise ValueError(
            f"row block {block} has {rows_y} rows in y_true but {rows_p} in pred; y_true and pred "
            "must have the same row chunks (their chunk sizes are unknown, so this could only be "
            "seen while computing); build both from the same partitions"
        )
    if s.n == 0:
        raise ValueError("y_true and pred have no rows; there is nothing to evaluate")
    if s.y_nonfinite:
        raise ValueError(
            f"y_true holds {s.y_nonfinite} NaN or infinite values (of {s.n} rows); "
            "drop or fill those rows before evaluating"
        )
    if s.p_nonfinite:
        raise ValueError(
            f"pred holds {s.p_nonfinite} NaN or infinite values (of {s.n} rows); "
            "check the model's output"
        )
    if s.bad_labels:
        raise ValueError(
            f"y_true holds {s.bad_labels} values that are not class indices 0..{k - 1} "
            f"for a {task} task with {k} classes, e.g. {s.bad_label!r}; encode the classes as "
            "0..n_classes-1 (or use task='regression' for continuous targets)"
        )
    needs_proba = [m for m in metrics if m in ("logloss", "accuracy")]
    if needs_proba and (s.p_min < 0 or s.p_max > 1):
        need = "needs" if len(needs_proba) == 1 else "need"
        raise ValueError(
            f"pred holds values outside [0, 1] (min {s.p_min!r}, max {s.p_max!r}), but "
            f"{' and '.join(needs_proba)} {need} probabilities; pass predicted probabilities, "
            "not margins"
        )
    if ("auc" in metrics or "aucpr" in metrics) and s.curve_stats is not None:
        if task == "binary":
            n_pos, n_neg = s.curve_stats[0][:2]
            if n_pos == 0 or n_neg == 0:
                only = 1 if n_neg == 0 else 0
                which = " and ".join(m for m in metrics if m in ("auc", "aucpr"))
                raise ValueError(
                    f"{which} needs both classes in y_true, but all {s.n} rows are class {only}; "
                    "evaluate on data with both classes, or drop auc and aucpr from metrics"
                )
        else:
            missing = [c for c, st in enumerate(s.curve_stats) if st[0] == 0]
            if missing:
                raise ValueError(
                    "one-vs-rest auc needs both classes in every split, but y_true has no rows "
                    f"of class {', '.join(map(str, missing))} (of {k}); evaluate on data with "
                    "every class, or drop auc from metrics"
                )


def _value(s: _Summary, task: str, metric: str) -> float:
    """The value of one metric from a checked, finished summary."""
    if metric == "logloss":
        return s.logloss_sum / s.n
    if metric == "accuracy":
        return s.correct / s.n
    if metric == "rmse":
        return math.sqrt(s.sse / s.n)
    if metric == "mae":
        return s.sae / s.n
    if metric == "r2":
        if s.n < 2:
            return math.nan  # as sklearn: R^2 is not defined for fewer than two rows
        if s.m2 == 0:
            return 1.0 if s.sse == 0 else 0.0  # as sklearn's force_finite=True
        return 1.0 - s.sse / s.m2
    assert s.curve_stats is not None
    if metric == "aucpr":
        return s.curve_stats[0][3]
    if task == "binary":
        return s.curve_stats[0][2]
    return float(np.mean([st[2] for st in s.curve_stats]))  # one-vs-rest, macro average


def evaluate(
    y_true: da.Array,
    pred: da.Array,
    task: str,
    metrics: str | Sequence[str] | None = None,
    client: distributed.Client | None = None,
) -> dict[str, float]:
    """Compute evaluation metrics of predictions on the cluster, in one pass over the data.

    Each pair of row blocks is summarised where it lives (on its GPU for CuPy blocks), the
    summaries are merged in a tree on the cluster, and only a few numbers come back: all
    requested metrics are computed by a single ``dask.compute`` call.

    Parameters
    ----------
    y_true : dask.array.Array, shape (n,)
        True targets. For ``"binary"`` and ``"multiclass"``, class indices ``0..K-1`` of any
        numeric dtype (``1.0`` is class 1); for ``"regression"``, the values.
    pred : dask.array.Array
        Predictions, with the same row chunks as ``y_true``. ``"binary"``: the probability of
        class 1, shape (n,). ``"multiclass"``: class probabilities, shape (n, K). ``"regression"``:
        predicted values, shape (n,).
    task : {"binary", "multiclass", "regression"}
        The learning task.
    metrics : str, sequence of str or None, default None
        Names from :data:`METRICS`; ``None`` means :func:`default_metrics` of ``task``.
    client : distributed.Client, optional
        The client to compute with; by default dask's current client or default scheduler.

    Returns
    -------
    dict of str to float
        Each requested metric, as a plain float, in the order requested.

    Raises
    ------
    TypeError
        If ``y_true`` or ``pred`` is not a Dask array of numbers, or ``client`` is not a client.
    ValueError
        If a task or metric name is bad (see :func:`check_metrics`); if ``pred`` has the wrong
        shape for the task; if ``y_true`` and ``pred`` differ in rows or row chunks or have no
        rows; if either holds NaN or infinite values; if ``y_true`` holds values that are not
        class indices; if ``logloss`` or ``accuracy`` gets values outside [0, 1]; or if ``auc``
        or ``aucpr`` has only one class of ``y_true`` to rank (one-vs-rest ``auc`` needs every
        class). Problems in the values are found during the pass and raised after it.

    Notes
    -----
    The metrics match scikit-learn's:

    - ``auc``: ``roc_auc_score``, exactly, tied scores counting half. Each block counts its
      positive and negative rows per distinct score; merges combine the sorted distinct scores
      and add the counts; the last merge takes the Mann-Whitney sum. The summaries hold
      every distinct score, so memory is O(distinct scores) per task (times K for multiclass),
      at most O(n) for continuous scores; round the scores to bound it, at the cost of ties.
      Multiclass: the one-vs-rest macro average, as ``multi_class="ovr", average="macro"``.
      Any real scores work (margins too), as in scikit-learn.
    - ``aucpr``: ``average_precision_score``, with thresholds at the distinct scores.
    - ``logloss``: ``log_loss``. Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps``
      of their own float type (float64 for integer types); rows of a multiclass ``pred`` are not
      renormalised (neither does scikit-learn 1.9); logarithms are summed in float64.
    - ``accuracy``: ``accuracy_score`` of the predicted classes. Binary: class 1 where
      ``pred > 0.5``, so 0.5 itself is class 0 (as ``predict`` of a logistic model, whose
      margin must be positive); multiclass: the arg-max, the first column on ties.
    - ``rmse``, ``mae``, ``r2``: ``root_mean_squared_error``, ``mean_absolute_error``,
      ``r2_score``, accumulated in float64 (``r2`` of a constant ``y_true`` is 1.0 for a perfect
      prediction and 0.0 otherwise; of a single row, NaN).

    Examples
    --------
    >>> import dask.array as da
    >>> y = da.from_array([0, 0, 1, 1], chunks=2)
    >>> p = da.from_array([0.1, 0.4, 0.35, 0.8], chunks=2)
    >>> evaluate(y, p, "binary", ["auc", "accuracy"])
    {'auc': 0.75, 'accuracy': 0.75}
    """
    names = check_metrics(metrics, task)
    if client is not None:
        from distributed import Client

        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client; got {type(client).__name__}")
    k = _check_arrays(y_true, pred, task)

    if task == "multiclass" and pred.numblocks[1] > 1:
        pred = pred.rechunk({1: -1})
    float_dtype = pred.dtype if pred.dtype in _LOGLOSS_DTYPES else np.dtype(np.float64)
    summarize = dask.delayed(_summarize_block, pure=True)
    blocks = [
        summarize(i, yb, pb, task, k, tuple(names), float_dtype)
        for i, (yb, pb) in enumerate(
            zip(y_true.to_delayed().ravel(), pred.to_delayed().ravel(), strict=True)
        )
    ]
    final = _reduce(blocks)
    if client is None:
        (summary,) = dask.compute(final)
    else:
        with client.as_current():
            (summary,) = dask.compute(final)

    _check_summary(summary, task, names, k)
    return {m: float(_value(summary, task, m)) for m in names}
