"""A Dask scheduler preload that adds the workbench training page: ``--preload`` this module.

``dask scheduler --preload workbench.dashboard.preload`` (or the ``distributed.scheduler.preload``
setting, or ``Scheduler(preload=[...])``, as ``wb.start_cluster`` does for its local clusters).
A scheduler imports its preloads before it starts its dashboard, so the page is added to the
dashboard's applications here, at import, and is listed in ``/individual-plots.json``; once
the scheduler has started, :func:`dask_setup` installs the plugin that feeds the page. Nothing
here stops a scheduler from starting: without Bokeh (or with a Bokeh that Dask does not
support) there is no page, and the reason is logged.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Scheduler

logger = logging.getLogger(__name__)

page: ModuleType | None
try:
    from workbench.dashboard import page
except ImportError as e:  # Dask's dashboard refuses this Bokeh: no dashboard, no page
    page = None
    logger.warning("no workbench training page in the dashboard: %s", e)
if page is not None:
    page.add_page()


def dask_setup(scheduler: Scheduler) -> None:
    """Install the training page's plugin on a scheduler that has just started."""
    if page is None:
        return
    page.board_of(scheduler)
    if not page.add_page(scheduler):
        logger.info("the scheduler has no dashboard: the workbench training page is not served")
