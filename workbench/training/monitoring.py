"""Dask's sampling timers, eased on the cluster while a training's rounds run.

Every Dask server (scheduler, nanny, worker) wakes its event loop on timers that only observe:
the worker's statistical profiler samples its threads every 10 ms; each server measures its
event loop's latency every 20 ms ("tick") and samples CPU, memory and network every 500 ms
("monitor"); the scheduler checks whether it is idle every 250 ms. An idle local cluster wakes
about 290 times a second for them, 4% of one core in all. That is little CPU, but a training uses
every core: XGBoost's OpenMP threads (one per core) meet at a barrier many times a round, so a
wakeup that takes a core from one of them holds up all of them. On this 2-core machine, the same
``xgboost.train`` in a worker ran 2.5% faster with these timers eased, 4.6% with every Dask
timer but the heartbeats paused (``benchmarks/training_gap.py`` has the rows; the README, the
table).

While a training runs, :func:`paused` therefore stops the profiler (it cannot see inside
XGBoost's native rounds anyway: its samples all end in one C call) and slows the others (see
``SLOWED``) on the training's workers, their nannies and the scheduler; the dashboard still shows
memory and CPU, every 2 s. Memory monitoring (spilling, pausing, the nanny's termination) and
heartbeats are left as they are: they keep a worker that runs out of memory from taking the
machine with it. Everything is put back when the training ends, however it ends; a worker
restarted meanwhile starts with Dask's own timers, and the recovery eases them again
(:func:`pause` with the same token).

Several trainings on one cluster hold the pause together: each holds it under its own token,
and the timers come back when the last one lets go. Set ``workbench.train.ease-monitoring:
false`` to leave Dask's timers alone.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench import config

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

STOPPED = ("profile",)  # the worker's statistical profiler (sampling every 10 ms)
SLOWED = {  # milliseconds while a training runs (each where the server has it)
    "tick": 1000.0,  # event-loop latency, every 20 ms (warnings only above 3 s)
    "monitor": 2000.0,  # CPU, memory, network for the dashboard, every 500 ms
    "idle-timeout": 1000.0,  # the scheduler's idle and no-workers checks, every 250 ms
    "no-workers-timeout": 1000.0,
}


@dataclass
class _Held:
    """The tokens holding one server's timers eased, and what to put back."""

    tokens: set[str] = field(default_factory=set)
    stopped: list[str] = field(default_factory=list)
    intervals: dict[str, float] = field(default_factory=dict)  # name -> Dask's interval (ms)


# Per server object in this process (a LocalCluster's nannies and scheduler share the client's)
_held: weakref.WeakKeyDictionary[Any, _Held] = weakref.WeakKeyDictionary()


def _server(dask_worker: Any, dask_scheduler: Any) -> Any:
    return dask_worker if dask_worker is not None else dask_scheduler


def ease(token: str, dask_worker: Any = None, dask_scheduler: Any = None) -> bool:
    """Ease this server's sampling timers under ``token`` (run on its event loop).

    Run through ``client.run`` (workers, or nannies with ``nanny=True``) or
    ``client.run_on_scheduler``. Returns whether the timers changed now (``False`` when another
    token, or this one, already holds them).
    """
    server = _server(dask_worker, dask_scheduler)
    held = _held.get(server)
    if held is not None:
        held.tokens.add(token)
        return False
    held = _held[server] = _Held({token})
    callbacks = server.periodic_callbacks
    for name in STOPPED:
        pc = callbacks.get(name)
        if pc is not None and pc.is_running():
            pc.stop()
            held.stopped.append(name)
    for name, slow in SLOWED.items():
        pc = callbacks.get(name)
        if pc is not None and pc.callback_time < slow:
            held.intervals[name] = pc.callback_time
            pc.callback_time = slow  # taken at the timer's next scheduling
    return True


def restore(token: str, dask_worker: Any = None, dask_scheduler: Any = None) -> bool:
    """Let go of ``token``; put the timers back when no token holds them. Returns whether it did."""
    server = _server(dask_worker, dask_scheduler)
    held = _held.get(server)
    if held is None or token not in held.tokens:
        return False
    held.tokens.discard(token)
    if held.tokens:
        return False
    del _held[server]
    callbacks = server.periodic_callbacks
    for name, interval in held.intervals.items():
        pc = callbacks.get(name)
        if pc is not None:
            pc.callback_time = interval
    for name in held.stopped:
        pc = callbacks.get(name)
        if pc is not None and not pc.is_running():
            pc.start()
    return True


def timers(dask_worker: Any = None, dask_scheduler: Any = None) -> dict[str, float | None]:
    """The eased timers of this server: interval in ms, ``None`` where stopped (for tests)."""
    callbacks = _server(dask_worker, dask_scheduler).periodic_callbacks
    return {
        name: (callbacks[name].callback_time if callbacks[name].is_running() else None)
        for name in (*STOPPED, *SLOWED)
        if name in callbacks
    }


def enabled() -> bool:
    """``workbench.train.ease-monitoring``, checked to be a boolean."""
    value = config.get("train.ease-monitoring")
    if not isinstance(value, bool):
        raise ValueError(
            f"workbench.train.ease-monitoring={value!r}: use true (ease Dask's sampling "
            "timers while a training runs) or false (leave them alone)"
        )
    return value


def pause(client: Client, workers: Sequence[str], token: str) -> None:
    """Ease the timers of ``workers``, their nannies and the scheduler under ``token``.

    Best effort: a worker gone meanwhile, or a server that refuses, is skipped (logged at
    DEBUG); the training goes on either way.
    """
    workers = list(workers)
    for kwargs in ({"workers": workers}, {"workers": workers, "nanny": True}):
        try:
            client.run(ease, token, on_error="ignore", **kwargs)
        except Exception as e:  # e.g. a worker removed since the snapshot
            logger.debug("could not ease Dask's timers on %s: %s", kwargs, e)
    with contextlib.suppress(Exception):
        client.run_on_scheduler(ease, token)


def resume(client: Client, token: str) -> None:
    """Let go of ``token`` everywhere (every worker and nanny, the scheduler)."""
    for nanny in (False, True):
        with contextlib.suppress(Exception):  # the cluster may be gone
            client.run(restore, token, nanny=nanny, on_error="ignore")
    with contextlib.suppress(Exception):
        client.run_on_scheduler(restore, token)


@contextlib.contextmanager
def paused(client: Client, workers: Sequence[str], token: str) -> Iterator[None]:
    """:func:`pause` for the block (if ``workbench.train.ease-monitoring``), then :func:`resume`."""
    if not enabled():
        yield
        return
    pause(client, workers, token)
    try:
        yield
    finally:
        resume(client, token)
