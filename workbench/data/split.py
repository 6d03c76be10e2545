"""Deterministic, partition-local splits: no shuffle, the same rows on any cluster size.

Each partition draws its own random numbers from ``SeedSequence([seed, partition index])``,
so which rows go where depends only on the seed and on how the files are partitioned, never
on how many workers there are or which one runs the task.
"""

from __future__ import annotations

from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd

from workbench.data.parquet import ReadPlan, SplitStep


def _counts(n: int, fractions: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Split ``n`` into parts proportional to ``fractions`` (largest remainder, random ties)."""
    exact = np.asarray(fractions) * n
    counts = np.floor(exact).astype(np.int64)
    left = n - int(counts.sum())
    if left:
        remainder = exact - counts + rng.random(len(fractions)) * 1e-9
        counts[np.argsort(-remainder)[:left]] += 1
    return counts


def part_of_rows(
    n: int,
    strata: pd.Series | None,
    fractions: tuple[float, ...],
    seed: int,
    index: int,
) -> np.ndarray:
    """Return the part number of each of the ``n`` rows of partition ``index``.

    ``strata`` (the target, for a stratified split) is split class by class; a missing value
    is a class of its own.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    part = np.empty(n, dtype=np.int8)
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes = pd.factorize(strata, sort=True, use_na_sentinel=True)[0]
        groups = [np.flatnonzero(codes == k) for k in np.unique(codes)] if n else []
    for rows in groups:
        order = rows[rng.permutation(len(rows))]
        bounds = np.cumsum(_counts(len(rows), fractions, rng))[:-1]
        for k, chunk in enumerate(np.split(order, bounds)):
            part[chunk] = k
    return part


def assign(
    df: pd.DataFrame,
    fractions: tuple[float, ...],
    seed: int,
    index: int,
    stratify_by: str | None,
) -> np.ndarray:
    """Return the part number of each row of partition ``index``."""
    strata = df[stratify_by] if stratify_by is not None else None
    return part_of_rows(len(df), strata, fractions, seed, index)


def _take(
    df: pd.DataFrame,
    k: int,
    fractions: tuple[float, ...],
    seed: int,
    stratify_by: str | None,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    index = int(partition_info["number"]) if partition_info else 0
    return df[assign(df, fractions, seed, index, stratify_by) == k]


def stratify_column(target: str | None, task: str | None, stratify: bool) -> str | None:
    """The column a split keeps the proportions of: the target with ``stratify``, else none."""
    if not stratify:
        return None
    if target is None:
        raise ValueError("stratify=True needs a dataset with a target")
    if task == "regression":
        raise ValueError(
            f"stratify=True needs a classification target; {target!r} is a regression target"
        )
    return target


def split_frame(
    frame: dd.DataFrame,
    plan: ReadPlan | None,
    fractions: tuple[float, ...],
    seed: int,
    stratify_by: str | None,
) -> list[tuple[dd.DataFrame, ReadPlan | None]]:
    """Split a frame into parts by row, within each partition (checked arguments).

    Parameters
    ----------
    frame
        The lazy frame.
    plan
        How its rows come from Parquet files, or ``None``; each part gets the plan of its
        rows while ``plan`` describes ``frame``.
    fractions
        Positive fractions that sum to 1 (see :func:`workbench.checks.split_fractions`).
    seed
        The same seed gives the same rows in each part, on any cluster.
    stratify_by
        The column whose class proportions every part and partition keeps, or ``None``.

    Returns
    -------
    list of (frame, plan)
        One per fraction, in order.
    """
    out: list[tuple[dd.DataFrame, ReadPlan | None]] = []
    for k in range(len(fractions)):
        part = frame.map_partitions(_take, k, fractions, seed, stratify_by, meta=frame._meta)
        part_plan = None
        if plan is not None and plan.describes(frame):
            step = SplitStep(fractions, seed, k, stratify_by)
            part_plan = plan.split(step).describing(part)
        out.append((part, part_plan))
    return out
