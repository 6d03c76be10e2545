"""``wb.train``: a dataset in, a :class:`Model` out, with live progress on the way."""

from __future__ import annotations

import difflib
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import config
from workbench._client import ensure_client, scheduler_workers
from workbench.training import labels
from workbench.training.model import KINDS, Model, backend

if TYPE_CHECKING:
    from distributed import Client

    from workbench.data.dataset import Dataset

logger = logging.getLogger("workbench")


def _positive_int(value: Any, name: str, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive whole number, e.g. {name}={example}")
    return int(value)


def check_args(
    train: Any,
    valid: Any,
    model: Any,
    params: Any,
    rounds: Any,
    early_stopping: Any,
    checkpoint_every: Any,
    device: Any,
) -> None:
    """Refuse bad arguments before anything runs on the cluster."""
    from workbench.data.dataset import Dataset
    from workbench.data.placement import check_device

    for name, ds in (("train", train), ("valid", valid)):
        if not isinstance(ds, Dataset) and not (name == "valid" and ds is None):
            raise TypeError(
                f"{name} must be a workbench Dataset (wb.load(...) or ds.split(...)), "
                f"not {type(ds).__name__}"
            )
    if not isinstance(model, str) or model not in KINDS:
        close = difflib.get_close_matches(str(model), KINDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {model!r}: use one of {', '.join(KINDS)}{hint}")
    if params is not None and (
        not isinstance(params, dict) or not all(isinstance(k, str) for k in params)
    ):
        raise TypeError(f"params must be a dict of parameter names to values, not {params!r}")
    _positive_int(rounds, "rounds", 100)
    if early_stopping is not None:
        _positive_int(early_stopping, "early_stopping", 20)
        if valid is None:
            raise ValueError(
                "early_stopping needs a validation set to watch: pass valid=... "
                "(for example train, valid = ds.split((0.9, 0.1)))"
            )
    if early_stopping is not None and model == "lightgbm":
        raise ValueError(
            "early_stopping is not available for model='lightgbm': lightgbm.dask evaluates "
            "each worker's share of the validation set apart, so the workers would stop at "
            "different rounds and the training would fail; use model='xgboost' for early "
            "stopping, or set rounds="
        )
    if early_stopping is not None and model == "linear":
        raise ValueError(
            "early_stopping applies to boosting rounds; model='linear' runs Newton iterations "
            "to convergence (set params={'tol': ...} instead)"
        )
    if checkpoint_every is not None:
        _positive_int(checkpoint_every, "checkpoint_every", 50)
    check_device(device)
    if model == "lightgbm" and device == "gpu":
        raise ValueError(
            "model='lightgbm' trains on CPUs here (lightgbm.dask has no CUDA path); "
            "use model='xgboost' for the GPU or device='cpu'"
        )
    if train.target is None or train.task is None:
        raise ValueError(
            f"dataset {train.source!r} has no target: load it with target='column' to train"
        )
    if valid is not None:
        _check_same_columns(train, valid)


def _check_same_columns(train: Dataset, valid: Dataset) -> None:
    if valid.target != train.target:
        raise ValueError(
            f"the validation set's target is {valid.target!r} but the training set's is "
            f"{train.target!r}; load both with the same target"
        )
    if dict(valid.features) != dict(train.features):
        only_train = [c for c in train.features if c not in valid.features]
        only_valid = [c for c in valid.features if c not in train.features]
        kinds = [
            f"{c} ({train.features[c]} vs {valid.features[c]})"
            for c in train.features
            if c in valid.features and valid.features[c] != train.features[c]
        ]
        parts = []
        if only_train:
            parts.append(f"missing from valid: {only_train}")
        if only_valid:
            parts.append(f"only in valid: {only_valid}")
        if kinds:
            parts.append(f"different kinds: {', '.join(kinds)}")
        if not parts:
            parts.append("the same columns in another order")
        raise ValueError(
            "the validation set's features differ from the training set's ("
            + "; ".join(parts)
            + "); split both from one dataset, or load them with the same features=[...]"
        )


def _check_backend_params(model: str, params: dict[str, Any], train: Dataset) -> None:
    kinds = list(train.features.values())
    categorical = [j for j, k in enumerate(kinds) if k == "categorical"]
    if model == "xgboost":
        from workbench.training import xgb

        classes = 3 if train.task == "multiclass" else None
        merged = {**xgb.default_params(train.task or "binary", classes), **params}
        xgb.check_params(merged, len(kinds), categorical)
    elif model == "lightgbm":
        from workbench.training import lgbm

        lgbm.check_params(params)
    elif model == "linear":
        from workbench.training import linear_backend

        linear_backend.check_params(params)


def train(
    train: Dataset,
    valid: Dataset | None = None,
    model: str = "xgboost",
    params: dict[str, Any] | None = None,
    rounds: int = 100,
    early_stopping: int | None = None,
    checkpoint_every: int | None = None,
    client: Client | None = None,
    *,
    device: str = "auto",
    progress: bool | None = None,
) -> Model:
    """Train a model on the cluster, showing each round as it finishes.

    Parameters
    ----------
    train
        The training set; its target and task (binary, multiclass, regression) choose the
        objective and metrics unless ``params`` set them.
    valid
        A validation set with the same features, evaluated every round; early stopping
        watches its last metric. Its metrics at the end go to ``model.metrics``.
    model
        ``xgboost`` (CPU or GPU), ``lightgbm`` (CPU) or ``linear`` (L2-regularised linear or
        logistic regression, CPU or GPU).
    params
        Parameters of the model's library, passed through; they win over the defaults.
        ``linear`` takes ``l2``, ``max_iter`` and ``tol``.
    rounds
        Boosting rounds (Newton iterations at most for ``linear``).
    early_stopping
        Stop after this many rounds without improvement on ``valid``; the best round is kept.
    checkpoint_every
        Keep the model of every N-th round with the client, to continue from after a lost
        worker (XGBoost).
    client
        The Dask client; the current one, or a new default local cluster (said so).
    device
        ``auto`` (GPU where every worker has one), ``cpu`` or ``gpu``.
    progress
        Show a progress bar (a widget in notebooks); ``workbench.training.progress`` by default.

    Returns
    -------
    Model
        The trained model, with ``history`` (every metric per round) and ``metrics``.
    """
    params = dict(params or {})
    check_args(train, valid, model, params, rounds, early_stopping, checkpoint_every, device)
    if checkpoint_every is not None and model != "xgboost":
        raise ValueError(f"checkpoint_every is supported for model='xgboost' only, not {model!r}")
    _check_backend_params(model, params, train)
    client = ensure_client(client)
    show = bool(config.get("train.progress", progress))
    with client.as_current():
        return _train(
            train,
            valid,
            model,
            params,
            rounds,
            early_stopping,
            checkpoint_every,
            client,
            device,
            show,
        )


def _train(
    train: Dataset,
    valid: Dataset | None,
    kind: str,
    params: dict[str, Any],
    rounds: int,
    early_stopping: int | None,
    checkpoint_every: int | None,
    client: Client,
    device: str,
    show: bool,
) -> Model:
    from distributed import span

    from workbench.data.placement import arrays_and_levels, resolve_device
    from workbench.training.balance import balance
    from workbench.training.progress import Progress, forget, request_stop

    start = time.perf_counter()
    task = str(train.task)
    target = str(train.target)
    mod = backend(kind)
    dev = "cpu" if kind == "lightgbm" else resolve_device(client, device)
    if kind == "xgboost":
        from workbench.clusters.security import warn_if_allreduce_unencrypted
        from workbench.training import xgb

        warn_if_allreduce_unencrypted(client)
        if config.get("train.quiet"):
            xgb.quiet(client)
    dtype = np.dtype("float64" if kind == "linear" else "float32")
    X, y, levels = arrays_and_levels(train, device=dev, dtype=dtype, client=client)
    classes = labels.find_classes(y, target, task)
    y = labels.encode(y, classes, target, "the training set")
    X, y, table = balance(client, X, y)
    features = dict(train.features)
    categories = {c: list(levels[c]) for c, k in features.items() if k == "categorical"}
    valid_xy = None
    if valid is not None:
        view = replace(valid, categories=categories)
        Xv, yv, _ = arrays_and_levels(view, device=dev, dtype=dtype, client=client)
        yv = labels.encode(yv, classes, target, "the validation set")
        valid_xy = (Xv, yv)
    n_classes = len(classes) if classes is not None else None
    categorical = [j for j, k in enumerate(features.values()) if k == "categorical"]
    bar = Progress(client, rounds, desc=f"{kind} {train.source}".strip(), show=show)
    fit_args = {
        "task": task,
        "n_classes": n_classes,
        "feature_names": list(features),
        "categorical": categorical,
        "params": params,
        "rounds": rounds,
        "valid": valid_xy,
        "early_stopping": early_stopping,
        "topic": bar.topic,
    }
    if kind == "linear":
        fit_args["categories"] = categories
    try:
        with span(f"workbench-train-{kind}"):
            fit = bar.run(
                lambda: mod.fit(client, X, y, **fit_args),
                on_interrupt=(
                    None if kind != "xgboost" else lambda: client.run(request_stop, bar.topic)
                ),
                rounds_of=_rounds_of,
            )
    except Exception as e:
        from workbench.training.failures import explain

        failure = explain(client, kind, e)
        if failure is e:
            raise
        raise failure from e
    finally:
        client.run(forget, bar.topic)
    seconds = time.perf_counter() - start
    trained = Model(
        kind=kind,
        task=task,
        target=target,
        features=features,
        categories=categories,
        classes=classes.tolist() if classes is not None else None,
        estimator=fit.booster,
        params=_effective_params(kind, task, n_classes, params),
        rounds=rounds,
        best_iteration=fit.best_iteration,
        history=_history(fit.history),
        info={
            "source": train.source,
            "train_rows": int(sum(X.chunks[0])),
            "valid_rows": int(sum(valid_xy[0].chunks[0])) if valid_xy else 0,
            "workers": len(scheduler_workers(client)),
            "placement": {w: dict(r) for w, r in table.to_dict(orient="index").items()},
            "device": dev,
            "seconds": round(seconds, 3),
            "live_rounds": len(bar.rounds),
            "interrupted": any("interrupted" in n.get("note", "") for n in bar.notes),
        },
    )
    if valid_xy is not None:
        from workbench import metrics

        scores = mod.predict(client, fit.booster, valid_xy[0], task)
        trained.metrics = metrics.evaluate(valid_xy[1], scores, task, client=client)
    return trained


def _rounds_of(fit: Any) -> int:
    return max((len(v) for ms in fit.history.values() for v in ms.values()), default=0)


def _effective_params(
    kind: str, task: str, n_classes: int | None, params: dict[str, Any]
) -> dict[str, Any]:
    if kind == "linear":
        return dict(params)
    return {**backend(kind).default_params(task, n_classes), **params}


def _history(history: dict[str, dict[str, list[float]]]) -> Any:
    import pandas as pd

    columns = {f"{d}-{m}": vs for d, ms in history.items() for m, vs in ms.items()}
    frame = pd.DataFrame(columns)
    frame.index.name = "round"
    return frame
