"""What runs on each worker in a LightGBM training: the model factory and the round callback.

Rank 0 records each round's metrics in this process's :data:`_runs` (the client collects them
with :func:`_take_run` through ``client.run``) and reports them to the training's progress.
The :mod:`.params` module is imported first by the package: it checks that LightGBM is there.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any
from urllib.parse import urlparse

import lightgbm

from workbench.training import progress

logger = logging.getLogger(__name__)

# What the workers leave for the client, by training run (this process's share).
_runs: dict[str, dict[str, Any]] = {}
_runs_lock = threading.Lock()


def _run_state(run: str) -> dict[str, Any]:
    with _runs_lock:
        return _runs.setdefault(run, {"history": {}})


def _take_run(run: str) -> dict[str, Any] | None:
    """Remove and return what this process kept for ``run`` (called with ``client.run``)."""
    with _runs_lock:
        return _runs.pop(run, None)


def _set_thread_log_level(verbosity: int) -> None:
    """Set LightGBM's log level of the calling thread (LightGBM keeps one per thread).

    ``LGBM_GetSampleCount`` is the cheapest call that reads a parameter string, and reading
    ``verbosity`` sets the level.
    """
    out = ctypes.c_int(0)
    lightgbm.basic._safe_call(
        lightgbm.basic._LIB.LGBM_GetSampleCount(
            ctypes.c_int32(1),
            ctypes.c_char_p(f"verbosity={int(verbosity)}".encode()),
            ctypes.byref(out),
        )
    )


def _worker_address() -> str:
    from distributed import get_worker

    return str(get_worker().address)


def _is_rank0(params: dict[str, Any]) -> bool:
    """Whether this worker is the first entry of LightGBM's ``machines`` (rank 0)."""
    first = str(params.get("machines", "")).split(",")[0].strip()
    host = urlparse(_worker_address()).hostname
    return first == f"{host}:{params.get('local_listen_port')}"


class _Rounds:
    """LightGBM callback on every worker: rank 0 records and reports each round's metrics.

    Parameters
    ----------
    run
        The training run (the key of what the workers leave for the client).
    topic
        The progress topic, or ``None`` to record only.
    eval_train
        Also evaluate the training rows each round.
    """

    def __init__(self, run: str, topic: str | None, eval_train: bool = True) -> None:
        self.run = run
        self.topic = topic
        self.eval_train = eval_train
        self.order = 40  # after LightGBM's own callbacks
        self.before_iteration = False
        self._rank0: bool | None = None

    def __call__(self, env: Any) -> None:
        if self._rank0 is None:
            self._rank0 = _is_rank0(env.params)
        if not self._rank0:
            return
        metrics: dict[str, dict[str, float]] = {}
        if self.eval_train:
            for _, metric, value, *_ in env.model.eval_train():
                metrics.setdefault("train", {})[metric] = float(value)
        for data, metric, value, *_ in env.evaluation_result_list or []:
            metrics.setdefault(str(data), {})[metric] = float(value)
        history = _run_state(self.run)["history"]
        for data, ms in metrics.items():
            for metric, value in ms.items():
                history.setdefault(data, {}).setdefault(metric, []).append(value)
        if self.topic is not None:
            progress.report(self.topic, env.iteration - env.begin_iteration, metrics)


class _WorkerModel(lightgbm.LGBMModel):
    """The model each worker fits (``lightgbm.dask``'s ``model_factory``); see the module notes.

    Labels are used as given, and LightGBM's log level is set in this thread before the network
    starts.
    """

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        _set_thread_log_level(int(self.get_params().get("verbosity", 1)))
        return super().fit(*args, **kwargs)
