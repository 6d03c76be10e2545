"""Column kinds and levels: what a numeric column is, and one set of levels per category.

The lowest rung of ``workbench.data``: ``load``, ``generate`` and :class:`Dataset` use these,
and this module uses none of them.
"""

from __future__ import annotations

from typing import Any

import dask.dataframe as dd
import pandas as pd


def numeric_kind(dtype: Any) -> bool:
    """Whether a column of this dtype can be used as a number (bool included)."""
    return bool(pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype))


def set_levels(df: pd.DataFrame, categories: dict[str, list[Any]]) -> pd.DataFrame:
    """``df`` with each column of ``categories`` categorical with exactly those levels."""
    df = df.copy(deep=False)
    for col, levels in categories.items():
        s = df[col]
        if not isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object).astype("category")
        # set_categories re-codes; astype(CategoricalDtype(levels)) would keep a file's own
        # order where the set of levels is the same (pandas treats those dtypes as equal)
        df[col] = s.cat.set_categories(levels)
    return df


def with_categories(frame: dd.DataFrame, categories: dict[str, list[Any]]) -> dd.DataFrame:
    """Give each categorical column the same levels, in the same order, in every partition."""
    if not categories:
        return frame
    meta = set_levels(frame._meta, categories)
    return frame.map_partitions(set_levels, categories, meta=meta)


def identifier_kind(dtype: Any) -> str | None:
    """What a column of this dtype could be as a row identifier: ``integer``, ``text`` or ``None``.

    Integers (not booleans) and strings can identify rows; floats, booleans, categoricals and
    dates cannot (``load`` tells those that do from how their values follow each other).
    """
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "text"
    return None
