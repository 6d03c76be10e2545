"""``workbench runs [EXPERIMENT]``: the tracked runs of an experiment (or of all), as a table."""

from __future__ import annotations

import logging
from typing import Any

import click
import pandas as pd

import workbench as wb
from workbench.cli.options import fail
from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)


@click.command("runs")
@click.argument("experiment", required=False)
@click.option(
    "--uri",
    default=None,
    help="MLflow tracking store (default: workbench.tracking.uri, MLFLOW_TRACKING_URI, "
    "else ./mlflow.db).",
)
@click.option("--params", "with_params", is_flag=True, help="Show the runs' parameters too.")
def runs_cmd(experiment: str | None, uri: str | None, with_params: bool) -> None:
    """Print the MLflow runs of EXPERIMENT (of every experiment without one), newest first.

    A row per run: its id, name, status, start (UTC), duration, parent run (a study's, for its
    trials) and final metrics; --params adds the parameters.
    """
    try:
        table = wb.runs(experiment, uri=uri)
    except (WorkbenchError, ValueError, TypeError, OSError) as err:
        fail(err)
    if table.empty:
        where = f"experiment {experiment!r}" if experiment else "the tracking store"
        click.echo(f"no runs in {where}")
        return
    click.echo(_shown(table, every_experiment=experiment is None, with_params=with_params))


def _shown(table: pd.DataFrame, *, every_experiment: bool, with_params: bool) -> str:
    """The table as text: the columns worth a terminal's width, times and durations short."""
    columns = ["run_id", "experiment", "name", "status", "start", "duration", "parent_run_id"]
    if not every_experiment:
        columns.remove("experiment")
    if table["parent_run_id"].isna().all():
        columns.remove("parent_run_id")
    columns += [c for c in table.columns if c.startswith("metrics.")]
    if with_params:
        columns += [c for c in table.columns if c.startswith("params.")]
    out = table[columns].copy()
    out["start"] = out["start"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out["duration"] = [_seconds(d) for d in out["duration"]]
    out.columns = [c.removeprefix("metrics.").removeprefix("params.") for c in out.columns]
    return str(out.to_string(index=False, na_rep="", float_format=_number))


def _seconds(duration: Any) -> str:
    return "" if pd.isna(duration) else f"{duration.total_seconds():.1f}s"


def _number(value: float) -> str:
    return f"{value:.6g}"
