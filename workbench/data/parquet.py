"""Parquet files as a Dask DataFrame with one partition per file (or per group of row groups).

Why not ``dask.dataframe.read_parquet``: its optimizer fuses the partitions of small reads (a
few columns of small files) into fewer tasks, so the partitions depend on which columns are
read. Splits draw their random numbers per partition; with fused partitions the same seed gave
other rows when other columns were loaded (a test in ``test_data.py`` shows it). Here the
partitions come from the file footers only: the same files give the same partitions whatever
the columns, filters or cluster. Reading stays pyarrow's (``pyarrow.dataset`` fragments, with
column projection, row filters and row-group pruning); Dask's ``from_map`` makes the frame and
pushes column selections into the reader.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from dask.dataframe.utils import clear_known_categories, pyarrow_strings_enabled
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from workbench import config
from workbench._redact import redacted_repr, shown
from workbench.errors import DataError

logger = logging.getLogger(__name__)

#: The key of the workbench's column roles in a Parquet file's key-value metadata.
ROLES_KEY = b"workbench.roles"


class Piece(NamedTuple):
    """One partition: a file's URL, the row groups to read, its hive partition values.

    Dask's ``from_map`` keeps the pieces, and ``expr.pprint()`` prints them: the ``repr``
    masks a password or signature in the URL (see :mod:`workbench._redact`). The fields keep
    the real URL, which the reader opens and Dask's tokenize hashes.

    Attributes
    ----------
    url
        The file's full URL.
    row_groups
        The row groups to read; ``None``: the whole file.
    partition
        The values of its hive partition columns (``year=2024/`` folders) as a pyarrow
        expression, or ``None``.
    """

    url: str
    row_groups: tuple[int, ...] | None = None
    partition: Any = None

    def __repr__(self) -> str:
        return (
            f"Piece(url={shown(self.url)!r}, row_groups={self.row_groups!r}, "
            f"partition={self.partition!r})"
        )


def pieces(
    urls: tuple[str, ...],
    groups: tuple[tuple[int, ...], ...],
    partitions: tuple[Any, ...] | None = None,
    max_bytes: int | None = None,
) -> list[Piece]:
    """Partition files into pieces of at most ``max_bytes`` uncompressed (whole row groups).

    Parameters
    ----------
    urls
        The files.
    groups
        For each file, the uncompressed bytes of each of its row groups (from the footer).
    partitions
        For each file, its hive partition expression (or ``None``).
    max_bytes
        The most bytes in one piece (default ``workbench.data.partition-bytes``); a row group
        larger than that is a piece of its own. A file that fits is one piece.
    """
    limit = int(dask.utils.parse_bytes(config.get("data.partition-bytes", max_bytes)))
    keys = partitions if partitions is not None else (None,) * len(urls)
    out: list[Piece] = []
    for url, sizes, key in zip(urls, groups, keys, strict=True):
        if sum(sizes) <= limit or len(sizes) <= 1:
            out.append(Piece(url, None, key))
            continue
        current: list[int] = []
        held = 0
        for i, size in enumerate(sizes):
            if current and held + size > limit:
                out.append(Piece(url, tuple(current), key))
                current, held = [], 0
            current.append(i)
            held += size
        out.append(Piece(url, tuple(current), key))
    return out


def arrow_filesystem(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """A pyarrow filesystem and the path in it for ``url`` (fsspec's, wrapped, unless local)."""
    fs, path = url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        return pafs.LocalFileSystem(), path
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def read_piece(
    piece: Piece,
    columns: list[str] | None,
    filters: Any = None,
    storage_options: dict[str, Any] | None = None,
    schema: pa.Schema | None = None,
) -> pa.Table:
    """Read one piece as an Arrow table: those columns, the rows that pass ``filters``.

    ``schema`` (the files' schema with the hive partition columns) is needed where the piece
    has partition values: Arrow fills those columns from them.

    Raises
    ------
    DataError
        The file cannot be read (it names the file).
    """
    url, row_groups, partition = piece
    fs, path = arrow_filesystem(url, storage_options)
    expression = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    try:
        fragment = pads.ParquetFileFormat().make_fragment(
            path,
            filesystem=fs,
            partition_expression=partition,
            row_groups=list(row_groups) if row_groups is not None else None,
        )
        return fragment.to_table(
            schema=schema if partition is not None else None,
            columns=columns,
            filter=expression,
            use_threads=False,
        )
    except (pa.ArrowException, OSError) as err:
        why = " ".join(str(err).split())
        raise DataError(
            f"{shown(url)} could not be read ({shown(why)}); replace or remove it"
        ) from None


def piece_error(piece: Piece, err: Exception, doing: str) -> DataError:
    """A :class:`DataError` for an Arrow error while ``doing`` something with ``piece``."""
    why = shown(" ".join(str(err).split()))
    return DataError(
        f"{shown(piece[0])}: {doing} failed ({type(err).__name__}: {why}); leave the column "
        "out with features=[...] or convert it in the files"
    )


def _types_mapper(strings: bool) -> Any:
    if not strings:
        return None
    string = pd.StringDtype("pyarrow")
    return {pa.string(): string, pa.large_string(): string}.get


@dataclass(frozen=True)
class ParquetReader:
    """Reads one :data:`Piece` as a pandas DataFrame; Dask passes the columns it needs.

    Attributes
    ----------
    columns
        The columns every partition has, in order.
    filters
        Row filters (pyarrow's list-of-tuples form or an expression), or ``None``.
    storage_options
        fsspec options for the files' filesystem. Its ``repr`` (which Dask's
        ``expr.pprint()`` shows) masks their secrets (see :mod:`workbench._redact`).
    strings
        Strings become pyarrow-backed ``string`` columns (Dask's ``dataframe.convert-string``).
    schema
        The files' schema with their hive partition columns, where they have some.
    """

    columns: tuple[str, ...]
    filters: Any = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    strings: bool = True
    schema: pa.Schema | None = None

    __repr__ = redacted_repr

    def table(self, piece: Piece, columns: list[str] | None = None) -> pa.Table:
        """The piece as an Arrow table of ``columns`` (default: all of :attr:`columns`)."""
        names = list(self.columns) if columns is None else list(columns)
        return read_piece(piece, names, self.filters, self.storage_options, self.schema)

    def __call__(self, piece: Piece, columns: list[str] | None = None) -> pd.DataFrame:
        """One partition; the index is a RangeIndex from 0, as ``read_parquet`` gives."""
        table = self.table(piece, columns)
        return table.to_pandas(
            types_mapper=_types_mapper(self.strings), split_blocks=True, self_destruct=True
        )

    def meta(self, schema: pa.Schema) -> pd.DataFrame:
        """The empty frame that every partition looks like."""
        empty = schema.empty_table().select(list(self.columns))
        # categories are known per partition only, as read_parquet marks them
        return clear_known_categories(empty.to_pandas(types_mapper=_types_mapper(self.strings)))


@dataclass(frozen=True)
class SplitStep:
    """One :meth:`Dataset.split` taken: which part of which fractions, drawn how."""

    fractions: tuple[float, ...]
    seed: int
    part: int
    stratify_by: str | None


@dataclass(frozen=True)
class ReadPlan:
    """How a dataset's rows come from its Parquet files, for reading them without pandas.

    A :class:`Dataset` made by :func:`workbench.load` (or ``generate``) carries one, and its
    splits add their steps; any other change of the frame drops it. ``to_arrays`` then reads
    each piece into Arrow, takes the split's rows and writes ``X`` straight from Arrow: the
    same rows and values as through the frame (a test compares both), without the pandas
    frame and its category recoding.

    Attributes
    ----------
    reader
        The reader of the frame's partitions.
    pieces
        The partitions, in order (a split draws per partition number).
    splits
        The splits taken, in order.
    frame
        The name of the Dask frame whose rows the plan gives.
    """

    reader: ParquetReader
    pieces: tuple[Piece, ...]
    splits: tuple[SplitStep, ...] = ()
    frame: str = ""

    def split(self, step: SplitStep) -> ReadPlan:
        """The plan of one part of a split of this one."""
        return ReadPlan(self.reader, self.pieces, (*self.splits, step), self.frame)

    def describing(self, frame: dd.DataFrame) -> ReadPlan:
        """The same plan, for ``frame`` (a plan is used only with the frame it describes)."""
        return ReadPlan(self.reader, self.pieces, self.splits, str(frame._name))

    def describes(self, frame: dd.DataFrame) -> bool:
        """Whether this plan gives the rows of ``frame`` (not a frame replaced since)."""
        return self.frame == str(frame._name)


def data_columns(schema: pa.Schema) -> list[str]:
    """The columns of a Parquet schema, less a pandas index stored as columns."""
    stored = (schema.pandas_metadata or {}).get("index_columns", []) if schema.metadata else []
    index = {c for c in stored if isinstance(c, str)}
    return [c for c in schema.names if c not in index]


def parquet_reader(
    schema: pa.Schema,
    columns: list[str] | None = None,
    filters: Any = None,
    storage_options: dict[str, Any] | None = None,
    partitioned: bool = False,
) -> ParquetReader:
    """A reader of these columns and rows of files of this schema.

    Parameters
    ----------
    schema
        The files' common Arrow schema (see :func:`workbench.data.sources.inspect_parquet`).
    columns
        The columns to read (default: all but a stored pandas index).
    filters
        Row filters, pushed into the reader: ``[("amount", ">", 0)]``.
    storage_options
        fsspec options for object storage.
    partitioned
        The files lie in hive partition folders, whose columns ``schema`` includes.

    Raises
    ------
    ValueError
        ``filters`` that do not apply to this schema (checked here, not in a task).
    """
    names = list(columns) if columns is not None else data_columns(schema)
    if filters is not None:
        try:
            expression = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
            pads.dataset(schema.empty_table()).to_table(filter=expression)
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise ValueError(f"filters={filters!r} do not apply to these files: {err}") from None
    return ParquetReader(
        tuple(names),
        filters,
        dict(storage_options or {}),
        pyarrow_strings_enabled(),
        schema if partitioned else None,
    )


def parquet_frame(reader: ParquetReader, parts: list[Piece], schema: pa.Schema) -> dd.DataFrame:
    """A Dask DataFrame of ``reader``'s columns, one partition per piece (see :func:`pieces`).

    The reader makes its own strings (``strings``); Dask's conversion of every object column
    to strings, which ``from_map`` would add, would also turn booleans with nulls, dates and
    decimals into text.
    """
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            reader,
            parts,
            meta=reader.meta(schema),
            label="read-parquet",
            enforce_metadata=False,
        )


