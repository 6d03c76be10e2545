"""Per-block metric summaries, their tree merge and the finish, all run on the cluster.

:func:`_summarize_block` turns one pair of row blocks into a :class:`_Summary` on the worker that
holds them (in the block's own array module: CuPy blocks on their GPU), :func:`_reduce` merges
the summaries in a tree, and :func:`_finish` reduces the score curves to the four numbers per
class that ROC AUC and average precision need. Only the small summaries reach host memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask
import numpy as np

if TYPE_CHECKING:
    from dask.delayed import Delayed

# How many summaries one merge task combines; the tree has ceil(log_8(blocks)) levels.
_SPLIT_EVERY = 8

# A score curve: distinct scores (ascending) with the positive and negative rows at each.
_Curve = tuple[np.ndarray, np.ndarray, np.ndarray]


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
