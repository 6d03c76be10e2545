"""The dataset catalog: one YAML file per dataset in ``datasets/`` and in the user's folder.

An entry looks like::

    name: fraud
    description: Card transactions, rare fraud class (~0.175%).
    task: binary                      # binary, multiclass or regression
    target: is_fraud
    source: {generator: fraud, rows: 1000000, partitions: 8, seed: 0}
    #   or: {path: "s3://bucket/fraud/*.parquet", format: parquet, storage_options: {...}}
    features: {merchant_category: categorical, device: categorical}
    split: {fractions: [0.8, 0.1, 0.1], stratify: true, seed: 0}
    reference: {metric: aucpr, value: 0.8, tolerance: 0.06, source: "..."}   # optional

A generator entry is generated on first use into ``workbench.data.cache`` and read from there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from workbench import config
from workbench._redact import redact, redacted_repr
from workbench._yaml import Listing, read_mapping, require_mapping, yaml_files
from workbench.data.generators import GENERATORS, default_partitions, get_generator
from workbench.display import render
from workbench.errors import DataError

TASKS = ("binary", "multiclass", "regression")
FEATURE_KINDS = ("numeric", "categorical", "ignore")  # ignore: not a feature (an id, a date)
_KEYS = {"name", "description", "task", "target", "source", "features", "split", "reference"}
_SOURCE_KEYS = {"generator", "rows", "partitions", "seed", "path", "format", "storage_options"}
_SPLIT_KEYS = {"fractions", "stratify", "seed"}
_REFERENCE_KEYS = {"metric", "value", "tolerance", "source"}


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset of the catalog.

    Attributes
    ----------
    name, description
        The entry's name (the file name) and one line about it.
    task
        ``binary``, ``multiclass`` or ``regression``, or ``None`` to infer it.
    target
        The target column.
    source
        ``{"generator": ..., "rows": ..., ...}`` or ``{"path": ..., "format": ...}``; its
        secrets (in ``storage_options``, or a password in the URL) are masked in the ``repr``.
    features
        Declared kinds of columns (``categorical`` for string columns).
    split
        The default split: ``fractions``, ``stratify``, ``seed``.
    reference
        For a generator that imitates a real dataset: the figure gradient boosting reaches on
        that dataset (``metric``, ``value``, ``source``) and how near XGBoost on the generated
        rows comes to it (``tolerance``, checked by the tests); empty where none applies.
    path
        The YAML file.
    """

    name: str
    description: str = ""
    task: str | None = None
    target: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    __repr__ = redacted_repr

    @property
    def generated(self) -> bool:
        """Whether the data comes from a generator."""
        return "generator" in self.source


@dataclass(frozen=True)
class ResolvedEntry:
    """A catalog entry resolved: where its data is and how to read it.

    Made by :func:`resolve_entry`, the one place that turns an entry into a folder, so that
    ``load``, ``generate``, ``workbench data info`` and the demo agree.

    Attributes
    ----------
    entry
        The catalog entry.
    path
        The data's folder or URL: for a generator, its cache folder under
        ``workbench.data.cache`` (which may not exist yet).
    target, task
        The entry's target and task (``None`` where it leaves them to be inferred).
    categorical
        Columns declared ``categorical``.
    ignore
        Columns declared ``ignore`` (ids, dates): read, but not features.
    format, storage_options
        How to read a ``path:`` entry (``None`` for a generator).
    generator, rows, partitions, seed
        What a generator entry makes (``None`` for a ``path:`` entry); ``partitions``
        defaults to about ``workbench.data.partition-rows`` rows each, as in ``generate``.
    """

    entry: CatalogEntry
    path: str
    target: str | None
    task: str | None
    categorical: list[str]
    ignore: dict[str, str]
    format: str | None = None
    storage_options: dict[str, Any] | None = None
    generator: str | None = None
    rows: int | None = None
    partitions: int | None = None
    seed: int | None = None

    __repr__ = redacted_repr


def cache_path(name: str, rows: int, partitions: int, seed: int, version: int = 1) -> str:
    """The folder under ``workbench.data.cache`` for generated data of these parameters.

    A generator's ``version`` above 1 is part of the name, so data cached by an earlier
    version of the generator (other rows for the same seed) is never taken for the new one.
    """
    cache = Path(os.path.expandvars(str(config.get("data.cache")))).expanduser()
    tag = f"-v{version}" if version > 1 else ""
    return str(cache / f"{name}{tag}-{rows}rows-{partitions}parts-seed{seed}")


def resolve_entry(entry: CatalogEntry) -> ResolvedEntry:
    """Resolve a catalog entry to its data's folder, target, task and column kinds.

    Parameters
    ----------
    entry
        An entry of :func:`datasets` (or :func:`get_entry`).

    Returns
    -------
    ResolvedEntry
        For a generator entry, ``path`` is its cache folder for the entry's rows (default:
        the generator's), partitions (default: about ``workbench.data.partition-rows`` rows
        each) and seed (default 0); for a ``path:`` entry, that path.
    """
    kinds = entry.features
    common: dict[str, Any] = {
        "entry": entry,
        "target": entry.target,
        "task": entry.task,
        "categorical": [c for c, k in kinds.items() if k == "categorical"],
        "ignore": {c: k for c, k in kinds.items() if k == "ignore"},
    }
    src = entry.source
    if not entry.generated:
        return ResolvedEntry(
            path=str(src["path"]),
            format=src.get("format"),
            storage_options=src.get("storage_options"),
            **common,
        )
    gen = get_generator(str(src["generator"]))
    rows = int(src.get("rows") or gen.default_rows)
    partitions = int(src.get("partitions") or default_partitions(rows))
    seed = int(src.get("seed") or 0)
    return ResolvedEntry(
        path=cache_path(gen.name, rows, partitions, seed, gen.version),
        generator=gen.name,
        rows=rows,
        partitions=partitions,
        seed=seed,
        **common,
    )


