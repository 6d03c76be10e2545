"""XGBoost on the cluster through ``xgboost.dask``: quantile matrices, live rounds, quiet ranks.

The training matrix is a ``DaskQuantileDMatrix`` built where the blocks of ``X`` already live;
the validation matrix reuses its quantiles (``ref=``). A callback on every rank streams the
rounds to the client (rank 0 reports; every rank takes part in the stop vote, so that all of
them stop at the same round when the user interrupts).
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import inspect
import ipaddress
import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
from distributed.comm import get_address_host

from workbench._client import ClusterSnapshot
from workbench.training import progress
from workbench.training.backends.base import FitResult
from workbench.training.failures import cause

if TYPE_CHECKING:
    import dask.array as da
    import xgboost
    from distributed import Client

logger = logging.getLogger(__name__)
native_logger = logging.getLogger("workbench.xgboost")

_OBJECTIVES = {
    "binary": {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"]},
    "multiclass": {"objective": "multi:softprob", "eval_metric": ["merror", "mlogloss"]},
    "regression": {"objective": "reg:squarederror", "eval_metric": ["mae", "rmse"]},
}


def default_params(task: str, n_classes: int | None) -> dict[str, Any]:
    """Objective and metrics for the task; early stopping watches the last metric."""
    params: dict[str, Any] = {"tree_method": "hist", **_OBJECTIVES[task]}
    params["eval_metric"] = list(params["eval_metric"])
    if task == "multiclass":
        params["num_class"] = int(n_classes or 0)
    return params


def check_params(params: dict[str, Any], n_features: int, categorical: list[int]) -> None:
    """Raise ``ValueError`` for a parameter XGBoost rejects or ignores, naming it.

    A one-round training on a few rows in this process: XGBoost checks its parameters when it
    trains, and only warns about unknown ones.
    """
    import xgboost

    rng = np.random.default_rng(0)
    n = 16
    X = rng.random((n, n_features), dtype=np.float32)
    for j in categorical:
        X[:, j] = np.arange(n) % 2
    n_classes = int(params.get("num_class") or 2)
    objective = str(params.get("objective", ""))
    y = (np.arange(n) % n_classes if "multi" in objective else X[:, 0] > 0.5).astype(np.float32)
    if objective.startswith(("reg:", "count:")):
        y = y + 1.0  # positive, as gamma and tweedie need
    types = ["c" if j in categorical else "q" for j in range(n_features)]
    local = {**params, "device": "cpu", "nthread": 1}
    messages: list[str] = []
    failure: list[BaseException] = []
    known: set[str] = set()

    def attempt() -> None:
        # in a thread of its own, whose native log callback collects the messages (callbacks
        # are per thread, and this one is gone afterwards)
        def collect(msg: bytes) -> None:
            messages.append(msg.decode(errors="replace"))

        callback = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(collect)
        xgboost.core._LIB.XGBRegisterLogCallback(callback)
        try:
            d = xgboost.DMatrix(X, y, feature_types=types, enable_categorical=True)
            known.update(_parameter_names(xgboost.train(local, d, num_boost_round=1)))
        except BaseException as e:
            failure.append(e)

    thread = threading.Thread(target=attempt, name="workbench-check-params")
    thread.start()
    thread.join()
    if failure:
        e = failure[0]
        if not isinstance(e, xgboost.core.XGBoostError):
            raise e
        raise ValueError(f"XGBoost rejects params={params!r}: {cause(str(e))}") from None
    for text in messages:
        if "are not used" in text:
            names = text[text.find("{") : text.find("}") + 1]
            unused = [n for n in params if f'"{n}"' in names]
            guesses = {n: difflib.get_close_matches(n, sorted(known), n=1) for n in unused}
            hint = "".join(f"did you mean {g[0]!r} for {n!r}? " for n, g in guesses.items() if g)
            raise ValueError(
                f"XGBoost does not know the parameter(s) {names}; {hint}check their spelling "
                "against https://xgboost.readthedocs.io/en/stable/parameter.html"
            )


def tracker_host_ip(scheduler_address: str) -> str | None:
    """Where XGBoost's tracker should listen: the scheduler's own IP address.

    Without one, xgboost.dask starts its tracker (on the scheduler) on the address its
    ``get_host_ip`` guesses, the machine's outward interface, even for a cluster bound to
    loopback: the tracker then listens where the cluster itself does not. The workers reach
    the scheduler's address, so the tracker listens there; an in-process cluster's
    (``inproc://``) workers are all in one process, so on loopback. A scheduler known by a
    host name, or Dask's ``xgboost.scheduler_address`` setting, leave XGBoost's choice.
    """
    if dask.config.get("xgboost.scheduler_address", None):
        return None
    if scheduler_address.startswith("inproc://"):
        return "127.0.0.1"
    host = get_address_host(scheduler_address).strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


def _parameter_names(booster: Any) -> set[str]:
    """The parameter names a trained booster's configuration holds, with scikit-learn's names.

    XGBoost's JSON configuration lists every parameter of the parts in use (tree method,
    objective, metrics) with its value; the names of ``XGBModel``'s constructor add the
    aliases users write (``learning_rate``, ``n_estimators``).
    """
    import xgboost

    names: set[str] = set(inspect.signature(xgboost.XGBModel.__init__).parameters) - {"self"}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str):
                    names.add(key)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(booster.save_config()))
    return names - {"kwargs"}


# --- quiet ranks ----------------------------------------------------------------------
# XGBoost's native library prints through a log callback that is registered per thread (the
# Python package registers one for the thread that imports it); other threads, such as a Dask
# worker's task threads, print straight to the process's stderr, which Jupyter shows in the
# notebook. These functions register a callback that logs instead, in the threads that train.
_lock = threading.Lock()
_callback: list[Any] = []  # the ctypes callback, kept alive for the process's lifetime
_here = threading.local()
_barriers: dict[str, threading.Barrier] = {}


def _log(msg: bytes) -> None:
    text = msg.decode(errors="replace").rstrip()
    if "WARNING:" in text:
        native_logger.warning(text)
    else:
        native_logger.debug(text)


def route_native_log() -> bool:
    """Send XGBoost's native messages in this thread to the ``workbench.xgboost`` logger.

    Warnings become warnings of that logger; the rest (for example "got rank" lines) are
    logged at DEBUG. Returns whether it was registered now (``False`` if already done).
    """
    import xgboost.core

    if getattr(_here, "routed", False):
        return False
    with _lock:
        if not _callback:
            _callback.append(ctypes.CFUNCTYPE(None, ctypes.c_char_p)(_log))
    if xgboost.core._LIB.XGBRegisterLogCallback(_callback[0]) != 0:
        return False
    _here.routed = True
    return True


def _route_in_task_thread(key: str, threads: int) -> bool:
    """Register in this task thread, then wait so that the worker's other threads get one."""
    done = route_native_log()
    with _lock:
        barrier = _barriers.setdefault(key, threading.Barrier(threads))
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=5)  # a busy thread keeps printing as before, nothing worse
    with _lock:
        _barriers.pop(key, None)
    return done


