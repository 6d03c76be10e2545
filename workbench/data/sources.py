"""Finding the files of a dataset source and checking them before Dask reads them.

A source is a path, a folder, a glob or an fsspec URL (``s3://``, ``gs://``, ``memory://``,
``file://``) of Parquet or CSV files. Everything here reads metadata only: Parquet footers
(schemas, row counts, sizes) and the first line of CSV files.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from workbench._redact import shown
from workbench.data.folders import data_files
from workbench.data.parquet import arrow_filesystem
from workbench.errors import DataError, DataNotFoundError

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv")


@dataclass(frozen=True)
class SourceFiles:
    """The files of a source, with what their metadata says.

    Attributes
    ----------
    urls
        Full URLs of the files (with the protocol), in a stable order.
    format
        ``parquet`` or ``csv``.
    schema
        The Arrow schema shared by all files (Parquet only).
    rows
        Total rows from the Parquet footers (``None`` for CSV).
    nbytes
        Uncompressed bytes from the Parquet footers, or the file sizes for CSV.
    stats
        Nulls and range of each column that has Parquet statistics in every row group.
    groups
        For each file, the uncompressed bytes of each row group (Parquet only; empty for CSV).
    partitions
        For each file, the values of its hive partition folders (``year=2024/``) as a pyarrow
        expression; empty where the files lie in no such folders. ``schema`` then ends with
        the partition columns (dictionary-typed, so they load as categorical).
    """

    urls: tuple[str, ...]
    format: str
    schema: pa.Schema | None
    rows: int | None
    nbytes: int
    stats: dict[str, ColumnStats]
    groups: tuple[tuple[int, ...], ...] = ()
    partitions: tuple[Any, ...] = ()


def _format_of(path: str, given: str | None) -> str | None:
    if given:
        if given not in ("parquet", "csv"):
            raise ValueError(f"format={given!r}: use 'parquet' or 'csv'")
        return given
    name = path.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def find_files(
    source: str, *, format: str | None = None, storage_options: dict[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, list[str], str]:
    """Resolve ``source`` to its data files.

    Returns
    -------
    fs, paths, format
        The filesystem, the file paths on it (sorted), and the format.

    Raises
    ------
    DataNotFoundError
        Nothing exists at ``source``, or a folder or glob holds no Parquet or CSV file.
    """
    fs, path = url_to_fs(source, **(storage_options or {}))
    if any(ch in path for ch in "*?["):
        paths = sorted(p for p in fs.glob(path) if fs.isfile(p))
        if not paths:
            raise DataNotFoundError(
                f"no files match {shown(source)!r}; check the pattern and the folder"
            )
    elif (stamped := data_files(fs, path.rstrip("/"))) is not None:
        paths = stamped  # a folder the workbench wrote: the files its stamp commits, no others
    elif fs.isdir(path):
        paths = sorted(
            p
            for p in fs.find(path)
            if _format_of(p, format) and not posixpath.basename(p).startswith(("_", "."))
        )
        if not paths:
            raise DataNotFoundError(
                f"the folder {shown(source)!r} holds no Parquet or CSV files "
                f"({', '.join(PARQUET_SUFFIXES + CSV_SUFFIXES)}); name the files or pass format="
            )
    elif fs.isfile(path):
        paths = [path]
    else:
        raise DataNotFoundError(
            f"{shown(source)!r} does not exist; check the path (and the credentials for a URL)"
        )
    formats = {_format_of(p, format) for p in paths}
    if None in formats or len(formats) > 1:
        kinds = sorted(str(f) for f in formats)
        raise DataError(
            f"{shown(source)!r} mixes or hides the file format ({', '.join(kinds)}); point at "
            "Parquet or CSV files only, or pass format='parquet' / 'csv'"
        )
    return fs, paths, formats.pop() or "parquet"


@dataclass
class ColumnStats:
    """A column's nulls and range over all files, from the Parquet statistics."""

    rows: int = 0
    nulls: int = 0
    min: Any = None
    max: Any = None

    def add(self, stats: Any, num_values: int) -> bool:
        """Fold in one row group's statistics; False when they are missing or incomplete."""
        if stats is None or not stats.has_null_count:
            return False
        self.rows += num_values
        self.nulls += stats.null_count
        if stats.has_min_max:
            self.min = stats.min if self.min is None else min(self.min, stats.min)
            self.max = stats.max if self.max is None else max(self.max, stats.max)
        elif stats.null_count < num_values:
            return False
        return True


def _column_stats(meta: pq.FileMetaData, into: dict[str, ColumnStats | None]) -> None:
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            col = group.column(c)
            name = col.path_in_schema
            current = into.setdefault(name, ColumnStats())
            if current is not None and not current.add(col.statistics, group.num_rows):
                into[name] = None


