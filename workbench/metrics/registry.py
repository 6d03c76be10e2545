"""The metric names and the tasks each applies to, checked on the client before any pass.

The checks run on the client, before any data is touched: an unknown name, or one that does not
apply to the task, is refused with the names that would do.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["METRICS", "check_metrics", "default_metrics"]

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
