"""``wb.tune``: a hyperparameter study on the cluster, with pruning, tracked with MLflow.

Optuna is the search engine (its TPE sampler draws the parameters, its successive-halving
pruner stops the trials that fall behind); the workbench runs the trials on the cluster (packed
or gang, see :mod:`workbench.tuning.placement` and :mod:`workbench.tuning.search`), shows the
study while it runs (a bar over the trials; in a notebook, the study itself, redrawn after each
trial) and records every trial as an MLflow run when given an experiment.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench import config
from workbench._client import ensure_client, snapshot
from workbench.config import in_kernel
from workbench.data.dataset import Dataset
from workbench.data.placement import estimate_nbytes, resolve_device
from workbench.display.bars import close_bar, open_bar
from workbench.display.study import (
    plot_param_importance,
    plot_study_history,
    plot_study_rounds,
    study_html,
    study_text,
)
from workbench.errors import MissingDependencyError, TrainingError
from workbench.metrics.registry import default_metrics
from workbench.training import backends
from workbench.training.api import check_args
from workbench.training.api import train as train_model
from workbench.training.encoding import encode_sets
from workbench.training.model import Model
from workbench.tuning import placement as placing
from workbench.tuning.search import (
    GangData,
    PackedData,
    Record,
    Search,
    model_from_result,
    run_gang,
    run_packed,
    trials_frame,
)
from workbench.tuning.space import check_space
from workbench.tuning.tracking import Tracker

if TYPE_CHECKING:
    from distributed import Client
    from optuna.pruners import BasePruner

logger = logging.getLogger(__name__)

# metrics where larger is better (XGBoost's names; LightGBM's alike)
_MAXIMIZE = ("auc", "aucpr", "pre", "map", "ndcg", "average_precision", "accuracy", "r2")


def _maximize(metric: str) -> bool:
    return metric.split("@")[0] in _MAXIMIZE


class Study:
    """A finished (or interrupted) study: its trials, the best of them, its pictures.

    Attributes
    ----------
    name
        The study's name (the MLflow parent run's too, when tracked).
    metric
        The validation metric optimised (``"logloss"``), and ``direction`` how.
    placement
        ``"packed"`` or ``"gang"``, and ``placement_reason`` why (with the figures).
    optuna
        The ``optuna.Study`` underneath (its storage is in memory).
    """

    def __init__(
        self,
        optuna_study: Any,
        search: Search,
        *,
        name: str,
        model: str,
        placement: placing.Placement,
        refit: Any,
        refits: bool,
        experiment: dict[str, str] | None,
    ) -> None:
        self.optuna = optuna_study
        self._search = search
        self.name = name
        self.model = model
        self.metric = search.metric
        self.direction = "maximize" if search.maximize else "minimize"
        self.placement = placement.mode
        self.placement_reason = placement.reason
        self.experiment = experiment
        self.started = time.time()
        self.elapsed = 0.0
        self.finished = False
        self._refit = refit  # (best record) -> Model: the best parameters trained anew
        self._best_model: Model | None = None  # the best trial's own model
        self._best_number: int | None = None
        self._refits = refits
        self._refitted: tuple[int, Model] | None = None

    # --- results ---------------------------------------------------------------------------
    @property
    def interrupted(self) -> bool:
        """Whether a Ctrl-C (or the timeout) ended the study before all its trials."""
        return bool(self._search.interrupted)

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial, with its searched parameters (``params_<name>``).

        Columns: number, state, value, rounds, best round, seconds, worker, when it started,
        the parameters and the error of a failed trial.
        """
        return trials_frame(self._search.records, self._search.space)

    def _best_record(self) -> Record:
        done = [r for r in self._search.records.values() if r.state == "COMPLETE"]
        if not done:
            states = pd.Series([r.state for r in self._search.records.values()]).value_counts()
            raise ValueError(
                "no trial of this study completed "
                f"({', '.join(f'{n} {s.lower()}' for s, n in states.items()) or 'none ran'}); "
                "see study.trials for their errors"
            )
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda r: (r.value, -r.number))

    @property
    def best_value(self) -> float:
        """The best trial's value of the metric (at its best round)."""
        return float(self._best_record().value)

    @property
    def best_trial(self) -> int:
        """The best trial's number."""
        return self._best_record().number

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's parameters, as :func:`workbench.train` takes them.

        The drawn ones over the fixed ones (``params=``).
        """
        return self._search.params_of(self._best_record())

    @property
    def best_rounds(self) -> int:
        """The rounds the best trial kept (its best round + 1 under early stopping)."""
        r = self._best_record()
        return (r.best_round + 1) if r.best_round is not None else r.rounds

    @property
    def best_model(self) -> Model:
        """The best trial's model.

        A gang trial's model is kept as it was trained. A packed trial trained on one worker's
        copy of the data; with ``refit=True`` (the default) the best parameters are trained
        again by :func:`workbench.train` on the cluster the first time this is read (the
        model a plain ``wb.train`` with them gives), else the trial's own model is returned.
        """
        best = self._best_record()
        refits = self.placement == "packed" and self._refits
        if not refits and self._best_model is not None and self._best_number == best.number:
            return self._best_model
        if refits and self._refitted is not None and self._refitted[0] == best.number:
            return self._refitted[1]
        trained = self._refit(best)
        if refits:
            self._refitted = (best.number, trained)
            return trained
        self._best_model = trained
        self._best_number = best.number
        return self._best_model

    def offer(self, record: Record, model: Model) -> None:
        """Keep ``model`` if ``record`` (a completed trial) is the best so far."""
        if self._best_record().number == record.number:
            self._best_model, self._best_number = model, record.number

    @property
    def curves(self) -> dict[int, list[float]]:
        """Each trial's watched metric per round, by trial number (what pruning saw)."""
        return {n: list(r.curve) for n, r in self._search.records.items()}

    def param_importances(self) -> dict[str, float]:
        """How much each searched parameter mattered: Optuna's ``get_param_importances``."""
        import optuna

        finished = sum(r.state == "COMPLETE" for r in self._search.records.values())
        if finished < 2:
            raise ValueError(
                f"parameter importances need at least 2 completed trials; this study has {finished}"
            )
        return dict(optuna.importance.get_param_importances(self.optuna))

    # --- pictures ----------------------------------------------------------------------------
    def plot_history(self, ax: Any = None) -> Any:
        """Each trial's value, pruned ones marked, and the best so far (matplotlib Axes)."""
        return plot_study_history(self.trials, f"valid-{self.metric}", self.direction, ax=ax)

    def plot_importance(self, ax: Any = None) -> Any:
        """Which parameters mattered (:meth:`param_importances`), as bars."""
        return plot_param_importance(self.param_importances(), ax=ax)

    def plot_rounds(self, ax: Any = None) -> Any:
        """Each trial's metric per round: what pruning stopped, and when."""
        return plot_study_rounds(
            self.curves, self.trials, f"valid-{self.metric}", ax=ax, direction=self.direction
        )

    def summary(self) -> dict[str, Any]:
        """What the study's displays show (plain data)."""
        records = self._search.records
        best = None
        if any(r.state == "COMPLETE" for r in records.values()):
            b = self._best_record()
            best = {
                "number": b.number,
                "value": b.value,
                "params": dict(b.params),
                "rounds": self.best_rounds,
            }
        elapsed = self.elapsed if self.finished else time.time() - self.started
        return {
            "name": self.name,
            "metric": f"valid-{self.metric}",
            "direction": self.direction,
            "model": self.model,
            "placement": self.placement,
            "placement_reason": self.placement_reason,
            "trials": self._search.trials,
            "elapsed": elapsed,
            "best": best,
            "experiment": self.experiment,
            "finished": self.finished,
            "interrupted": self.interrupted,
        }

    def __repr__(self) -> str:
        return study_text(self.summary(), self.trials)

    def _repr_html_(self) -> str:
        return study_html(self.summary(), self.trials, self.curves)


