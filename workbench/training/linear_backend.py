"""``model="linear"`` behind the boosters' interface (see :mod:`workbench.training.linear`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workbench.training.linear import LinearModel
from workbench.training.linear import fit as fit_linear
from workbench.training.xgb import Fit

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

PARAMS = {"l2": 1.0, "max_iter": None, "tol": 1e-8}


def check_params(params: dict[str, Any]) -> None:
    """Refuse parameters the linear model does not have, naming them."""
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ValueError(
            f"model='linear' has no parameter(s) {unknown}; it takes {sorted(PARAMS)} "
            "(l2: the L2 penalty, max_iter: Newton iterations, tol: convergence tolerance)"
        )


def default_params(task: str, n_classes: int | None) -> dict[str, Any]:
    """The defaults: ``l2=1`` (as scikit-learn's ``C=1`` and ``Ridge(alpha=1)``)."""
    return {"l2": PARAMS["l2"], "tol": PARAMS["tol"]}


def fit(
    client: Client,
    X: da.Array,
    y: da.Array,
    *,
    task: str,
    n_classes: int | None,
    feature_names: list[str],
    categorical: list[int],
    params: dict[str, Any] | None,
    rounds: int,
    valid: tuple[da.Array, da.Array] | None = None,
    early_stopping: int | None = None,
    topic: str | None = None,
    categories: dict[str, list[Any]] | None = None,
) -> Fit:
    """Fit by Newton's method (IRLS), at most ``rounds`` iterations, each one pass over ``X``.

    Every iteration's training loss goes to the progress topic (reported from the client).
    """
    params = {**default_params(task, n_classes), **(params or {})}
    levels = {j: max(1, len((categories or {}).get(feature_names[j], []))) for j in categorical}
    history: dict[str, dict[str, list[float]]] = {"train": {"loss": []}}

    def on_iteration(i: int, metrics: dict[str, float]) -> None:  # i counts from 1
        loss = float(metrics["loss"])
        history["train"]["loss"].append(loss)
        if topic is not None:
            client.log_event(topic, {"round": i - 1, "metrics": {"train": {"loss": loss}}})

    model = fit_linear(
        X,
        y,
        task=task,
        n_classes=n_classes,
        categorical=levels,
        l2=float(params["l2"]),
        max_iter=int(params.get("max_iter") or rounds),
        tol=float(params["tol"]),
        client=client,
        on_iteration=on_iteration,
    )
    return Fit(booster=model, history=history, best_iteration=None)


def predict(client: Client, model: LinearModel, X: da.Array, task: str) -> da.Array:
    """Probabilities (binary: of class 1) or values, block by block on the workers."""
    return model.predict(X)


def to_bytes(model: LinearModel) -> bytes:
    """The model's coefficients and preprocessing as JSON."""
    return json.dumps(model.to_dict()).encode()


def from_bytes(data: bytes) -> LinearModel:
    """A model from :func:`to_bytes`."""
    return LinearModel.from_dict(json.loads(data))


def importance(model: LinearModel, names: list[str]) -> dict[str, float]:
    """|coefficients| per feature, on the standardised scale."""
    return dict(model.feature_importance(names))
