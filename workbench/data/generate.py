"""``generate``: synthetic domain data written as partitioned Parquet by the cluster."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from workbench import config
from workbench._client import ensure_client
from workbench.data.catalog import CatalogEntry
from workbench.data.dataset import Dataset
from workbench.data.generators import get_generator, make_partition, partition_sizes
from workbench.data.load import with_categories

logger = logging.getLogger("workbench")

_DONE = "_SUCCESS"


def _write_partition(
    name: str, url: str, index: int, n_rows: int, first_row: int, seed: int
) -> tuple[int, int]:
    """Make partition ``index`` and write it as ``part.NNNNN.parquet`` under ``url``."""
    frame = make_partition(name, n_rows, seed, index, first_row)
    fs, root = url_to_fs(url)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with fs.open(f"{root}/part.{index:05d}.parquet", "wb") as f:
        pq.write_table(table, f)
    return index, int(table.nbytes)


def _progress(total: int, desc: str) -> Any:
    if not config.get("data.progress"):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="partition")


def generate(
    name: str,
    rows: int | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    partitions: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    client: Any = None,
) -> Dataset:
    """Write synthetic data of a domain as partitioned Parquet, one task per partition.

    Parameters
    ----------
    name
        ``fraud``, ``maintenance``, ``demand`` or ``higgs``.
    rows
        Number of rows (default: the generator's).
    path
        Folder or fsspec URL to write to (default: under ``workbench.data.cache``).
    partitions
        Number of files; default about ``workbench.data.partition-rows`` rows each.
    seed
        The same seed gives the same data, whatever the number of workers.
    overwrite
        Replace an existing folder; without it, an existing non-empty folder is an error.
    client
        The Dask client; the current one (or a new default cluster) by default.

    Returns
    -------
    Dataset
        The written data, ready to split and persist (no extra pass: the generator knows
        the schema, the categories and the row count).

    Notes
    -----
    Each partition is made and written by its own task, so a worker holds one partition at a
    time. The files land in a temporary folder beside ``path`` that is renamed when all are
    written: a failure leaves no partial dataset behind.
    """
    gen = get_generator(name)
    rows = gen.default_rows if rows is None else rows
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ValueError(f"rows={rows!r} must be a whole number >= 1")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a whole number >= 0")
    if partitions is None:
        partitions = max(1, -(-rows // int(config.get("data.partition-rows"))))
    sizes = partition_sizes(rows, partitions)
    if path is None:
        path = cache_path(name, rows, partitions, seed)
    url = os.fspath(path)
    fs, root = url_to_fs(url)
    root = root.rstrip("/")
    if fs.exists(root) and (not fs.isdir(root) or fs.ls(root)) and not overwrite:
        raise FileExistsError(
            f"{url} already exists and is not empty; pass overwrite=True or another path"
        )
    tmp_root = f"{root}.tmp-{uuid.uuid4().hex[:8]}"
    fs.makedirs(tmp_root, exist_ok=True)
    tmp_url = fs.unstrip_protocol(tmp_root)
    client = ensure_client(client)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    bar = _progress(len(sizes), f"generate {name}")
    nbytes = 0
    futures: list[Any] = []
    try:
        from distributed import as_completed

        futures = [
            client.submit(
                _write_partition,
                name,
                tmp_url,
                i,
                n,
                first,
                seed,
                pure=False,
                key=f"workbench-generate-{name}-{i}-{uuid.uuid4().hex[:6]}",
            )
            for i, (n, first) in enumerate(zip(sizes, starts, strict=True))
        ]
        for future in as_completed(futures, loop=client.loop):
            nbytes += future.result()[1]
            if bar is not None:
                bar.update(1)
        with fs.open(f"{tmp_root}/{_DONE}", "wb"):
            pass
        if fs.exists(root):
            fs.rm(root, recursive=True)
        fs.mv(tmp_root, root, recursive=True)
    except BaseException:
        client.cancel(futures)
        fs.rm(tmp_root, recursive=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    from workbench.data.generators import meta

    empty = meta(name)
    from workbench.data.parquet import ReadPlan, parquet_frame, parquet_reader, pieces
    from workbench.data.sources import inspect_source

    files = inspect_source(fs.unstrip_protocol(root))  # footers only
    assert files.schema is not None
    plan = ReadPlan(parquet_reader(files.schema), tuple(pieces(files.urls, files.groups)))
    frame = parquet_frame(plan.reader, list(plan.pieces), files.schema)
    categories = {c: list(empty[c].cat.categories) for c in gen.categorical}
    frame = with_categories(frame, categories)
    # row identifiers (transaction_id, reading_id) stay in the files but are not features
    features = {
        c: ("categorical" if c in gen.categorical else "numeric")
        for c in empty.columns
        if c != gen.target and not c.endswith("_id")
    }
    frame = frame[[*features, gen.target]]
    parts = f"{len(sizes)} partition{'s' if len(sizes) != 1 else ''}"
    logger.info("wrote %s rows of %r in %s to %s", f"{rows:,}", name, parts, url)
    return Dataset(
        frame,
        gen.target,
        features,
        gen.task,
        categories,
        url,
        rows,
        nbytes or None,
        plan=plan.describing(frame),
    )


def cache_path(name: str, rows: int, partitions: int, seed: int) -> str:
    """The folder under ``workbench.data.cache`` for generated data of these parameters."""
    cache = Path(os.path.expandvars(str(config.get("data.cache")))).expanduser()
    return str(cache / f"{name}-{rows}rows-{partitions}parts-seed{seed}")


def ensure_generated(entry: CatalogEntry, client: Any = None) -> str:
    """Return the cache folder of a generator catalog entry, generating it on first use."""
    src = entry.source
    gen = get_generator(str(src["generator"]))
    rows = int(src.get("rows") or gen.default_rows)
    partitions = int(
        src.get("partitions") or max(1, -(-rows // int(config.get("data.partition-rows"))))
    )
    seed = int(src.get("seed") or 0)
    path = cache_path(gen.name, rows, partitions, seed)
    if not os.path.exists(os.path.join(path, _DONE)):
        logger.info("generating catalog dataset %r into %s (first use)", entry.name, path)
        generate(
            gen.name, rows, path, partitions=partitions, seed=seed, overwrite=True, client=client
        )
    return path
