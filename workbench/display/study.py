"""What a hyperparameter study looks like: its text and HTML reprs, and its pictures.

Everything here takes plain data, as :class:`workbench.tuning.study.Study` hands it over:

``trials``
    A DataFrame, one row per trial: ``number``, ``state`` (``"COMPLETE"``, ``"PRUNED"``,
    ``"FAIL"``, ``"RUNNING"``, ``"WAITING"``), ``value`` (NaN when none), ``rounds``,
    ``best_round``, ``seconds``, ``worker``, ``started`` and a ``params_<name>`` column per
    searched parameter (Optuna's ``trials_dataframe()`` names).
``curves``
    Trial number -> the watched metric per round (what pruning saw).
``summary``
    ``name``, ``metric``, ``direction``, ``model``, ``placement``, ``placement_reason``,
    ``trials`` (asked for), ``elapsed`` (s), ``best`` (``None`` or ``number``/``value``/
    ``params``/``rounds``), ``experiment`` (``None`` or ``name``/``uri``), ``finished``,
    ``interrupted``.
``importances``
    Parameter name -> importance in [0, 1] (Optuna's ``get_param_importances``).

The HTML repr is redrawn after every trial while a study runs, so its plot is small and cheap:
a :class:`matplotlib.figure.Figure` of its own (Agg, no pyplot state) saved as a PNG.
The ``plot_*`` functions draw, like :mod:`workbench.display.plots`, in new pyplot axes by
default so that a notebook shows them.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.display import render
from workbench.display.plots import _axes

__all__ = [
    "plot_param_importance",
    "plot_study_history",
    "plot_study_rounds",
    "study_html",
    "study_text",
]

_DIRECTIONS = ("minimize", "maximize")
_COLUMNS = ("number", "state", "value")
# XGBoost's metrics where larger is better, to find the best trial when no direction is given
_MAXIMIZE = ("auc", "aucpr", "pre", "map", "ndcg", "average_precision")
# colours: matplotlib's default cycle's first (complete, best) and a grey (pruned)
_COMPLETE = "tab:blue"
_BEST = "tab:orange"
_PRUNED = "0.6"


# --- checks ---------------------------------------------------------------------------------
def _check_trials(trials: Any) -> pd.DataFrame:
    if not isinstance(trials, pd.DataFrame):
        raise TypeError(
            f"trials must be a pandas DataFrame with a row per trial (Study.trials), "
            f"not {type(trials).__name__}"
        )
    missing = [c for c in _COLUMNS if c not in trials.columns]
    if missing:
        raise ValueError(
            f"trials lacks the column(s) {', '.join(missing)}: pass Study.trials, which has "
            f"{', '.join(_COLUMNS)} and a params_<name> column per parameter"
        )
    return trials


def _check_direction(direction: Any) -> str:
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'minimize' or 'maximize', not {direction!r}")
    return str(direction)


def _direction_of(metric: str) -> str:
    name = metric.rpartition("-")[2].split("@")[0]
    return "maximize" if name in _MAXIMIZE else "minimize"


# --- the numbers ----------------------------------------------------------------------------
def _counts(trials: pd.DataFrame) -> dict[str, int]:
    states = trials["state"].astype(str).value_counts()
    return {
        "done": int(states.get("COMPLETE", 0)),
        "pruned": int(states.get("PRUNED", 0)),
        "failed": int(states.get("FAIL", 0)),
        "running": int(states.get("RUNNING", 0)),
        "waiting": int(states.get("WAITING", 0)),
    }


def _counts_text(counts: Mapping[str, int], asked: Any) -> str:
    parts = [f"{counts['done']} done", f"{counts['pruned']} pruned"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    if counts["running"]:
        parts.append(f"{counts['running']} running")
    if counts["waiting"]:
        parts.append(f"{counts['waiting']} waiting")
    text = ", ".join(parts)
    return f"{text} of {asked}" if asked is not None else text


def _number(value: Any) -> str:
    """A value as a person reads it: 5 significant digits, whole numbers as they are."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "-" if math.isnan(value) else f"{float(value):.5g}"
    return str(value)


