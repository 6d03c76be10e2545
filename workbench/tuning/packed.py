"""Packed trials: a whole XGBoost training per worker, on a copy of the data held there.

Where the training data fit each worker's memory with room to spare, a study copies them once
to every worker (:func:`build_replica`, a :class:`Replica` held by Dask there) and runs each
trial as a plain ``xgboost.train`` with ``nthread`` = the worker's threads (:func:`run_trial`),
one trial per worker at a time: no collective, no tracker, no lock over every worker, and the
quantile matrices are built once per worker, not once per trial.

A trial reports every round to the client as a training does (:func:`workbench.training.
progress.report` under the trial's own topic, which the dashboard's training page also reads),
and stops after the current round when the client asks (:func:`workbench.training.progress.
request_stop` under the same topic): that is how pruning ends it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dask.sizeof import sizeof

from workbench.training import progress

#: Bytes a worker needs for a replica, per byte of its arrays: the arrays, their
#: concatenation while it is made, and the quantile matrices (a byte or two per value).
REPLICA_FACTOR = 2.0


class Replica:
    """One worker's whole copy of the training and validation arrays, and their matrices.

    The matrices (``xgboost.QuantileDMatrix``) are built by the first trial that needs them,
    for its ``max_bin``, and kept for the next ones; they are not pickled (a replica that Dask
    spills or moves is rebuilt from its arrays).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray) -> None:
        self.X, self.y, self.Xv, self.yv = X, y, Xv, yv
        self._matrices: dict[Any, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of the four arrays."""
        return int(sum(a.nbytes for a in (self.X, self.y, self.Xv, self.yv)))

    def __getstate__(self) -> dict[str, Any]:
        return {"X": self.X, "y": self.y, "Xv": self.Xv, "yv": self.yv}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["X"], state["y"], state["Xv"], state["yv"])  # type: ignore[misc]

    def matrices(self, max_bin: int | None, nthread: int, matrix: dict[str, Any]) -> Any:
        """``(train, valid)`` quantile matrices for ``max_bin``, built once."""
        import xgboost

        key = (max_bin, nthread, tuple(matrix.get("feature_types") or ()))
        with self._lock:
            if key not in self._matrices:
                extra = {} if max_bin is None else {"max_bin": int(max_bin)}
                dtrain = xgboost.QuantileDMatrix(self.X, self.y, nthread=nthread, **extra, **matrix)
                dvalid = xgboost.QuantileDMatrix(
                    self.Xv, self.yv, ref=dtrain, nthread=nthread, **extra, **matrix
                )
                self._matrices[key] = (dtrain, dvalid)
            return self._matrices[key]


@sizeof.register(Replica)
def _sizeof_replica(replica: Replica) -> int:
    return int(replica.nbytes * REPLICA_FACTOR)


def build_replica(
    x_parts: list[np.ndarray], y_parts: list[np.ndarray], xv_parts: list[Any], yv_parts: list[Any]
) -> Replica:
    """Concatenate the blocks (Dask brings them to this worker) into one :class:`Replica`."""
    return Replica(
        np.concatenate(x_parts),
        np.concatenate(y_parts),
        np.concatenate(xv_parts),
        np.concatenate(yv_parts),
    )


@dataclass
class TrialSpec:
    """One packed trial, as the client sends it."""

    number: int
    topic: str  # its progress topic (rounds to the client, stop requests from it)
    params: dict[str, Any]  # XGBoost's, complete (objective, eval_metric with the watched last)
    rounds: int
    early_stopping: int | None
    metric: str  # the watched validation metric (XGBoost's name)
    maximize: bool
    matrix: dict[str, Any] = field(default_factory=dict)  # feature names/types, categorical


@dataclass
class TrialResult:
    """What a packed trial returns: its history, rounds, model and where and how long."""

    number: int
    history: dict[str, dict[str, list[float]]]
    rounds: int
    best_iteration: int | None
    booster: bytes
    seconds: float
    worker: str
    stopped: bool  # stopped on request (pruned or interrupted) before its last round


def run_trial(replica: Replica, spec: TrialSpec) -> TrialResult:
    """Train one trial with ``xgboost.train`` on this worker's replica (a worker task)."""
    import xgboost
    from distributed import get_worker
    from xgboost.callback import EarlyStopping, TrainingCallback

    start = time.perf_counter()
    worker = get_worker()
    nthread = int(worker.state.nthreads)
    stopped: list[bool] = []

    class Report(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            metrics = {d: {m: float(v[-1]) for m, v in ms.items()} for d, ms in evals_log.items()}
            progress.report(spec.topic, epoch, metrics)
            if progress.stop_requested(spec.topic):
                stopped.append(True)
                return True
            return False

    callbacks: list[Any] = [Report()]
    if spec.early_stopping:
        callbacks.append(
            EarlyStopping(
                rounds=spec.early_stopping,
                metric_name=spec.metric,
                data_name="valid",
                maximize=spec.maximize,
                save_best=False,
            )
        )
    params = {**spec.params, "nthread": nthread}
    history: dict[str, Any] = {}
    try:
        with xgboost.config_context(nthread=nthread, verbosity=1):
            dtrain, dvalid = replica.matrices(params.get("max_bin"), nthread, spec.matrix)
            booster = xgboost.train(
                params,
                dtrain,
                num_boost_round=spec.rounds,
                evals=[(dvalid, "valid")],
                evals_result=history,
                verbose_eval=False,
                callbacks=callbacks,
            )
    finally:
        progress.forget(spec.topic)
    best = booster.attr("best_iteration")
    return TrialResult(
        number=spec.number,
        history={d: {m: [float(v) for v in vs] for m, vs in h.items()} for d, h in history.items()},
        rounds=int(booster.num_boosted_rounds()),
        best_iteration=int(best) if best is not None else None,
        booster=bytes(booster.save_raw("ubj")),
        seconds=time.perf_counter() - start,
        worker=str(worker.address),
        stopped=bool(stopped),
    )