def builtin_dir() -> Path:
    """The folder of the shipped entries (``datasets/`` of a checkout, or package data)."""
    checkout = Path(__file__).resolve().parents[2] / "datasets"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("workbench._datasets")))


def user_dir() -> Path:
    """The user's catalog folder, from ``workbench.data.path``."""
    return Path(os.path.expandvars(str(config.get("data.path")))).expanduser()


def load_entry(path: str | os.PathLike[str]) -> CatalogEntry:
    """Read and check one catalog file.

    Raises
    ------
    DataError
        Malformed YAML (file and line), unknown keys, an unknown task or feature kind, a
        source with neither ``generator`` nor ``path``, or an unknown generator.
    """
    path = Path(path)
    data, lines = read_mapping(path, f"dataset entry {path.stem!r}", DataError, "'source:'")

    def where(key: str) -> str:
        return f"{path}:{lines.get(key, '?')}"

    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise DataError(f"{where(unknown[0])}: unknown key {unknown[0]!r}; valid: {sorted(_KEYS)}")
    task = data.get("task")
    if task is not None and task not in TASKS:
        raise DataError(f"{where('task')}: task {task!r} must be one of {', '.join(TASKS)}")
    source = require_mapping(data.get("source"), "source", path, lines, DataError)
    bad = sorted(set(source) - _SOURCE_KEYS)
    if bad:
        raise DataError(f"{where('source.' + bad[0])}: unknown source key {bad[0]!r}")
    if ("generator" in source) == ("path" in source):
        raise DataError(f"{where('source')}: source needs exactly one of 'generator:' or 'path:'")
    if "generator" in source and source["generator"] not in GENERATORS:
        raise DataError(
            f"{where('source.generator')}: unknown generator {source['generator']!r}; "
            f"known: {', '.join(GENERATORS)}"
        )
    features = require_mapping(data.get("features"), "features", path, lines, DataError)
    for col, kind in features.items():
        if kind not in FEATURE_KINDS:
            raise DataError(
                f"{where('features.' + col)}: feature {col!r} has kind {kind!r}; "
                f"use one of {', '.join(FEATURE_KINDS)}"
            )
    split = require_mapping(data.get("split"), "split", path, lines, DataError)
    bad = sorted(set(split) - _SPLIT_KEYS)
    if bad:
        raise DataError(f"{where('split.' + bad[0])}: unknown split key {bad[0]!r}")
    reference = require_mapping(data.get("reference"), "reference", path, lines, DataError)
    _check_reference(reference, where)
    return CatalogEntry(
        name=path.stem,
        description=str(data.get("description") or "").strip(),
        task=task,
        target=data.get("target"),
        source=dict(source),
        features={str(k): str(v) for k, v in features.items()},
        split=dict(split),
        reference=dict(reference),
        path=path,
    )


def _check_reference(reference: dict[str, Any], where: Callable[[str], str]) -> None:
    """Refuse a ``reference:`` that lacks a field, has an unknown one or a wrong value."""
    if not reference:
        return
    bad = sorted(set(reference) - _REFERENCE_KEYS)
    if bad:
        raise DataError(
            f"{where('reference.' + bad[0])}: unknown reference key {bad[0]!r}; "
            f"valid: {sorted(_REFERENCE_KEYS)}"
        )
    missing = sorted(_REFERENCE_KEYS - set(reference))
    if missing:
        raise DataError(
            f"{where('reference')}: reference lacks {', '.join(missing)}; give all of "
            f"{sorted(_REFERENCE_KEYS)}, e.g. {{metric: auc, value: 0.845, tolerance: 0.01, "
            'source: "..."}'
        )
    for key in ("value", "tolerance"):
        value = reference[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise DataError(
                f"{where('reference.' + key)}: reference {key} {value!r} must be a "
                "non-negative number, e.g. 0.845"
            )
    for key in ("metric", "source"):
        value = reference[key]
        if not isinstance(value, str) or not value.strip():
            raise DataError(
                f"{where('reference.' + key)}: reference {key} {value!r} must be a non-empty "
                "text (the metric's name, or where the figure was published)"
            )


def _files() -> dict[str, Path]:
    return yaml_files(builtin_dir(), user_dir())


class Catalog(Listing[CatalogEntry]):
    """The catalog by name, with a text and an HTML table."""

    columns = (("task", 10), ("target", 24), ("description", 0))

    def row(self, entry: CatalogEntry) -> tuple[str, ...]:
        """Task, target and description of one entry."""
        return (entry.task or "?", entry.target or "?", entry.description)

    def _repr_html_(self) -> str:
        shown = [replace(e, source=redact(e.source)) for e in self.values()]
        return render("catalog.html.j2", entries=shown, errors=self.errors)


def datasets() -> Catalog:
    """List the datasets of the catalog (shipped and the user's own).

    Returns
    -------
    Catalog
        A read-only mapping of name to :class:`CatalogEntry`; broken files are listed in
        ``.errors`` with the reason instead of hiding the rest.
    """
    good: dict[str, CatalogEntry] = {}
    bad: dict[str, str] = {}
    for name, path in _files().items():
        try:
            good[name] = load_entry(path)
        except DataError as err:
            bad[name] = str(err)
    return Catalog(good, bad)


def get_entry(name: str) -> CatalogEntry | None:
    """Return the catalog entry called ``name``, or ``None`` when there is none."""
    path = _files().get(name)
    return load_entry(path) if path else None