def inspect_parquet(
    fs: fsspec.AbstractFileSystem, paths: list[str]
) -> tuple[pa.Schema, int, int, dict[str, ColumnStats], tuple[tuple[int, ...], ...]]:
    """Read every file's footer; check that all schemas agree.

    Returns
    -------
    schema, rows, nbytes, stats, groups
        The common schema, total rows, total uncompressed bytes, for each column whose
        every row group has statistics its nulls and range (no data is read for these), and
        for each file the uncompressed bytes of each row group.

    Raises
    ------
    DataError
        A file that is not valid Parquet, or whose schema differs from the first file's
        (the file, the column and both types are named).
    """
    first: pa.Schema | None = None
    rows = nbytes = 0
    stats: dict[str, ColumnStats | None] = {}
    groups: list[tuple[int, ...]] = []
    for p in paths:
        try:
            with fs.open(p, "rb") as f:
                meta = pq.ParquetFile(f).metadata
        except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError) as err:
            raise DataError(
                f"{shown(p)} is not a readable Parquet file ({shown(err)}); replace or remove it"
            ) from None
        schema = meta.schema.to_arrow_schema()  # with pandas' metadata: index, nullable types
        rows += meta.num_rows
        groups.append(tuple(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)))
        nbytes += sum(groups[-1])
        if first is None:
            first, first_path = schema, p
        if schema.equals(first):
            _column_stats(meta, stats)  # only once the types agree: their ranges compare
            continue
        a, b = set(first.names), set(schema.names)
        if a != b:
            missing, extra = sorted(a - b), sorted(b - a)
            raise DataError(
                f"{shown(p)} has other columns than {shown(first_path)}: missing {missing}, "
                f"extra {extra}. All files of a dataset need the same columns."
            )
        for name in first.names:
            t1, t2 = first.field(name).type, schema.field(name).type
            if t1 != t2:
                raise DataError(
                    f"column {name!r} is {t2} in {shown(p)} but {t1} in {shown(first_path)}. "
                    "Rewrite the file with the same type, or select columns that agree "
                    "(columns=[...])."
                )
    assert first is not None
    return first, rows, nbytes, {k: v for k, v in stats.items() if v is not None}, tuple(groups)


def inspect_csv(fs: fsspec.AbstractFileSystem, paths: list[str]) -> int:
    """Check that every CSV file has the same header line; return their total size in bytes."""
    header: str | None = None
    for p in paths:
        with fs.open(p, "rt", compression="infer") as f:
            line = f.readline().strip()
        if not line:
            raise DataError(f"{shown(p)} is empty; a CSV file needs a header line and rows")
        if header is None:
            header, first_path = line, p
        elif line != header:
            raise DataError(
                f"{shown(p)} has the header {line!r} but {shown(first_path)} has {header!r}; "
                "all files of a dataset need the same columns"
            )
    return int(sum(fs.size(p) or 0 for p in paths))


def _base(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    """The folder under which the files of ``path`` (a folder or a glob) lie."""
    if any(ch in path for ch in "*?["):
        head = path[: min(path.index(ch) for ch in "*?[" if ch in path)]
        return head.rstrip("/") if head.endswith("/") else posixpath.dirname(head)
    return path.rstrip("/") if fs.isdir(path) else None


def hive_partitions(
    source: str,
    paths: list[str],
    storage_options: dict[str, Any] | None,
) -> tuple[pa.Schema | None, tuple[Any, ...]]:
    """The hive partition columns of files in ``key=value/`` folders, and each file's values.

    Arrow's hive partitioning discovers them (as dictionaries, so they load as categorical,
    as ``dask.dataframe.read_parquet`` made them); ``(None, ())`` where there are none.
    """
    fs, path = url_to_fs(source, **(storage_options or {}))
    base = _base(fs, path)
    if base is None:
        return None, ()
    folders = [posixpath.relpath(posixpath.dirname(p), base) for p in paths]
    if not any("=" in part for f in folders for part in f.split("/")):
        return None, ()
    arrow_fs, _ = arrow_filesystem(source, storage_options)
    try:
        dataset = pads.dataset(
            paths,
            filesystem=arrow_fs,
            format="parquet",
            partitioning=pads.HivePartitioning.discover(infer_dictionary=True),
            partition_base_dir=base,
        )
    except (pa.ArrowException, ValueError) as err:
        raise DataError(
            f"{shown(source)!r}: the partition folders do not agree ({shown(err)})"
        ) from None
    keys = {f.path: f.partition_expression for f in dataset.get_fragments()}
    fields = pa.schema(dataset.partitioning.schema)
    return fields, tuple(keys[p] for p in paths)


def inspect_source(
    source: str, *, format: str | None = None, storage_options: dict[str, Any] | None = None
) -> SourceFiles:
    """Find and check the files of ``source`` (see :func:`find_files`, :func:`inspect_parquet`)."""
    fs, paths, fmt = find_files(source, format=format, storage_options=storage_options)
    urls = tuple(fs.unstrip_protocol(p) for p in paths)
    if fmt == "parquet":
        schema, rows, nbytes, stats, groups = inspect_parquet(fs, paths)
        fields, partitions = hive_partitions(source, paths, storage_options)
        if fields is not None:
            clash = [n for n in fields.names if n in schema.names]
            if clash:
                raise DataError(
                    f"{shown(source)!r}: the partition folder key(s) {clash} are also columns in "
                    "the files; rename the folders or the columns"
                )
            for f in fields:
                schema = schema.append(f)
        return SourceFiles(urls, fmt, schema, rows, nbytes, stats, groups, partitions)
    return SourceFiles(urls, fmt, None, None, inspect_csv(fs, paths), {})
