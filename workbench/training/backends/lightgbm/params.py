"""LightGBM's parameters for a training on the cluster: defaults, names and values checked.

The names are checked against LightGBM's own list of names and aliases; the values by making a
booster on a few rows in this process. Importing this module imports LightGBM; without it (or
without scikit-learn, which ``lightgbm.dask`` trains through),
:class:`~workbench.errors.MissingDependencyError` says what to install.
"""

from __future__ import annotations

import difflib
import functools
import logging
from typing import Any

import numpy as np

from workbench.errors import MissingDependencyError

try:
    import lightgbm
    import lightgbm.dask
except ImportError as e:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "model='lightgbm' needs the lightgbm package (with its Dask support): "
        "pip install lightgbm scikit-learn"
    ) from e
if not lightgbm.compat.SKLEARN_INSTALLED:  # lightgbm.dask trains through lightgbm.sklearn
    raise MissingDependencyError(
        "model='lightgbm' needs scikit-learn (lightgbm.dask builds its models with it), which "
        "is missing: pip install scikit-learn"
    )

logger = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "regression")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "binary": {"objective": "binary", "metric": ["binary_logloss", "auc"]},
    "multiclass": {"objective": "multiclass", "metric": ["multi_logloss", "multi_error"]},
    "regression": {"objective": "regression", "metric": ["l2", "l1"]},
}

# LightGBM parameters (main names) that the workbench or lightgbm.dask sets: what to do instead.
_MANAGED = {
    "num_iterations": "pass rounds=... instead",
    "early_stopping_round": "early stopping is not available for model='lightgbm' "
    "(see early_stopping=)",
    "num_threads": "lightgbm.dask gives each worker as many threads as its Dask worker has; "
    "choose threads_per_worker when starting the cluster",
    "num_machines": "lightgbm.dask counts the workers that hold training rows",
    "categorical_feature": "the dataset's categorical columns are passed for you",
}
_TREE_LEARNERS = {
    "data",
    "data_parallel",
    "feature",
    "feature_parallel",
    "voting",
    "voting_parallel",
}
_NETWORK = {"machines", "local_listen_port", "time_out", "tree_learner"}
_JSON_CHARS = set('",:[]{}')  # LightGBM refuses these in feature names

_NO_EARLY_STOPPING = (
    "early_stopping={!r} is not available for model='lightgbm': lightgbm.dask evaluates the "
    "validation metrics on each worker's own share of the validation rows, so the workers "
    "would stop at different rounds and the training would fail (the first to stop drops its "
    "connections). Use model='xgboost', whose metrics are reduced across workers, or leave "
    "early_stopping=None and choose rounds."
)


def _check_task(task: str, n_classes: int | None) -> None:
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one LightGBM trains here; use one of {TASKS}")
    if task == "multiclass" and (
        isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2
    ):
        raise ValueError(
            f"n_classes={n_classes!r}: a multiclass task needs the number of classes, "
            "an integer of at least 2"
        )
    if task == "binary" and n_classes not in (None, 2):
        raise ValueError(f"n_classes={n_classes!r} for a binary task; pass 2 or None")


def default_params(task: str, n_classes: int | None) -> dict[str, Any]:
    """LightGBM's objective and metrics for ``task``, quiet.

    Parameters
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    n_classes
        The number of classes (multiclass; ``None`` or 2 for binary).

    Returns
    -------
    dict
        For example ``{"objective": "binary", "metric": ["binary_logloss", "auc"],
        "verbose": -1}``; multiclass adds ``num_class``.
    """
    _check_task(task, n_classes)
    params: dict[str, Any] = {**_DEFAULTS[task], "verbose": -1}
    params["metric"] = list(params["metric"])
    if task == "multiclass":
        params["num_class"] = int(n_classes)  # type: ignore[arg-type]
    return params


@functools.cache
def _main_names() -> dict[str, str]:
    """Every LightGBM parameter name and alias -> its main name, from LightGBM itself."""
    from lightgbm.basic import _ConfigAliases

    table = _ConfigAliases._get_all_param_aliases()  # {main: [main, *aliases]}, from C++
    return {alias: main for main, aliases in table.items() for alias in aliases}


