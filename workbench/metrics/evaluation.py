"""The one-pass :func:`evaluate` and its checks on the client, before and after the pass."""

from __future__ import annotations

import math
from collections.abc import Sequence

import dask
import dask.array as da
import numpy as np
from distributed import Client

from workbench.metrics.registry import check_metrics
from workbench.metrics.result import Metrics
from workbench.metrics.summaries import _reduce, _summarize_block, _Summary

__all__ = ["evaluate"]

# The float types scikit-learn's log_loss keeps as they are; anything else is cast to float64.
_LOGLOSS_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


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
    client: Client | None = None,
) -> Metrics:
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
    Metrics
        A ``dict`` of each requested metric, as a plain float, in the order requested; its
        ``rows`` is the number of rows evaluated (see :class:`~workbench.metrics.Metrics`).

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
    Metrics({'auc': 0.75, 'accuracy': 0.75}, name=None, rows=4)
    """
    names = check_metrics(metrics, task)
    if client is not None and not isinstance(client, Client):
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
    return Metrics({m: _value(summary, task, m) for m in names}, rows=summary.n)
