"""Training progress: metrics travel from the workers to the client as each round ends.

On the workers, a training callback calls :func:`report` after every round; it logs a Dask
event under a topic made for this training (:func:`new_topic`). On the client,
:class:`Progress` subscribes to that topic, runs the training call in a thread, and shows each
round as it arrives in a ``tqdm.auto`` bar (a widget in a notebook, text in a terminal), with
the latest metrics. The rounds it receives become ``Model.history``.

The bar opens before the first round with what is being done (reading the data, building the
matrices) and ends in the state the training ended in: complete (green in a notebook) when it
finished, early stopping included ("stopped early at 42, best round 21 (valid-auc 0.8387)"),
red with "failed"/"interrupted" otherwise. In a notebook, the bar's plain-text form, which a
saved notebook keeps for viewers without widgets (GitHub, nbviewer), is updated to that final
state: the widget is displayed under a display id, and its display is updated when it closes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pandas as pd

from workbench.config import in_kernel, show_note
from workbench.display.bars import close_bar, open_bar

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


# The bar's last line when it does not end as tqdm's own full bar: no time left to estimate,
# no rate, then how it ended (tqdm puts ", " before the postfix).
_FINAL_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
_PART = re.compile(r"\[part \d+/\d+\]")  # Dataset.split's mark on its parts' sources
_LABEL_WIDTH = 28


def label(kind: str, source: str, width: int = _LABEL_WIDTH) -> str:
    """The bar's label: the model kind and the dataset's short name (``"xgboost fraud"``).

    The name is the last part of a path or URL that is not a glob (``data/fraud`` and
    ``s3://b/fraud/*.parquet`` give ``fraud``), without a ``.parquet`` extension or the
    ``[part 1/3]`` marks of :meth:`~workbench.data.dataset.Dataset.split`; a label longer than
    ``width`` characters is cut with an ellipsis, so that it fits on one line beside the bar.
    """
    name = _PART.sub("", source).split("://", 1)[-1]
    pieces = [p for p in re.split(r"[/\\]", name) if p and not any(c in p for c in "*?[{")]
    short = pieces[-1].rsplit("@", 1)[-1] if pieces else ""  # never a URL's user:password@
    short = short.removesuffix(".parquet").removesuffix(".pq")
    text = f"{kind} {short}".strip()
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def plural(n: int, noun: str) -> str:
    """``"1 worker"``, ``"2 workers"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def watched(history: dict[str, dict[str, list[float]]]) -> tuple[str, str] | None:
    """The data set and metric early stopping watches: ``valid``'s last metric (else ``train``'s).

    This is XGBoost's rule (the last metric of the last evaluation set), which
    :func:`workbench.train` follows by naming the sets ``train`` then ``valid``.
    """
    data = "valid" if history.get("valid") else "train"
    metrics = list(history.get(data) or {})
    return (data, metrics[-1]) if metrics else None


def stopped_early(
    done: int, total: int, best: int | None, history: dict[str, dict[str, list[float]]]
) -> str | None:
    """The line that ends a training that stopped early, or ``None`` if it did not.

    ``"stopped early at 42, best round 21 (valid-auc 0.8387)"``: 42 rounds ran (the bar's
    count), and the model keeps rounds 0 to 21, round 21 (counted from 0, as
    ``Model.best_iteration`` and ``Model.history``'s index count) being the best on the
    watched metric (see :func:`watched`), whose value it had then.

    Parameters
    ----------
    done
        The rounds that ran.
    total
        The rounds asked for.
    best
        The best round (from 0), or ``None`` without early stopping.
    history
        ``{data: {metric: [value per round]}}``.
    """
    if best is None or done >= total:
        return None
    line = f"stopped early at {done}, best round {best}"
    seen = watched(history)
    if seen is not None:
        values = history[seen[0]][seen[1]]
        if 0 <= best < len(values) and not math.isnan(values[best]):
            line += f" ({seen[0]}-{seen[1]} {values[best]:.4f})"
    return line


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
        self._display: Any = None  # the notebook widget's display handle (its display id)
        self.outcome: str | None = None  # the line a training that stopped early ended with
        self.abandoned = False  # a second Ctrl-C: the call was left running, asked to stop
        self._owner = threading.get_ident()
        # the latest checkpoint from the workers: (rounds, booster bytes); set on arrival
        self.checkpoint: tuple[int, bytes] | None = None
        self.on_checkpoint: Callable[[int, bytes], None] | None = None
        # called with each round's metrics as it arrives; True asks the workers to stop
        self.on_round: Callable[[int, dict[str, dict[str, float]]], bool] | None = None
        self.stopped_by_hook = False  # on_round asked to stop (not the user)
        self._stop: Callable[[], None] | None = None
        self._hook_error: BaseException | None = None

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
            self._ask_hook(r)
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
            if self._display is not None:  # a widget: a note below it, not a stdout block
                show_note(msg["note"])
            elif self._bar is not None:
                self._bar.write(f"workbench: {msg['note']}")
            else:
                logger.info(msg["note"])

    def _ask_hook(self, r: int) -> None:
        """Give round ``r`` to :attr:`on_round`; stop the training when it says so or fails."""
        if self.on_round is None or self.stopped_by_hook or self._hook_error is not None:
            return
        try:
            stop = bool(self.on_round(r, self.rounds[r]))
        except Exception as e:  # raised by run() once the training has stopped
            self._hook_error = e
            stop = True
        if stop:
            self.stopped_by_hook = self._hook_error is None
            if self._stop is not None:
                self._stop()

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

    # --- the bar -----------------------------------------------------------------------
    def _open(self) -> None:
        """Show the bar (once): a widget under a display id in a notebook, else text."""
        if self._bar is not None or not self.show:
            return
        options: dict[str, Any] = {"total": self.total, "desc": self.desc, "unit": "round"}
        self._bar, self._display = open_bar(in_kernel(), **options)

    def status(self, text: str) -> None:
        """Say what is being done before the first round (``"building the matrices..."``).

        It opens the bar and shows ``text`` where the metrics will be; the first round
        replaces it.
        """
        self._open()
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    @contextlib.contextmanager
    def preparing(self, text: str) -> Iterator[None]:
        """Show ``text`` (:meth:`status`) while the block runs; a failure there ends the bar."""
        self.status(text)
        try:
            yield
        except BaseException:
            self._close("failed")
            raise

    def _close(self, how: str, done: int | None = None, line: str | None = None) -> None:
        """End the bar: ``"done"`` (complete, with ``line`` if given) or failed/interrupted.

        A training that ran fewer rounds than asked and succeeded (early stopping) ends with a
        full bar of ``done`` rounds and ``line``; a failure or an interruption keeps the bar
        where it was, red in a notebook, and says so instead of a stale time estimate. The
        widget's display is then updated, so that its plain text is this final state. The bar
        never costs a training its result: a failure here is logged.
        """
        try:
            self._end(how, done, line)
        except Exception as e:
            logger.warning("could not finish the progress bar: %s", e)

    def _end(self, how: str, done: int | None, line: str | None) -> None:
        bar = self._bar
        if bar is None or bar.disable:
            return
        widget = self._display is not None
        if how == "done":
            done = bar.n if done is None else done
            if 0 < done < bar.total or line:
                bar.n = bar.total = max(done, 1)
                if widget:
                    bar.container.children[1].max = bar.total
                bar.bar_format = _FINAL_FORMAT
                bar.set_postfix_str(line or f"finished after {plural(done, 'round')}", False)
        else:
            bar.bar_format = _FINAL_FORMAT
            bar.set_postfix_str(f"{how} after {plural(bar.n, 'round')}", refresh=False)
            if widget:  # red even if every round had run (tqdm would make it green)
                bar.disp(bar_style="danger")
        close_bar(bar, self._display)

    # --- running -----------------------------------------------------------------------
    def run(
        self,
        fn: Callable[[], T],
        on_interrupt: Callable[[], None] | None = None,
        rounds_of: Callable[[T], int] | None = None,
        outcome: Callable[[T], str | None] | None = None,
    ) -> T:
        """Run ``fn`` (the blocking training call) in a thread while showing its rounds.

        The first Ctrl-C calls ``on_interrupt`` (which should ask the workers to stop after
        the current round) and keeps waiting for the model so far; a second one gives up.
        :attr:`on_round`, when set, sees each round as it arrives (in this thread); when it
        returns True, or raises, ``on_interrupt`` is called as for a Ctrl-C, the model so far
        is returned (:attr:`stopped_by_hook` says so) or the hook's error raised.
        ``rounds_of(result)`` says how many rounds the call finished, so that the events still
        on their way are waited for (briefly) before the bar closes. ``outcome(result)`` is
        the line a training that stopped early ends with (:func:`stopped_early`), or
        ``None``; it is kept in :attr:`outcome`. An interrupted training (its model so far
        returned) ends as interrupted, not complete.
        """
        self.client.subscribe_topic(self.topic, self._on_event)
        self._open()
        self._stop = on_interrupt
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                with self.client.as_current():  # the thread has no current client of its own
                    result["value"] = fn()
            except BaseException as e:
                result["error"] = e

        thread = threading.Thread(target=target, name=f"{self.topic}-call", daemon=True)
        interrupted = False
        done: int | None = None
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
                done = rounds_of(result["value"])
                self._flush(done)
            if "value" in result and outcome is not None and not interrupted:
                self.outcome = outcome(result["value"])
        finally:
            self.client.unsubscribe_topic(self.topic)
            self._drain()
            with contextlib.suppress(Exception):  # the scheduler may be gone
                self.client.run_on_scheduler(_truncate, topic=self.topic)
            stopped = interrupted or self.abandoned
            if "value" in result and not stopped:
                self._close("done", done, self.outcome)
            else:
                self._close("interrupted" if stopped else "failed")
        if "error" in result:
            raise result["error"]
        if self._hook_error is not None:
            raise self._hook_error
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