def quiet(client: Client, cluster: ClusterSnapshot) -> None:
    """Route XGBoost's native messages to logging in every task thread of every worker.

    ``cluster`` is the training's :func:`~workbench._client.snapshot`: its workers and their
    threads.
    """
    import uuid

    from distributed import wait

    client.run_on_scheduler(route_native_log)
    tag = uuid.uuid4().hex[:8]
    futures = []
    for worker in cluster.workers:
        address = worker.address
        threads = worker.threads or 1
        key = f"{tag}-{address}"
        futures += [
            client.submit(
                _route_in_task_thread,
                key,
                threads,
                workers=[address],
                allow_other_workers=False,
                pure=False,
                key=f"workbench-quiet-{key}-{i}",
            )
            for i in range(threads)
        ]
    try:
        wait(futures, timeout=10)
    except TimeoutError:  # a worker lost meanwhile: its messages print, training goes on
        logger.debug("could not route XGBoost's messages on every worker within 10 s")
    finally:
        client.cancel(futures)


# --- training -------------------------------------------------------------------------
@dataclass
class Stopping:
    """Early stopping's state at a checkpoint, to carry over into a resumed training."""

    data: str
    metric: str
    best_score: float
    best_iteration: int
    since_best: int  # rounds without improvement since the best


def _make_callbacks(
    topic: str | None,
    checkpoint_every: int | None,
    early_stopping: int | None,
    stopping: Stopping | None,
) -> list[Any]:
    """The progress/checkpoint/stop callback, then early stopping (carried over if resumed)."""
    from xgboost import collective
    from xgboost.callback import EarlyStopping, TrainingCallback

    class Rounds(TrainingCallback):
        """Report each round from rank 0, send a checkpoint every N rounds, stop together."""

        start = 0

        def before_training(self, model: Any) -> Any:
            self.start = model.num_boosted_rounds()  # a resumed training goes on counting
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            if topic is None:
                return False
            done = self.start + epoch + 1
            if collective.get_rank() == 0:
                metrics = {
                    d: {m: float(v[-1]) for m, v in ms.items()} for d, ms in evals_log.items()
                }
                progress.report(topic, done - 1, metrics)
                if checkpoint_every and done % checkpoint_every == 0:
                    progress.send_checkpoint(topic, done, to_bytes(model))
            stop = progress.stop_requested(topic)
            if collective.get_world_size() > 1:
                vote = np.array([int(stop)], dtype=np.int32)
                stop = bool(collective.allreduce(vote, collective.Op.MAX)[0])
            return stop

    class CarriedEarlyStopping(EarlyStopping):
        """XGBoost's early stopping, starting from the best score of the rounds before."""

        def before_training(self, model: Any) -> Any:
            model = super().before_training(model)
            if stopping is not None:
                self.stopping_history = {stopping.data: {stopping.metric: [stopping.best_score]}}
                self.best_scores = {stopping.data: {stopping.metric: [stopping.best_score]}}
                self.current_rounds = stopping.since_best
            return model

    callbacks: list[Any] = [Rounds()]
    if early_stopping is not None:
        callbacks.append(CarriedEarlyStopping(rounds=early_stopping, save_best=False))
    return callbacks


