"""Training progress: metrics travel from the workers to the client as each round ends.

On the workers, a training callback calls :func:`report` after every round; it logs a Dask
event under a topic made for this training (:func:`new_topic`). On the client,
:class:`Progress` subscribes to that topic, runs the training call in a thread, and shows each
round as it arrives in a ``tqdm.auto`` bar (a widget in a notebook, text in a terminal), with
the latest metrics. The rounds it receives become ``Model.history``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

logger = logging.getLogger(__name__)

T = TypeVar("T")

_PREFIX = "workbench-train-"

# Stop requests, by topic, for trainings running in this worker process (see request_stop).
_stop: set[str] = set()


def new_topic() -> str:
    """A Dask event topic unique to one training."""
    return _PREFIX + uuid.uuid4().hex[:12]


def report(topic: str, round: int, metrics: dict[str, dict[str, float]], **extra: Any) -> None:
    """Send one round's metrics to the client (call it on a worker, from one rank only).

    Parameters
    ----------
    topic
        The training's topic from :func:`new_topic`.
    round
        The round that has just finished, counted from 0.
    metrics
        ``{data name: {metric: value}}`` for this round, for example
        ``{"train": {"logloss": 0.3}, "valid": {"logloss": 0.31}}``.
    extra
        Anything else msgpack can carry (for example ``stopped=True``).
    """
    from distributed import get_worker

    msg = {
        "round": int(round),
        "metrics": {d: {m: float(v) for m, v in ms.items()} for d, ms in metrics.items()},
        **extra,
    }
    get_worker().log_event(topic, msg)


def send_checkpoint(topic: str, rounds: int, booster: bytes) -> None:
    """Send a model of ``rounds`` rounds to the client (on a worker, from one rank only)."""
    from distributed import get_worker

    get_worker().log_event(topic, {"checkpoint": int(rounds), "booster": booster})


def _truncate(dask_scheduler: Any, topic: str) -> None:
    """Drop the events the scheduler keeps for ``topic`` (checkpoints are large)."""
    dask_scheduler._broker.truncate(topic)


def request_stop(topic: str) -> None:
    """Ask the trainings of ``topic`` in this process to stop after their current round.

    Run on every worker (``client.run``); callbacks read it with :func:`stop_requested`.
    """
    _stop.add(topic)


def stop_requested(topic: str) -> bool:
    """Whether :func:`request_stop` was called for ``topic`` in this process."""
    return topic in _stop


def forget(topic: str) -> None:
    """Drop the stop request of a finished training (run on every worker)."""
    _stop.discard(topic)


def _postfix(metrics: dict[str, dict[str, float]]) -> str:
    return " ".join(f"{d}-{m}={v:.4g}" for d, ms in metrics.items() for m, v in ms.items())


class Progress:
    """Follow a training from the client: a live bar and the history of every round.

    Parameters
    ----------
    client
        The Dask client the training runs on.
    total
        The number of rounds asked for (the bar's length).
    desc
        The bar's label.
    show
        Show a bar; ``False`` still records the history.
    """

    def __init__(self, client: Any, total: int, desc: str = "training", show: bool = True) -> None:
        self.client = client
        self.topic = new_topic()
        self.total = total
        self.desc = desc
        self.show = show
        self.rounds: dict[int, dict[str, dict[str, float]]] = {}
        self.notes: list[dict[str, Any]] = []
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._bar: Any = None
        self.abandoned = False  # a second Ctrl-C: the call was left running, asked to stop
        self._owner = threading.get_ident()
        # the latest checkpoint from the workers: (rounds, booster bytes); set on arrival
        self.checkpoint: tuple[int, bytes] | None = None
        self.on_checkpoint: Callable[[int, bytes], None] | None = None

    # --- events ------------------------------------------------------------------------
    def _on_event(self, event: tuple[float, Any]) -> None:  # runs on the client's loop
        _, msg = event
        if not isinstance(msg, dict):
            return
        if "booster" in msg:  # kept at once: a failure may follow right after
            rounds = int(msg["checkpoint"])
            if self.checkpoint is None or rounds > self.checkpoint[0]:
                self.checkpoint = (rounds, bytes(msg["booster"]))
            msg = {"checkpoint": rounds}
        self._events.put(msg)

    def _take(self, msg: dict[str, Any]) -> None:
        if "round" in msg:
            r = int(msg["round"])
            self.rounds[r] = msg.get("metrics", {})
            if self._bar is not None:
                self._bar.n = min(self.total, max(self._bar.n, r + 1))
                self._bar.set_postfix_str(_postfix(self.rounds[r]), refresh=False)
                self._bar.refresh()
        if "checkpoint" in msg:
            self.client.run_on_scheduler(_truncate, topic=self.topic)
            latest = self.checkpoint
            if self.on_checkpoint is not None and latest and latest[0] == msg["checkpoint"]:
                try:
                    self.on_checkpoint(*latest)
                except Exception as e:
                    self.note(f"could not write the checkpoint of round {latest[0]}: {e}")
        if "note" in msg:
            self.notes.append(msg)
            if self._bar is not None:
                self._bar.write(f"workbench: {msg['note']}")
            else:
                logger.info(msg["note"])

    def _drain(self) -> None:
        while True:
            try:
                self._take(self._events.get_nowait())
            except queue.Empty:
                return

    def note(self, text: str, **extra: Any) -> None:
        """Show a message beside the bar (and keep it in :attr:`notes`); any thread may call."""
        self._events.put({"note": text, "time": time.time(), **extra})
        if threading.get_ident() == self._owner:
            self._drain()

    # --- running -----------------------------------------------------------------------
    def run(
        self,
        fn: Callable[[], T],
        on_interrupt: Callable[[], None] | None = None,
        rounds_of: Callable[[T], int] | None = None,
    ) -> T:
        """Run ``fn`` (the blocking training call) in a thread while showing its rounds.

        The first Ctrl-C calls ``on_interrupt`` (which should ask the workers to stop after
        the current round) and keeps waiting for the model so far; a second one gives up.
        ``rounds_of(result)`` says how many rounds the call finished, so that the events still
        on their way are waited for (briefly) before the bar closes.
        """
        from tqdm.auto import tqdm

        self.client.subscribe_topic(self.topic, self._on_event)
        if self.show:
            self._bar = tqdm(total=self.total, desc=self.desc, unit="round", leave=True)
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                with self.client.as_current():  # the thread has no current client of its own
                    result["value"] = fn()
            except BaseException as e:
                result["error"] = e

        thread = threading.Thread(target=target, name=f"{self.topic}-call", daemon=True)
        interrupted = False
        try:
            thread.start()
            while thread.is_alive():
                try:
                    thread.join(0.1)
                except KeyboardInterrupt:
                    if interrupted or on_interrupt is None:
                        self.abandoned = True
                        raise
                    interrupted = True
                    self.note(
                        "interrupted: stopping after the current round (Ctrl-C again to abandon)"
                    )
                    on_interrupt()
                self._drain()
            if "value" in result and rounds_of is not None:
                self._flush(rounds_of(result["value"]))
        finally:
            self.client.unsubscribe_topic(self.topic)
            self._drain()
            with contextlib.suppress(Exception):  # the scheduler may be gone
                self.client.run_on_scheduler(_truncate, topic=self.topic)
            if self._bar is not None:
                self._bar.close()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def _flush(self, done: int, wait: float = 2.0) -> None:
        """Take the rounds still on their way (events can trail the end of the call)."""
        deadline = time.monotonic() + wait
        self._drain()
        while time.monotonic() < deadline and len(self.rounds) < done:
            time.sleep(0.02)
            self._drain()

    # --- results -----------------------------------------------------------------------
    def history(self) -> pd.DataFrame:
        """Every round received: one row per round, a column per ``data-metric``."""
        rows = {
            r: {f"{d}-{m}": v for d, ms in self.rounds[r].items() for m, v in ms.items()}
            for r in sorted(self.rounds)
        }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "round"
        return frame


def data_order(data: str) -> tuple[int, str]:
    """Sort key of data set names: ``train``, ``valid``, then the rest by name."""
    return ({"train": 0, "valid": 1}.get(data, 2), data)


def received(bar: Progress) -> int:
    """How many rounds the client received without a gap from round 0."""
    n = 0
    while n in bar.rounds:
        n += 1
    return n


def live_history(bar: Progress, rounds: int | None = None) -> dict[str, dict[str, list[float]]]:
    """The first ``rounds`` rounds the client received (all without a gap by default).

    A metric that some rounds lack (a resumed training that evaluates other data sets) is
    NaN in those rounds, so every list is indexed by round.
    """
    n = min(received(bar), rounds if rounds is not None else len(bar.rounds))
    names: dict[str, dict[str, None]] = {}
    for r in range(n):
        for d, ms in bar.rounds[r].items():
            names.setdefault(d, {}).update(dict.fromkeys(ms))
    return {
        d: {m: [bar.rounds[r].get(d, {}).get(m, math.nan) for r in range(n)] for m in ms}
        for d, ms in sorted(names.items(), key=lambda kv: data_order(kv[0]))
    }
