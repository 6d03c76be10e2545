"""``load``: a catalog name, path, glob or URL in; a checked :class:`Dataset` out."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from workbench import config
from workbench._client import ensure_client
from workbench._redact import shown
from workbench.data.catalog import (
    FEATURE_KINDS,
    TASKS,
    CatalogEntry,
    datasets,
    get_entry,
    resolve_entry,
)
from workbench.data.columns import identifier_kind, numeric_kind, with_categories
from workbench.data.dataset import Dataset
from workbench.data.generate import ensure_generated
from workbench.data.parquet import (
    ParquetReader,
    Piece,
    ReadPlan,
    Roles,
    data_columns,
    parquet_frame,
    parquet_reader,
    piece_error,
    pieces,
)
from workbench.data.sources import inspect_source
from workbench.data.summary import MAX_CLASSES, combine, summarize, summarize_frame
from workbench.errors import DataError, DataNotFoundError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


def _looks_like_name(source: str) -> bool:
    return bool(_NAME.match(source)) and not os.path.exists(source)


def _refuse_nested(schema: pa.Schema, columns: list[str]) -> None:
    """Refuse a feature or target whose values are lists, structs or maps."""
    for col in columns:
        kind = schema.field(col).type
        if pa.types.is_nested(kind):
            raise DataError(
                f"column {col!r} holds {kind} values, which can be neither a number nor a "
                f"category; leave it out with features=[...] (or features={{{col!r}: 'ignore'}}), "
                "or flatten it into columns first"
            )


def _feature_kinds(
    frame: dd.DataFrame,
    target: str | None,
    features: Sequence[str] | Mapping[str, str] | None,
    categorical: Sequence[str],
    ignore: Mapping[str, str],
    schema: pa.Schema | None = None,
    pending: Collection[str] = (),
) -> dict[str, str]:
    """Decide each feature column's kind; refuse undeclared strings and unusable types.

    ``schema`` (Parquet's Arrow schema) tells lists, structs and maps from strings. Columns in
    ``pending`` (strings that may identify rows, decided by the check pass) get no kind yet.
    """
    declared: dict[str, str] = {c: "categorical" for c in categorical} | dict(ignore)
    if isinstance(features, Mapping):
        for col, kind in features.items():
            if kind not in FEATURE_KINDS:
                raise ValueError(
                    f"feature {col!r} has kind {kind!r}; use one of {', '.join(FEATURE_KINDS)}"
                )
        declared |= dict(features)
        names = [c for c, k in features.items() if k != "ignore"]
    elif features is not None:
        if isinstance(features, str):
            raise TypeError(f"features must be a list of column names, not the string {features!r}")
        names = list(features)
    else:
        names = [c for c in frame.columns if c != target and declared.get(c) != "ignore"]
    missing = [c for c in [*names, *declared] if c not in frame.columns]
    if missing:
        raise DataError(
            f"column(s) {missing} are not in the data; its columns are {list(frame.columns)}"
        )
    if target in names:
        raise ValueError(f"the target {target!r} cannot also be a feature")
    if schema is not None:  # lists, structs and maps are neither numbers nor categories
        _refuse_nested(schema, names)
    return {
        col: _kind(col, frame.dtypes[col], declared.get(col) == "categorical")
        for col in names
        if col not in pending
    }


def _kind(col: str, dtype: Any, categorical: bool) -> str:
    """A feature's kind from its dtype; refuse undeclared strings, dates and other types."""
    if categorical or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if numeric_kind(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        raise DataError(
            f"column {col!r} holds dates ({dtype}); turn it into numbers first (e.g. day of "
            "week, days since a start) or leave it out with features=[...]"
        )
    raise DataError(
        f"column {col!r} holds strings ({dtype}) but is not declared categorical; "
        f"pass categorical=[{col!r}] (or features={{{col!r}: 'categorical'}}), or leave "
        "it out with features=[...]"
    )


def _check_id_columns(
    id_columns: object, frame: pd.DataFrame, target: str | None
) -> list[str] | None:
    """The columns named by ``id_columns``, checked; ``None`` for ``"auto"``."""
    if isinstance(id_columns, str):
        if id_columns == "auto":
            return None
        raise TypeError(
            f"id_columns={id_columns!r}: pass 'auto', a list of column names "
            f"(id_columns=[{id_columns!r}]) or None"
        )
    if id_columns is None:
        return []
    if not isinstance(id_columns, Sequence) or not all(isinstance(c, str) for c in id_columns):
        raise TypeError(
            f"id_columns must be 'auto', a list of column names or None; got {id_columns!r}"
        )
    names = list(dict.fromkeys(id_columns))
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise DataError(
            f"id_columns {missing} are not in the data; its columns are {list(frame.columns)}"
        )
    if target in names:
        raise ValueError(f"the target {target!r} cannot also be an id column")
    return names


def _id_candidates(
    frame: pd.DataFrame, names: list[str], stats: Mapping[str, Any]
) -> dict[str, str]:
    """The columns of ``names`` the check pass should test as row identifiers, and their kind.

    Integer and string columns only. An integer column whose Parquet statistics already rule
    it out (a missing value, or a range narrower than its rows: some value repeats) is not
    read for it.
    """
    out: dict[str, str] = {}
    for col in names:
        kind = identifier_kind(frame.dtypes[col])
        st = stats.get(col)
        if kind == "integer" and st is not None:
            span = None if st.min is None else int(st.max) - int(st.min) + 1
            if st.nulls or span is None or span < st.rows:
                continue
        if kind is not None:
            out[col] = kind
    return out


def _identifiers(
    id_columns: object,
    shape: pd.DataFrame,
    target: str | None,
    features: Sequence[str] | Mapping[str, str] | None,
    categorical: Sequence[str],
    ignore: Mapping[str, str],
    roles: Roles | None,
    stats: Mapping[str, Any],
    check: bool,
) -> tuple[list[str], dict[str, str]]:
    """The id columns known before any data is read, and those the check pass should test.

    See ``id_columns`` of :func:`load`: a list names them; ``"auto"``, when ``features`` is
    ``None``, takes those of the files' roles and, when ``check`` runs, tests the undeclared
    integer and string columns (:func:`_id_candidates`).
    """
    named = _check_id_columns(id_columns, shape, target)
    if isinstance(features, str):
        return [], {}  # refused with its own message by _feature_kinds
    chosen: set[str] = set()
    if isinstance(features, Mapping):
        chosen = {c for c, kind in features.items() if kind != "ignore"}
    elif features is not None:
        chosen = set(features)
    if named is not None:
        both = [c for c in named if c in chosen]
        if both:
            raise ValueError(
                f"column(s) {both} are named both in features and in id_columns; a column is "
                "either a feature or an id column"
            )
        return named, {}
    if features is not None:
        return [], {}  # the features are named: no other column is read
    known = [
        c
        for c in (roles.id_columns if roles is not None else ())
        if c in shape.columns and c != target and c not in ignore
    ]
    if not check:
        return known, {}
    declared = {*categorical, *ignore, *known, *([target] if target else [])}
    undeclared = [c for c in shape.columns if c not in declared]
    return known, _id_candidates(shape, undeclared, stats)


@dataclass
class _Checks:
    """The check pass under way: what it reads, and its tasks (Parquet) once submitted."""

    kinds: dict[str, str]
    target: str | None
    categorical: list[str]
    numeric: list[str]
    classes: bool
    known: dict[str, Any] | None  # the target's checks, settled by its statistics
    ids: dict[str, str] = field(default_factory=dict)  # columns to test as row identifiers
    summaries: list[dict[str, Any]] | None = None  # already there
    futures: list[Any] | None = None  # one task per Parquet piece


def _start_checks(
    plan: ReadPlan | None,
    target: str | None,
    kinds: dict[str, str],
    task: str | None,
    stats: dict[str, Any],
    rows: int | None,
    client: Any,
    ids: dict[str, str] | None = None,
) -> _Checks:
    """Start the check pass over the columns that need it (finish with :func:`_finish_checks`).

    That is the target, the categorical columns' levels, the numeric features that lack
    Parquet statistics (nulls, range), and the columns ``ids`` to test as row identifiers
    (:func:`workbench.data.summary.order`). No shuffle: each partition reports a few values
    (:func:`workbench.data.summary.summarize`) and the client combines them. Parquet pieces
    are read into Arrow by one task each, those columns only; CSV partitions go through the
    frame. An integer or boolean target whose statistics settle the check (its nulls, and for
    classes a range of at most two values, both of which occur) is not read; nor is anything
    when nothing else needs the data (the footers give the rows).
    """
    classes = target is not None and task != "regression"
    known = _target_from_stats(target, stats.get(target or ""), classes)
    run = _Checks(
        kinds,
        target if known is None else None,
        [c for c, k in kinds.items() if k == "categorical"],
        [c for c, k in kinds.items() if k == "numeric" and c not in stats],
        classes,
        known,
        dict(ids or {}),
    )
    if plan is None:
        return run
    needed = list(
        dict.fromkeys([*run.categorical, *run.numeric, *run.ids, *filter(None, [run.target])])
    )
    if not needed and rows is not None:  # the footers say it all
        run.summaries = [{"rows": rows, "levels": {}, "numeric": {}, "order": {}}]
        return run
    run.futures = ensure_client(client).map(
        _summarize_piece,
        list(plan.pieces),
        reader=plan.reader,
        columns=needed or [plan.reader.columns[0]],
        target=run.target,
        categorical=run.categorical,
        numeric=run.numeric,
        classes=classes,
        ids=list(run.ids),
        pure=False,
    )
    return run


def _finish_checks(
    run: _Checks, frame: dd.DataFrame, stats: dict[str, Any], client: Any
) -> dict[str, Any]:
    """The figures of a check pass (see :func:`workbench.data.summary.combine`)."""
    client = ensure_client(client)
    if run.futures is not None:
        summaries = client.gather(run.futures)
    elif run.summaries is not None:
        summaries = run.summaries
    else:
        summary = frame.map_partitions(
            summarize_frame,
            run.target,
            run.categorical,
            run.numeric,
            run.classes,
            list(run.ids),
            meta=("summary", object),  # each partition is a dict
            enforce_metadata=False,
            align_dataframes=False,
        )
        with client.as_current():
            summaries = list(dask.compute(*summary.to_delayed()))
    text = [c for c, kind in run.ids.items() if kind == "text"]
    out = combine(summaries, run.categorical, run.numeric, list(run.ids), text)
    if run.known is not None:
        out.update(run.known)
    for c, st in stats.items():
        if run.kinds.get(c) == "numeric":
            out.setdefault("nonnull", {})[c] = st.rows - st.nulls
            out.setdefault("min", {})[c] = st.min
            out.setdefault("max", {})[c] = st.max
    return out


def _target_from_stats(target: str | None, st: Any, classes: bool) -> dict[str, Any] | None:
    """The target's checks from its Parquet statistics, where they settle them, else ``None``.

    Integer and boolean columns (their statistics are Python ints) hold no NaN or infinity,
    which statistics do not count, so their nulls are their missing values; and their minimum
    and maximum occur, so a range of at most two values gives the classes.
    """
    if target is None or st is None:
        return None
    if not (isinstance(st.min, int) and isinstance(st.max, int)):
        return None
    if classes and int(st.max) - int(st.min) > 1:
        return None
    return {
        "target_missing": int(st.nulls),
        "target_inf": 0,
        "target_values": pd.Series(sorted({st.min, st.max}), dtype=object) if classes else None,
    }


def _summarize_piece(
    piece: Piece,
    *,
    reader: ParquetReader,
    columns: list[str],
    target: str | None,
    categorical: list[str],
    numeric: list[str],
    classes: bool,
    ids: list[str],
) -> dict[str, Any]:
    """:func:`summarize` of one Parquet piece, reading only ``columns``."""
    table = reader.table(piece, columns)
    try:
        return summarize(table, target, categorical, numeric, classes, ids)
    except pa.ArrowException as err:
        raise piece_error(piece, err, f"checking the columns {columns}") from None


def _infer_task(values: pd.Series | None, dtype: Any) -> str:
    if values is None or not numeric_kind(dtype):
        return "binary" if values is not None and len(values) == 2 else "regression"
    v = values.to_numpy(dtype="float64")
    integral = bool(np.all(np.mod(v, 1) == 0))
    if pd.api.types.is_bool_dtype(dtype) or (integral and len(v) <= 2):
        return "binary"
    if integral and len(v) <= 20:
        return "multiclass"
    return "regression"


def _check_target(target: str, task: str, dtype: Any, checks: dict[str, Any], rows: int) -> None:
    missing = int(checks["target_missing"])
    if missing:
        raise DataError(
            f"the target {target!r} is missing (NaN or null) in {missing:,} of "
            f"{rows:,} rows; remove those rows from the files, or load with check=False "
            f"and drop them: ds = ds.with_frame(ds.frame.dropna(subset=[{target!r}]))"
        )
    if int(checks.get("target_inf", 0)):
        raise DataError(f"the target {target!r} is infinite in {int(checks['target_inf']):,} rows")
    if task == "regression":
        if not numeric_kind(dtype):
            raise DataError(f"a regression target must be numeric; {target!r} is {dtype}")
        return
    values = checks["target_values"]
    if not numeric_kind(dtype):
        raise DataError(
            f"the target {target!r} of a {task} task holds {dtype} values such as "
            f"{list(values[:3])}; encode the classes as numbers first, e.g. "
            f"frame[{target!r}].map({{'no': 0, 'yes': 1}})"
        )
    classes = sorted(values.tolist())
    if len(classes) < 2:
        raise DataError(f"the target {target!r} has one class only ({classes}); nothing to learn")
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"the target {target!r} has more than {MAX_CLASSES} distinct values; for a numeric "
            "target use task='regression'"
        )
    if task == "binary" and len(classes) != 2:
        raise DataError(f"task='binary' but the target {target!r} has {len(classes)} classes")


def load(
    source: str | os.PathLike[str],
    target: str | None = None,
    features: Sequence[str] | Mapping[str, str] | None = None,
    *,
    categorical: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    filters: Any = None,
    task: str | None = None,
    format: str | None = None,
    storage_options: dict[str, Any] | None = None,
    check: bool | None = None,
    id_columns: str | Sequence[str] | None = "auto",
    client: Any = None,
) -> Dataset:
    """Load a partitioned table as a :class:`Dataset`.

    Parameters
    ----------
    source
        A catalog name (``"fraud"``), or a path, folder, glob or fsspec URL of Parquet or CSV
        files (``"data/*.parquet"``, ``"s3://bucket/x/"``, ``"memory://t/"``).
    target
        The target column (a catalog entry names its own).
    features
        The feature columns: ``None`` for every other column but the row identifiers (see
        ``id_columns``), a list of names, or a mapping of names to kinds (``numeric``,
        ``categorical``, or ``ignore`` to leave one out). A column named here is a feature.
    categorical
        Columns to treat as categorical (string columns must be declared).
    columns, filters
        Column selection and row filters, pushed down to the Parquet reader
        (``filters=[("amount", ">", 0)]``).
    task
        ``binary``, ``multiclass`` or ``regression``; inferred from the target if not given.
    format
        ``parquet`` or ``csv`` where the file names do not say.
    storage_options
        fsspec options for object storage (credentials, endpoint).
    check
        Check target, categories and columns with one pass over the data (default
        ``workbench.data.check``); without it, categorical levels stay unknown.
    id_columns
        Columns that identify rows (``transaction_id``): kept in ``ds.frame`` with the rows,
        never features, shown in the dataset's summary as ``ds.id_columns``.

        - ``"auto"`` (the default): where ``features`` is ``None``, those the files' metadata
          names (data written by :func:`workbench.generate`), and, when the check pass runs,
          every other undeclared integer or string column that identifies the rows:
          no value missing, and each value greater than the one before through all the files
          in order (or each smaller), so none repeats; a string column also when no value
          repeats within a partition (a UUID). The pass reads such a column only where its
          Parquet statistics leave it possible (no nulls, a range as wide as its rows).
        - a list of names: exactly those columns, nothing detected.
        - ``None`` or ``[]``: no identifier columns; every column is a feature.

        To train on an identifier anyway, name it in ``features`` or pass ``id_columns=None``.
    client
        The Dask client for that pass; the current one by default.

    Returns
    -------
    Dataset

    Raises
    ------
    DataNotFoundError
        No such catalog name, path, or files.
    DataError
        A corrupt file, files with different schemas (the file named), a missing target, a
        non-numeric, NaN or single-class target for classification, an undeclared string
        feature that does not identify rows, zero rows, an id column that is not in the data.
    ValueError
        A bad task, kind or option value; a column named both a feature and an id column.
    TypeError
        ``id_columns`` is neither ``"auto"``, a list of names nor ``None``.

    Notes
    -----
    Files written by :func:`workbench.generate` carry their roles (target, task, feature
    kinds, id columns) in their Parquet metadata (:class:`~workbench.data.parquet.Roles`):
    loading them by path needs no ``target=`` or ``categorical=``; what is passed wins.
    """
    source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise TypeError(f"source must be a catalog name, path or URL, not {source!r}")
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r}: use one of {', '.join(TASKS)}")
    entry: CatalogEntry | None = None
    ignore: dict[str, str] = {}
    path = source
    if "://" not in source and _looks_like_name(source):
        entry = get_entry(source)
        if entry is None:
            known = ", ".join(datasets()) or "(none)"
            raise DataNotFoundError(
                f"{source!r} is neither a dataset in the catalog ({known}) nor an existing path"
            )
    if entry is not None:
        where = resolve_entry(entry)
        target = target or where.target
        task = task or where.task
        categorical = [*categorical, *where.categorical]
        ignore = where.ignore
        if where.generator is not None:
            path = ensure_generated(entry, client=client)
        else:
            path = where.path
            format = format or where.format
            storage_options = storage_options or where.storage_options
    files = inspect_source(path, format=format, storage_options=storage_options)
    if files.rows == 0:
        raise DataError(
            f"{shown(source)!r} has zero rows ({len(files.urls)} file(s)); nothing to load"
        )
    read_columns = list(columns) if columns is not None else None
    if read_columns is not None and target and target not in read_columns:
        read_columns.append(target)
    if files.format == "parquet":
        assert files.schema is not None
        names = data_columns(files.schema)
        absent = [c for c in read_columns or [] if c not in names]
        if absent:
            raise DataError(
                f"column(s) {absent} are not in {shown(source)!r}; its columns are {names}"
            )
        reader = parquet_reader(
            files.schema, read_columns, filters, storage_options, bool(files.partitions)
        )
        shape = reader.meta(files.schema)  # the columns and their dtypes, no Dask yet
    else:
        if filters is not None:
            raise ValueError("filters= works for Parquet only; filter the CSV rows after loading")
        frame = dd.read_csv(list(files.urls), usecols=read_columns, storage_options=storage_options)
        shape = frame._meta
    roles = Roles.of(files.schema)
    if roles is not None:  # the files say what their columns are; what is passed wins
        present = set(shape.columns)
        if target is None and roles.target in present:
            target = roles.target
        if task is None and target is not None and target == roles.target and roles.task in TASKS:
            task = roles.task
        declared = set(categorical) | set(ignore)
        categorical = [
            *categorical,
            *(
                c
                for c, kind in roles.features.items()
                if kind == "categorical" and c in present and c != target and c not in declared
            ),
        ]
    if target is not None and target not in shape.columns:
        raise DataError(
            f"the target {target!r} is not a column of {shown(source)!r}; its columns are "
            f"{list(shape.columns)}"
        )
    if files.schema is not None and target is not None:
        _refuse_nested(files.schema, [target])
    do_check = config.get("data.check", check)
    stats = files.stats if filters is None else {}
    ids, candidates = _identifiers(
        id_columns, shape, target, features, categorical, ignore, roles, stats, bool(do_check)
    )
    pending = [c for c, kind in candidates.items() if kind == "text"]  # strings: decided later
    kinds = _feature_kinds(
        shape,
        target,
        features,
        categorical,
        {**ignore, **dict.fromkeys(ids, "ignore")},
        files.schema,
        pending,
    )
    selected = list(dict.fromkeys([*ids, *kinds, *pending, *([target] if target else [])]))
    plan = None
    if files.format == "parquet":
        plan = ReadPlan(
            replace(reader, columns=tuple(selected)),
            tuple(pieces(files.urls, files.groups, files.partitions or None)),
        )
    rows = files.rows if filters is None else None
    nbytes = (
        files.nbytes if files.format == "parquet" and filters is None and columns is None else None
    )
    checks: Any = None
    if do_check:  # the workers read while the frame is made here
        checks = _start_checks(plan, target, kinds, task, stats, rows, client, candidates)
    if plan is not None:
        frame = parquet_frame(plan.reader, list(plan.pieces), files.schema)
    else:
        frame = frame[selected]
    if not do_check:
        plan = plan.describing(frame) if plan is not None else None
        return Dataset(
            frame, target, kinds, task, {}, source, rows, nbytes, plan=plan, id_columns=ids
        )
    checks = _finish_checks(checks, frame, stats, client)
    found = checks.get("identifiers", [])
    for col in pending:
        if col not in found:  # a string column that names no row: a category, undeclared
            _kind(col, shape.dtypes[col], categorical=False)
    if found:
        logger.info(
            "%s: %s identif%s the rows: not features (name them in features=[...] to train "
            "on them)",
            shown(source),
            ", ".join(found),
            "ies" if len(found) == 1 else "y",
        )
        kinds = {c: k for c, k in kinds.items() if c not in found}
        ids = [c for c in shape.columns if c in ids or c in found]
    rows = int(checks["rows"])
    if rows == 0:
        raise DataError(f"{shown(source)!r} has zero rows after the filters {filters!r}")
    classes = None  # the target's classes, kept so that nothing needs to find them again
    if target is not None:
        values = checks.get("target_values")
        task = task or _infer_task(values, shape.dtypes[target])
        _check_target(target, task, shape.dtypes[target], checks, rows)
        if task != "regression":
            classes = sorted(values.tolist())
    categories = {
        col: sorted(checks[f"levels:{col}"], key=str)
        for col, kind in kinds.items()
        if kind == "categorical"
    }
    frame = with_categories(frame, categories)
    plan = plan.describing(frame) if plan is not None else None
    nonnull, low, high = checks.get("nonnull", {}), checks.get("min", {}), checks.get("max", {})
    all_null = [
        c
        for c in kinds
        if (kinds[c] == "numeric" and int(nonnull[c]) == 0)
        or (kinds[c] == "categorical" and not categories[c])
    ]
    constant = [
        c
        for c in kinds
        if c not in all_null
        and (
            (kinds[c] == "categorical" and len(categories[c]) == 1)
            or (kinds[c] == "numeric" and low[c] == high[c])
        )
    ]
    if all_null or constant:
        logger.warning(
            "%s: %s%s(they carry no information; leave them out with features=[...])",
            shown(source),
            f"all-null columns {all_null} " if all_null else "",
            f"constant columns {constant} " if constant else "",
        )
    return Dataset(
        frame,
        target,
        kinds,
        task,
        categories,
        source,
        rows,
        nbytes,
        {"all_null": all_null, "constant": constant},
        plan=plan,
        classes=classes,
        id_columns=ids,
    )
