"""``wb.train``: a dataset in, a :class:`Model` out, with live progress on the way."""

from __future__ import annotations

import contextlib
import difflib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from distributed import span

from workbench import config, hooks, metrics
from workbench._client import ClusterSnapshot, ensure_client, snapshot
from workbench.checks import whole_number
from workbench.data.dataset import Dataset, check_device
from workbench.errors import TrainingError
from workbench.events import publish
from workbench.training import backends, monitoring, store
from workbench.training.backends import Backend, FitRequest, FitResult
from workbench.training.balance import balance
from workbench.training.encoding import encode_sets
from workbench.training.failures import explain
from workbench.training.model import Model
from workbench.training.progress import (
    Progress,
    forget,
    label,
    live_history,
    plural,
    request_stop,
    stopped_early,
)

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


def _positive_int(value: Any, name: str, example: int) -> int:
    return whole_number(value, name, 1, hint=f"e.g. {name}={example}")


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
    for name, ds in (("train", train), ("valid", valid)):
        if not isinstance(ds, Dataset) and not (name == "valid" and ds is None):
            raise TypeError(
                f"{name} must be a workbench Dataset (wb.load(...) or ds.split(...)), "
                f"not {type(ds).__name__}"
            )
    kinds = backends.names()
    if not isinstance(model, str) or model not in kinds:
        close = difflib.get_close_matches(str(model), kinds, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {model!r}: use one of {', '.join(kinds)}{hint}")
    caps = backends.get(model).capabilities
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
    if early_stopping is not None and not caps.early_stopping:
        raise ValueError(caps.refusal("early_stopping", model))
    if checkpoint_every is not None and checkpoint_every != 0:
        _positive_int(checkpoint_every, "checkpoint_every", 50)
    check_device(device)
    if device == "gpu" and not caps.gpu:
        raise ValueError(caps.refusal("gpu", model))
    if train.target is None or train.task is None:
        raise ValueError(
            f"dataset {train.source!r} has no target: load it with target='column' to train"
        )
    categorical = [c for c, k in train.features.items() if k == "categorical"]
    if categorical and not caps.categorical:
        raise ValueError(
            f"model={model!r} takes numeric features only, and {categorical} are categorical: "
            "load the dataset with features=[...] leaving them out, or use model='xgboost'"
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
        raise ValueError(
            "the validation set's features differ from the training set's ("
            + "; ".join(parts)
            + "); split both from one dataset, or load them with the same features=[...]"
        )


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
    checkpoint_path: str | None = None,
    resume: str | Model | None = None,
    eval_train: bool = False,
    on_round: Callable[[int, dict[str, dict[str, float]]], bool] | None = None,
    experiment: str | None = None,
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
        Send the model of every N-th round from the workers to the client, to continue from
        when a worker is lost (XGBoost); ``workbench.train.checkpoint-every`` by default, 0 for
        none. Recoveries are bounded by ``workbench.train.retries`` and recorded in
        ``model.info["recoveries"]``.
    client
        The Dask client; the current one, or a new default local cluster (said so).
    device
        ``auto`` (the GPU where every worker is a GPU worker: a GPU of its own and CuPy, as in
        ``local-gpu``; see :func:`workbench.data.placement.gpu_workers`), ``cpu`` or ``gpu``.
    progress
        Show a progress bar (a widget in notebooks); ``workbench.train.progress`` by default.
    checkpoint_path
        Also write each checkpoint there (a local path or fsspec URL) as a model file,
        atomically; ``resume=`` continues from it. It may hold a workbench model file (a
        checkpoint replaces it each time), but nothing else: that is refused before training.
    resume
        A model or checkpoint (path or :class:`Model`) to continue training: ``rounds`` counts
        its rounds too.
    eval_train
        Evaluate the training set every round as well (``train-*`` columns of ``history``, the
        training curve beside the validation curve). Off by default, as in XGBoost and
        LightGBM, which evaluate only the sets they are given: the training set's metrics can
        cost as much as the round itself (AUC sorts every training row each round). Without a
        validation set and without ``eval_train`` nothing is evaluated: the progress shows
        rounds and seconds, and ``history`` has a row per round and no columns. ``linear``
        records its training loss per Newton iteration either way.
    on_round
        Called in this process with each round (from 0) and its metrics
        (``{"valid": {"logloss": 0.31}}``) as they arrive from the workers; when it returns
        True the workers stop after their current round and the model so far is returned
        (``model.info["stopped_by"] == "on_round"``), as after a Ctrl-C. An exception it
        raises stops the training the same way and is raised. Rounds arrive a little after
        the workers finish them, so a few more may run. For models that stop on request
        (``xgboost``).
    experiment
        Record the training as a run of this MLflow experiment (created if new): parameters,
        metrics per round and final, the data's fingerprint, the cluster, package versions,
        the git commit and the model file (see :class:`workbench.tuning.tracking.Tracker`;
        ``wb.runs(experiment)`` reads the runs back). The store is
        ``workbench.tracking.uri`` (by default MLflow's ``MLFLOW_TRACKING_URI``, else
        ``mlflow.db`` in the working folder). Needs ``pip install 'workbench[track]'``; a bad
        name or a store that cannot be opened is refused before anything runs. The run's id
        is ``model.info["run_id"]``; a run that cannot be recorded after the training is
        logged as a warning and the model is returned all the same.

    Returns
    -------
    Model
        The trained model, with ``history`` (every metric per round) and ``metrics``.
    """
    params = dict(params or {})
    check_args(train, valid, model, params, rounds, early_stopping, checkpoint_every, device)
    if eval_train is None:  # the default of earlier versions
        eval_train = False
    if not isinstance(eval_train, bool):
        raise TypeError(f"eval_train must be True or False, not {eval_train!r}")
    backend = backends.get(model)
    caps = backend.capabilities
    if on_round is not None and not callable(on_round):
        raise TypeError(f"on_round must be a function of (round, metrics), not {on_round!r}")
    if on_round is not None and not caps.interrupt:
        raise ValueError(
            f"on_round is for models that stop on request; model={model!r} does not "
            "(use model='xgboost')"
        )
    if not caps.checkpoints and (checkpoint_every or checkpoint_path or resume is not None):
        able = " or ".join(f"model={n!r}" for n in _with_checkpoints())
        raise ValueError(
            f"checkpoints (checkpoint_every, checkpoint_path, resume) are for {able} "
            f"only, not {model!r}"
        )
    if checkpoint_path:  # a checkpoint replaces a model file, never the user's other files
        store.check_target(checkpoint_path, "model")
    kinds = list(train.features.values())
    categorical = [j for j, k in enumerate(kinds) if k == "categorical"]
    backend.check_params(params, str(train.task), len(kinds), categorical)
    recorder = hooks.tracker(experiment) if experiment is not None else None
    client = ensure_client(client)
    show = bool(config.get("train.progress", progress))
    if caps.checkpoints and checkpoint_every is None:
        checkpoint_every = int(config.get("train.checkpoint-every")) or None
    loaded = _resume_model(resume, rounds)
    opts = Options(
        backend=backend,
        params=params,
        rounds=rounds,
        early_stopping=early_stopping,
        checkpoint_every=checkpoint_every,
        checkpoint_path=str(checkpoint_path) if checkpoint_path else None,
        resume=loaded,
        device=device,
        show=show,
        eval_train=eval_train,
        on_round=on_round,
    )
    with client.as_current():
        trained = _train(train, valid, opts, client)
    if recorder is not None:
        try:
            trained.info["run_id"] = recorder.record(
                trained, train=train, valid=valid, client=client
            )
        except Exception as e:  # the training is done: keep its model
            logger.warning(
                "the model is trained, but its run in experiment %r was not recorded: %s",
                experiment,
                e,
            )
    return trained


def _resume_model(resume: Any, rounds: int) -> Model | None:
    if resume is None:
        return None
    loaded = resume if isinstance(resume, Model) else Model.load(str(resume))
    done = backends.get(loaded.kind).rounds_done(loaded.estimator)
    if done >= rounds:
        raise ValueError(
            f"the model to resume already has {done} rounds; ask for more (rounds > {done})"
        )
    return loaded


@dataclass
class Options:
    """How to train: what :func:`train` was asked, checked."""

    backend: Backend
    params: dict[str, Any]
    rounds: int
    early_stopping: int | None
    checkpoint_every: int | None
    checkpoint_path: str | None
    resume: Model | None
    device: str
    show: bool
    eval_train: bool = False
    on_round: Callable[[int, dict[str, dict[str, float]]], bool] | None = None


def _history_dict(history: Any) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for column in history.columns:
        data, _, metric = str(column).partition("-")
        out.setdefault(data, {})[metric] = [float(v) for v in history[column]]
    return out


def _train(train: Dataset, valid: Dataset | None, opts: Options, client: Client) -> Model:
    start = time.perf_counter()
    backend = opts.backend
    caps = backend.capabilities
    kind = backend.name
    task = str(train.task)
    target = str(train.target)
    monitoring.enabled()  # a bad setting fails before any work
    cluster = snapshot(client)  # the one question to the scheduler: passed down from here
    backend.prepare(client)
    if opts.resume is not None:  # encode as the checkpoint was trained: its order and levels
        _check_resume(opts.resume, train, None)
        train = replace(
            train,
            features=dict(opts.resume.features),
            categories={**train.categories, **opts.resume.categories},
        )
    bar = Progress(client, opts.rounds, desc=label(kind, train.source), show=opts.show)
    bar.on_round = opts.on_round
    reading = f"reading the data on {plural(cluster.n_workers, 'worker')}"
    tables: list[Any] = []

    def fix_classes(found: np.ndarray | None) -> np.ndarray | None:
        if opts.resume is None:
            return found
        _check_resume(opts.resume, train, found)
        return np.asarray(opts.resume.classes) if opts.resume.classes is not None else None

    def balanced(X: Any, y: Any) -> tuple[Any, Any]:
        X, y, table = balance(client, X, y, cluster)
        tables.append(table)
        return X, y

    with bar.preparing(reading):  # the bar says what happens before round 1
        sets = encode_sets(
            train,
            valid,
            client=client,
            device=opts.device if caps.gpu else "cpu",
            dtype=caps.dtype,
            cluster=cluster,
            fix_classes=fix_classes,
            between=balanced,
        )
    X, y, valid_xy, classes, dev = sets.X, sets.y, sets.valid, sets.classes, sets.device
    features, categories, table = sets.features, sets.categories, tables[0]
    n_classes = len(classes) if classes is not None else None
    bar.status(f"building the training matrices on {plural(len(table), 'worker')}")
    request = FitRequest(
        X=X,
        y=y,
        task=task,
        n_classes=n_classes,
        feature_names=list(features),
        categorical=[j for j, k in enumerate(features.values()) if k == "categorical"],
        categories=categories,
        params=opts.params,
        rounds=opts.rounds,
        valid=valid_xy,
        early_stopping=opts.early_stopping,
        eval_train=opts.eval_train,
        progress=bar,
        checkpoint_every=opts.checkpoint_every,
        resume=(
            (opts.resume.estimator, _history_dict(opts.resume.history))
            if opts.resume is not None
            else None
        ),
        cluster=cluster,
    )
    recoveries: list[Any] = []

    def model_of(booster: Any, history: dict[str, Any], best: int | None, rows: int) -> Model:
        return Model(
            kind=kind,
            task=task,
            target=target,
            features=features,
            categories=categories,
            classes=classes.tolist() if classes is not None else None,
            estimator=booster,
            params=backend.effective_params(task, n_classes, opts.params, dev),
            rounds=opts.rounds,
            best_iteration=best,
            history=_history(history, rows),
            info={
                "source": train.source,
                "train_rows": int(sum(X.chunks[0])),
                "valid_rows": int(sum(valid_xy[0].chunks[0])) if valid_xy else 0,
                "workers": _worker_count(cluster, recoveries),
                "placement": {w: dict(r) for w, r in table.to_dict(orient="index").items()},
                "device": dev,
                "seconds": round(time.perf_counter() - start, 3),
                "live_rounds": len(bar.rounds),
                "interrupted": _interrupted(bar),
                "stopped_early": bar.outcome,
                "stopped_by": "on_round" if bar.stopped_by_hook else None,
                "recoveries": [r.as_dict() for r in recoveries],
            },
        )

    if caps.checkpoints and opts.checkpoint_path:
        path = opts.checkpoint_path

        def save_checkpoint(rounds: int, data: bytes) -> None:
            history = live_history(bar, rounds)
            model_of(backend.from_bytes(data), history, None, rounds).save(path)

        bar.on_checkpoint = save_checkpoint

    def in_span() -> FitResult:  # in the training's own thread: spans are context-local
        with (
            span(f"workbench-train-{kind}"),
            monitoring.paused(client, cluster.addresses, bar.topic),
        ):
            result = backend.fit(client, request)
        recoveries.extend(result.recoveries)
        return result

    publish(client, bar.topic, _started(bar, kind, train.source, dev, table))
    end: dict[str, Any] = {"status": "failed", "best": None}  # for the end message
    try:
        fit = bar.run(
            in_span,
            on_interrupt=(lambda: client.run(request_stop, bar.topic)) if caps.interrupt else None,
            rounds_of=_rounds_of,
            outcome=lambda fit: stopped_early(
                _rounds_of(fit), opts.rounds, fit.best_iteration, fit.history
            ),
        )
        end.update(status="interrupted" if _interrupted(bar) else "done", best=fit.best_iteration)
    except Exception as e:
        failure = e if isinstance(e, TrainingError) else explain(client, kind, e)
        kept = _keep_last_checkpoint(bar, opts, model_of) if caps.checkpoints else None
        if kept:
            failure = TrainingError(f"{failure}. {kept}")
        if failure is e:
            raise
        raise failure from e
    finally:
        if not bar.abandoned:  # an abandoned training still has to see its stop request
            with contextlib.suppress(Exception):  # the scheduler may be gone
                client.run(forget, bar.topic)
        end["status"] = "abandoned" if bar.abandoned else end["status"]
        publish(client, bar.topic, {"end": time.time(), "rounds": len(bar.rounds), **end})
    trained = model_of(fit.estimator, fit.history, fit.best_iteration, _rounds_of(fit))
    if valid_xy is not None:
        try:
            scores = backend.predict(client, fit.estimator, valid_xy[0], task)
            trained.metrics = metrics.evaluate(valid_xy[1], scores, task, client=client)
        except (ValueError, TypeError) as e:  # e.g. an objective whose outputs are not scores
            logger.warning("the model is trained, but its validation metrics failed: %s", e)
    return trained


def _started(bar: Progress, kind: str, source: str, device: str, table: Any) -> dict[str, Any]:
    """The start message for readers of the training's events (see :mod:`workbench.events`)."""
    return {
        "start": time.time(),
        "total": bar.total,
        "title": bar.desc,
        "model": kind,
        "source": str(source),
        "device": device,
        "workers": {str(w): int(n) for w, n in table["rows"].items()},  # training rows
    }


def _interrupted(bar: Progress) -> bool:
    """Whether the user interrupted the training (the model so far is returned)."""
    return any("interrupted" in n.get("note", "") for n in bar.notes)


def _keep_last_checkpoint(bar: Any, opts: Options, model_of: Any) -> str | None:
    """Save the last checkpoint of a failed training; say where and how to continue."""
    if bar.checkpoint is None:
        return None
    rounds, data = bar.checkpoint
    path = opts.checkpoint_path
    if not path:
        folder = Path(str(config.get("train.checkpoint-dir"))).expanduser()
        path = str(folder / f"{bar.topic}.wbm")
    try:
        history = live_history(bar, rounds)
        model_of(opts.backend.from_bytes(data), history, None, rounds).save(path)
    except Exception as e:
        return f"The last checkpoint ({rounds} rounds) could not be saved: {e}"
    return (
        f"The last checkpoint ({rounds} rounds) is saved at {path}: continue with "
        f"wb.train(..., resume={path!r})"
    )


def _check_resume(model: Model, train: Dataset, classes: Any) -> None:
    """The checkpoint must fit the training set: same features, target and classes."""
    if not backends.get(model.kind).capabilities.checkpoints:
        able = " or ".join(_with_checkpoints())
        raise ValueError(f"resume= needs a {able} model or checkpoint, not a {model.kind} one")
    if model.features != dict(train.features) or model.target != train.target:
        raise ValueError(
            f"the model to resume was trained on target {model.target!r} and features "
            f"{list(model.features)}; the training set has {train.target!r} and "
            f"{list(train.features)}: resume with the same data"
        )
    ours = classes.tolist() if classes is not None else None
    if ours is not None and model.classes is not None and not set(ours) <= set(model.classes):
        raise ValueError(
            f"the training set has classes {ours} but the model to resume knows {model.classes}"
        )


def _worker_count(cluster: ClusterSnapshot, recoveries: list[Any]) -> int:
    """The workers trained on: the snapshot's, or those after the last recovery."""
    return int(recoveries[-1].workers_after) if recoveries else cluster.n_workers


def _rounds_of(fit: FitResult) -> int:
    """The rounds a training ran: its history's, or the backend's count when none was kept."""
    evaluated = max((len(v) for ms in fit.history.values() for v in ms.values()), default=0)
    return max(evaluated, fit.rounds or 0)


def _with_checkpoints() -> list[str]:
    """The backends that checkpoint and resume (for messages); those not installed are left out."""
    out = []
    for name in backends.names():
        with contextlib.suppress(ImportError):
            if backends.get(name).capabilities.checkpoints:
                out.append(name)
    return out


def _history(history: dict[str, dict[str, list[float]]], rows: int) -> Any:
    """``history`` as a table of one row per round (``rows`` when nothing was evaluated)."""
    import pandas as pd

    columns = {
        f"{d}-{m}": pd.Series(vs, dtype=float) for d, ms in history.items() for m, vs in ms.items()
    }
    n = max((len(c) for c in columns.values()), default=rows)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    frame.index.name = "round"
    return frame