def check_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Check the names in ``params`` against LightGBM's own list; return them by main name.

    LightGBM only warns about a name it does not know, and when a parameter is given under
    two names it keeps one silently (``learning_rate`` beats ``eta``), so both are errors here.

    Parameters
    ----------
    params
        LightGBM parameters, under any of their names or aliases.

    Returns
    -------
    dict
        The same values, each under LightGBM's main name (``eta`` -> ``learning_rate``).

    Raises
    ------
    TypeError
        ``params`` is not a dict with string keys, or ``objective`` is not a string.
    ValueError
        A name LightGBM does not know, a parameter given twice, or one the workbench sets.
    """
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of LightGBM parameters, not {params!r}")
    table = _main_names()
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in params.items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names must be strings, not {name!r}")
        main = table.get(name)
        if main is None:
            unknown.append(name)
        elif main in given:
            raise ValueError(
                f"params gives LightGBM's {main!r} twice, as {given[main]!r} and {name!r}; keep one"
            )
        else:
            given[main] = name
            out[main] = value
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, table, n=1)
            hint = f" (did you mean {table[close[0]]!r}?)" if close else ""
            hints.append(f"{name!r}{hint}")
        raise ValueError(
            f"LightGBM has no parameter {', '.join(hints)}; see "
            "https://lightgbm.readthedocs.io/en/stable/Parameters.html"
        )
    for main, instead in _MANAGED.items():
        if main in out:
            raise ValueError(
                f"params={{{given[main]!r}: {out[main]!r}}} is not accepted: {instead}"
            )
    if out.get("device_type", "cpu") != "cpu":
        raise ValueError(
            f"params={{{given['device_type']!r}: {out['device_type']!r}}}: model='lightgbm' "
            "trains on CPUs (lightgbm.dask has no GPU path); use model='xgboost' on GPUs"
        )
    learner = out.get("tree_learner", "data")
    if learner not in _TREE_LEARNERS:
        raise ValueError(
            f"params={{{given['tree_learner']!r}: {learner!r}}}: distributed LightGBM takes "
            f"one of {sorted(_TREE_LEARNERS)}"
        )
    if "objective" in out and not isinstance(out["objective"], str):
        raise TypeError(
            f"objective={out['objective']!r}: pass the name of a LightGBM objective "
            "(custom objective functions are not supported)"
        )
    return out


def _merge(task: str, n_classes: int | None, params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults of the task, overridden by the user's parameters, all by main name."""
    user = check_params(params)
    merged = check_params(default_params(task, n_classes))
    if task == "multiclass" and "num_class" in user and user["num_class"] != n_classes:
        raise ValueError(
            f"params sets num_class={user['num_class']!r} but the data has "
            f"n_classes={n_classes}; drop num_class from params"
        )
    merged.update(user)
    return merged


def _check_values(
    params: dict[str, Any], n_features: int, categorical: list[int], task: str, n_classes: int
) -> None:
    """Raise ``ValueError`` for a value LightGBM rejects, before any work on the cluster.

    LightGBM checks values when it makes a booster: this makes one on a few random rows in
    this process (no network, one thread, silent).
    """
    rng = np.random.default_rng(0)
    n = 32
    X = rng.random((n, n_features))
    for j in categorical:
        X[:, j] = np.arange(n) % 3
    if task == "regression":
        y = rng.random(n)
    else:
        y = (np.arange(n) % max(n_classes, 2)).astype(np.float64)
    # network settings and files that may exist on the workers only are not checked here
    local = {
        k: v
        for k, v in params.items()
        if k not in _NETWORK and not k.endswith("filename") and k != "input_model"
    }
    local.update(num_threads=1, verbosity=-1)
    try:
        data = lightgbm.Dataset(X, y, params=local, categorical_feature=categorical)
        lightgbm.Booster(params=local, train_set=data)
    except lightgbm.basic.LightGBMError as e:
        raise ValueError(f"LightGBM rejects the parameters {params!r}: {e}") from None
