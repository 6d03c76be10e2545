"""What a study searches: the default space of each model, and checks of a user's space.

A space maps a parameter name of the model's library to an Optuna distribution
(``optuna.distributions.FloatDistribution(0.01, 0.3, log=True)``); Optuna samples from it.
The defaults are the parameters that matter most for each model, over ranges wide enough to
hold the usual best values and narrow enough for a few dozen trials to cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from workbench.training.backends import Backend

# name -> (kind, low, high, log) for the default spaces; kind "float" or "int"
_DEFAULTS: dict[str, dict[str, tuple[str, float, float, bool]]] = {
    "xgboost": {
        "learning_rate": ("float", 0.01, 0.3, True),
        "max_depth": ("int", 3, 10, False),
        "min_child_weight": ("float", 0.5, 20.0, True),
        "subsample": ("float", 0.5, 1.0, False),
        "colsample_bytree": ("float", 0.5, 1.0, False),
        "reg_lambda": ("float", 1e-3, 10.0, True),
        "reg_alpha": ("float", 1e-3, 10.0, True),
    },
    "lightgbm": {
        "learning_rate": ("float", 0.01, 0.3, True),
        "num_leaves": ("int", 15, 255, True),
        "min_child_samples": ("int", 5, 100, True),
        "feature_fraction": ("float", 0.5, 1.0, False),
        "lambda_l2": ("float", 1e-3, 10.0, True),
    },
    "linear": {
        "l2": ("float", 1e-4, 10.0, True),
    },
}


def default_space(model: str) -> dict[str, BaseDistribution]:
    """The space searched for ``model`` when a study is given none.

    Raises
    ------
    ValueError
        The model has no default space (pass ``space=``).
    """
    from optuna.distributions import FloatDistribution, IntDistribution

    if model not in _DEFAULTS:
        raise ValueError(
            f"there is no default space for model={model!r}; pass space={{name: an Optuna "
            "distribution}}, e.g. {'l2': optuna.distributions.FloatDistribution(1e-4, 10, "
            "log=True)}"
        )
    space: dict[str, BaseDistribution] = {}
    for name, (kind, low, high, log) in _DEFAULTS[model].items():
        if kind == "int":
            space[name] = IntDistribution(int(low), int(high), log=log)
        else:
            space[name] = FloatDistribution(low, high, log=log)
    return space


def _example(distribution: BaseDistribution) -> Any:
    """A value the distribution can give (to check the parameter's name with the library)."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[0]
    return distribution.low  # type: ignore[attr-defined]


def check_space(
    space: Any,
    *,
    backend: Backend,
    task: str,
    n_features: int,
    categorical: list[int],
    params: Mapping[str, Any],
) -> dict[str, BaseDistribution]:
    """Check a user's space (or make the default one) before any trial runs.

    Parameters
    ----------
    space
        ``None`` for the model's default, or ``{name: Optuna distribution}``.
    backend
        The model's backend: it checks the names (with an example value of each) and the
        fixed ``params`` together, as :func:`workbench.train` would.
    task, n_features, categorical
        The training set's task, number of features and categorical feature positions.
    params
        Parameters fixed for every trial; a name may not be both fixed and searched.

    Raises
    ------
    TypeError
        ``space`` is not a dict, a name is not a string, or a value is not an Optuna
        distribution (a list or tuple is named with the distribution to use instead).
    ValueError
        An empty space, a name both in ``space`` and ``params``, or a name the model's library
        does not know.
    """
    from optuna.distributions import BaseDistribution

    if space is None:
        space = default_space(backend.name)
    if not isinstance(space, Mapping):
        raise TypeError(
            f"space must be a dict of parameter name -> Optuna distribution, not {space!r}"
        )
    if not space:
        raise ValueError("space is empty: give at least one parameter to search, or None")
    for name, distribution in space.items():
        if not isinstance(name, str):
            raise TypeError(f"space's keys must be parameter names (str), not {name!r}")
        if not isinstance(distribution, BaseDistribution):
            raise TypeError(
                f"space[{name!r}] is {distribution!r}, not an Optuna distribution: use "
                f"{_suggestion(distribution)}, or put a fixed value in params="
            )
    both = sorted(set(space) & set(params))
    if both:
        raise ValueError(
            f"{', '.join(map(repr, both))} is both searched (space) and fixed (params); "
            "keep it in one of them"
        )
    example = {**params, **{n: _example(d) for n, d in space.items()}}
    backend.check_params(example, task, n_features, categorical)
    return dict(space)


def _suggestion(value: Any) -> str:
    """The Optuna distribution a user probably meant by ``value``."""
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = value
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"optuna.distributions.IntDistribution({low}, {high})"
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return f"optuna.distributions.FloatDistribution({low}, {high})"
    if isinstance(value, list | tuple):
        return f"optuna.distributions.CategoricalDistribution({list(value)!r})"
    return "optuna.distributions.FloatDistribution(low, high) (or IntDistribution)"
