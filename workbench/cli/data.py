"""``workbench data list|generate|info``: the catalog, synthetic data, what is in a dataset."""

from __future__ import annotations

import logging

import click
from dask.utils import format_bytes

import workbench as wb
from workbench import api
from workbench.cli.options import fail
from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)


@click.group()
def data() -> None:
    """The dataset catalog, synthetic data, and what is in a dataset."""


@data.command("list")
def data_list() -> None:
    """List the datasets of the catalog."""
    click.echo(repr(wb.datasets()))
    builtin, yours = api.catalog_folders()
    click.echo(f"\nbuilt-in: {builtin}\nyours:    {yours}")


@data.command("generate")
@click.argument("name")
@click.option("--rows", type=int, default=None, help="Rows to make (default: the generator's).")
@click.option("--out", "out", required=True, help="Folder or fsspec URL to write Parquet to.")
@click.option("--partitions", type=int, default=None, help="Number of files.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a folder this command wrote before (never one holding other files).",
)
@click.option("--profile", "-p", default=None, help="Cluster profile to generate on.")
def data_generate(
    name: str,
    rows: int | None,
    out: str,
    partitions: int | None,
    seed: int,
    overwrite: bool,
    profile: str | None,
) -> None:
    """Write synthetic data of domain NAME (fraud, maintenance, demand, higgs) as Parquet."""
    try:
        ds = api.generate_on(
            name,
            rows,
            out,
            partitions=partitions,
            seed=seed,
            overwrite=overwrite,
            profile=profile,
        )
    except (WorkbenchError, ValueError, TypeError, FileExistsError) as err:
        fail(err)
    click.echo(f"wrote {ds.rows:,} rows in {ds.npartitions} partitions to {out}")


@data.command("info")
@click.argument("source")
@click.option("--format", "fmt", default=None, help="parquet or csv, if the names do not say.")
def data_info(source: str, fmt: str | None) -> None:
    """Show the schema, files, rows and sizes of a dataset (catalog name, path or URL).

    Reads file metadata only; nothing is loaded.
    """
    try:
        view = api.describe_entry(source)
        path, entry_format = source, None
        if view is not None:
            where = view.where
            path, entry_format = where.path, where.format
            click.echo(f"catalog entry {view.entry.name!r}: {view.entry.description}")
            click.echo(f"task: {view.entry.task}  target: {view.entry.target}")
            if where.generator is not None:
                click.echo(
                    f"generator: {where.generator}, {where.rows:,} rows, "
                    f"{where.partitions} partitions -> {path}"
                )
                if not view.generated:
                    click.echo("not generated yet (wb.load generates it on first use)")
                    return
        info = api.inspect_source(path, format=fmt or entry_format)
    except (WorkbenchError, ValueError, TypeError) as err:
        fail(err)
    click.echo(f"format: {info.format}, files: {len(info.urls)}")
    if info.rows is not None:
        click.echo(f"rows: {info.rows:,}")
    click.echo(
        f"bytes: {format_bytes(info.nbytes)} ({'uncompressed' if info.schema else 'on disk'})"
    )
    if info.schema is not None:
        click.echo("columns:")
        for field in info.schema:
            click.echo(f"  {field.name}: {field.type}")
    for url in info.urls[:5]:
        click.echo(f"  {url}")
    if len(info.urls) > 5:
        click.echo(f"  ... and {len(info.urls) - 5} more")
