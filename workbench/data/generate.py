"""``generate``: synthetic domain data written as partitioned Parquet by the cluster."""

from __future__ import annotations

import functools
import logging
import os
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from workbench import config
from workbench._client import ensure_client
from workbench._redact import shown
from workbench.checks import whole_number
from workbench.data import folders
from workbench.data.catalog import CatalogEntry, cache_path, resolve_entry
from workbench.data.columns import with_categories
from workbench.data.dataset import Dataset
from workbench.data.generators import (
    default_partitions,
    get_generator,
    make_partition,
    meta,
    partition_sizes,
)
from workbench.data.parquet import ReadPlan, Roles, parquet_frame, parquet_reader, pieces
from workbench.data.sources import inspect_source
from workbench.display.bars import close_bar, open_bar

logger = logging.getLogger(__name__)


def roles(name: str) -> Roles:
    """The roles of a generator's columns, which every file it writes carries.

    The target and task are the generator's; its ``*_id`` columns (``transaction_id``,
    ``reading_id``: the global row number) are id columns; every other column is a feature,
    categorical where the generator makes it so.
    """
    gen = get_generator(name)
    columns = [c for c in meta(name).columns if c != gen.target]
    ids = tuple(c for c in columns if c.endswith("_id"))
    features = {
        c: ("categorical" if c in gen.categorical else "numeric") for c in columns if c not in ids
    }
    return Roles(gen.target, gen.task, features, ids)


def _write_partition(
    name: str, url: str, file: str, index: int, n_rows: int, first_row: int, seed: int
) -> tuple[int, int]:
    """Make partition ``index`` and write it, with the columns' roles, as ``file`` under ``url``."""
    frame = make_partition(name, n_rows, seed, index, first_row)
    fs, root = url_to_fs(url)
    table = roles(name).stamp(pa.Table.from_pandas(frame, preserve_index=False))
    with fs.open(f"{root}/{file}", "wb") as f:
        pq.write_table(table, f)
    return index, int(table.nbytes)


def _progress(total: int, desc: str) -> tuple[Any, Any]:
    """The bar over the partitions, and its display handle (see :mod:`workbench.display.bars`)."""
    if not config.get("data.progress"):
        return None, None
    return open_bar(config.in_kernel(), total=total, desc=desc, unit="partition")


def _part_name(generation: str, index: int) -> str:
    """``part.00000.parquet``, or ``part.3fa2b1c0.00000.parquet`` with a generation."""
    return f"part.{generation}{index:05d}.parquet"