def _elapsed(seconds: Any) -> str:
    if seconds is None or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _status(summary: Mapping[str, Any]) -> str:
    if summary.get("interrupted"):
        return "interrupted"
    return "finished" if summary.get("finished") else "running"


def _valued(trials: pd.DataFrame) -> pd.DataFrame:
    """The complete and pruned trials that have a value, by number."""
    values = pd.to_numeric(trials["value"], errors="coerce")
    keep = trials["state"].isin(["COMPLETE", "PRUNED"]) & values.notna()
    out = pd.DataFrame(
        {"number": trials["number"][keep], "state": trials["state"][keep], "value": values[keep]}
    )
    return out.sort_values("number")


# --- the pictures ---------------------------------------------------------------------------
def _whole_numbers(axis: Any) -> None:
    """Ticks at whole numbers only (trials, rounds)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _draw_history(a: Any, trials: pd.DataFrame, metric: str, direction: str) -> Any:
    data = _valued(trials)
    if data.empty:
        raise ValueError(
            "no trial has a value yet (none completed or was pruned after reporting): "
            "plot the history once a trial has finished"
        )
    complete = data[data["state"] == "COMPLETE"]
    pruned = data[data["state"] == "PRUNED"]
    if len(pruned):
        a.scatter(
            pruned["number"],
            pruned["value"],
            facecolors="none",
            edgecolors=_PRUNED,
            s=22,
            label="pruned",
            zorder=2,
        )
    if len(complete):
        a.scatter(complete["number"], complete["value"], color=_COMPLETE, s=22, label="complete")
        best = complete["value"].cummin() if direction == "minimize" else complete["value"].cummax()
        x = [*complete["number"], max(data["number"])]
        y = [*best, best.iloc[-1]]
        a.step(x, y, where="post", color=_BEST, linewidth=1.5, label="best so far", zorder=3)
    _whole_numbers(a.xaxis)
    a.set_xlabel("trial")
    a.set_ylabel(metric)
    a.set_title(f"optimization history ({direction} {metric})")
    a.legend(frameon=False, fontsize="small")
    return a


def plot_study_history(trials: pd.DataFrame, metric: str, direction: str, ax: Any = None) -> Any:
    """The optimization history: each trial's value and the best so far.

    Parameters
    ----------
    trials
        The study's trials (``Study.trials``): ``number``, ``state`` and ``value`` are used.
    metric
        The optimised metric's name, for the y axis (e.g. ``"valid-logloss"``).
    direction
        ``"minimize"`` or ``"maximize"``: which way the best-so-far line goes.
    ax
        Axes to draw in; new ones by default.

    Returns
    -------
    matplotlib.axes.Axes
        Complete trials as dots, pruned trials as hollow grey circles at their ``value`` (what
        they reported before pruning stopped them; none is drawn for a pruned trial without
        one), the best so far of the complete trials as a step line.

    Raises
    ------
    ValueError
        No trial has a value yet, or ``direction`` is neither ``"minimize"`` nor ``"maximize"``.
    """
    trials = _check_trials(trials)
    direction = _check_direction(direction)
    (a,) = _axes(ax, 1, width=6.0, height=3.5)
    return _draw_history(a, trials, str(metric), direction)


def plot_param_importance(importances: Mapping[str, float], ax: Any = None) -> Any:
    """Which searched parameters mattered: horizontal bars, the largest at the top.

    Parameters
    ----------
    importances
        Parameter name -> importance in [0, 1] (``Study.param_importances()``, Optuna's
        ``get_param_importances``: fANOVA's share of the objective's variance).
    ax
        Axes to draw in; new ones by default.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        ``importances`` is empty (they need at least 2 finished trials), or a value is not a
        number in [0, 1].
    """
    if not isinstance(importances, Mapping):
        raise TypeError(
            f"importances must be a dict of parameter name -> importance "
            f"(Study.param_importances()), not {type(importances).__name__}"
        )
    if not importances:
        raise ValueError(
            "no parameter importances to plot: they need at least 2 finished trials with "
            "searched parameters; run more trials"
        )
    for name, value in importances.items():
        ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not ok or not 0.0 <= float(value) <= 1.0:
            raise ValueError(
                f"importance of {name!r} is {value!r}: importances are fractions in [0, 1], "
                "as Optuna's get_param_importances gives them"
            )
    data = sorted(importances.items(), key=lambda kv: float(kv[1]))  # largest last = at the top
    (a,) = _axes(ax, 1, width=6.0, height=0.35 * len(data) + 1.2)
    bars = a.barh([str(k) for k, _ in data], [float(v) for _, v in data], color=_COMPLETE)
    a.bar_label(bars, fmt="%.2f", padding=2, fontsize="small")
    a.set_xlim(0, 1.1)
    a.set_xlabel("importance (fraction of the variance of the objective)")
    a.set_title("parameter importance")
    return a


def plot_study_rounds(
    curves: Mapping[int, Sequence[float]],
    trials: pd.DataFrame,
    metric: str,
    ax: Any = None,
    *,
    direction: str | None = None,
) -> Any:
    """Each trial's metric per round: what pruning stopped, and when.

    Parameters
    ----------
    curves
        Trial number -> the watched metric per round (``Study.curves``).
    trials
        The study's trials: their ``state`` (pruned curves are faded) and ``value`` (the best
        complete trial is highlighted).
    metric
        The watched metric's name, for the y axis.
    ax
        Axes to draw in; new ones by default.
    direction
        ``"minimize"`` or ``"maximize"``, to find the best trial; by default from ``metric``'s
        name (``auc``, ``aucpr``, ``map``, ``ndcg``, ``pre`` are maximised).

    Returns
    -------
    matplotlib.axes.Axes
        A line per trial with at least one round: complete ones thin, pruned ones grey and
        faded (they end where pruning stopped them), the best one thick and labelled.

    Raises
    ------
    ValueError
        No trial has reported a round yet.
    """
    if not isinstance(curves, Mapping):
        raise TypeError(
            f"curves must be a dict of trial number -> metric per round (Study.curves), "
            f"not {type(curves).__name__}"
        )
    trials = _check_trials(trials)
    direction = _direction_of(str(metric)) if direction is None else _check_direction(direction)
    drawn = {int(n): [float(v) for v in c] for n, c in curves.items() if len(c)}
    if not drawn:
        raise ValueError(
            "no trial has reported a round yet: plot the rounds once a trial has trained"
        )
    states = dict(zip(trials["number"].astype(int), trials["state"].astype(str), strict=False))
    complete = _valued(trials)
    complete = complete[complete["state"] == "COMPLETE"]
    best = None
    if len(complete):
        i = complete["value"].idxmin() if direction == "minimize" else complete["value"].idxmax()
        best = int(complete.loc[i, "number"])
    (a,) = _axes(ax, 1, width=6.0, height=3.5)
    labelled: set[str] = set()
    for number in sorted(drawn):
        curve = drawn[number]
        if number == best:
            continue
        state = states.get(number, "RUNNING")
        style: dict[str, Any]
        if state == "PRUNED":
            style = {"color": _PRUNED, "alpha": 0.5, "linewidth": 0.8, "label": "pruned"}
            style |= {"marker": "x", "markevery": [-1], "markersize": 4}  # where it stopped
        elif state == "COMPLETE":
            style = {"color": _COMPLETE, "alpha": 0.6, "linewidth": 0.9, "label": "complete"}
        else:
            style = {"color": _COMPLETE, "alpha": 0.4, "linewidth": 0.8, "linestyle": "--"}
            style["label"] = "running" if state in ("RUNNING", "WAITING") else "failed"
            style |= {"marker": "o", "markevery": [-1], "markersize": 3}
        if style["label"] in labelled:
            style["label"] = "_nolegend_"
        labelled.add(style["label"])
        a.plot(range(len(curve)), curve, **style)
    if best is not None and best in drawn:
        curve = drawn[best]
        a.plot(
            range(len(curve)),
            curve,
            color=_BEST,
            linewidth=2.0,
            label=f"best (trial {best})",
            zorder=3,
        )
    _whole_numbers(a.xaxis)
    a.set_xlabel("round")
    a.set_ylabel(metric)
    a.set_title(f"{metric} per round, by trial")
    a.legend(frameon=False, fontsize="small")
    return a


def _history_png(trials: pd.DataFrame, metric: str, direction: str) -> str:
    """The optimization history as a small base64 PNG, drawn without pyplot."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.8, 2.6), dpi=80, layout="constrained")
    _draw_history(figure.add_subplot(), trials, metric, direction)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --- the reprs ------------------------------------------------------------------------------
