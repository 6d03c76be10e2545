"""Deterministic, partition-local splits: no shuffle, the same rows on any cluster size.

Each partition draws its own random numbers from ``SeedSequence([seed, partition index])``,
so which rows go where depends only on the seed and on how the files are partitioned, never
on how many workers there are or which one runs the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.data.dataset import check_fractions
from workbench.data.parquet import SplitStep

if TYPE_CHECKING:
    from workbench.data.dataset import Dataset


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


def split(
    ds: Dataset,
    fractions: Any = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    stratify: bool = False,
) -> tuple[Dataset, ...]:
    """Split a dataset into parts by row, within each partition.

    Parameters
    ----------
    ds
        The dataset.
    fractions
        Positive fractions that sum to 1, e.g. ``(0.8, 0.1, 0.1)``.
    seed
        The same seed gives the same rows in each part, on any cluster.
    stratify
        Keep the class proportions of the target in every part and partition (for rare
        classes, such as 0.5% fraud).

    Returns
    -------
    tuple of Dataset
        One per fraction, in order.
    """
    parts = check_fractions(fractions)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise TypeError(f"seed must be a whole number >= 0, not {seed!r}")
    stratify_by = None
    if stratify:
        if ds.target is None:
            raise ValueError("stratify=True needs a dataset with a target")
        if ds.task == "regression":
            raise ValueError(
                f"stratify=True needs a classification target; {ds.target!r} is a regression target"
            )
        stratify_by = ds.target
    out = []
    for k in range(len(parts)):
        frame = ds.frame.map_partitions(
            _take,
            k,
            parts,
            int(seed),
            stratify_by,
            meta=ds.frame._meta,
        )
        plan = None
        if ds.plan is not None and ds.plan.describes(ds.frame):
            plan = ds.plan.split(SplitStep(parts, int(seed), k, stratify_by)).describing(frame)
        source = f"{ds.source}[part {k + 1}/{len(parts)}]"
        out.append(ds.with_frame(frame, source=source, report=ds.report, plan=plan))
    return tuple(out)
