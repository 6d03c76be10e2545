"""The training page: a Bokeh document of the scheduler's dashboard, and the plugin that feeds it.

:class:`TrainingPage` is a scheduler plugin: Dask hands it every event logged on the scheduler
(``SchedulerPlugin.log_event``), and it keeps those of the workbench's trainings
(:func:`workbench.events.is_training_topic`) on a :class:`~workbench.dashboard.state.Board`.
:func:`training_doc` builds the page the way distributed builds its own (a
component redrawn by a periodic callback on the scheduler's event loop, the dashboard's
theme); :func:`add_page` puts it on a scheduler's dashboard.
"""

from __future__ import annotations

import html
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.models.widgets.markups import Div
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.server.server import BokehTornado
from distributed.dashboard import scheduler as dashboard
from distributed.dashboard.components import add_periodic_callback
from distributed.dashboard.components.scheduler import BOKEH_THEME
from distributed.dashboard.core import BokehApplication
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.utils import log_errors
from tornado.ioloop import IOLoop

from workbench.dashboard import URL
from workbench.dashboard.state import KEEP, Board, Training
from workbench.events import is_training_topic

if TYPE_CHECKING:
    from distributed import Scheduler

logger = logging.getLogger(__name__)

#: How often the page redraws (milliseconds).
REFRESH_MS = 500
#: The plugin's name on the scheduler.
PLUGIN_NAME = "workbench-training-page"
#: Line colours by data set; others take the next colours of Category10.
COLORS = {"train": Category10_10[0], "valid": Category10_10[1]}
#: Markers on the curves: event kind -> (marker, colour).
MARKS = {"checkpoint": ("diamond", "#2ca02c"), "recovery": ("x", "#d62728")}
#: Rows of the events table shown (the latest first; the board keeps more).
EVENT_ROWS = 50
# The tables' columns: (title, right-aligned)
WORKER_COLUMNS = (("worker", False), ("training rows", True), ("rows/s", True), ("state", False))
EVENT_COLUMNS = (("after start", True), ("round", True), ("event", False), ("details", False))
TRAINING_COLUMNS = (
    ("started", False),
    ("training", False),
    ("study", False),
    ("trial", True),
    ("rounds", True),
    ("outcome", False),
)
TABLE_STYLE = "border-collapse:collapse;width:100%;font-size:12px"
CELL_STYLE = "padding:2px 8px;border-bottom:1px solid #e5e5e5;white-space:nowrap"


class TrainingPage(SchedulerPlugin):
    """Keep the workbench trainings' events on a board for the training page.

    Register it on a running scheduler with ``client.register_plugin(TrainingPage())``: it
    then also serves the page on that scheduler's dashboard (see :func:`add_page`). Local
    clusters and ``--preload workbench.dashboard.preload`` install it at the start.

    Parameters
    ----------
    keep
        How many trainings the board keeps (the running ones and the latest finished).
    """

    name = PLUGIN_NAME

    def __init__(self, keep: int = KEEP) -> None:
        self.board = Board(keep)

    async def start(self, scheduler: Scheduler) -> None:
        """Serve the page on the scheduler's dashboard, if it is not served yet."""
        add_page(scheduler)

    def log_event(self, topic: str, msg: Any) -> None:
        """Keep a message of a workbench training's topic (every other event is ignored)."""
        if is_training_topic(topic) and isinstance(msg, dict):
            self.board.take(topic, msg, time.time())


def board_of(scheduler: Scheduler) -> Board:
    """The board of the scheduler's :class:`TrainingPage`, installing one where there is none."""
    plugin = scheduler.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, TrainingPage):
        plugin = TrainingPage()
        scheduler.add_plugin(plugin, name=PLUGIN_NAME, idempotent=False)
    return plugin.board


def add_page(scheduler: Scheduler | None = None) -> bool:
    """Put the training page on the dashboards of schedulers; return whether it is served.

    The page joins distributed's dashboard applications, so every scheduler that starts its
    dashboard from now on in this process serves it and lists it in ``/individual-plots.json``
    (and in the dashboard's "More" menu). A ``scheduler`` whose dashboard is already running
    without it gets it as an application of its own beside distributed's: served at
    :data:`~workbench.dashboard.URL`, but not listed, since distributed makes that list
    from the applications it started with.

    Parameters
    ----------
    scheduler
        A running scheduler to serve the page on now, or ``None``.

    Returns
    -------
    bool
        Whether ``scheduler`` serves the page (``False`` without a dashboard; ``True`` when no
        scheduler is given).
    """
    dashboard.applications.setdefault(URL, training_doc)
    if scheduler is None:
        return True
    http = getattr(scheduler, "http_application", None)
    apps = [a for a in getattr(http, "applications", []) if isinstance(a, BokehTornado)]
    if any(URL in a.app_paths for a in apps):
        return True
    if http is None or not apps:  # no dashboard (dashboard=False, or no Bokeh for it)
        return False
    page = BokehApplication({URL: training_doc}, scheduler, prefix=apps[0].prefix)
    http.add_application(page)
    page.initialize(IOLoop.current())
    page.start()
    logger.info("the workbench training page is served at %s", URL)
    return True


