"""Plots people would rather look at than read: training history, feature importance."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _axes(ax: Any, n: int, width: float = 5.0, height: float = 3.2) -> list[Any]:
    import matplotlib.pyplot as plt

    if ax is not None:
        return list(ax) if isinstance(ax, list | tuple) else [ax] * n
    _, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return list(axes[0])


def plot_history(history: pd.DataFrame, best: int | None = None, ax: Any = None) -> Any:
    """One panel per metric, a line per data set (``train``, ``valid``), the best round marked.

    Parameters
    ----------
    history
        A frame with a column per ``data-metric`` and a row per round.
    best
        The best round under early stopping, drawn as a dashed line.
    ax
        Axes to draw in (one, or one per metric); new ones by default.
    """
    if history.empty:
        raise ValueError("the model has no history to plot (it was trained without evaluation)")
    metrics: dict[str, list[str]] = {}
    for column in history.columns:
        data, _, metric = str(column).partition("-")
        metrics.setdefault(metric or data, []).append(column)
    axes = _axes(ax, len(metrics))
    for a, (metric, columns) in zip(axes, metrics.items(), strict=False):
        for column in columns:
            a.plot(history.index, history[column], label=str(column).partition("-")[0])
        if best is not None:
            a.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best ({best})")
        a.set_xlabel("round")
        a.set_title(metric)
        a.legend(frameon=False)
    return axes[0] if len(axes) == 1 else axes


# What each measure is, for the axis label (XGBoost's names; a linear model's coefficients).
_MEASURES = {
    "gain": "average gain of the feature's splits",
    "total_gain": "total gain of the feature's splits",
    "weight": "number of splits on the feature",
    "cover": "average rows (hessian) covered by the feature's splits",
    "total_cover": "total rows (hessian) covered by the feature's splits",
    "coefficient": "|coefficients|, standardised scale",
}


def plot_importance(importance: pd.Series, top: int = 20, ax: Any = None) -> Any:
    """Horizontal bars of the ``top`` most important features, the largest at the top.

    Parameters
    ----------
    importance
        One value per feature, named after its measure (``"gain"``, ``"weight"``, ``"cover"``
        ...), as :meth:`workbench.Model.feature_importance` returns it.
    top
        How many features to show, at least 1.
    ax
        Axes to draw in; new ones by default.

    Returns
    -------
    matplotlib.axes.Axes
        Titled ``feature importance: <measure>``, the x axis saying what the measure counts.
    """
    if isinstance(top, bool) or not isinstance(top, int):
        raise TypeError(f"top must be a whole number of features, not {top!r}")
    if top < 1:
        raise ValueError(f"top={top!r}: show at least one feature")
    data = importance.sort_values(ascending=False).head(top)[::-1]
    (a,) = _axes(ax, 1, width=6.0, height=0.3 * len(data) + 1.0)
    a.barh([str(i) for i in data.index], data.to_numpy())
    measure = str(importance.name) if importance.name is not None else None
    a.set_xlabel(_MEASURES.get(measure or "", measure or "importance"))
    a.set_title(f"feature importance: {measure}" if measure else "feature importance")
    return a