@dataclass(frozen=True)
class Roles:
    """What each column of a table is for: the catalog metadata that travels with the files.

    ``wb.generate`` writes it into every file's Parquet key-value metadata (under
    :data:`ROLES_KEY`, as JSON), beside pandas' own, so that ``wb.load(path)`` of those files
    knows their target, task, categorical columns and row identifiers with no catalog entry
    and no pass over the data. Other tools keep or drop it; the data is the same either way.

    Attributes
    ----------
    target
        The target column, or ``None``.
    task
        ``binary``, ``multiclass`` or ``regression`` (of ``target``), or ``None``.
    features
        The feature columns and their kinds (``numeric`` or ``categorical``), in order.
    id_columns
        Columns that identify a row (``transaction_id``): kept with the rows, never features.
    """

    target: str | None = None
    task: str | None = None
    features: dict[str, str] = field(default_factory=dict)
    id_columns: tuple[str, ...] = ()

    def metadata(self) -> dict[bytes, bytes]:
        """The key-value metadata entry that carries these roles."""
        body = {
            "version": 1,
            "target": self.target,
            "task": self.task,
            "features": self.features,
            "id_columns": list(self.id_columns),
        }
        return {ROLES_KEY: json.dumps(body).encode("utf-8")}

    def stamp(self, table: pa.Table) -> pa.Table:
        """``table`` with these roles added to its schema's metadata (pandas' is kept)."""
        return table.replace_schema_metadata({**(table.schema.metadata or {}), **self.metadata()})

    @classmethod
    def of(cls, schema: pa.Schema | None) -> Roles | None:
        """The roles a Parquet schema carries, or ``None`` where it carries none.

        Roles that cannot be read (another version, wrong types) are ignored with a warning:
        the files still load, as files without roles do.
        """
        raw = (schema.metadata or {}).get(ROLES_KEY) if schema is not None else None
        if raw is None:
            return None
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or body.get("version") != 1:
                raise ValueError("not a version 1 object")
            target, task = body.get("target"), body.get("task")
            features = body.get("features") or {}
            ids = body.get("id_columns") or []
            if not all(isinstance(v, str | None) for v in (target, task)):
                raise ValueError("target and task must be strings")
            if not isinstance(features, dict) or not all(
                isinstance(k, str) and v in ("numeric", "categorical") for k, v in features.items()
            ):
                raise ValueError("features must map names to 'numeric' or 'categorical'")
            if not isinstance(ids, list) or not all(isinstance(c, str) for c in ids):
                raise ValueError("id_columns must be a list of names")
        except ValueError as err:  # json's errors are ValueErrors too
            logger.warning(
                "the files' %s metadata is not readable (%s); loading them without it",
                ROLES_KEY.decode(),
                err,
            )
            return None
        return cls(target, task, dict(features), tuple(ids))
