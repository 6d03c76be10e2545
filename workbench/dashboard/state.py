"""What the training page shows: a bounded record of the latest trainings, built from their events.

Plain Python, no scheduler and no Bokeh: the scheduler plugin (:mod:`workbench.dashboard.page`)
hands every message of a training's topic (see :mod:`workbench.events`) to :meth:`Board.take`,
and the page reads the board. The board keeps the latest ``keep`` trainings (those still
running first), for each at most :data:`ROUND_LIMIT` rounds (beyond, every other round is
dropped, so the curve keeps its shape) and the latest :data:`EVENT_LIMIT` events; checkpoints
are kept as their round count and size, never the model's bytes.

A training may belong to a study (``"study"`` and ``"trial"`` in its start message):
:meth:`Board.studies` groups them, so that a study's trials can be shown side by side.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from dask.utils import format_bytes

logger = logging.getLogger(__name__)

#: Trainings kept on the board.
KEEP = 8
#: Rounds kept per training; beyond, every other round is dropped.
ROUND_LIMIT = 5000
#: Events (start, checkpoints, notes, end) kept per training.
EVENT_LIMIT = 200
#: Rounds the current speed is measured over.
RATE_WINDOW = 20

Metrics = dict[str, dict[str, float]]  # {data set: {metric: value}}


def data_order(data: str) -> tuple[int, str]:
    """Sort key of data set names: ``train``, ``valid``, then the rest by name."""
    return ({"train": 0, "valid": 1}.get(data, 2), data)


@dataclass
class Checkpoint:
    """A checkpoint the workers sent: a model of ``rounds`` rounds, ``nbytes`` long."""

    rounds: int
    time: float
    nbytes: int


@dataclass
class Event:
    """Something that happened to a training, for the page's table of events."""

    time: float
    round: int | None  # rounds finished when it happened
    kind: str  # start, checkpoint, recovery, note, end
    text: str


@dataclass
class Training:
    """One training as its events describe it (times are the scheduler's clock)."""

    topic: str
    seen: float  # when its first event arrived
    title: str = ""
    model: str = ""
    source: str = ""
    device: str = ""
    total: int | None = None  # rounds asked for
    started: float | None = None
    ended: float | None = None
    status: str = "running"  # running, done, failed, interrupted, abandoned
    study: str | None = None  # a study's trials (tuning) say which study and trial they are
    trial: int | None = None
    best: int | None = None  # early stopping's best round (from 0), once ended
    workers: dict[str, int] = field(default_factory=dict)  # training rows per worker
    lost: set[str] = field(default_factory=set)
    resumed: list[int] = field(default_factory=list)  # checkpoints recoveries went on from
    rounds: dict[int, Metrics] = field(default_factory=dict)
    arrived: dict[int, float] = field(default_factory=dict)  # round -> when it arrived
    checkpoints: deque[Checkpoint] = field(default_factory=lambda: deque(maxlen=EVENT_LIMIT))
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=EVENT_LIMIT))

    @property
    def done(self) -> int:
        """Rounds finished: one more than the latest round received (0 before the first)."""
        return max(self.rounds, default=-1) + 1

    @property
    def running(self) -> bool:
        """Whether no end was received."""
        return self.ended is None

    def outcome(self) -> str:
        """The status in words: ``running``, ``finished``, ``stopped early at 42 of 200``..."""
        if self.running:
            return "running"
        if self.status == "done":
            if self.total and self.done < self.total:
                best = f", best round {self.best}" if self.best is not None else ""
                return f"stopped early at {self.done} of {self.total} rounds{best}"
            return "finished"
        return self.status

    def rate(self) -> float | None:
        """Rounds per second over the latest :data:`RATE_WINDOW` rounds (``None`` before 2)."""
        times = sorted(self.arrived.values())[-RATE_WINDOW:]
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0])

    def seconds(self, now: float) -> float:
        """Seconds since the start (until the end, once ended)."""
        start = self.started if self.started is not None else self.seen
        return max(0.0, (self.ended if self.ended is not None else now) - start)

    def latest(self) -> Metrics:
        """The metrics of the latest round received."""
        return self.rounds[max(self.rounds)] if self.rounds else {}

    def names(self) -> dict[str, list[str]]:
        """``{metric: [data sets]}`` of every round, in XGBoost's order (train, valid, ...)."""
        found: dict[str, dict[str, None]] = {}
        for metrics in self.rounds.values():
            for data, values in metrics.items():
                for metric in values:
                    found.setdefault(metric, {})[data] = None
        return {m: sorted(ds, key=data_order) for m, ds in found.items()}

    def curves(self) -> dict[str, dict[str, list[float]]]:
        """Per metric, ``{"round": [...], data set: [values]}`` in round order (NaN: missing)."""
        order = sorted(self.rounds)
        out: dict[str, dict[str, list[float]]] = {}
        for metric, datas in self.names().items():
            curve: dict[str, list[float]] = {"round": [float(r) for r in order]}
            for data in datas:
                curve[data] = [self.rounds[r].get(data, {}).get(metric, math.nan) for r in order]
            out[metric] = curve
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``client.run_on_scheduler`` returns it; tests read it)."""
        order = sorted(self.rounds)
        return {
            "topic": self.topic,
            "title": self.title,
            "model": self.model,
            "source": self.source,
            "device": self.device,
            "study": self.study,
            "trial": self.trial,
            "total": self.total,
            "status": self.status,
            "best": self.best,
            "outcome": self.outcome(),
            "rounds": order,
            "metrics": {
                f"{data}-{metric}": curve[data]
                for metric, curve in self.curves().items()
                for data in curve
                if data != "round"
            },
            "workers": dict(self.workers),
            "lost": sorted(self.lost),
            "resumed": list(self.resumed),
            "checkpoints": [c.rounds for c in self.checkpoints],
            "checkpoint_bytes": [c.nbytes for c in self.checkpoints],
            "events": [(e.kind, e.round, e.text) for e in self.events],
        }

    # --- taking messages ----------------------------------------------------------------
    def take(self, msg: dict[str, Any], now: float) -> None:
        """Apply one message of the training's topic (see :mod:`workbench.events`)."""
        if "start" in msg:
            self._start(msg, now)
        if "round" in msg:
            self._round(int(msg["round"]), msg.get("metrics") or {}, now)
        if "checkpoint" in msg:
            booster = msg.get("booster")
            nbytes = len(booster) if isinstance(booster, bytes | bytearray | memoryview) else 0
            rounds = int(msg["checkpoint"])
            self.checkpoints.append(Checkpoint(rounds, now, nbytes))
            self._event(
                now, "checkpoint", f"model of {rounds} rounds ({format_bytes(nbytes)})", rounds
            )
        if "recovery" in msg:
            self.lost.update(str(w) for w in msg.get("lost") or ())
            resumed = msg.get("resumed_from")
            self._event(now, "recovery", str(msg["recovery"]), self.done)
            if resumed is not None:  # the rounds after the checkpoint are trained again
                self.resumed.append(int(resumed))
        if "note" in msg:
            self._event(now, "note", str(msg["note"]))
        if "end" in msg:
            self.ended = now
            self.status = str(msg.get("status") or "done")
            self.best = int(msg["best"]) if msg.get("best") is not None else None
            self._event(now, "end", self.outcome())

    def _start(self, msg: dict[str, Any], now: float) -> None:
        self.started = now
        self.total = int(msg["total"]) if msg.get("total") is not None else None
        self.title = str(msg.get("title") or "")
        self.model = str(msg.get("model") or "")
        self.source = str(msg.get("source") or "")
        self.device = str(msg.get("device") or "")
        self.study = str(msg["study"]) if msg.get("study") is not None else None
        self.trial = int(msg["trial"]) if msg.get("trial") is not None else None
        self.workers = {str(w): int(n) for w, n in (msg.get("workers") or {}).items()}
        rows = sum(self.workers.values())
        self._event(
            now,
            "start",
            f"{self.total} rounds asked, {rows:,} rows on {len(self.workers)} worker(s)",
        )

    def _round(self, r: int, metrics: dict[str, Any], now: float) -> None:
        self.rounds[r] = {
            str(d): {str(m): float(v) for m, v in ms.items()} for d, ms in metrics.items()
        }
        self.arrived[r] = now
        if len(self.rounds) > ROUND_LIMIT:  # every other round goes; the latest stays
            order = sorted(self.rounds)
            for old in order[1:-1:2]:
                del self.rounds[old]
                self.arrived.pop(old, None)

    def _event(self, now: float, kind: str, text: str, round: int | None = None) -> None:
        self.events.append(Event(now, self.done if round is None else round, kind, text))


