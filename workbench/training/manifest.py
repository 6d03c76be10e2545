"""Checks of a model file's contents: the manifest's keys and types, the estimator's columns.

A model file (see :mod:`workbench.training.archive`) holds a manifest and an estimator;
:meth:`workbench.Model.load` refuses one whose manifest lacks a key, holds a wrong type or
contradicts itself, or whose estimator's features differ from the manifest's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from workbench.errors import ModelFileError
from workbench.training import archive, backends

logger = logging.getLogger(__name__)

HISTORY_KEYS = ("columns", "index", "data")
_TASKS = ("binary", "multiclass", "regression")
_FEATURE_KINDS = ("numeric", "categorical")


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# (key, check, what the value must be): every manifest has these
_SCHEMA: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    (
        "kind",
        lambda v: isinstance(v, str) and v in backends.names(),
        "the name of a training backend (workbench.training.backends.names())",
    ),
    ("task", lambda v: isinstance(v, str) and v in _TASKS, f"one of {', '.join(_TASKS)}"),
    ("target", lambda v: isinstance(v, str), "a string"),
    (
        "features",
        lambda v: (
            isinstance(v, dict)
            and bool(v)
            and all(isinstance(k, str) and k in _FEATURE_KINDS for k in v.values())
        ),
        "an object of feature name -> 'numeric' or 'categorical', not empty",
    ),
    (
        "categories",
        lambda v: isinstance(v, dict) and all(isinstance(x, list) for x in v.values()),
        "an object of feature name -> list of levels",
    ),
    ("classes", lambda v: v is None or isinstance(v, list), "a list or null"),
    ("params", lambda v: isinstance(v, dict), "an object"),
    ("rounds", _is_count, "an integer >= 0"),
    ("best_iteration", lambda v: v is None or _is_count(v), "an integer >= 0 or null"),
    (
        "metrics",
        lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
        "an object of metric name -> number",
    ),
    (
        "history",
        lambda v: isinstance(v, dict) and all(isinstance(v.get(k), list) for k in HISTORY_KEYS),
        "an object with the lists 'columns', 'index' and 'data'",
    ),
    ("info", lambda v: isinstance(v, dict), "an object"),
)
# keys a manifest may lack
_OPTIONAL: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("versions", lambda v: isinstance(v, dict), "an object"),
    ("saved", lambda v: isinstance(v, str), "a string"),
)


def check_manifest(manifest: dict[str, Any], source: str) -> None:
    """Refuse a manifest that lacks a key, holds a wrong type, or contradicts itself."""

    def bad(why: str) -> ModelFileError:
        return ModelFileError(f"{source!r}: {archive.MANIFEST} {why}")

    missing = [key for key, _, _ in _SCHEMA if key not in manifest]
    if missing:
        raise bad(f"lacks {', '.join(map(repr, missing))} (damaged or altered)")
    for key, check, what in (*_SCHEMA, *(o for o in _OPTIONAL if o[0] in manifest)):
        if not check(manifest[key]):
            raise bad(f"has {key}={manifest[key]!r:.120}; it must be {what}")
    task, classes = manifest["task"], manifest["classes"]
    if task == "regression" and classes is not None:
        raise bad(f"has classes {classes!r:.120} for a regression model; it must be null")
    if task != "regression" and (classes is None or len(classes) < 2):
        raise bad(f"has classes {classes!r:.120} for a {task} model; it needs two or more")
    if task == "binary" and len(classes) != 2:
        raise bad(f"has {len(classes)} classes for a binary model; it needs two")
    categorical = [f for f, k in manifest["features"].items() if k == "categorical"]
    if set(manifest["categories"]) != set(categorical):
        raise bad(
            f"has levels for {sorted(manifest['categories'])}, but the categorical features "
            f"are {categorical}"
        )


def check_estimator(
    backend: backends.Backend, estimator: Any, manifest: dict[str, Any], source: str
) -> None:
    """Refuse an estimator whose features (count, names, order, kinds) differ from the manifest's.

    The backend's :meth:`~workbench.training.backends.Backend.layout` says what the estimator
    records: XGBoost the names and types it was trained with, LightGBM the names (spaces made
    ``_``), the linear model the count and which columns are categorical with how many levels.
    """
    kind = backend.name
    features: dict[str, str] = manifest["features"]
    shown = list(features)
    categorical = [j for j, k in enumerate(features.values()) if k == "categorical"]
    layout = backend.layout(estimator)
    names = [layout.stored_name(n) for n in shown]
    theirs = layout.names

    def bad(why: str) -> ModelFileError:
        return ModelFileError(
            f"{source!r}: {why}; its predictions would use the wrong columns (altered?)"
        )

    if layout.count != len(names):
        raise bad(
            f"{archive.MANIFEST} lists {len(names)} features but the {kind} estimator has "
            f"{layout.count}"
        )
    if theirs is not None and list(theirs) != names:
        j = next(i for i, (a, b) in enumerate(zip(names, theirs, strict=True)) if a != b)
        order = " (the same names in another order)" if sorted(theirs) == sorted(names) else ""
        raise bad(
            f"feature {j} is {shown[j]!r} in {archive.MANIFEST} but {theirs[j]!r} in the "
            f"estimator{order}"
        )
    if layout.categorical is not None and layout.categorical != categorical:
        raise bad(
            f"the categorical columns are {categorical} {[shown[j] for j in categorical]} in "
            f"{archive.MANIFEST} but {layout.categorical} in the estimator"
        )
    if layout.levels is not None:
        levels = {j: max(1, len(manifest["categories"][shown[j]])) for j in categorical}
        if levels != layout.levels:
            raise bad(
                f"the categorical features have {levels} levels in {archive.MANIFEST} but "
                f"{layout.levels} in the estimator"
            )