@log_errors
def training_doc(scheduler: Scheduler, extra: dict[str, Any], doc: Any) -> None:
    """Build the page for one browser session (distributed's dashboard calls it)."""
    view = TrainingView(board_of(scheduler))
    view.update()
    add_periodic_callback(doc, view, REFRESH_MS)
    doc.add_root(view.root)
    doc.theme = BOKEH_THEME
    doc.title = "Dask: Workbench training"


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    minutes, s = divmod(int(s), 60)
    return f"{minutes} min {s:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _value(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.4g}"


class TrainingView:
    """The page's models and how a board's state is drawn on them.

    Shaped like distributed's ``DashboardComponent`` (a ``root`` model, and ``update`` that a
    periodic callback of the document calls), without its ``update(messages)`` signature.
    The curves are Bokeh figures; the tables are HTML (Bokeh 3.9's ``DataTable`` does not
    redraw when a source changes and keeps its number of rows). :attr:`rows` holds what the
    tables show.
    """

    def __init__(self, board: Board) -> None:
        self.board = board
        self.version = -1
        self.shown: tuple[str, tuple[str, ...]] | None = None  # topic and metrics drawn
        self.curves: dict[str, tuple[ColumnDataSource, dict[str, ColumnDataSource]]] = {}
        self.rows: dict[str, list[tuple[str, ...]]] = {}
        self.header = Div(text="", sizing_mode="stretch_width")
        self.plots = row(children=[], sizing_mode="stretch_width")
        self.workers = Div(text="", sizing_mode="stretch_width")
        self.events = Div(text="", sizing_mode="stretch_width")
        self.trainings = Div(text="", sizing_mode="stretch_width")
        self.root = column(
            self.header,
            self.plots,
            row(self.workers, self.events, sizing_mode="stretch_width"),
            self.trainings,
            sizing_mode="stretch_width",
        )

    # --- drawing ------------------------------------------------------------------------
    def update(self) -> None:
        """Redraw what changed on the board; the header's clock every time."""
        current = self.board.current()
        now = time.time()
        self.header.text = _header(current, now)
        if self.board.version == self.version:
            return
        self.version = self.board.version
        if current is None:
            return
        self._draw_curves(current)
        self._draw_tables(current)

    def _draw_curves(self, t: Training) -> None:
        curves = t.curves()
        key = (t.topic, tuple(curves))
        if key != self.shown:  # another training or new metrics: new figures
            self.shown = key
            self.curves = {}
            self.plots.children = [self._figure(m, list(c)[1:]) for m, c in curves.items()]
        for metric, data in curves.items():
            source, marks = self.curves[metric]
            update(source, data)
            for kind, points in _marks(t, data).items():
                update(marks[kind], points)

    def _figure(self, metric: str, datas: list[str]) -> Any:
        source = ColumnDataSource({"round": [], **{d: [] for d in datas}})
        marks = {kind: ColumnDataSource({"round": [], "value": []}) for kind in MARKS}
        self.curves[metric] = (source, marks)
        fig = figure(
            title=f"{metric} per round",
            height=280,
            sizing_mode="stretch_width",
            tools="pan,wheel_zoom,box_zoom,reset,save",
            x_axis_label="round (boosting iteration)",
            y_axis_label=metric,
        )
        spare = iter(Category10_10[2:])
        for data in datas:
            color = COLORS.get(data) or next(spare, "#7f7f7f")
            line = fig.line(
                "round", data, source=source, color=color, line_width=2, legend_label=data
            )
            fig.add_tools(
                HoverTool(
                    renderers=[line],
                    tooltips=[("round", "@round{0}"), (f"{data}-{metric}", f"@{{{data}}}")],
                    mode="vline",
                )
            )
        for kind, (marker, color) in MARKS.items():
            fig.scatter(
                "round",
                "value",
                source=marks[kind],
                marker=marker,
                size=11,
                fill_color=color,
                line_color=color,
                line_width=2,
                legend_label=kind,
            )
        legend = fig.legend[0]
        legend.click_policy = "hide"
        legend.label_text_font_size = "11px"
        fig.add_layout(legend, "right")  # beside the curves, never over them
        fig.xaxis.minor_tick_line_color = None
        return fig

    def _draw_tables(self, t: Training) -> None:
        rate = t.rate()
        self.rows["workers"] = [
            (
                w,
                f"{rows:,}",
                "" if rate is None or w in t.lost else f"{rows * rate:,.0f}",
                "lost" if w in t.lost else ("training" if t.running else "done"),
            )
            for w, rows in t.workers.items()
        ]
        start = t.started if t.started is not None else t.seen
        self.rows["events"] = [
            (f"+{e.time - start:.1f} s", "" if e.round is None else str(e.round), e.kind, e.text)
            for e in list(t.events)[::-1][:EVENT_ROWS]  # the latest first
        ]
        self.rows["trainings"] = [
            (
                time.strftime("%H:%M:%S", time.localtime(r.started or r.seen)),
                r.title or r.topic,
                r.study or "",
                "" if r.trial is None else str(r.trial),
                f"{r.done} / {r.total}" if r.total else str(r.done),
                r.outcome(),
            )
            for r in self.board.recent()
        ]
        rate_note = "rows/s: a worker's rows x rounds per second"
        self.workers.text = _html_table("Workers", WORKER_COLUMNS, self.rows["workers"], rate_note)
        self.events.text = _html_table(
            "Events: checkpoints, recoveries, notes", EVENT_COLUMNS, self.rows["events"]
        )
        self.trainings.text = _html_table(
            "Latest trainings (a study's trials show their study and trial)",
            TRAINING_COLUMNS,
            self.rows["trainings"],
        )


