"""The workbench's training page in the Dask dashboard.

XGBoost trains in one long task per worker, so Dask's task stream shows nothing while the rounds
run. This page does: the running (or the last) training's rounds out of the total, a live curve
per metric with a line per data set, checkpoints and recoveries as markers and events, the rows
each worker trains on and how many it goes through per second, and the latest trainings. A
scheduler plugin (:class:`workbench.dashboard.page.TrainingPage`) reads the events the trainings
already publish (:mod:`workbench.events`) into a bounded board (:mod:`.state`); the page is a
Bokeh document of the scheduler's dashboard, like distributed's own, served at :data:`URL` and
listed in ``/individual-plots.json``, so dask-labextension offers it as a pane.

How a scheduler gets it:

- Local clusters of ``wb.start_cluster`` start their scheduler with the preload
  :data:`PRELOAD` (:func:`scheduler_options`).
- Any other scheduler: ``dask scheduler --preload workbench.dashboard.preload`` (workbench
  installed beside it), or, on a running one, ``client.register_plugin(TrainingPage())``,
  which serves the page from then on without listing it (the list is made at the start).

This module is light (no Bokeh): the page itself is in :mod:`.page`.
"""

from __future__ import annotations

import logging
from typing import Any

import dask

logger = logging.getLogger(__name__)

#: Where the page is served on the scheduler's dashboard.
URL = "/individual-workbench-training"

#: The scheduler preload that adds the page and its plugin.
PRELOAD = "workbench.dashboard.preload"


def scheduler_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """A scheduler's keyword arguments with :data:`PRELOAD` added to its preloads.

    The preloads already set (in ``options`` or in ``distributed.scheduler.preload``) are kept,
    with their arguments.

    Parameters
    ----------
    options
        ``scheduler_kwargs`` of a ``LocalCluster``, or ``None``.

    Raises
    ------
    TypeError
        ``options`` is not a dict.
    """
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"scheduler_kwargs must be a dict of Scheduler arguments, not {options!r}")
    out = dict(options or {})
    preload = out.get("preload") or dask.config.get("distributed.scheduler.preload") or []
    argv = out.get("preload_argv") or dask.config.get("distributed.scheduler.preload-argv")
    preload = [preload] if isinstance(preload, str) else list(preload)
    if PRELOAD in preload:
        return out
    if argv and isinstance(argv[0], str):  # one argument list for every preload
        argv = [list(argv)] * len(preload)
    argv = [list(a) for a in argv or [[]] * len(preload)]
    out["preload"] = [*preload, PRELOAD]
    out["preload_argv"] = [*argv, []]
    return out