def _run_tasks(
    client: Any, name: str, url: str, files: list[str], sizes: list[int], seed: int, bar: Any
) -> int:
    """Make and write every partition under ``url`` on the workers; return the bytes written."""
    from distributed import as_completed

    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    futures = [
        client.submit(
            _write_partition,
            name,
            url,
            files[i],
            i,
            n,
            first,
            seed,
            pure=False,
            key=f"workbench-generate-{name}-{i}-{uuid.uuid4().hex[:6]}",
        )
        for i, (n, first) in enumerate(zip(sizes, starts, strict=True))
    ]
    nbytes = 0
    try:
        for future in as_completed(futures, loop=client.loop):
            nbytes += future.result()[1]
            if bar is not None:
                bar.update(1)
    except BaseException:
        client.cancel(futures)
        raise
    return nbytes


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
        Folder or fsspec URL to write to (default: under ``workbench.data.cache``). It may be
        missing or an empty folder; anything else must be a folder this function wrote (an
        earlier version's, with only ``_SUCCESS`` and ``part.NNNNN.parquet`` files, counts).
    partitions
        Number of files; default about ``workbench.data.partition-rows`` rows each.
    seed
        The same seed gives the same data, whatever the number of workers.
    overwrite
        Replace a folder that this function wrote before. A folder the workbench did not
        write, or one that now holds anything it did not write, is never replaced.
    client
        The Dask client; the current one (or a new default cluster) by default.

    Returns
    -------
    Dataset
        The written data, ready to split and persist (no extra pass: the generator knows
        the schema, the categories and the row count).

    Raises
    ------
    FileExistsError
        ``path`` is a file; or a folder without the workbench's stamp (``_workbench.json``);
        or a stamped folder that holds an entry the stamp does not list (the message names
        it); or, without ``overwrite``, a folder this function wrote. Nothing is removed.

    Notes
    -----
    Each partition is made and written by its own task, so a worker holds one partition at a
    time. The folder gets ``_workbench.json`` (who wrote it, the generator, rows, partitions,
    seed and the files written) and, once every file is written, ``_SUCCESS``. Both start
    with ``_``, so ``load`` does not read them as data; ``load`` reads the files the stamp
    lists. Each file's Parquet metadata carries the columns' roles (:func:`roles`: target,
    task, feature kinds, id columns), so ``wb.load(path)`` needs no ``target=`` or
    ``categorical=`` and leaves the id columns out of the features. The folder is checked
    and replaced by :mod:`workbench.data.folders`, which owns these rules:

    On a local disk the files (``part.00000.parquet`` onwards) land in a temporary sibling
    ``PATH.tmp-XXXXXXXX``. When all are written, an existing ``PATH`` is renamed aside to
    ``PATH.old-XXXXXXXX``, the new folder is renamed to ``PATH``, and only then are the old
    folder's own files removed. A failure while writing removes only the temporary folder. A
    crash at any point leaves the old data or the new data whole: at ``PATH``, or, if the
    crash came between the two renames, in ``PATH.old-XXXXXXXX`` (the next ``generate`` or
    catalog load of ``PATH`` renames it back) with the new data in ``PATH.tmp-XXXXXXXX``.
    Once ``PATH`` is whole, the next ``generate`` of ``PATH`` removes the workbench's own
    files from the ``.old-`` and complete ``.tmp-`` folders a crash left.

    Object stores (any fsspec filesystem but the local one) cannot rename a folder (``mv``
    copies and deletes each object), so the new files are written into ``PATH`` beside the
    old ones under new names (``part.<generation>.00000.parquet``) and one put of
    ``_workbench.json``, which lists the data files, commits them; only then are the old
    files removed. A crash or failure at any point leaves the old or the new data whole and
    loadable; a failure removes the new files it wrote and keeps the old data and the stamp.
    """
    gen = get_generator(name)
    rows = gen.default_rows if rows is None else rows
    rows = whole_number(rows, "rows", 1)
    seed = whole_number(seed, "seed")
    if partitions is None:
        partitions = default_partitions(rows)
    sizes = partition_sizes(rows, partitions)
    if path is None:
        path = cache_path(name, rows, partitions, seed, gen.version)
    url = os.fspath(path)
    fs, root = url_to_fs(url)
    root = root.rstrip("/")
    old = folders.check_replaceable(url)  # refuses a file, a foreign folder or a foreign entry
    if old is not None and not overwrite:
        done = "" if folders.read_stamp(url) is not None else ", incomplete: no _SUCCESS"
        what = (
            f"{old['generator']}, {old.get('rows')} rows, seed {old.get('seed')}"
            if "generator" in old
            else "an earlier version"
        )
        raise FileExistsError(
            f"{shown(url)} already holds data generated by the workbench ({what}{done}); "
            "pass overwrite=True to replace it, or another path"
        )
    generation = folders.generation(url)  # new file names where they land beside the old
    names = [_part_name(generation, i) for i in range(len(sizes))]
    stamp = {
        "format": folders.GENERATED,
        "written_by": "workbench.generate",
        "generator": name,
        "rows": rows,
        "partitions": len(sizes),
        "seed": seed,
        "files": names,
    }
    client = ensure_client(client)
    bar, handle = _progress(len(sizes), f"generate {name}")
    write = functools.partial(
        _run_tasks, client, name, files=names, sizes=sizes, seed=seed, bar=bar
    )
    try:
        nbytes = folders.replace_folder(url, stamp, write, old=old)
    finally:
        if bar is not None:
            close_bar(bar, handle)
    described = roles(name)
    files = inspect_source(fs.unstrip_protocol(root))  # footers only
    assert files.schema is not None
    plan = ReadPlan(parquet_reader(files.schema), tuple(pieces(files.urls, files.groups)))
    frame = parquet_frame(plan.reader, list(plan.pieces), files.schema)
    empty = meta(name)
    categories = {c: list(empty[c].cat.categories) for c in gen.categorical}
    frame = with_categories(frame, categories)
    # row identifiers (transaction_id, reading_id) stay with the rows but are not features,
    # as wb.load(path) of these files makes them
    ids = list(described.id_columns)
    frame = frame[[*ids, *described.features, gen.target]]
    parts = f"{len(sizes)} partition{'s' if len(sizes) != 1 else ''}"
    logger.info("wrote %s rows of %r in %s to %s", f"{rows:,}", name, parts, shown(url))
    return Dataset(
        frame,
        gen.target,
        dict(described.features),
        gen.task,
        categories,
        url,
        rows,
        nbytes or None,
        plan=plan.describing(frame),
        id_columns=ids,
    )


def ensure_generated(entry: CatalogEntry, client: Any = None) -> str:
    """Return the cache folder of a generator catalog entry, generating it on first use.

    A folder with ``_SUCCESS`` is used as it is. A missing one whose old data an
    interrupted replacement left in ``FOLDER.old-*`` gets that data back; an incomplete one
    the workbench wrote is made again; one it did not write is refused (FileExistsError).
    """
    where = resolve_entry(entry)
    if where.generator is None:
        raise ValueError(f"catalog entry {entry.name!r} has no generator; it reads {where.path}")
    path = where.path
    fs, root = url_to_fs(path)
    folders.recover(path)
    if not fs.isfile(f"{root}/{folders.DONE}"):
        logger.info("generating catalog dataset %r into %s (first use)", entry.name, path)
        generate(
            where.generator,
            where.rows,
            path,
            partitions=where.partitions,
            seed=where.seed or 0,
            overwrite=True,
            client=client,
        )
    return path