def study_text(summary: Mapping[str, Any], trials: pd.DataFrame) -> str:
    """The study's ``__repr__``: its name, trials by state and its best value.

    Parameters
    ----------
    summary
        The study's summary (``Study.summary()``).
    trials
        The study's trials (``Study.trials``).

    Returns
    -------
    str
        One line, a second one with the best trial's parameters when there is one.
    """
    trials = _check_trials(trials)
    counts = _counts_text(_counts(trials), summary.get("trials"))
    head = (
        f"<workbench.Study {summary.get('name')!r} {summary.get('model')}, "
        f"{summary.get('direction')} {summary.get('metric')}: {counts}, {_status(summary)}, "
        f"{_elapsed(summary.get('elapsed'))}"
    )
    best = summary.get("best")
    if not best:
        return head + "; no trial finished yet>"
    params = ", ".join(f"{k}={_number(v)}" for k, v in dict(best.get("params") or {}).items())
    return (
        f"{head}; best {_number(best.get('value'))} (trial {best.get('number')})\n"
        f" best params: {params or '-'}>"
    )


def study_html(
    summary: Mapping[str, Any], trials: pd.DataFrame, curves: Mapping[int, Sequence[float]]
) -> str:
    """The study's ``_repr_html_``: header, trials by state, the best trial, a history plot.

    Parameters
    ----------
    summary, trials
        ``Study.summary()`` and ``Study.trials``, as for :func:`study_text`.
    curves
        Each trial's watched metric per round (``Study.curves``); a running trial's count of
        rounds so far is shown from them.

    Returns
    -------
    str
        HTML, every user-given name escaped; the plot (a base64 PNG) only once a trial has
        a value.
    """
    trials = _check_trials(trials)
    metric = str(summary.get("metric"))
    direction = _check_direction(summary.get("direction"))
    counts = _counts(trials)
    best = summary.get("best")
    best_params = [
        (str(k), _number(v), repr(v)) for k, v in dict((best or {}).get("params") or {}).items()
    ]
    pruned = (trials["state"] == "PRUNED") & pd.to_numeric(trials["value"], errors="coerce").isna()
    if pruned.any():  # a pruned trial without a value is drawn at its last reported one
        last = {int(n): c[-1] for n, c in curves.items() if len(c)}
        trials = trials.assign(
            value=trials["value"].where(~pruned, trials["number"].map(last).astype(float))
        )
    png = None if _valued(trials).empty else _history_png(trials, metric, direction)
    running = [
        (int(n), len(curves.get(int(n), ())))
        for n in trials.loc[trials["state"] == "RUNNING", "number"]
    ]
    return render(
        "study.html.j2",
        summary=summary,
        status=_status(summary),
        counts=counts,
        asked=summary.get("trials"),
        elapsed=_elapsed(summary.get("elapsed")),
        best=best,
        best_value=_number(best.get("value")) if best else None,
        best_exact=repr(best.get("value")) if best else None,
        best_params=best_params,
        running=running,
        png=png,
    )
