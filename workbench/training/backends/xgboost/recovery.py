"""XGBoost training that survives lost workers: continue from the last checkpoint.

``xgboost.dask`` fails the whole training when one worker dies ("Ring Allreduce failed", a
closed socket, a task rescheduled on another worker). Here the booster of every N-th round goes
from rank 0 to the client (:func:`workbench.training.progress.send_checkpoint`); when a training
fails and the scheduler has lost a worker, :func:`fit` waits for the cluster to have workers
again (a nanny's restart, adaptive scaling, or the survivors alone), lets Dask recompute the lost
partitions from their source, builds the matrices again and trains the remaining rounds from
the checkpoint (``xgb_model=``), early stopping's state included. Each recovery is recorded.

A worker whose host is cut off does not fail the training: the survivors wait for it in
XGBoost's allreduce. Each attempt runs under a :class:`~workbench.training.watch.Watch`, which
restarts the survivors (through their nannies) when the scheduler removes a training worker and
the training has not failed by itself within ``workbench.train.restart-grace``; the training
then fails at once and resumes here, on the survivors without waiting
``workbench.train.replace-wait`` for a replacement of the silent worker (its nanny is cut off
too), unless ``workbench.train.recover-on-survivors`` is false.
``workbench.train.collective-timeout`` stays the last resort (workers without a nanny).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench import config
from workbench._client import ClusterSnapshot, scheduler_workers, snapshot
from workbench.errors import TrainingError
from workbench.events import publish
from workbench.training import monitoring
from workbench.training.backends.base import FitResult, History
from workbench.training.backends.xgboost import train as xgb
from workbench.training.balance import balance
from workbench.training.progress import data_order, live_history, received
from workbench.training.watch import Watch, restart_grace

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

    from workbench.training.progress import Progress

__all__ = ["Recovery", "fit", "live_history", "received", "stopping_state"]

logger = logging.getLogger(__name__)

# Words in the errors that a lost peer causes (XGBoost's collective, Dask's rescheduling).
_LOSS_WORDS = (
    "socket",
    "connection",
    "allreduce",
    "recv",
    "send",
    "timed out",
    "timeout",
    "worker",
    "killed",
    "closed",
    "peer",
    "broken pipe",
)
_MAXIMIZE = ("auc", "aucpr", "map", "ndcg", "pre")


@dataclass
class Recovery:
    """One recovery: when, what was lost, and what it cost."""

    failed_at_round: int  # rounds finished when the training failed (as far as the client saw)
    resumed_from: int  # rounds in the checkpoint it continued from
    lost_workers: list[str]
    error: str
    waited_seconds: float  # from the failure to the new start
    workers_after: int
    # how the failed attempt ended: "error" (it failed by itself, e.g. a peer's socket closed),
    # "restart" (the survivors were restarted after the scheduler removed a worker) or
    # "timeout" (XGBoost's collective timeout)
    ended_by: str = "error"
    # from the first sign of the loss the client saw (the scheduler's removal of a training
    # worker, or the failure if that came first) to the new start
    seconds_to_resume: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record for the model's metadata."""
        return dict(self.__dict__)


@dataclass
class State:
    """The last checkpoint: its booster, rounds and the history up to it."""

    rounds: int = 0
    booster: Any = None
    history: History = field(default_factory=dict)


def looks_like_loss(error: BaseException) -> bool:
    """Whether an error reads like a lost peer rather than a mistake in the data or params."""
    text = f"{type(error).__name__}: {error}".lower()
    return any(w in text for w in _LOSS_WORDS)


def lost_workers(client: Client, before: set[str], error: BaseException) -> list[str]:
    """Workers of ``before`` the scheduler no longer has, waiting a little for it to notice."""
    grace = config.timeout_seconds("train.loss-grace") if looks_like_loss(error) else 0.0
    deadline = time.monotonic() + grace
    while True:
        try:
            now = set(scheduler_workers(client))
        except Exception:
            return []
        gone = sorted(before - now)
        if gone or time.monotonic() >= deadline:
            return gone
        time.sleep(0.25)


