"""Partitions to ``X`` and ``y`` blocks: features as one float matrix, categories as codes.

Two encoders give the same blocks: :func:`encode_frame` for a pandas partition (any
:class:`Dataset`), and :func:`encode_piece` for a Parquet piece read straight into Arrow (a
dataset that is still as :func:`workbench.load` read it, maybe split). The second skips the
pandas frame and the recoding of its categories: each value is written once, into ``X``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.data.parquet import ParquetReader, Piece, SplitStep, piece_error
from workbench.data.split import part_of_rows
from workbench.data.summary import levels

#: What an encoder gives for one partition: ``(X, y, rows, found, codes, classes)``.
Block = tuple[Any, Any, int, dict[str, list[Any]], dict[str, Any], np.ndarray | None]

# Rows written at a time: a block of the matrix stays in cache while every column is written
# into it, where whole columns would stride through the whole matrix once each.
BLOCK_ROWS = 1 << 14


def fill(out: np.ndarray, columns: dict[int, tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
    """Write ``values`` (or ``lookup[values]``, for codes) into column ``j`` of ``out``."""
    for start in range(0, len(out), BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        for j, (values, lookup) in columns.items():
            out[rows, j] = values[rows] if lookup is None else lookup[values[rows]]
    return out


def _codes(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """A column's category codes and categories (a column of values becomes categorical)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object).astype("category")
    return s.cat.codes.to_numpy(), s.cat.categories


def lookup(own: pd.Index, levels: list[Any] | None, dtype: Any) -> np.ndarray:
    """What each code of a partition becomes in ``X``: its category's position in ``levels``.

    ``NaN`` for a category not among them and, at ``[-1]``, for the missing code ``-1``; so every
    partition is encoded in the order of ``levels`` whatever the order of its own categories.
    """
    where = pd.Index(levels).get_indexer(own) if levels is not None else np.arange(len(own))
    return np.append(np.where(where < 0, np.nan, where), np.nan).astype(dtype)


def encode_frame(
    df: pd.DataFrame,
    features: list[str],
    categories: dict[str, list[Any]],
    pending: list[str],
    target: str | None,
    dtype: Any,
    gpu: bool,
    distinct: bool = False,
) -> Block:
    """One partition as ``(X, y, rows, found, codes, classes)``, on the GPU when asked.

    Categorical features get codes into their levels in ``categories``. Those in ``pending``
    have no levels yet: they get codes into the values that occur here, sorted as levels are
    (``found``), and ``codes`` keeps what :func:`fill_pending` needs to recode them where the
    levels common to all partitions differ (it moves ``X`` to the GPU then). With
    ``distinct``, ``classes`` holds the sorted distinct values of ``y`` in this partition
    (found here, where the block is in memory, so that training needs no pass of its own);
    ``None`` otherwise.
    """
    columns: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    found: dict[str, list[Any]] = {}
    codes: dict[str, Any] = {}
    for j, c in enumerate(features):
        s = df[c]
        if c in pending:
            values, own = _codes(s)
            occurs = np.zeros(len(own) + 1, dtype=bool)
            occurs[values] = True  # the missing code -1 marks the last
            found[c] = sorted(own[occurs[:-1]].tolist(), key=str)
            codes[c] = (j, values, own)
            columns[j] = (values, lookup(own, found[c], dtype))
        elif c in categories or isinstance(s.dtype, pd.CategoricalDtype):
            values, own = _codes(s)
            columns[j] = (values, lookup(own, categories.get(c), dtype))
        elif isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf":  # cast while written
            columns[j] = (s.to_numpy(), None)
        else:
            columns[j] = (s.to_numpy(dtype=dtype, na_value=np.nan), None)
    X = fill(np.empty((len(df), len(features)), dtype=dtype), columns)
    y = df[target].to_numpy() if target is not None else None
    return _block(X, y, found, codes, gpu, distinct)


def _block(
    X: np.ndarray,
    y: np.ndarray | None,
    found: dict[str, Any],
    codes: dict[str, Any],
    gpu: bool,
    distinct: bool,
) -> Block:
    """An encoder's result; on the GPU when asked (``X`` later, if it still needs recoding).

    With ``distinct``, the sorted distinct values of ``y`` are found before ``y`` moves.
    """
    rows = len(X)
    classes = np.unique(y) if distinct and y is not None else None
    if gpu:
        import cupy

        X = X if codes else cupy.asarray(X)
        y = cupy.asarray(y) if y is not None else None
    return X, y, rows, found, codes, classes


