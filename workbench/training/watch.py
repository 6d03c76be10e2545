"""End a collective training that waits on a worker the scheduler has removed.

A collective training (XGBoost's allreduce) notices a killed peer at once (its socket closes),
but a peer whose host is cut off (link down, no reset) is silent: the survivors wait in the
allreduce until the collective's own timeout (``workbench.train.collective-timeout``), minutes,
although the scheduler removes the silent worker within its ``worker-ttl``. XGBoost has no way to
end a running collective short of ending the process (its ``signal_error`` exits every worker
it reaches), so :class:`Watch` hears of the removal from the scheduler (an event on the removed
worker's topic) and, when the training has not failed by itself within
``workbench.train.restart-grace``, restarts the surviving training workers through their
nannies (:meth:`distributed.Client.restart_workers`). Their running tasks fail, the training
fails at once, and the caller resumes from its checkpoint. Workers without a nanny cannot be
restarted: then the collective timeout stays the only way out, and a warning says so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from functools import partial
from types import TracebackType
from typing import Any

from distributed import Client

from workbench import config
from workbench._client import scheduler_workers

__all__ = ["Watch", "place_stranded", "restart_grace"]

logger = logging.getLogger(__name__)

_PLACE_WAIT = 60.0  # seconds for a restarted worker to join before stranded tasks are placed


class Watch:
    """While a collective training runs, restart the survivors of a removed training worker.

    Use it as a context manager around one training attempt::

        with Watch(client, cluster.addresses, grace=restart_grace()) as watch:
            train(...)

    Parameters
    ----------
    client
        The training's client.
    workers
        The addresses of the workers that train (the training's snapshot).
    grace
        Seconds to let the training fail by itself after a removal before restarting the
        survivors (:func:`restart_grace` reads ``workbench.train.restart-grace``); ``None``:
        never restart, only record the removal.

    Attributes
    ----------
    removed
        Training workers the scheduler removed while the training ran, with the client's
        ``time.monotonic()`` when it heard of each.
    restarted
        The survivors restarted to end the training's collective (empty: none was).
    without_nanny
        Survivors that could not be restarted because they run without a nanny.
    """

    def __init__(self, client: Client, workers: Iterable[str], *, grace: float | None):
        self.client = client
        self.workers = sorted(workers)
        self.grace = grace
        self.removed: dict[str, float] = {}
        self.restarted: list[str] = []
        self.without_nanny: list[str] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._stopped = False
        self._subscribed: list[str] = []

    @property
    def removed_at(self) -> float | None:
        """When the client first heard of a removed training worker (``time.monotonic()``)."""
        return min(self.removed.values(), default=None)

    def __enter__(self) -> Watch:
        for address in self.workers:
            self.client.subscribe_topic(address, partial(self._on_event, address))
            self._subscribed.append(address)
        # The subscriptions travel on the client's batched stream: a worker removed before the
        # scheduler has them would go unheard (seen in CI). Wait until it has them (briefly).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if self.client.run_on_scheduler(
                    _subscribed, topics=list(self._subscribed), client_id=self.client.id
                ):
                    break
            except Exception as e:  # an old scheduler without a broker: nothing to wait for
                logger.debug("could not check the subscriptions: %s", e)
                break
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop watching; a restart under way is waited for, a pending one is called off."""
        with self._lock:
            self._stopped = True
            timer = self._timer
        if timer is not None:
            timer.cancel()
            if timer.is_alive():
                timer.join()
        for address in self._subscribed:
            try:
                self.client.unsubscribe_topic(address)
            except Exception as e:  # a closed client: nothing to unsubscribe from
                logger.debug("could not unsubscribe from %s: %s", address, e)
        self._subscribed.clear()

    def _on_event(self, address: str, event: tuple[float, Any]) -> None:
        """A scheduler event on a training worker's topic (runs in the client's event loop)."""
        _, msg = event
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        with self._lock:
            if self._stopped or self.restarted or address in self.removed:
                return  # after a restart its own removals arrive: nothing more to do
            self.removed[address] = time.monotonic()
            logger.debug("training worker %s was removed by the scheduler", address)
            if self._timer is None and self.grace is not None:
                self._timer = threading.Timer(self.grace, self._restart_survivors)
                self._timer.name = "workbench-restart-survivors"
                self._timer.daemon = True
                self._timer.start()

    def _restart_survivors(self) -> None:
        """Restart the training workers that are left, to end their stuck collective."""
        try:
            info = scheduler_workers(self.client)
        except Exception as e:
            logger.warning("could not ask the scheduler for its workers: %s", e)
            return
        with self._lock:
            if self._stopped:
                return
            left = [a for a in self.workers if a in info and a not in self.removed]
            survivors = [a for a in left if info[a].get("nanny")]
            self.without_nanny = [a for a in left if not info[a].get("nanny")]
            self.restarted = survivors
        if self.without_nanny:
            logger.warning(
                "training worker(s) %s were removed by the scheduler, and %s run without a "
                "nanny, so they cannot be restarted to end the training's wait for them: it "
                "fails after workbench.train.collective-timeout (%g s) instead; start workers "
                "with a nanny (the default of `dask worker`) to recover in seconds",
                ", ".join(sorted(self.removed)),
                ", ".join(self.without_nanny),
                config.timeout_seconds("train.collective-timeout"),
            )
        if not survivors:
            return
        logger.info(
            "training worker(s) %s were removed by the scheduler and the training has not "
            "failed within %g s (workbench.train.restart-grace): restarting %s to end it",
            ", ".join(sorted(self.removed)),
            self.grace,
            ", ".join(survivors),
        )
        try:
            out = self.client.restart_workers(survivors, raise_for_error=False)
            logger.debug("restarted %s", out)
            placed = self.client.run_on_scheduler(place_stranded, timeout=_PLACE_WAIT)
            logger.debug("placed %d task(s) whose allowed workers were all gone", placed)
        except Exception as e:  # a survivor gone meanwhile; the training fails anyway
            logger.warning("restarting %s failed: %s", ", ".join(survivors), e)


async def place_stranded(dask_scheduler: Any, timeout: float) -> int:
    """Run tasks that wait for workers that are gone although they may run on any worker.

    Runs on the scheduler (:meth:`distributed.Client.run_on_scheduler`). A task submitted
    with ``workers=[...]`` and ``allow_other_workers=True`` that must run (again) while the
    cluster has no worker at all, as when the only survivors are being restarted, waits in
    the scheduler's ``no-worker`` state; a worker that joins later is offered only the tasks
    it is allowed for, and no task is allowed for a new address, so such tasks (and the
    training's data that depend on them) would wait forever. Once a worker runs (waiting up
    to ``timeout`` seconds for one), they go to the scheduler's usual choice of worker.

    Returns the number of such tasks.
    """
    deadline = time.monotonic() + timeout
    while not dask_scheduler.running and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stranded = [
        ts.key
        for ts in dask_scheduler.unrunnable
        if ts.loose_restrictions and not dask_scheduler.valid_workers(ts)
    ]
    if stranded and dask_scheduler.running:
        dask_scheduler.transitions(
            {key: "processing" for key in stranded},
            stimulus_id=f"workbench-place-stranded-{time.time()}",
        )
    return len(stranded)


def restart_grace() -> float | None:
    """``workbench.train.restart-grace`` in seconds; ``None`` where it is null (never restart).

    Raises
    ------
    ValueError
        It is neither null nor a positive duration.
    """
    if config.get("train.restart-grace") is None:
        return None
    return config.timeout_seconds("train.restart-grace")


def _subscribed(dask_scheduler: Any, topics: list[str], client_id: str) -> bool:
    """Whether the scheduler has ``client_id``'s subscription to every topic (on the scheduler)."""
    known = dask_scheduler._broker._topics  # a defaultdict: .get does not make topics
    return all(client_id in getattr(known.get(t), "subscribers", ()) for t in topics)