# --- the call ------------------------------------------------------------------------------
def _positive(value: Any, name: str, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{name} must be a whole number >= 1, e.g. {name}={example}; got {value!r}"
        )
    return value


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise MissingDependencyError(
            "wb.tune needs Optuna: pip install optuna (it comes with workbench)"
        ) from e
    return optuna


# validation metrics a study may add to a task's defaults (XGBoost's names)
_TASK_METRICS = {
    "binary": ("logloss", "auc", "aucpr", "error", "pre", "map", "ndcg"),
    "multiclass": ("mlogloss", "merror", "auc"),
    "regression": ("rmse", "mae", "mape", "rmsle", "mphe"),
}


def _watched(
    metric: str | None, backend: Any, task: str, n_classes: int | None, params: dict[str, Any]
) -> tuple[str, list[str]]:
    """The metric to optimise and the eval_metric list with it last (early stopping's).

    Without ``params["eval_metric"]``, a metric of the task that the model's defaults lack
    is added to them (XGBoost's names); with it, ``metric`` must be one of those given. Other
    models are judged on :func:`workbench.train`'s final validation metrics (``logloss`` or
    ``rmse`` by default).
    """
    if backend.name != "xgboost":  # judged on wb.train's final metrics (model.metrics)
        names = default_metrics(task)
        if metric is None:
            return ("rmse" if task == "regression" else "logloss"), []
        if metric not in names:
            raise ValueError(
                f"metric={metric!r} is not a validation metric of the {task} task for "
                f"model={backend.name!r}; use one of {', '.join(names)}"
            )
        return metric, []
    given = params.get("eval_metric")
    defaults = given is None
    if defaults:
        given = backend.default_params(task, n_classes).get("eval_metric")
    metrics = [given] if isinstance(given, str) else list(given or [])
    if metric is None:
        if not metrics:
            raise ValueError(
                f"model={backend.name!r} names no validation metric for a {task} task; pass metric="
            )
        return metrics[-1], metrics
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a metric name (str), e.g. 'logloss', not {metric!r}")
    known = metrics if not defaults or backend.name != "xgboost" else _TASK_METRICS.get(task, ())
    if metric not in metrics and metric not in known:
        choices = list(dict.fromkeys([*metrics, *known]))
        raise ValueError(
            f"metric={metric!r} is not a validation metric of the {task} task here; use one of "
            f"{', '.join(choices)}"
            + ("" if defaults else f", or add it to params['eval_metric'] ({given!r})")
        )
    return metric, [m for m in metrics if m != metric] + [metric]


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """Optuna's INFO line per trial replaced by the study's own display, then put back."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def tune(
    train: Dataset,
    valid: Dataset,
    model: str = "xgboost",
    trials: int = 50,
    rounds: int = 500,
    early_stopping: int | str | None = "auto",
    space: dict[str, Any] | None = None,
    pruning: bool | BasePruner | None = None,
    placement: str = "auto",
    experiment: str | None = None,
    *,
    metric: str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    refit: bool = True,
    name: str | None = None,
    device: str = "auto",
    progress: bool | None = None,
    client: Client | None = None,
) -> Study:
    """Search a model's parameters on the cluster; every trial trained, pruned or tracked.

    Parameters
    ----------
    train, valid
        The training and validation sets; each trial trains on ``train`` and is judged by
        ``metric`` on ``valid``.
    model
        ``xgboost`` (packed or gang), ``lightgbm`` or ``linear`` (gang, without pruning).
    trials
        How many trials to run (fewer if interrupted or past ``timeout``).
    rounds, early_stopping
        Each trial's rounds at most, and its early stopping on ``valid`` (``None``: none;
        ``"auto"``: 20 rounds for models that stop early, none for the others).
    space
        ``{parameter: Optuna distribution}``; ``None`` for the model's default space
        (:func:`workbench.tuning.space.default_space`).
    pruning
        Stop trials that fall behind: Optuna's successive halving on the metric per round
        (its first rung after a twentieth of ``rounds``, a third kept at each); ``None``:
        where the model can (``xgboost``); or an Optuna pruner of your own.
    placement
        ``"packed"``: one whole trial per worker, the data copied to each once; ``"gang"``:
        one distributed trial at a time on every worker; ``"auto"``: packed when the data fit
        each worker with room to spare (the estimate and the decision are shown).
    experiment
        The MLflow experiment the study and its trials are recorded in (needs
        ``pip install 'workbench[track]'``; the store is ``workbench.tracking.uri``).
    metric
        The validation metric to optimise (one of the model's, e.g. ``"logloss"``); the
        model's last by default (the one early stopping watches). Its direction follows it.
    params
        Parameters fixed for every trial.
    seed
        The sampler's seed (and each trial's ``seed``), for a study that can be repeated.
    timeout
        Seconds after which no new trial starts.
    refit
        Packed studies: ``study.best_model`` trains the best parameters with
        :func:`workbench.train` on the cluster when first read (``False``: the best trial's
        own model).
    name
        The study's name; a new one by default.
    device
        As for :func:`workbench.train`.
    progress
        Show a bar over the trials (and, in a notebook, the study redrawn after each trial);
        ``workbench.train.progress`` by default.
    client
        The Dask client; the current one, or a new default local cluster.

    Returns
    -------
    Study
        Its trials, best parameters, value and model, plots; what a Ctrl-C left when
        interrupted (the first lets running trials finish, the second stops them).
    """
    optuna = _optuna()
    params = dict(params or {})
    if not isinstance(valid, Dataset):
        raise TypeError(
            f"valid must be a workbench Dataset (trials are judged on it), not {valid!r}"
        )
    backend = backends.get(model)
    caps = backend.capabilities
    if early_stopping == "auto":
        early_stopping = 20 if caps.early_stopping else None
    if isinstance(early_stopping, str):
        raise ValueError(
            f"early_stopping={early_stopping!r}: use a number of rounds, None or 'auto'"
        )
    check_args(train, valid, model, params, rounds, early_stopping, None, device)
    trials = _positive(trials, "trials", 50)
    if pruning is None:
        pruning = caps.interrupt
    if not isinstance(pruning, bool | optuna.pruners.BasePruner):
        raise TypeError(f"pruning must be True, False, None or an Optuna pruner, not {pruning!r}")
    if pruning and not caps.interrupt:
        raise ValueError(
            f"pruning=True needs a model that reports its rounds and stops on request; "
            f"model={model!r} does not (use pruning=False, or model='xgboost')"
        )
    placement = placing.check_placement(placement)
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be a whole number, not {seed!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name must be a non-empty string, not {name!r}")
    if not isinstance(refit, bool):
        raise TypeError(f"refit must be True or False, not {refit!r}")
    task = str(train.task)
    kinds = list(train.features.values())
    categorical = [j for j, k in enumerate(kinds) if k == "categorical"]
    n_classes_hint = None if task != "multiclass" else 3
    watched, eval_metric = _watched(metric, backend, task, n_classes_hint, params)
    if eval_metric and model == "xgboost":
        params["eval_metric"] = eval_metric  # the watched metric last: early stopping's
    if seed is not None and model in ("xgboost", "lightgbm"):
        params.setdefault("seed", seed)
    searched = check_space(
        space,
        backend=backend,
        task=task,
        n_features=len(kinds),
        categorical=categorical,
        params=params,
    )
    tracker = Tracker(experiment) if experiment is not None else None  # before any cluster
    try:
        show = bool(config.get("train.progress", progress))
        client = ensure_client(client)
        name = name or f"study-{uuid.uuid4().hex[:8]}"
        with client.as_current(), _quiet_optuna(optuna):
            return _run(
                train,
                valid,
                client=client,
                backend=backend,
                model=model,
                trials=trials,
                rounds=rounds,
                early_stopping=early_stopping,
                space=searched,
                params=params,
                pruning=pruning,
                placement=placement,
                metric=watched,
                seed=seed,
                timeout=timeout,
                refit=refit,
                name=name,
                device=device,
                show=show,
                tracker=tracker,
            )
    finally:
        if tracker is not None:  # flushed: every run written, or its error raised
            tracker.close()


def _run(
    train: Dataset,
    valid: Dataset,
    *,
    client: Client,
    backend: Any,
    model: str,
    trials: int,
    rounds: int,
    early_stopping: int | None,
    space: dict[str, Any],
    params: dict[str, Any],
    pruning: Any,
    placement: str,
    metric: str,
    seed: int | None,
    timeout: float | None,
    refit: bool,
    name: str,
    device: str,
    show: bool,
    tracker: Any,
) -> Study:
    optuna = _optuna()
    caps = backend.capabilities
    cluster = snapshot(client)
    task = str(train.task)
    packable = None if model == "xgboost" else f"packed trials are XGBoost's, not {model!r}'s"
    gpu = device != "cpu" and resolve_device(client, device, cluster) == "gpu"
    if packable is None and placement != "gang" and gpu:
        packable = "packed trials run on CPU workers; GPU workers train gang"
    nbytes = sum(_array_bytes(ds, np.dtype(caps.dtype)) for ds in (train, valid))
    decided = placing.decide(placement, array_bytes=nbytes, cluster=cluster, packable=packable)
    sets = None
    n_classes: int | None = None
    if decided.mode == "packed":
        sets = encode_sets(
            train, valid, client=client, device="cpu", dtype=caps.dtype, cluster=cluster
        )
        if task == "multiclass" and sets.classes is not None:
            n_classes = len(sets.classes)
    maximize = _maximize(metric)
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if isinstance(pruning, optuna.pruners.BasePruner):
        pruner = pruning
    elif pruning:  # the first rung after a twentieth of the rounds: round 1 says little
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, rounds // 20), reduction_factor=3
        )
    else:
        pruner = optuna.pruners.NopPruner()
    optuna_study = optuna.create_study(
        study_name=name,
        direction="maximize" if maximize else "minimize",
        sampler=sampler,
        pruner=pruner,
    )
    view = _View(show, trials, model, metric, maximize)
    study_box: list[Study] = []
    parent: str | None = None
    context: dict[str, str] = {}

    def notify(record: Record, trained: Model | None) -> None:
        view.update(record, study_box[0] if study_box else None)
        if tracker is not None and record.state != "RUNNING":
            _track_trial(tracker, parent, context, record, search, trained)

    def keep(record: Record, outcome: Any) -> Model:
        trained = (
            outcome if isinstance(outcome, Model) else model_from_result(outcome, _like(record))
        )
        study_box[0].offer(record, trained)
        return trained

    def _like(record: Record) -> dict[str, Any]:
        assert sets is not None
        return {
            "kind": model,
            "task": task,
            "target": str(train.target),
            "features": dict(sets.features),
            "categories": dict(sets.categories),
            "classes": sets.classes.tolist() if sets.classes is not None else None,
            "params": backend.effective_params(task, n_classes, search.params_of(record), "cpu"),
            "rounds": rounds,
            "info": {"source": train.source, "study": name},
        }

    search = Search(
        optuna_study,
        space=space,
        fixed=params,
        metric=metric,
        maximize=maximize,
        pruning=pruning is not False,
        trials=trials,
        notify=notify,
        keep=keep,
        timeout=timeout,
    )

    def refit_best(record: Record) -> Model:
        if decided.mode == "gang" or not refit:
            raise ValueError(f"the model of trial {record.number} was not kept")
        return train_model(
            train,
            valid,
            model=model,
            params=search.params_of(record),
            rounds=rounds,
            early_stopping=early_stopping,
            client=client,
            device=device,
            progress=show,
        )

    experiment_info = None
    if tracker is not None:
        experiment_info = {"name": tracker.experiment, "uri": tracker.uri}
    study = Study(
        optuna_study,
        search,
        name=name,
        model=model,
        placement=decided,
        refit=refit_best,
        refits=refit,
        experiment=experiment_info,
    )
    study_box.append(study)
    logger.info("%s: %d trial(s) of %s, %s", name, trials, model, decided.reason)
    if tracker is not None:
        context = tracker.context(train, valid, client)
        parent = tracker.start_run(
            name,
            tags={**context, "workbench.study": name},
            params={**params, "trials": trials, "placement": decided.mode},
        )
    view.open(study)
    status = "FAILED"
    try:
        if decided.mode == "packed":
            assert sets is not None and sets.valid is not None
            matrix = {
                "feature_names": list(sets.features),
                "feature_types": [
                    "c" if k == "categorical" else "q" for k in sets.features.values()
                ],
                "enable_categorical": any(k == "categorical" for k in sets.features.values()),
            }
            full = dict(backend.effective_params(task, n_classes, params, "cpu"))
            full.pop("device", None)
            xb, yb, xvb, yvb = (
                client.compute(list(a.to_delayed().ravel())) for a in (sets.X, sets.y, *sets.valid)
            )
            data = PackedData(
                blocks=(xb, yb, xvb, yvb),
                params=full,
                rounds=rounds,
                early_stopping=early_stopping,
                matrix=matrix,
                study_name=name,
                model=model,
                source=str(train.source),
            )
            view.status(f"copying the data to {len(cluster.addresses)} worker(s)")
            run_packed(search, client, data, cluster.addresses)
        else:
            run_gang(search, client, GangData(train, valid, model, rounds, early_stopping, device))
        status = "KILLED" if search.interrupted else "FINISHED"
    finally:
        for record in search.running():
            search.tell(record, "FAIL", "stopped: the study ended")
        study.finished = True
        study.elapsed = time.time() - study.started
        view.close(study)
        if tracker is not None:
            with contextlib.suppress(Exception):
                metrics = {"best_value": study.best_value} if _any_done(search) else {}
                tracker.log_run(parent, metrics=metrics, status=status)
    if not _any_done(search):
        failed = [r.error for r in search.records.values() if r.error]
        if failed and not search.interrupted:
            raise TrainingError(f"every trial of study {name!r} failed; the first: {failed[0]}")
    return study


def _array_bytes(ds: Dataset, dtype: np.dtype[Any]) -> int:
    """Bytes of a dataset's features and labels as trained on (without reading it)."""
    if ds.rows is not None:
        return int(ds.rows) * (len(ds.features) * dtype.itemsize + 4)
    return estimate_nbytes(ds)


