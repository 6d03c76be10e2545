"""``generate``: synthetic domain data written as partitioned Parquet by the cluster."""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from workbench import config
from workbench._client import ensure_client
from workbench.data.catalog import CatalogEntry
from workbench.data.dataset import Dataset
from workbench.data.generators import get_generator, make_partition, partition_sizes
from workbench.data.load import with_categories

logger = logging.getLogger("workbench")

_DONE = "_SUCCESS"
#: The stamp that marks a folder as written by ``generate``: the only kind it may replace.
STAMP = "_workbench.json"
STAMP_FORMAT = "workbench-generated/1"
_PART = re.compile(r"part\.\d{5}\.parquet")
_ASIDE = re.compile(r"\.old-[0-9a-f]{8}")


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


def _step(name: str, path: str) -> None:
    """Mark the point between two steps of writing or replacing ``path`` (logged at debug).

    Each step leaves the folder in a state the docstring of :func:`generate` describes; the
    tests stop the process here to check that a crash at any step loses nothing.
    """
    logger.debug("generate: %s: %s", name, path)


def _part_name(index: int) -> str:
    return f"part.{index:05d}.parquet"


def _run_tasks(client: Any, name: str, url: str, sizes: list[int], seed: int, bar: Any) -> int:
    """Make and write every partition under ``url`` on the workers; return the bytes written."""
    from distributed import as_completed

    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    futures = [
        client.submit(
            _write_partition,
            name,
            url,
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


def _write_markers(fs: Any, folder: str, stamp: dict[str, Any], *, done: bool) -> None:
    with fs.open(f"{folder}/{STAMP}", "wb") as f:
        f.write(json.dumps(stamp, indent=1).encode())
    if done:
        with fs.open(f"{folder}/{_DONE}", "wb"):
            pass


def _write_local(
    fs: Any,
    root: str,
    url: str,
    name: str,
    sizes: list[int],
    seed: int,
    stamp: dict[str, Any],
    client: Any,
    bar: Any,
) -> int:
    """Write into a temporary sibling, then move the old folder aside, rename, remove the old."""
    token = uuid.uuid4().hex[:8]
    tmp = f"{root}.tmp-{token}"
    aside = f"{root}.old-{token}"
    fs.makedirs(tmp, exist_ok=False)
    placed = False
    try:
        nbytes = _run_tasks(client, name, fs.unstrip_protocol(tmp), sizes, seed, bar)
        _write_markers(fs, tmp, stamp, done=True)
        _step("written", tmp)
        old = _owned(fs, root, url)  # again: something may have been added while writing
        if fs.exists(root):
            os.rename(root, aside)
            _step("moved aside", aside)
        os.rename(tmp, root)
        placed = True
        _step("moved into place", root)
    except BaseException:
        if not placed:
            if os.path.isdir(aside):
                if os.path.lexists(root):  # something else took ``root`` meanwhile
                    logger.warning("the data that was at %s is now at %s", url, aside)
                else:
                    os.rename(aside, root)
            fs.rm(tmp, recursive=True)
        raise
    if os.path.isdir(aside):
        try:
            _remove_owned(fs, aside, old)
        except OSError as err:
            logger.warning("could not remove the replaced data in %s: %s", aside, err)
    return nbytes


def _write_object_store(
    fs: Any,
    root: str,
    old: dict[str, Any] | None,
    name: str,
    sizes: list[int],
    seed: int,
    stamp: dict[str, Any],
    client: Any,
    bar: Any,
) -> int:
    """Write straight to ``root``: the stamp first, the partitions, ``_SUCCESS`` last."""
    if old is not None:
        _remove_owned(fs, root, old)
        _step("old removed", root)
    fs.makedirs(root, exist_ok=True)
    _write_markers(fs, root, stamp, done=False)
    _step("stamped", root)
    try:
        nbytes = _run_tasks(client, name, fs.unstrip_protocol(root), sizes, seed, bar)
        _step("written", root)
        with fs.open(f"{root}/{_DONE}", "wb"):
            pass
    except BaseException:
        try:
            _remove_owned(fs, root, stamp)
        except OSError as err:  # pragma: no cover - the store failed as well
            logger.warning("could not remove the partial data in %s: %s", root, err)
        raise
    return nbytes


def _parse_stamp(fs: Any, folder: str, url: str) -> dict[str, Any]:
    """The stamp of ``folder``; FileExistsError if it is not one the workbench wrote."""
    try:
        with fs.open(f"{folder}/{STAMP}", "rb") as f:
            stamp = json.loads(f.read(1 << 20))
        ok = (
            isinstance(stamp, dict)
            and stamp.get("format") == STAMP_FORMAT
            and isinstance(stamp.get("files"), list)
            and all(isinstance(n, str) and _PART.fullmatch(n) for n in stamp["files"])
        )
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise FileExistsError(
            f"{url}/{STAMP} is not a stamp the workbench wrote, so {url} is not replaced; "
            "pass another path, or remove the folder yourself"
        )
    return dict(stamp)


def _owned(fs: Any, root: str, url: str) -> dict[str, Any] | None:
    """Check that ``root`` may be written: missing, an empty folder, or one the workbench wrote.

    Returns
    -------
    dict or None
        The stamp of a folder the workbench wrote; None for a missing or empty folder.

    Raises
    ------
    FileExistsError
        ``root`` is a file, a folder without the stamp, or a stamped folder holding an entry
        the stamp does not list (the first such entry is named).
    """
    if not fs.exists(root):
        return None
    if not fs.isdir(root):
        raise FileExistsError(
            f"{url} is a file; generate writes a folder there and never replaces a file: "
            "pass another path"
        )
    entries = {
        posixpath.basename(e["name"].rstrip("/")): e.get("type") for e in fs.ls(root, detail=True)
    }
    if not entries:
        return None
    if STAMP not in entries:
        raise FileExistsError(
            f"{url} holds {_first(entries, sorted(entries))} and was not written by the "
            f"workbench (it has no {STAMP}); the workbench replaces only folders it wrote "
            "itself: pass another path, or remove the folder yourself"
        )
    stamp = _parse_stamp(fs, root, url)
    ours = {STAMP, _DONE, *stamp["files"]}
    foreign = sorted(n for n, kind in entries.items() if n not in ours or kind != "file")
    if foreign:
        raise FileExistsError(
            f"{url} holds {_first(entries, foreign)}, which the workbench did not write, so "
            f"the folder is not replaced: pass another path, or move {foreign[0]!r} out"
        )
    return stamp


def _first(entries: dict[str, Any], names: list[str]) -> str:
    """``the file 'x.csv' (and 2 more)``: the first of ``names`` and how many follow."""
    what = "folder" if entries[names[0]] == "directory" else "file"
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    return f"the {what} {names[0]!r}{more}"


def _remove_owned(fs: Any, folder: str, stamp: dict[str, Any] | None) -> None:
    """Remove the workbench's own files from ``folder``, then the folder if it is empty.

    ``_SUCCESS`` goes first (a half-removed folder is never taken as complete), the stamp
    last (a half-removed folder is still known as the workbench's). Nothing else is removed.
    """
    names = [_DONE, *(stamp["files"] if stamp else []), STAMP]
    for i, n in enumerate(names):
        if fs.exists(f"{folder}/{n}"):
            fs.rm_file(f"{folder}/{n}")
        if i == 1:
            _step("removing", folder)
    if isinstance(fs, LocalFileSystem):
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("left %s: it holds files the workbench did not write", folder)


def _complete(fs: Any, folder: str) -> bool:
    """Whether ``folder`` holds a whole generated dataset: a valid stamp, its files, _SUCCESS."""
    try:
        stamp = _parse_stamp(fs, folder, folder)
    except FileExistsError:
        return False
    return all(fs.isfile(f"{folder}/{n}") for n in [_DONE, *stamp["files"]])


def _recover(fs: Any, root: str, url: str) -> None:
    """Settle what an interrupted replacement of ``root`` left in ``ROOT.old-*`` siblings.

    If ``root`` is missing, the one complete old folder is renamed back to ``root`` (two or
    more are refused, named). If ``root`` is complete, the workbench's own files in the old
    folders are removed (a folder holding anything else is left, with a warning).
    """
    parent, base = posixpath.split(root)
    if not parent or not fs.isdir(parent):
        return
    names = {posixpath.basename(p.rstrip("/")): p for p in fs.ls(parent, detail=False)}
    aside = sorted(
        p
        for n, p in names.items()
        if n.startswith(base) and _ASIDE.fullmatch(n[len(base) :]) and fs.isdir(p)
    )
    if not aside:
        return
    if not fs.exists(root):
        whole = [p for p in aside if _complete(fs, p)]
        if len(whole) > 1:
            raise FileExistsError(
                f"{url} is missing and {len(whole)} earlier versions of it were left by "
                f"interrupted replacements: {whole}; rename the one to keep to {url}"
            )
        if whole:
            os.rename(whole[0], root)
            logger.warning(
                "restored %s from %s, where an interrupted replacement had moved it", url, whole[0]
            )
        return
    if not _complete(fs, root):
        return
    for p in aside:
        try:
            stamp = _owned(fs, p, p)
        except FileExistsError as err:
            logger.warning("left %s, which an interrupted replacement moved aside: %s", p, err)
            continue
        _remove_owned(fs, p, stamp)
        logger.info("removed %s, the data an interrupted replacement had moved aside", p)


def read_stamp(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The stamp of a complete folder written by :func:`generate`, or None.

    None when ``path`` is missing, is not a folder the workbench wrote, or is incomplete
    (no ``_SUCCESS``, or a listed file is missing).
    """
    fs, root = url_to_fs(os.fspath(path))
    root = root.rstrip("/")
    if not fs.isdir(root) or not _complete(fs, root):
        return None
    return _parse_stamp(fs, root, os.fspath(path))


def check_replaceable(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Check, before any work, that ``generate(path=path, overwrite=True)`` may write there.

    Returns
    -------
    dict or None
        The stamp of the folder the workbench wrote there; None if ``path`` is missing or
        an empty folder.

    Raises
    ------
    FileExistsError
        As :func:`generate` would, naming the path and the entry the workbench did not write.
    """
    url = os.fspath(path)
    fs, root = url_to_fs(url)
    root = root.rstrip("/")
    if isinstance(fs, LocalFileSystem):
        _recover(fs, root, url)
    return _owned(fs, root, url)


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
        missing or an empty folder; anything else must be a folder this function wrote.
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
    with ``_``, so ``load`` does not read them as data.

    On a local disk the files land in a temporary sibling ``PATH.tmp-XXXXXXXX``. When all are
    written, an existing ``PATH`` is renamed aside to ``PATH.old-XXXXXXXX``, the new folder
    is renamed to ``PATH``, and only then are the old folder's own files removed. A failure
    while writing removes only the temporary folder. A crash at any point leaves the old
    data or the new data whole: at ``PATH``, or, if the crash came between the two renames,
    in ``PATH.old-XXXXXXXX`` (the next ``generate`` or catalog load of ``PATH`` renames it
    back) with the new data in ``PATH.tmp-XXXXXXXX``. Once ``PATH`` is whole, the next
    ``generate`` of ``PATH`` removes the workbench's own files from ``.old-`` folders left
    by a crash; ``.tmp-`` folders are never removed by the workbench.

    Object stores (any fsspec filesystem but the local one) cannot rename a folder (``mv``
    copies and deletes each object), so the files are written straight to ``PATH``:
    ``_workbench.json`` first, then the partitions, then ``_SUCCESS`` as the commit marker
    (each object put is atomic). With ``overwrite``, the workbench's own files of the old
    data are removed first (``_SUCCESS`` first), so a failure or crash leaves an incomplete
    folder without ``_SUCCESS`` rather than the old data; it still carries the stamp, and
    ``generate(..., overwrite=True)`` with the same arguments makes the same data again.
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
    local = isinstance(fs, LocalFileSystem)
    if local:
        _recover(fs, root, url)
    old = _owned(fs, root, url)  # refuses a file, a foreign folder or a foreign entry
    if old is not None and not overwrite:
        done = "" if fs.isfile(f"{root}/{_DONE}") else ", incomplete: no _SUCCESS"
        raise FileExistsError(
            f"{url} already holds data generated by the workbench ({old.get('generator')}, "
            f"{old.get('rows')} rows, seed {old.get('seed')}{done}); pass overwrite=True to "
            "replace it, or another path"
        )
    stamp = {
        "format": STAMP_FORMAT,
        "written_by": "workbench.generate",
        "generator": name,
        "rows": rows,
        "partitions": len(sizes),
        "seed": seed,
        "files": [_part_name(i) for i in range(len(sizes))],
    }
    client = ensure_client(client)
    bar = _progress(len(sizes), f"generate {name}")
    try:
        if local:
            nbytes = _write_local(fs, root, url, name, sizes, seed, stamp, client, bar)
        else:
            nbytes = _write_object_store(fs, root, old, name, sizes, seed, stamp, client, bar)
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
    """Return the cache folder of a generator catalog entry, generating it on first use.

    A folder with ``_SUCCESS`` is used as it is. A missing one whose old data an
    interrupted replacement left in ``FOLDER.old-*`` gets that data back; an incomplete one
    the workbench wrote is made again; one it did not write is refused (FileExistsError).
    """
    src = entry.source
    gen = get_generator(str(src["generator"]))
    rows = int(src.get("rows") or gen.default_rows)
    partitions = int(
        src.get("partitions") or max(1, -(-rows // int(config.get("data.partition-rows"))))
    )
    seed = int(src.get("seed") or 0)
    path = cache_path(gen.name, rows, partitions, seed)
    fs, root = url_to_fs(path)
    _recover(fs, root, path)
    if not fs.isfile(f"{root}/{_DONE}"):
        logger.info("generating catalog dataset %r into %s (first use)", entry.name, path)
        generate(
            gen.name, rows, path, partitions=partitions, seed=seed, overwrite=True, client=client
        )
    return path
