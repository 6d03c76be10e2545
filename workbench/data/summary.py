"""What ``load``'s checks need from each partition, computed on Arrow tables.

Each partition reports a few values (rows, the target's missing and infinite values and
classes, the levels of categorical columns, nulls and range of numeric columns without Parquet
statistics, and for columns that may identify rows their order: see :func:`order`);
:func:`combine` folds them on the client. Parquet partitions are read straight
into Arrow by the workbench's reader, the columns that the checks need only; a CSV partition
is turned into Arrow first, so both formats are checked by the same code.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: The most classes a classification target may have; one more is collected to tell.
MAX_CLASSES = 100


def _is_float(t: pa.DataType) -> bool:
    return bool(pa.types.is_floating(t))


def _drop_missing(values: pa.Array) -> pa.Array:
    """``values`` without nulls and, for floats, without NaN."""
    values = values.drop_null()
    if _is_float(values.type):
        values = values.filter(pc.invert(pc.is_nan(values)))
    return values


def levels(column: pa.ChunkedArray) -> list[Any]:
    """The distinct non-missing values of a column, as Python objects.

    Dictionary columns (categoricals written by pandas or Arrow) are read from their codes:
    a dictionary entry counts where some row uses it.
    """
    if pa.types.is_dictionary(column.type):
        # Arrow's kernels, not NumPy's: Dask workers return freed memory to the system at
        # once (MALLOC_TRIM_THRESHOLD_), so every NumPy temporary is faulted in anew
        found = [c.dictionary.take(pc.unique(c.indices).drop_null()) for c in column.chunks]
        if not found:
            return []
        values = pa.concat_arrays(found)
    else:
        values = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return list(_drop_missing(pc.unique(values)).to_pylist())


def _numeric(column: pa.ChunkedArray) -> tuple[int, Any, Any]:
    """Non-missing count, minimum and maximum (NaN and nulls left out) of a numeric column."""
    missing = column.null_count
    if _is_float(column.type):
        missing += int(pc.sum(pc.is_nan(column)).as_py() or 0)
    bounds = pc.min_max(column)
    return len(column) - missing, bounds["min"].as_py(), bounds["max"].as_py()


def order(column: pa.ChunkedArray) -> tuple[int, Any, Any, bool, bool, bool]:
    """How a column's values follow each other in one partition, to tell a row identifier.

    Returns
    -------
    tuple
        ``(missing, first, last, increasing, decreasing, distinct)``: the missing values, the
        first and last value, whether every value is greater (smaller) than the one before,
        and whether no value occurs twice. ``first`` and ``last`` are ``None`` without rows.
    """
    values = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    missing = values.null_count
    if _is_float(values.type):
        missing += int(pc.sum(pc.is_nan(values)).as_py() or 0)
    n = len(values)
    if n == 0:
        return missing, None, None, True, True, True
    if missing:
        return missing, None, None, False, False, False
    if n == 1:
        return 0, values[0].as_py(), values[0].as_py(), True, True, True
    head, tail = values.slice(0, n - 1), values.slice(1)
    increasing = bool(pc.all(pc.greater(tail, head)).as_py())
    decreasing = not increasing and bool(pc.all(pc.less(tail, head)).as_py())
    distinct = increasing or decreasing or int(pc.count_distinct(values).as_py()) == n
    return 0, values[0].as_py(), values[n - 1].as_py(), increasing, decreasing, distinct


def _target(column: pa.ChunkedArray, classes: bool) -> dict[str, Any]:
    """Missing and infinite values of the target, and its first distinct classes."""
    missing, infinite = column.null_count, 0
    if _is_float(column.type):
        missing += int(pc.sum(pc.is_nan(column)).as_py() or 0)
        infinite = int(pc.sum(pc.is_inf(column)).as_py() or 0)
    distinct: list[Any] = []
    if classes:
        values = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        distinct = _drop_missing(pc.unique(values))[: MAX_CLASSES + 1].to_pylist()
    return {"missing": missing, "infinite": infinite, "distinct": distinct}


def summarize(
    table: pa.Table,
    target: str | None,
    categorical: list[str],
    numeric: list[str],
    classes: bool,
    ids: Sequence[str] = (),
) -> dict[str, Any]:
    """One partition's summary for the checks.

    Parameters
    ----------
    table
        The partition, with at least the columns named here.
    target
        The target column, or ``None``.
    categorical
        Columns whose levels are wanted.
    numeric
        Numeric columns whose non-missing count and range are wanted.
    classes
        Collect the target's distinct values (a classification task).
    ids
        Columns that may identify rows, whose :func:`order` is wanted.
    """
    out: dict[str, Any] = {"rows": table.num_rows}
    out["levels"] = {c: levels(table.column(c)) for c in categorical}
    out["numeric"] = {c: _numeric(table.column(c)) for c in numeric}
    out["order"] = {c: order(table.column(c)) for c in ids}
    if target is not None:
        out["target"] = _target(table.column(target), classes)
    return out


def summarize_frame(
    df: pd.DataFrame,
    target: str | None,
    categorical: list[str],
    numeric: list[str],
    classes: bool,
    ids: Sequence[str] = (),
) -> dict[str, Any]:
    """:func:`summarize` of a pandas partition (CSV), through Arrow."""
    names = list(dict.fromkeys([*categorical, *numeric, *ids, *([target] if target else [])]))
    table = pa.Table.from_pandas(df[names], preserve_index=False)
    return summarize(table, target, categorical, numeric, classes, ids)


def _bound(values: list[Any], pick: Any) -> Any:
    kept = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return pick(kept) if kept else None


def identifies_rows(orders: list[tuple[int, Any, Any, bool, bool, bool]], text: bool) -> bool:
    """Whether a column identifies the rows, from its :func:`order` in each partition, in order.

    It does when no value is missing, there are two rows or more, and every value is greater
    than the one before it, through all partitions (or every one smaller): so no value occurs
    twice. A string column (``text``) does also when no value occurs twice within a partition:
    a text unique to each row (a UUID) is no category either.
    """
    if any(o[0] for o in orders):
        return False
    seen = [o for o in orders if o[1] is not None]  # the partitions with rows
    if not seen or (len(seen) == 1 and seen[0][1] == seen[0][2]):
        return False  # no rows, or one: nothing to tell
    pairs = list(itertools.pairwise(seen))
    if all(o[3] for o in seen) and all(a[2] < b[1] for a, b in pairs):
        return True
    if all(o[4] for o in seen) and all(a[2] > b[1] for a, b in pairs):
        return True
    return text and all(o[5] for o in seen)


def combine(
    parts: list[dict[str, Any]],
    categorical: list[str],
    numeric: list[str],
    ids: Sequence[str] = (),
    text: Sequence[str] = (),
) -> dict[str, Any]:
    """Fold the partitions' summaries (in partition order) into the whole dataset's figures.

    Returns
    -------
    dict
        ``rows``; ``target_missing``, ``target_inf`` and ``target_values`` (a Series of the
        distinct classes, at most ``MAX_CLASSES + 1``); ``levels:<column>`` for each
        categorical column; ``nonnull``, ``min`` and ``max`` (by column) for ``numeric``;
        ``identifiers``: the columns of ``ids`` that identify the rows (see
        :func:`identifies_rows`; ``text`` names the string ones).
    """
    out: dict[str, Any] = {"rows": sum(int(p["rows"]) for p in parts)}
    if parts and "target" in parts[0]:
        out["target_missing"] = sum(int(p["target"]["missing"]) for p in parts)
        out["target_inf"] = sum(int(p["target"]["infinite"]) for p in parts)
        seen: dict[Any, None] = {}
        for p in parts:
            for v in p["target"]["distinct"]:
                seen.setdefault(v, None)
        out["target_values"] = pd.Series(list(seen)[: MAX_CLASSES + 1], dtype=object)
    for c in categorical:
        found: dict[Any, None] = {}
        for p in parts:
            for v in p["levels"][c]:
                found.setdefault(v, None)
        out[f"levels:{c}"] = list(found)
    if numeric:
        out["nonnull"] = {c: sum(p["numeric"][c][0] for p in parts) for c in numeric}
        out["min"] = {c: _bound([p["numeric"][c][1] for p in parts], min) for c in numeric}
        out["max"] = {c: _bound([p["numeric"][c][2] for p in parts], max) for c in numeric}
    out["identifiers"] = [
        c for c in ids if identifies_rows([p["order"][c] for p in parts], c in text)
    ]
    return out