def _matrix_args(feature_names: list[str], categorical: list[int]) -> dict[str, Any]:
    return {
        "feature_names": list(feature_names),
        "feature_types": ["c" if j in categorical else "q" for j in range(len(feature_names))],
        "enable_categorical": bool(categorical),
    }


def is_gpu_array(X: Any) -> bool:
    """Whether a Dask array has CuPy (CUDA) chunks."""
    return hasattr(getattr(X, "_meta", None), "__cuda_array_interface__")


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
    xgb_model: Any = None,
    checkpoint_every: int | None = None,
    stopping: Stopping | None = None,
    collective_timeout: float | None = None,
    eval_train: bool = False,
) -> FitResult:
    """Train with ``xgboost.dask`` on the workers that hold ``X``.

    The arguments are those of :class:`~workbench.training.backends.base.FitRequest` (``topic``
    is its progress topic), and:

    Parameters
    ----------
    client, X, y, task, n_classes, feature_names, categorical, params, rounds, valid
        As in :class:`~workbench.training.backends.base.FitRequest`.
    early_stopping, topic, checkpoint_every, eval_train
        As in :class:`~workbench.training.backends.base.FitRequest`.
    xgb_model
        A booster to continue from; ``rounds`` more are trained.
    stopping
        Early stopping's state when ``xgb_model`` is a checkpoint.
    collective_timeout
        Seconds XGBoost's collective waits on a silent peer before failing (a worker cut off
        rather than killed), instead of its default.
    """
    import xgboost.dask as dxgb

    merged = {**default_params(task, n_classes), **(params or {})}
    merged.setdefault("device", "cuda" if is_gpu_array(X) else "cpu")
    margs = _matrix_args(feature_names, categorical)
    dtrain = dxgb.DaskQuantileDMatrix(client, X, y, max_bin=merged.get("max_bin"), **margs)
    evals = [(dtrain, "train")] if eval_train else []  # as XGBoost: only the sets asked for
    if valid is not None:
        dvalid = dxgb.DaskQuantileDMatrix(
            client, valid[0], valid[1], ref=dtrain, max_bin=merged.get("max_bin"), **margs
        )
        evals.append((dvalid, "valid"))
    metrics = merged.get("eval_metric")
    watched = (metrics[-1] if isinstance(metrics, list | tuple) and metrics else metrics) or ""
    if stopping is not None and (
        stopping.data != ("valid" if valid is not None else "train") or stopping.metric != watched
    ):
        stopping = None  # another data set or metric is watched now: start afresh
    coll_cfg = None
    tracker_host = tracker_host_ip(str(client.scheduler.address))  # type: ignore[union-attr]
    if collective_timeout or tracker_host:
        from xgboost.collective import Config

        coll_cfg = Config(
            timeout=int(collective_timeout) if collective_timeout else None,
            tracker_host_ip=tracker_host,
        )
    out = dxgb.train(
        client,
        merged,
        dtrain,
        num_boost_round=rounds,
        evals=evals,
        verbose_eval=False,
        callbacks=_make_callbacks(topic, checkpoint_every, early_stopping, stopping),
        xgb_model=xgb_model,
        coll_cfg=coll_cfg,
    )
    booster = out["booster"]
    trained = int(booster.num_boosted_rounds())  # xgb_model's rounds included
    history = {
        d: {m: [float(v) for v in vs] for m, vs in ms.items()} for d, ms in out["history"].items()
    }
    best = None
    if early_stopping is not None:
        found = booster.attr("best_iteration")
        if stopping is not None:  # the checkpoint's attribute can lag a round: the larger wins
            found = max(int(found) if found is not None else -1, stopping.best_iteration)
        if found is not None:
            best = int(found)
            booster = booster[: best + 1]  # keep the best rounds only
    return FitResult(booster, history, best, rounds=trained)


def predict(client: Client, booster: xgboost.Booster, X: da.Array, task: str) -> da.Array:
    """Probabilities of class 1 (binary), per class (multiclass), or values, block by block."""
    import xgboost.dask as dxgb

    booster = booster.copy()
    booster.set_param({"device": "cuda" if is_gpu_array(X) else "cpu"})
    return dxgb.inplace_predict(client, booster, X)


def to_bytes(booster: xgboost.Booster) -> bytes:
    """The booster in XGBoost's own UBJSON format."""
    return bytes(booster.save_raw(raw_format="ubj"))


def from_bytes(data: bytes) -> xgboost.Booster:
    """A booster from :func:`to_bytes`."""
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    return booster


def importance(
    booster: xgboost.Booster, names: list[str], importance_type: str = "total_gain"
) -> dict[str, float]:
    """``booster.get_score(importance_type=...)`` of each feature (0 for features never used)."""
    score = booster.get_score(importance_type=importance_type)
    return {n: float(score.get(n, 0.0)) for n in names}  # type: ignore[arg-type]
