"""A study's displays (issue 16): its text and HTML reprs and its three plots, from plain data.

The data are built here in the shapes ``workbench.tuning.study.Study`` hands over (a trials
frame as Optuna's ``trials_dataframe()`` names its columns, curves by trial number, a summary
dict); matplotlib draws with its Agg backend, no cluster is needed.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from workbench.display.study import (
    plot_param_importance,
    plot_study_history,
    plot_study_rounds,
    study_html,
    study_text,
)

SCRIPT = "<script>alert(1)</script>"

# trial -> (state, value, curve); trial 3 is the best complete one, trial 5 is pruned with no
# value (its last reported 0.66 stands for it in the HTML's plot)
TRIALS: dict[int, tuple[str, float, list[float]]] = {
    0: ("COMPLETE", 0.52, [0.69, 0.60, 0.55, 0.52]),
    1: ("PRUNED", 0.64, [0.69, 0.64]),
    2: ("COMPLETE", 0.47, [0.68, 0.58, 0.50, 0.47]),
    3: ("COMPLETE", 0.41, [0.66, 0.52, 0.45, 0.41]),
    4: ("FAIL", np.nan, []),
    5: ("PRUNED", np.nan, [0.70, 0.66]),
    6: ("COMPLETE", 0.44, [0.67, 0.55, 0.47, 0.44]),
    7: ("RUNNING", np.nan, [0.68]),
    8: ("WAITING", np.nan, []),
}


def _trials(rows: dict[int, tuple[str, float, list[float]]] = TRIALS) -> pd.DataFrame:
    numbers = list(rows)
    return pd.DataFrame(
        {
            "number": numbers,
            "state": [rows[n][0] for n in numbers],
            "value": [rows[n][1] for n in numbers],
            "rounds": [len(rows[n][2]) for n in numbers],
            "best_round": [
                len(rows[n][2]) - 1 if rows[n][0] == "COMPLETE" else np.nan for n in numbers
            ],
            "seconds": [0.5 * len(rows[n][2]) for n in numbers],
            "worker": ["tcp://127.0.0.1:4000" if rows[n][2] else "" for n in numbers],
            "started": [pd.Timestamp("2026-01-01") + pd.Timedelta(seconds=n) for n in numbers],
            "params_max_depth": [3 + n for n in numbers],
            "params_eta": [0.05 * (n + 1) for n in numbers],
            f"params_{SCRIPT}": ["a" for _ in numbers],
        },
        columns=[
            "number", "state", "value", "rounds", "best_round", "seconds", "worker", "started",
            "params_max_depth", "params_eta", f"params_{SCRIPT}",
        ],
    )  # fmt: skip


def _curves(rows: dict[int, tuple[str, float, list[float]]] = TRIALS) -> dict[int, list[float]]:
    return {n: list(c) for n, (_, _, c) in rows.items()}


def _summary(**changes: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "name": f"fraud {SCRIPT}",
        "metric": "valid-logloss",
        "direction": "minimize",
        "model": "xgboost",
        "placement": "packed",
        "placement_reason": "the training data (12.5 MB) fit each worker's budget (1.9 GB) <4x",
        "trials": 20,
        "elapsed": 83.4,
        "best": {
            "number": 3,
            "value": 0.41234567,
            "params": {"max_depth": 6, "eta": 0.2, SCRIPT: "a"},
            "rounds": 4,
        },
        "experiment": {"name": f"exp {SCRIPT}", "uri": "sqlite:///runs.db"},
        "finished": False,
        "interrupted": False,
    }
    summary.update(changes)
    return summary


def _png(html: str) -> bytes:
    found = re.search(r'<img [^>]*src="data:image/png;base64,([^"]+)"', html)
    assert found, "no inline PNG in the HTML"
    return base64.b64decode(found.group(1))


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


# --- HTML -----------------------------------------------------------------------------------
def test_html_shows_counts_best_and_experiment() -> None:
    html = study_html(_summary(), _trials(), _curves())
    text = re.sub(r"<[^>]+>", " ", html)
    assert "4 done &middot; 2 pruned &middot; 1 failed &middot; 1 running" in html
    assert "1 waiting of 20" in text
    assert "0.41235" in text and 'title="0.41234567"' in html  # 5 digits shown, exact on hover
    assert "trial 3, 4 rounds" in text
    assert "max_depth" in text and "eta" in text
    assert "sqlite:///runs.db" in text
    assert "1 min 23 s" in text
    assert "placement: packed" in text and "1.9 GB" in text
    assert "trial 7, 1 round(s) so far" in text  # the running trial's progress
    assert _png(html).startswith(b"\x89PNG")
    assert "no trial finished yet" not in text


def test_html_escapes_every_user_name() -> None:
    html = study_html(_summary(), _trials(), _curves())
    assert "<script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # name, experiment, param


def test_html_with_no_trial_has_header_and_no_plot() -> None:
    empty = _trials({})
    html = study_html(_summary(best=None, experiment=None), empty, {})
    text = re.sub(r"<[^>]+>", " ", html)
    assert "workbench.Study" in text and "valid-logloss" in text
    assert "no trial finished yet" in text
    assert "0 done" in text and "of 20" in text
    assert "<img" not in html
    assert "Experiment" not in text


def test_html_plots_once_a_pruned_trial_reported() -> None:
    # only a running and a pruned trial (without a value: its curve's last stands for it)
    rows = {0: ("PRUNED", np.nan, [0.7, 0.65]), 1: ("RUNNING", np.nan, [0.69])}
    html = study_html(_summary(best=None), _trials(rows), _curves(rows))
    assert "no trial finished yet" in html
    assert _png(html).startswith(b"\x89PNG")
    # nothing to plot while no trial has reported
    rows = {0: ("RUNNING", np.nan, []), 1: ("FAIL", np.nan, [])}
    assert "<img" not in study_html(_summary(best=None), _trials(rows), _curves(rows))


def test_html_states_finished_and_interrupted() -> None:
    assert "&middot; finished" in study_html(_summary(finished=True), _trials(), _curves())
    html = study_html(_summary(finished=True, interrupted=True), _trials(), _curves())
    assert "&middot; interrupted" in html


def test_html_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="direction must be 'minimize' or 'maximize'"):
        study_html(_summary(direction="down"), _trials(), _curves())
    with pytest.raises(TypeError, match="pandas DataFrame"):
        study_html(_summary(), _trials().to_dict(), _curves())
    with pytest.raises(ValueError, match="lacks the column"):
        study_html(_summary(), _trials().drop(columns="state"), _curves())


# --- text -----------------------------------------------------------------------------------
def test_text_repr() -> None:
    text = study_text(_summary(), _trials())
    assert text == (
        f"<workbench.Study 'fraud {SCRIPT}' xgboost, minimize valid-logloss: 4 done, 2 pruned, "
        "1 failed, 1 running, 1 waiting of 20, running, 1 min 23 s; best 0.41235 (trial 3)\n"
        f" best params: max_depth=6, eta=0.2, {SCRIPT}=a>"
    )
    empty = study_text(_summary(best=None, elapsed=2.0), _trials({}))
    assert empty == (
        f"<workbench.Study 'fraud {SCRIPT}' xgboost, minimize valid-logloss: 0 done, 0 pruned "
        "of 20, running, 2.0 s; no trial finished yet>"
    )


# --- plots ----------------------------------------------------------------------------------
def test_history_plot_marks_pruned_and_steps_the_best() -> None:
    ax = plot_study_history(_trials(), "valid-logloss", "minimize")
    complete, pruned = _scatter(ax, "complete"), _scatter(ax, "pruned")
    assert sorted(map(tuple, complete)) == [(0, 0.52), (2, 0.47), (3, 0.41), (6, 0.44)]
    assert [tuple(p) for p in pruned] == [(1, 0.64)]  # trial 5 has no value: not drawn
    (best,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert list(best.get_ydata()) == [0.52, 0.47, 0.41, 0.41, 0.41]
    assert list(best.get_xdata()) == [0, 2, 3, 6, 6]
    assert ax.get_xlabel() == "trial" and ax.get_ylabel() == "valid-logloss"
    assert "minimize" in ax.get_title()


def test_history_plot_maximize_in_given_axes() -> None:
    rows = {0: ("COMPLETE", 0.8, [0.8]), 1: ("COMPLETE", 0.7, [0.7]), 2: ("COMPLETE", 0.9, [0.9])}
    figure = Figure()
    given = figure.add_subplot()
    ax = plot_study_history(_trials(rows), "valid-auc", "maximize", ax=given)
    assert ax is given
    (best,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert np.asarray(best.get_ydata()).tolist() == [0.8, 0.8, 0.9, 0.9]


def test_history_plot_bad_inputs() -> None:
    rows: dict[int, tuple[str, float, list[float]]] = {
        0: ("RUNNING", np.nan, []),
        1: ("FAIL", np.nan, []),
    }
    with pytest.raises(ValueError, match="no trial has a value yet"):
        plot_study_history(_trials(rows), "valid-logloss", "minimize")
    with pytest.raises(ValueError, match="direction must be"):
        plot_study_history(_trials(), "valid-logloss", "min")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        plot_study_history([1, 2], "valid-logloss", "minimize")


def test_importance_plot_largest_at_top() -> None:
    ax = plot_param_importance({"eta": 0.2, "max_depth": 0.7, "subsample": 0.1})
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = [p.get_width() for p in ax.patches]
    assert labels == ["subsample", "eta", "max_depth"]  # bottom to top
    assert widths == [0.1, 0.2, 0.7]
    assert ax.get_xlabel() == "importance (fraction of the variance of the objective)"


def test_importance_plot_bad_inputs() -> None:
    with pytest.raises(ValueError, match="at least 2 finished trials"):
        plot_param_importance({})
    with pytest.raises(ValueError, match=r"'eta' is 1\.5"):
        plot_param_importance({"eta": 1.5})
    with pytest.raises(ValueError, match="'eta' is 'high'"):
        plot_param_importance({"eta": "high"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="dict of parameter name"):
        plot_param_importance([("eta", 0.5)])  # type: ignore[arg-type]


def test_rounds_plot_fades_pruned_and_highlights_best() -> None:
    ax = plot_study_rounds(_curves(), _trials(), "valid-logloss")
    lines = ax.get_lines()
    assert len(lines) == 7  # every trial with a round: not the failed or the waiting one
    by_length = sorted(len(line.get_ydata()) for line in lines)
    assert by_length == [1, 2, 2, 4, 4, 4, 4]
    (best,) = [line for line in lines if line.get_label() == "best (trial 3)"]
    assert list(best.get_ydata()) == TRIALS[3][2]
    assert best.get_linewidth() > max(x.get_linewidth() for x in lines if x is not best)
    pruned = [line for line in lines if len(line.get_ydata()) == 2]
    assert all((line.get_alpha() or 1) < 0.6 for line in pruned)
    assert ax.get_xlabel() == "round" and ax.get_ylabel() == "valid-logloss"


def test_rounds_plot_direction() -> None:
    rows = {0: ("COMPLETE", 0.8, [0.7, 0.8]), 1: ("COMPLETE", 0.9, [0.8, 0.9])}
    labels = {
        x.get_label()
        for x in plot_study_rounds(_curves(rows), _trials(rows), "valid-auc").get_lines()
    }
    assert "best (trial 1)" in labels  # auc is maximised
    ax = plot_study_rounds(_curves(rows), _trials(rows), "valid-auc", direction="minimize")
    assert "best (trial 0)" in {x.get_label() for x in ax.get_lines()}


def test_rounds_plot_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no trial has reported a round yet"):
        plot_study_rounds({0: []}, _trials({0: ("RUNNING", np.nan, [])}), "valid-logloss")
    with pytest.raises(TypeError, match="dict of trial number"):
        plot_study_rounds([[0.5]], _trials(), "valid-logloss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction must be"):
        plot_study_rounds(_curves(), _trials(), "valid-logloss", direction="lower")


def _scatter(ax: Any, label: str) -> np.ndarray:
    (collection,) = [c for c in ax.collections if c.get_label() == label]
    return np.asarray(collection.get_offsets())


def test_plots_take_optunas_own_frame_and_importances() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: Any) -> float:
        x, y = trial.suggest_float("x", -2, 2), trial.suggest_float("y", -2, 2)
        for step in range(3):
            trial.report((x - 1) ** 2 + 0.01 * y + 1 / (step + 1), step)
        if trial.number % 4 == 3:
            raise optuna.TrialPruned
        return (x - 1) ** 2 + 0.01 * y

    study.optimize(objective, n_trials=12)
    frame = study.trials_dataframe()
    ax = plot_study_history(frame, "objective", "minimize")
    assert len(_scatter(ax, "complete")) == 9
    (best,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert min(best.get_ydata()) == pytest.approx(study.best_value)
    importances = optuna.importance.get_param_importances(study)
    ax = plot_param_importance(importances)
    assert {t.get_text() for t in ax.get_yticklabels()} == {"x", "y"}
    assert ax.get_yticklabels()[-1].get_text() == max(importances, key=importances.get)