def update(source: ColumnDataSource, data: dict[str, list[Any]]) -> None:
    """Replace ``source``'s data when it changed (a new dict: Bokeh redraws from it)."""
    if dict(source.data) != data:
        source.data = data


def _marks(t: Training, curve: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """Checkpoints and recoveries on the curve's first line, after the round they came."""
    first = next(d for d in curve if d != "round")
    by_round = dict(zip(curve["round"], curve[first], strict=True))
    out: dict[str, dict[str, list[float]]] = {k: {"round": [], "value": []} for k in MARKS}
    for e in t.events:
        if e.kind not in MARKS or e.round is None or e.round < 1:
            continue
        value = by_round.get(float(e.round - 1), math.nan)  # after round e.round - 1
        if not math.isnan(value):
            out[e.kind]["round"].append(float(e.round - 1))
            out[e.kind]["value"].append(value)
    return out


def _html_table(
    title: str,
    columns: tuple[tuple[str, bool], ...],
    rows: list[tuple[str, ...]],
    note: str = "",
) -> str:
    """A titled HTML table (a scroll box beyond a few rows); every text is escaped."""

    def cell(tag: str, text: str, right: bool) -> str:
        align = "right" if right else "left"
        return f"<{tag} style='{CELL_STYLE};text-align:{align}'>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", name, right) for name, right in columns)
    body = "".join(
        "<tr>"
        + "".join(cell("td", v, r) for v, (_, r) in zip(values, columns, strict=True))
        + "</tr>"
        for values in rows
    )
    small = f"<span style='color:#666;font-weight:normal'> ({html.escape(note)})</span>"
    return (
        f"<b>{html.escape(title)}</b>{small if note else ''}"
        f"<div style='max-height:200px;overflow:auto;margin:4px 8px 8px 0'>"
        f"<table style='{TABLE_STYLE}'><tr>{head}</tr>{body}</table></div>"
    )


def _header(t: Training | None, now: float) -> str:
    """The page's first lines: which training, how far, how fast, the latest metrics."""
    if t is None:
        return (
            "<h3 style='margin:4px 0'>Workbench training</h3>"
            "<p>No workbench training has run on this cluster yet: "
            "<code>wb.train(...)</code> shows its rounds here as they finish.</p>"
        )
    done, total = t.done, t.total
    share = f" ({100 * done / total:.0f}%)" if total else ""
    rate = t.rate()
    parts = [
        f"<b>{t.outcome()}</b>",
        f"round {done} of {total}{share}" if total else f"{done} rounds",
        _seconds(t.seconds(now)),
    ]
    if rate is not None:
        parts.append(f"{rate:.2f} rounds/s")
    rows = sum(t.workers.values())
    if rows:
        parts.append(f"{rows:,} training rows on {len(t.workers)} worker(s)")
    if t.study is not None:
        parts.append(f"study {html.escape(t.study)}, trial {t.trial}")
    latest = t.latest()
    metrics = ", ".join(
        f"{html.escape(d)}-{html.escape(m)} {_value(v)}"
        for d, ms in latest.items()
        for m, v in ms.items()
    )
    bar = (
        f"<progress value='{done}' max='{total}' style='width:100%;height:10px'></progress>"
        if total
        else ""
    )
    title = html.escape(t.title or t.topic)
    return (
        f"<h3 style='margin:4px 0'>Workbench training: {title}</h3>{bar}"
        f"<p style='margin:4px 0'>{' &middot; '.join(parts)}</p>"
        + (f"<p style='margin:4px 0'>latest: {metrics}</p>" if metrics else "")
    )