class Board:
    """The latest trainings seen on a scheduler, by topic.

    Parameters
    ----------
    keep
        How many trainings to keep; when a new one starts beyond it, the oldest finished
        one goes (the oldest running one if none has finished).
    """

    def __init__(self, keep: int = KEEP) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep={keep!r}: the board keeps a whole number >= 1 of trainings")
        self.keep = keep
        self.trainings: OrderedDict[str, Training] = OrderedDict()
        self.version = 0  # counts the messages taken: the page redraws when it changes

    def take(self, topic: str, msg: dict[str, Any], now: float) -> None:
        """Apply one message of a training's topic (a bad message is logged and skipped)."""
        training = self.trainings.get(topic)
        if training is None:
            training = self.trainings[topic] = Training(topic=topic, seen=now)
            self._evict()
        try:
            training.take(msg, now)
        except (TypeError, ValueError, AttributeError) as e:
            logger.debug("skipped a message of %s that does not read as one: %s", topic, e)
        self.version += 1

    def _evict(self) -> None:
        while len(self.trainings) > self.keep:
            finished = [t for t, tr in self.trainings.items() if not tr.running]
            self.trainings.pop(finished[0] if finished else next(iter(self.trainings)))

    def current(self) -> Training | None:
        """The training to show: the latest started that is running, else the latest."""
        if not self.trainings:
            return None
        running = [t for t in self.trainings.values() if t.running]
        pool = running or list(self.trainings.values())
        return max(pool, key=lambda t: t.started if t.started is not None else t.seen)

    def recent(self) -> list[Training]:
        """Every training kept, the latest first."""
        return sorted(
            self.trainings.values(),
            key=lambda t: t.started if t.started is not None else t.seen,
            reverse=True,
        )

    def studies(self) -> dict[str, list[Training]]:
        """The trainings that are trials of a study, by study, in trial order."""
        out: dict[str, list[Training]] = {}
        for t in self.trainings.values():
            if t.study is not None:
                out.setdefault(t.study, []).append(t)
        for trials in out.values():
            trials.sort(key=lambda t: (t.trial is None, t.trial or 0))
        return out

    def as_dict(self) -> dict[str, Any]:
        """Every training's :meth:`Training.as_dict`, by topic, and the current one's topic."""
        current = self.current()
        return {
            "current": current.topic if current is not None else None,
            "trainings": {t: tr.as_dict() for t, tr in self.trainings.items()},
        }
