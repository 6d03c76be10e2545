"""The trial loops of a study: packed trials on every worker at once, or gang trials in turn.

Both run in the calling process and submit work from there, never from inside a task (a task
that waits on other tasks is how many trainings on one cluster deadlock). Optuna's ask-and-tell
interface keeps the study: :meth:`Search.ask` draws a trial's parameters, :meth:`Search.tell`
records its end; the rounds each trial reports on its way go to Optuna's pruner, and a trial
the pruner stops is asked to stop after its current round.

Packed (:func:`run_packed`): the data are copied once to every worker (a
:class:`~workbench.tuning.packed.Replica`), then each free worker gets the next trial, one per
worker at a time; a lost worker fails only the trial it ran, and a worker that joins (a nanny's
restart) gets a copy and trials. Gang (:func:`run_gang`): each trial is a
:func:`workbench.train` on every worker, one after another, its rounds reported through
``on_round``.

Ctrl-C: the first stops asking for trials and lets the running ones finish; a second stops
those after their current round. The study so far is returned either way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.events import publish
from workbench.training import progress
from workbench.training.api import train as train_model
from workbench.training.model import Model
from workbench.tuning.packed import Replica, TrialResult, TrialSpec, build_replica, run_trial

logger = logging.getLogger(__name__)

POLL = 0.05  # seconds between looks at the trials and their events
WORKERS_EVERY = 1.0  # seconds between questions to the scheduler about its workers


@dataclass
class Record:
    """One trial as the study shows it."""

    number: int
    params: dict[str, Any]
    state: str = "RUNNING"  # RUNNING, COMPLETE, PRUNED, FAIL
    value: float = math.nan
    rounds: int = 0
    best_round: int | None = None
    seconds: float = math.nan
    worker: str = ""
    started: float = field(default_factory=time.time)
    curve: list[float] = field(default_factory=list)  # the watched metric per round
    error: str = ""
    prune_asked: bool = False
    topic: str = ""


class Search:
    """The state the loops share: the Optuna study, the records, what the user sees.

    ``notify(record, model)`` is called when a trial starts or ends (the progress bar, the
    notebook's display, tracking); ``keep(record, outcome)`` is given each completed trial's
    outcome (a gang trial's model, a packed trial's result) and returns its model, so that the
    study can keep the best one.
    """

    def __init__(
        self,
        optuna_study: Any,
        *,
        space: dict[str, Any],
        fixed: dict[str, Any],
        metric: str,
        maximize: bool,
        pruning: bool,
        trials: int,
        notify: Callable[[Record, Any], None],
        keep: Callable[[Record, Any], Any],
        timeout: float | None = None,
    ) -> None:
        self.study = optuna_study
        self.space = space
        self.fixed = fixed
        self.metric = metric
        self.maximize = maximize
        self.pruning = pruning
        self.trials = trials
        self.notify = notify
        self.keep = keep
        self.deadline = time.monotonic() + timeout if timeout else None
        self.records: dict[int, Record] = {}
        self._optuna: dict[int, Any] = {}
        self.asked = 0
        self.interrupted = 0  # Ctrl-C presses seen

    # --- asking and telling ---------------------------------------------------------------
    @property
    def more(self) -> bool:
        """Whether another trial should be asked for."""
        late = self.deadline is not None and time.monotonic() >= self.deadline
        return self.asked < self.trials and not self.interrupted and not late

    def ask(self) -> Record:
        """Draw the next trial's parameters; its record, running."""
        trial = self.study.ask(fixed_distributions=self.space)
        self.asked += 1
        record = Record(number=trial.number, params=dict(trial.params))
        self.records[trial.number] = record
        self._optuna[trial.number] = trial
        return record

    def params_of(self, record: Record) -> dict[str, Any]:
        """The parameters a trial trains with: the fixed ones, then the drawn ones."""
        return {**self.fixed, **record.params}

    def round(self, record: Record, r: int, metrics: dict[str, dict[str, float]]) -> bool:
        """Take round ``r`` of a running trial; True when the pruner says to stop it."""
        if record.state != "RUNNING" or r < len(record.curve):
            return False
        value = metrics.get("valid", {}).get(self.metric)
        if value is None:
            return False
        record.curve.extend([math.nan] * (r - len(record.curve)))
        record.curve.append(float(value))
        trial = self._optuna[record.number]
        if not math.isfinite(value):
            return False
        trial.report(float(value), r)
        if self.pruning and not record.prune_asked and trial.should_prune():
            record.prune_asked = True
            return True
        return False

    def value_of(self, curve: list[float], best: int | None) -> float:
        """A finished trial's value: the watched metric at its best round (else its last)."""
        if not curve:
            return math.nan
        at = best if best is not None and best < len(curve) else len(curve) - 1
        return float(curve[at])

    def tell(self, record: Record, state: str, error: str = "", outcome: Any = None) -> None:
        """End a trial in Optuna and in its record, keep its model, and show it.

        ``outcome`` is a completed trial's model (gang) or result (packed), for ``keep``.
        """
        import optuna

        if record.state != "RUNNING":
            return
        record.state = state
        record.error = error
        if record.seconds != record.seconds:  # NaN: not measured by the trial itself
            record.seconds = time.time() - record.started
        trial = self._optuna.pop(record.number)
        if state == "COMPLETE" and math.isfinite(record.value):
            self.study.tell(trial, record.value)
        elif state == "PRUNED":
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            if state == "COMPLETE":  # no finite value: nothing to compare it by
                record.state = "FAIL"
                record.error = record.error or f"valid-{self.metric} was not a number"
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        model = None
        if record.state == "COMPLETE" and outcome is not None:
            model = self.keep(record, outcome)
        self.notify(record, model)

    # --- Ctrl-C --------------------------------------------------------------------------
    @contextlib.contextmanager
    def interruptible(self, stop_running: Callable[[], None]) -> Iterator[None]:
        """Turn a Ctrl-C inside the block into a study that stops (see the module's text)."""
        try:
            yield
        except KeyboardInterrupt:
            self.interrupted += 1
            if self.interrupted == 1:
                logger.warning(
                    "interrupted: no new trials; the running ones finish (Ctrl-C again to "
                    "stop them after their current round)"
                )
            else:
                stop_running()

    def running(self) -> list[Record]:
        """The trials still running."""
        return [r for r in self.records.values() if r.state == "RUNNING"]


# --- packed --------------------------------------------------------------------------------
@dataclass
class PackedData:
    """What packed trials train on: the blocks of the arrays, and how XGBoost reads them."""

    blocks: tuple[list[Any], list[Any], list[Any], list[Any]]  # futures of X, y, Xv, yv blocks
    params: dict[str, Any]  # XGBoost's, complete but for the drawn ones
    rounds: int
    early_stopping: int | None
    matrix: dict[str, Any]
    study_name: str
    model: str
    source: str


def run_packed(search: Search, client: Any, data: PackedData, workers: list[str]) -> None:
    """Run the study's trials packed: one whole trial per worker at a time (see the module)."""
    from distributed import span, wait

    events: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
    replicas: dict[str, Any] = {}
    running: dict[str, tuple[Record, Any]] = {}  # worker -> (record, future)

    def copy_to(worker: str, alive: set[str]) -> None:
        done = [f for w, f in replicas.items() if w in alive and f.status == "finished"]
        if done:  # from a worker that has a copy: the blocks may be gone with a lost worker
            fut = client.submit(
                _clone,
                done[0],
                workers=[worker],
                allow_other_workers=False,
                pure=False,
                key=f"workbench-replica-{data.study_name}-{worker}-{time.time_ns()}",
            )
        else:  # from the blocks (Dask reads again what a lost worker held)
            fut = client.submit(
                build_replica,
                *data.blocks,
                workers=[worker],
                allow_other_workers=False,
                pure=False,
                key=f"workbench-replica-{data.study_name}-{worker}-{time.time_ns()}",
            )
        replicas[worker] = fut

    def on_event(number: int) -> Callable[[tuple[float, Any]], None]:
        def handler(event: tuple[float, Any]) -> None:  # on the client's event loop
            msg = event[1]
            if isinstance(msg, dict) and "round" in msg:
                events.put((number, msg))

        return handler

    def start(worker: str) -> None:
        record = search.ask()
        record.worker = worker
        record.topic = progress.new_topic()
        client.subscribe_topic(record.topic, on_event(record.number))
        params = search.params_of(record)
        spec = TrialSpec(
            number=record.number,
            topic=record.topic,
            params={**data.params, **params},
            rounds=data.rounds,
            early_stopping=data.early_stopping,
            metric=search.metric,
            maximize=search.maximize,
            matrix=data.matrix,
        )
        publish(client, record.topic, _start_message(data, record, worker))
        with span(f"workbench-study-{data.study_name}-trial-{record.number}"):
            fut = client.submit(
                run_trial,
                replicas[worker],
                spec,
                workers=[worker],
                allow_other_workers=False,
                pure=False,
                key=f"workbench-trial-{data.study_name}-{record.number}",
            )
        running[worker] = (record, fut)
        search.notify(record, None)

    def finish(worker: str, state: str, result: TrialResult | None, error: str = "") -> None:
        record, _ = running.pop(worker)
        drain()
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(record.topic)
        if result is not None:
            curve = result.history.get("valid", {}).get(search.metric, [])
            record.curve = [float(v) for v in curve]
            record.rounds = result.rounds
            record.best_round = result.best_iteration
            record.seconds = result.seconds
            record.value = search.value_of(record.curve, result.best_iteration)
            if result.stopped:
                state = "PRUNED" if record.prune_asked else "FAIL"
                error = "" if record.prune_asked else "stopped: the study was interrupted"
        search.tell(record, state, error, outcome=result)
        publish(
            client,
            record.topic,
            {
                "end": time.time(),
                "status": _status(record),
                "rounds": len(record.curve),
                "best": record.best_round,
            },
        )

    def drain() -> None:
        while True:
            try:
                number, msg = events.get_nowait()
            except queue.Empty:
                return
            record = search.records[number]
            if search.round(record, int(msg["round"]), msg.get("metrics", {})):
                stop(record)

    def stop(record: Record) -> None:
        with contextlib.suppress(Exception):  # the worker may be gone: nothing to stop
            client.run(progress.request_stop, record.topic, workers=[record.worker])

    def stop_all() -> None:
        for record, _ in list(running.values()):
            stop(record)

    for worker in workers:
        copy_to(worker, set())
    wait(list(replicas.values()))
    for worker, fut in list(replicas.items()):
        if fut.status != "finished":
            replicas.pop(worker)
            logger.warning("could not copy the data to %s: %s", worker, fut.exception())
    if not replicas:
        raise RuntimeError("the data could not be copied to any worker")
    known = set(replicas)
    next_look = 0.0  # when to ask the scheduler for its workers next
    try:
        while True:
            with search.interruptible(stop_all):
                for worker in list(replicas):
                    if worker not in running and search.more:
                        start(worker)
                if not running:
                    break
                futures = [f for _, f in running.values()]
                with contextlib.suppress(TimeoutError):  # none finished meanwhile
                    wait(futures, timeout=POLL, return_when="FIRST_COMPLETED")
                drain()
                for worker, (record, fut) in list(running.items()):
                    if fut.status == "finished":
                        finish(worker, "COMPLETE", fut.result())
                    elif fut.status in ("error", "cancelled"):
                        error = _error_text(fut)
                        finish(worker, "FAIL", None, error)
                        logger.warning("trial %d failed: %s", record.number, error)
                if time.monotonic() < next_look:
                    continue
                next_look = time.monotonic() + WORKERS_EVERY
                alive = set(client.scheduler_info(n_workers=-1)["workers"])  # a round trip
                for worker in list(replicas):
                    if worker not in alive:  # lost: its trial fails, the others go on
                        replicas.pop(worker).release()  # not cancel: copies made from it stay
                        if worker in running:
                            record, tfut = running[worker]
                            client.cancel([tfut])
                            finish(worker, "FAIL", None, f"lost worker {worker}")
                            logger.warning("trial %d lost its worker %s", record.number, worker)
                for worker in sorted(alive - known):  # joined (a restarted worker): a copy
                    known.add(worker)
                    copy_to(worker, alive)
    finally:
        for record, fut in list(running.values()):
            client.cancel([fut])
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(record.topic)
            search.tell(record, "FAIL", "stopped: the study ended")
        client.cancel(list(replicas.values()))


def _clone(replica: Any) -> Any:
    """A replica of its own on this worker (Dask brought ``replica`` here)."""
    return Replica(replica.X, replica.y, replica.Xv, replica.yv)


def _error_text(fut: Any) -> str:
    try:
        e = fut.exception(timeout=1)
    except Exception as err:  # cancelled, or the scheduler is gone
        return str(err) or type(err).__name__
    return f"{type(e).__name__}: {e}"


def _status(record: Record) -> str:
    return {"COMPLETE": "done", "PRUNED": "interrupted"}.get(record.state, "failed")


def _start_message(data: PackedData, record: Record, worker: str) -> dict[str, Any]:
    return {
        "start": time.time(),
        "total": data.rounds,
        "title": f"{data.model} trial {record.number} of study {data.study_name}",
        "model": data.model,
        "source": data.source,
        "device": "cpu",
        "workers": {worker: 0},
        "study": data.study_name,
        "trial": record.number,
    }


# --- gang ----------------------------------------------------------------------------------
@dataclass
class GangData:
    """What gang trials train on: the datasets and :func:`workbench.train`'s arguments."""

    train: Any
    valid: Any
    model: str
    rounds: int
    early_stopping: int | None
    device: str


def run_gang(search: Search, client: Any, data: GangData) -> None:
    """Run the study's trials in turn, each a distributed training on every worker."""
    while search.more:
        record = search.ask()
        record.worker = "all"
        search.notify(record, None)

        def on_round(r: int, metrics: dict[str, dict[str, float]], rec: Record = record) -> bool:
            return search.round(rec, r, metrics)

        try:  # the training's own span names it on the dashboard
            model = train_model(
                data.train,
                data.valid,
                model=data.model,
                params=search.params_of(record),
                rounds=data.rounds,
                early_stopping=data.early_stopping,
                client=client,
                device=data.device,
                progress=False,
                on_round=on_round if search.pruning else None,
            )
        except KeyboardInterrupt:
            search.interrupted += 1
            search.tell(record, "FAIL", "stopped: the study was interrupted")
            break
        except Exception as e:
            search.tell(record, "FAIL", f"{type(e).__name__}: {e}")
            logger.warning("trial %d failed: %s", record.number, e)
            continue
        column = f"valid-{search.metric}"
        curve = model.history[column].tolist() if column in model.history else []
        record.curve = [float(v) for v in curve]
        record.rounds = len(curve) or model.rounds
        record.best_round = model.best_iteration
        record.seconds = float(model.info.get("seconds", math.nan))
        record.value = search.value_of(record.curve, model.best_iteration)
        if not record.curve:  # no metric per round (lightgbm's names, linear): the final ones
            record.value = float(model.metrics.get(search.metric, math.nan))
        if model.info.get("stopped_by") == "on_round":
            search.tell(record, "PRUNED")
        elif model.info.get("interrupted"):
            search.interrupted += 1
            search.tell(record, "FAIL", "stopped: the study was interrupted")
        else:
            search.tell(record, "COMPLETE", outcome=model)


def trials_frame(records: dict[int, Record], space: dict[str, Any]) -> pd.DataFrame:
    """One row per trial: number, state, value, rounds, best round, seconds, worker, params."""
    rows = []
    for number in sorted(records):
        r = records[number]
        rows.append(
            {
                "number": number,
                "state": r.state,
                "value": r.value,
                "rounds": r.rounds or len(r.curve),
                "best_round": np.nan if r.best_round is None else r.best_round,
                "seconds": r.seconds,
                "worker": r.worker,
                "started": pd.Timestamp(r.started, unit="s"),
                **{f"params_{k}": r.params.get(k) for k in space},
                "error": r.error,
            }
        )
    columns = ["number", "state", "value", "rounds", "best_round", "seconds", "worker", "started"]
    frame = pd.DataFrame(rows, columns=[*columns, *(f"params_{k}" for k in space), "error"])
    return frame


def model_from_result(result: TrialResult, like: dict[str, Any]) -> Model:
    """A :class:`~workbench.training.model.Model` of a packed trial (``like``: its fields)."""
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(result.booster))
    history = pd.DataFrame(
        {
            f"{d}-{m}": pd.Series(vs, dtype=float)
            for d, ms in result.history.items()
            for m, vs in ms.items()
        }
    )
    history.index.name = "round"
    if result.best_iteration is not None:
        booster = booster[: result.best_iteration + 1]
    return Model(
        estimator=booster,
        rounds=like.pop("rounds"),
        best_iteration=result.best_iteration,
        history=history,
        info={**like.pop("info", {}), "seconds": round(result.seconds, 3), "worker": result.worker},
        **like,
    )