def _any_done(search: Search) -> bool:
    return any(r.state == "COMPLETE" for r in search.records.values())


def _track_trial(
    tracker: Any,
    parent: str | None,
    context: dict[str, str],
    record: Record,
    search: Search,
    model: Any,
) -> None:
    run = tracker.start_run(
        f"trial {record.number}",
        tags={**context, "workbench.trial": str(record.number), "workbench.state": record.state},
        params=search.params_of(record),
        parent=parent,
        start_time=record.started,
    )
    history = {"valid": {search.metric: [v for v in record.curve if not math.isnan(v)]}}
    metrics = {f"valid-{search.metric}": record.value} if math.isfinite(record.value) else {}
    metrics.update({"rounds": float(record.rounds), "seconds": float(record.seconds)})
    tracker.log_run(
        run,
        history=history,
        metrics=metrics,
        model=model,
        status="FINISHED" if record.state in ("COMPLETE", "PRUNED") else "FAILED",
        end_time=record.started + record.seconds if math.isfinite(record.seconds) else None,
    )


class _View:
    """The study as it runs: a bar over the trials; in a notebook, the study redrawn too."""

    def __init__(self, show: bool, trials: int, model: str, metric: str, maximize: bool) -> None:
        self.show = show
        self.trials = trials
        self.desc = f"tuning {model}"
        self.metric = metric
        self.maximize = maximize
        self.bar: Any = None
        self.handle: Any = None
        self.display: Any = None
        self.best: float | None = None
        self.counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}

    def open(self, study: Study) -> None:
        if not self.show:
            return
        self.bar, self.handle = open_bar(
            in_kernel(), total=self.trials, desc=self.desc, unit="trial"
        )
        if in_kernel():
            with contextlib.suppress(Exception):
                from IPython.display import display

                self.display = display(study, display_id=True)

    def status(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def update(self, record: Record, study: Study | None) -> None:
        if record.state in self.counts:
            self.counts[record.state] += 1
            if record.state == "COMPLETE" and math.isfinite(record.value):
                better = self.best is None or (
                    record.value > self.best if self.maximize else record.value < self.best
                )
                if better:
                    self.best = record.value
        if self.bar is None:
            return
        done = sum(self.counts.values())
        self.bar.n = min(self.trials, done)
        best = "" if self.best is None else f", best valid-{self.metric} {self.best:.5g}"
        self.bar.set_postfix_str(
            f"{self.counts['COMPLETE']} done, {self.counts['PRUNED']} pruned, "
            f"{self.counts['FAIL']} failed{best}",
            refresh=False,
        )
        self.bar.refresh()
        if self.display is not None and study is not None and record.state != "RUNNING":
            with contextlib.suppress(Exception):
                self.display.update(study)

    def close(self, study: Study) -> None:
        if self.bar is not None:
            close_bar(self.bar, self.handle)
        if self.display is not None:
            with contextlib.suppress(Exception):
                self.display.update(study)