def fill_pending(
    X: np.ndarray, codes: dict[str, Any], levels: dict[str, list[Any]], gpu: bool
) -> Any:
    """``X`` of :func:`encode_frame` with its pending columns recoded into ``levels``.

    It writes those columns only, from ``codes``, so that a second run gives the same ``X``.
    """
    fill(X, {j: (v, lookup(own, levels[c], X.dtype)) for c, (j, v, own) in codes.items()})
    if gpu:
        import cupy

        return cupy.asarray(X)
    return X


def _as_values(chunk: pa.Array, dtype: Any) -> np.ndarray:
    """A numeric Arrow chunk as NumPy, nulls as NaN (no copy where there are none)."""
    if chunk.null_count == 0:
        return chunk.to_numpy(zero_copy_only=False)  # cast to ``dtype`` while written
    target = pa.from_numpy_dtype(np.dtype(dtype))
    return pc.cast(chunk, target, safe=False).to_numpy(zero_copy_only=False)


def _dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` as a dictionary column with int32 codes (read from values if it is not one)."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.type.index_type != pa.int32():
        column = column.cast(pa.dictionary(pa.int32(), column.type.value_type))
    return column


def encode_table(
    table: pa.Table,
    features: list[str],
    categories: dict[str, list[Any]],
    pending: list[str],
    target: str | None,
    dtype: Any,
    gpu: bool,
    distinct: bool = False,
) -> Block:
    """:func:`encode_frame` of an Arrow table: the same ``(X, y, rows, found, codes, classes)``.

    Categorical columns are Arrow dictionaries (or are made so); after
    :meth:`pyarrow.Table.unify_dictionaries` every batch of a column shares one dictionary,
    so each column needs one lookup from dictionary entries to positions in its levels.
    """
    cats = [
        c
        for c in features
        if c in categories or c in pending or pa.types.is_dictionary(table.schema.field(c).type)
    ]
    for c in cats:  # int32 codes: a dictionary unified over chunks may outgrow int8 codes
        i = table.schema.get_field_index(c)
        table = table.set_column(i, c, _dictionary(table.column(c)))
    table = table.unify_dictionaries()
    batches = table.to_batches()
    found: dict[str, list[Any]] = {}
    codes: dict[str, Any] = {}
    lookups: dict[int, np.ndarray] = {}
    index = {c: j for j, c in enumerate(features)}
    for c in cats:
        chunks = [b.column(c) for b in batches]
        own_arrow = chunks[0].dictionary if chunks else pa.array([])
        own = pd.Index(own_arrow.to_pylist(), dtype=object)
        if c in pending:
            found[c] = sorted(levels(table.column(c)), key=str)
            lookups[index[c]] = lookup(own, found[c], dtype)
            values = [ch.indices.fill_null(-1).to_numpy(zero_copy_only=False) for ch in chunks]
            codes[c] = (index[c], np.concatenate(values) if values else np.empty(0, np.int8), own)
        else:
            lookups[index[c]] = lookup(own, categories.get(c), dtype)
    X = np.empty((table.num_rows, len(features)), dtype=dtype)
    start = 0
    for batch in batches:
        stop = start + batch.num_rows
        columns: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        for j, c in enumerate(features):
            chunk = batch.column(c)
            if j in lookups:
                columns[j] = (
                    chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False),
                    lookups[j],
                )
            else:
                columns[j] = (_as_values(chunk, dtype), None)
        fill(X[start:stop], columns)
        start = stop
    y = table.column(target).to_numpy() if target is not None else None
    return _block(X, y, found, codes, gpu, distinct)


def encode_piece(
    piece: Piece,
    index: int,
    *,
    reader: ParquetReader,
    splits: tuple[SplitStep, ...],
    features: list[str],
    categories: dict[str, list[Any]],
    pending: list[str],
    target: str | None,
    dtype: Any,
    gpu: bool,
    distinct: bool = False,
) -> Block:
    """Read partition number ``index``, keep its rows of the ``splits``, encode it.

    ``distinct``: also find the partition's distinct target values (see :func:`encode_frame`).
    """
    names = list(dict.fromkeys([*features, *([target] if target else [])]))
    strata = {s.stratify_by for s in splits if s.stratify_by is not None}
    table = reader.table(piece, list(dict.fromkeys([*names, *strata])))
    try:
        for step in splits:
            by = table.column(step.stratify_by).to_pandas() if step.stratify_by else None
            part = part_of_rows(table.num_rows, by, step.fractions, step.seed, index)
            table = table.filter(pa.array(part == step.part))
        return encode_table(
            table.select(names), features, categories, pending, target, dtype, gpu, distinct
        )
    except pa.ArrowException as err:
        raise piece_error(piece, err, "encoding X") from None