def wait_for_workers(client: Client, wanted: int) -> int:
    """Wait for ``wanted`` workers (replacements), else settle for the survivors.

    Returns the number of workers to go on with.

    Raises
    ------
    TrainingError
        No worker within ``train.recovery-timeout``, or fewer than before and
        ``train.recover-on-survivors`` is false.
    """
    replace = config.timeout_seconds("train.replace-wait")
    total = config.timeout_seconds("train.recovery-timeout")
    start = time.monotonic()
    n = len(scheduler_workers(client))
    while n < wanted and time.monotonic() - start < replace:
        time.sleep(0.5)
        n = len(scheduler_workers(client))
    while n == 0 and time.monotonic() - start < total:
        time.sleep(0.5)
        n = len(scheduler_workers(client))
    if n == 0:
        raise TrainingError(f"no worker came back within {total:g} s")
    if n < wanted and not config.get("train.recover-on-survivors"):
        raise TrainingError(
            f"{wanted - n} worker(s) were not replaced within {replace:g} s and "
            "workbench.train.recover-on-survivors is false"
        )
    return n


def _maximize(metric: str) -> bool:
    return metric.split("@")[0] in _MAXIMIZE


def stopping_state(history: History, rounds: int) -> xgb.Stopping | None:
    """Early stopping's state after ``rounds`` rounds of ``history``.

    It watches what :func:`workbench.training.backends.xgboost.train.fit` watches: ``valid``
    where there is one, else ``train``, and that data set's last metric. Rounds without a
    value (NaN: a part of the training that did not evaluate that set) are skipped;
    ``None`` when none has one.
    """
    data = "valid" if history.get("valid") else "train"
    if not history.get(data):
        return None
    metric = list(history[data])[-1]
    values = history[data][metric][:rounds]
    scored = [i for i, v in enumerate(values) if not math.isnan(v)]
    if not scored:
        return None
    pick = max if _maximize(metric) else min
    best = pick(scored, key=lambda i: (values[i], -i) if pick is max else (values[i], i))
    return xgb.Stopping(data, metric, float(values[best]), best, len(values) - 1 - best)


def _cut(history: History, rounds: int) -> History:
    return {d: {m: list(v[:rounds]) for m, v in ms.items()} for d, ms in history.items()}


def _join(first: History, then: History) -> History:
    """``then`` after ``first``; a metric missing from one part is NaN for its rounds.

    ``train`` comes before ``valid``, as XGBoost orders them.
    """
    before = max((len(v) for ms in first.values() for v in ms.values()), default=0)
    after = max((len(v) for ms in then.values() for v in ms.values()), default=0)
    out: History = {}
    for d in sorted({*first, *then}, key=data_order):
        for m in {**first.get(d, {}), **then.get(d, {})}:
            head = list(first.get(d, {}).get(m, []))
            tail = list(then.get(d, {}).get(m, []))
            head += [math.nan] * (before - len(head))
            tail += [math.nan] * (after - len(tail))
            out.setdefault(d, {})[m] = head + tail
    return out


