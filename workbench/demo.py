"""``workbench demo``: the whole workbench in one command, on synthetic card transactions.

A local cluster (GPUs where there are), the ``fraud`` data generated as partitioned Parquet,
a stratified split, XGBoost with early stopping and a live progress bar, the test metrics, the
dashboard link and a saved model.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import click

from workbench.clusters.start import start_cluster
from workbench.data.catalog import get_entry, resolve_entry
from workbench.data.folders import check_replaceable, read_stamp
from workbench.data.generate import generate
from workbench.data.load import load
from workbench.data.sources import inspect_source
from workbench.training.api import train
from workbench.training.store import check_target

logger = logging.getLogger(__name__)


def _data(name: str, rows: int, folder: Path, client: Any) -> Any:
    """The generated dataset at ``folder``, made again only if it is not the one asked for.

    ``folder`` holds the data an earlier demo generated (its ``_workbench.json`` says what),
    or is replaced through :func:`~workbench.data.generate.generate`, which replaces only a
    folder the workbench wrote (an earlier version's data and ``_workbench_demo.json``
    included): ``run`` has checked that before starting the cluster.
    """
    stamp = read_stamp(folder)
    made = tuple(stamp.get(k) for k in ("generator", "rows", "seed")) if stamp else None
    if made == (name, rows, 0):
        click.echo(f"using the {rows:,} rows already generated in {folder}")
    else:
        generate(name, rows, folder, seed=0, overwrite=True, client=client)
    return load_catalog_like(name, str(folder), client)


def load_catalog_like(name: str, path: str, client: Any) -> Any:
    """Load ``path`` with the target, kinds and ignored columns of catalog entry ``name``."""
    entry = get_entry(name)
    if entry is None:
        return load(path, client=client)
    where = resolve_entry(entry)
    schema = inspect_source(path).schema
    features = None
    if schema is not None:
        features = [f.name for f in schema if f.name not in where.ignore and f.name != where.target]
    return load(
        path,
        target=where.target,
        features=features,
        categorical=where.categorical,
        task=where.task,
        client=client,
    )


def run(
    rows: int = 1_000_000,
    out: str = "workbench-demo",
    rounds: int = 300,
    early_stopping: int = 20,
    profile: str | None = None,
    model: str = "xgboost",
) -> dict[str, Any]:
    """Run the demo; return what it printed as values (metrics, paths, seconds).

    The data goes to ``OUT/data``, the model to ``OUT/model.wbm``. ``OUT/data`` may be
    missing, empty, or the data an earlier demo wrote (reused when it has the rows asked
    for, replaced otherwise). A ``OUT/data`` holding anything the workbench did not write is
    never touched: the demo stops before starting the cluster with a FileExistsError that
    names the entry; pass another ``out``. So does a ``OUT/model.wbm`` that is not a workbench
    model file (an earlier demo's model is replaced).
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1000:
        raise ValueError(f"rows={rows!r}: the demo needs at least 1000 rows, e.g. --rows 100000")
    start = time.perf_counter()
    folder = Path(out).expanduser()
    try:
        check_replaceable(folder / "data")
        check_target(folder / "model.wbm", "model")  # refused now, not after the training
    except FileExistsError as err:
        raise FileExistsError(f"{err} (workbench demo: another --out)") from err
    folder.mkdir(parents=True, exist_ok=True)
    with start_cluster(profile) as cluster:
        client = cluster.get_client()
        click.echo(str(cluster))
        link = cluster.dashboard_link
        if link:
            click.echo(f"dashboard: {link}")
        ds = _data("fraud", rows, folder / "data", client)
        train_ds, valid_ds, test_ds = ds.split((0.8, 0.1, 0.1), seed=0, stratify=True)
        trained = train(
            train_ds,
            valid_ds,
            model=model,
            params={"eta": 0.1} if model == "xgboost" else None,
            rounds=rounds,
            early_stopping=early_stopping if model == "xgboost" else None,
            client=client,
        )
        metrics = trained.evaluate(test_ds, client=client)
        path = trained.save(str(folder / "model.wbm"))
    seconds = time.perf_counter() - start
    best = trained.best_iteration
    click.echo(
        f"\n{model} on {trained.info['train_rows']:,} training rows: "
        f"{len(trained.history)} rounds{f' (best {best})' if best is not None else ''}, "
        f"{trained.info['seconds']:.1f} s"
    )
    click.echo("test metrics:")
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():
        click.echo(f"  {name:<{width}}  {value:.4f}")
    click.echo(f"model saved to {path}")
    if link:
        click.echo(f"dashboard was at {link} (closed with the cluster)")
    click.echo(f"demo finished in {seconds:.1f} s")
    return {"metrics": metrics, "model": path, "seconds": seconds, "dashboard": link}