def fit(
    client: Client,
    X: da.Array,
    y: da.Array,
    *,
    bar: Progress,
    rounds: int,
    valid: tuple[da.Array, da.Array] | None,
    early_stopping: int | None,
    checkpoint_every: int | None,
    resume: tuple[Any, History] | None = None,
    cluster: ClusterSnapshot | None = None,
    **fit_args: Any,
) -> tuple[FitResult, list[Recovery]]:
    """:func:`workbench.training.backends.xgboost.train.fit`, continued after lost workers.

    Parameters
    ----------
    client, X, y, valid, early_stopping
        As for :func:`workbench.training.backends.xgboost.train.fit`.
    bar
        The training's :class:`~workbench.training.progress.Progress`; it receives the
        checkpoints and shows each recovery.
    rounds
        Rounds in all (a resumed model's included).
    checkpoint_every
        Rounds between checkpoints; ``None`` or 0: no checkpoints, so a failure is final.
    resume
        ``(booster, history)`` of a saved checkpoint to continue from.
    cluster
        The training's :func:`~workbench._client.snapshot`: the workers it starts with. A
        fresh one is taken only after a worker is lost (the scheduler is asked then anyway).
    fit_args
        The rest of :func:`workbench.training.backends.xgboost.train.fit`'s arguments.
    """
    state = State()
    if resume is not None:
        booster, history = resume
        done = booster.num_boosted_rounds()
        state = State(done, booster, _cut(history, done))  # the rounds the booster holds
        for r in range(state.rounds):  # the rounds before, as if they had been seen live
            bar.rounds[r] = {  # without the NaN of a data set that round did not evaluate
                d: {m: v[r] for m, v in ms.items() if not math.isnan(v[r])}
                for d, ms in history.items()
            }
    recoveries: list[Recovery] = []
    retries = int(config.get("train.retries"))
    coll_timeout = config.timeout_seconds("train.collective-timeout")
    grace = restart_grace()  # a bad value fails here, before any round
    if cluster is None:
        cluster = snapshot(client)
    while True:
        before = set(cluster.addresses)
        watch = Watch(client, before, grace=grace)
        try:
            with watch:
                out = xgb.fit(
                    client,
                    X,
                    y,
                    rounds=rounds - state.rounds,
                    valid=valid,
                    early_stopping=early_stopping,
                    topic=bar.topic,
                    xgb_model=state.booster,
                    checkpoint_every=checkpoint_every,
                    stopping=stopping_state(state.history, state.rounds)
                    if early_stopping
                    else None,
                    collective_timeout=coll_timeout,
                    **fit_args,
                )
        except Exception as e:
            failed_at = time.monotonic()
            # the workers the scheduler removed, as the watch heard; else ask (and wait a little)
            gone = sorted(set(watch.removed) or set(lost_workers(client, before, e)))
            logger.debug(
                "training attempt %d failed (%s); workers before %s, lost %s",
                len(recoveries) + 1,
                type(e).__name__,
                sorted(before),
                gone,
            )
            if not gone or len(recoveries) >= retries or not checkpoint_every:
                if gone:
                    raise _final(e, gone, state, recoveries, retries, checkpoint_every) from e
                raise
            if bar.checkpoint is not None and bar.checkpoint[0] > state.rounds:
                done, data = bar.checkpoint
                deadline = time.monotonic() + 5  # the rounds before it may still be queued
                while received(bar) < done and time.monotonic() < deadline:
                    time.sleep(0.05)
                state = State(done, xgb.from_bytes(data), live_history(bar, done))
            text = (
                f"lost worker(s) {', '.join(gone)} after {len(bar.rounds)} rounds "
                f"({type(e).__name__}); resuming from the checkpoint of round {state.rounds}"
            )
            bar.note(text)
            publish(
                client, bar.topic, {"recovery": text, "lost": gone, "resumed_from": state.rounds}
            )
            wanted = len(before)
            if watch.restarted and config.get("train.recover-on-survivors"):
                # the lost worker went silent (its host cut off): no nanny of its own brings
                # it back soon, so go on with the survivors once they are restarted
                wanted -= len(gone)
            n = wait_for_workers(client, wanted)
            cluster = snapshot(client)  # the workers after the loss
            if config.get("train.quiet"):
                xgb.quiet(client, cluster)  # the replacements' threads too
            if monitoring.enabled():  # restarted and new workers start with Dask's timers
                monitoring.pause(client, cluster.addresses, bar.topic)
            X, y, _ = balance(client, X, y, cluster)
            first_sign = min(failed_at, watch.removed_at or failed_at)
            recoveries.append(
                Recovery(
                    failed_at_round=len(bar.rounds),
                    resumed_from=state.rounds,
                    lost_workers=gone,
                    error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                    waited_seconds=round(time.monotonic() - failed_at, 3),
                    workers_after=n,
                    ended_by=_ended_by(e, watch),
                    seconds_to_resume=round(time.monotonic() - first_sign, 3),
                )
            )
            continue
        history = _join(state.history, out.history)
        return FitResult(out.booster, history, out.best_iteration, rounds=out.rounds), recoveries


def _ended_by(error: BaseException, watch: Watch) -> str:
    """How a failed attempt ended: ``"restart"``, ``"timeout"`` or ``"error"``."""
    if watch.restarted:
        return "restart"
    text = str(error).lower()
    return "timeout" if "timeout" in text or "timed out" in text else "error"


def _final(
    error: BaseException,
    gone: list[str],
    state: State,
    recoveries: list[Recovery],
    retries: int,
    checkpoint_every: int | None,
) -> TrainingError:
    if not checkpoint_every:
        why = "checkpoints are off (checkpoint_every=0), so there is nothing to continue from"
    else:
        why = (
            f"it had recovered {len(recoveries)} time(s) already "
            f"(workbench.train.retries={retries})"
        )
    where = (
        f"the last checkpoint holds {state.rounds} rounds"
        if state.rounds
        else "no checkpoint was reached yet"
    )
    return TrainingError(
        f"training lost worker(s) {', '.join(gone)} ({type(error).__name__}) and stopped: "
        f"{why}; {where}"
    )
