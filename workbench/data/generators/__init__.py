"""Synthetic tabular data for four domains, made one partition at a time.

Each domain is a module of this package with a ``GENERATOR`` (a
:class:`~workbench.data.generators.base.Generator`); :data:`GENERATORS` is the registry, so a new
domain is one module and one entry. How partitions are made, and why they are the same on any
cluster, is said in :mod:`workbench.data.generators.base`.

The domains:

``fraud``
    Card transactions with a rare fraud class (about 0.175%, as in the European card dataset):
    card testing, account takeovers and cloned cards, and a few frauds hidden among ordinary
    transactions. XGBoost reaches an ``aucpr`` of about 0.8 on it, as on the real dataset.
``maintenance``
    Machine sensor readings; the target says whether the machine fails within the horizon
    (about 3.5%), driven by tool wear, torque-wear overstrain, poor heat dissipation, and hidden
    bearing faults and leaks that show in vibration and pressure.
``demand``
    Store-item daily sales (regression): base level per store and item, trend, weekly and yearly
    seasonality, promotions and price elasticity, with count noise. Global row ``r`` is day
    ``r // 2000`` of series ``r % 2000`` (20 stores x 100 items), so partitions cover consecutive
    days of all series.
``higgs``
    28 dense features in the shape of the HIGGS benchmark (21 low-level, 7 high-level invariant
    masses), from a simulated decay chain: signal ``H0 -> W H+ -> W W h -> l v j j b b`` against a
    ``t tbar -> W b W b`` background, with detector smearing, initial-state radiation and
    imperfect b-tagging. The masses carry most of the signal; energies and masses are in GeV.
    XGBoost reaches an AUC of about 0.845 on it, as on the real HIGGS dataset.

``datasets/*.yaml`` record each published figure (``reference:``) and its source; where a
generator imitates no dataset with a published figure, its entry says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench import config
from workbench.checks import whole_number
from workbench.data.generators import demand, fraud, higgs, maintenance
from workbench.data.generators.base import Generator
from workbench.data.generators.demand import N_SERIES
from workbench.data.generators.higgs import HIGGS_HIGH_LEVEL, HIGGS_LOW_LEVEL

__all__ = [
    "GENERATORS",
    "HIGGS_HIGH_LEVEL",
    "HIGGS_LOW_LEVEL",
    "N_SERIES",
    "Generator",
    "default_partitions",
    "get_generator",
    "make_partition",
    "meta",
    "partition_sizes",
]

#: The generators by name: the registry of domains.
GENERATORS: dict[str, Generator] = {
    m.GENERATOR.name: m.GENERATOR for m in (fraud, maintenance, demand, higgs)
}


def default_partitions(rows: int) -> int:
    """The number of files of ``rows`` rows: about ``workbench.data.partition-rows`` each."""
    return max(1, -(-rows // int(config.get("data.partition-rows"))))


def get_generator(name: str) -> Generator:
    """Return the generator called ``name``.

    Parameters
    ----------
    name
        One of the keys of :data:`GENERATORS`.

    Returns
    -------
    Generator
        The domain's generator.

    Raises
    ------
    ValueError
        If there is no generator of that name; the message lists the known ones.
    """
    if isinstance(name, str) and name in GENERATORS:
        return GENERATORS[name]
    known = ", ".join(sorted(GENERATORS))
    raise ValueError(f"unknown generator {name!r}; the known generators are: {known}")


def partition_sizes(rows: int, partitions: int) -> list[int]:
    """Split ``rows`` as evenly as possible into ``partitions`` sizes.

    The first ``rows % partitions`` partitions get one row more than the others.

    Parameters
    ----------
    rows
        Total number of rows, at least 1.
    partitions
        Number of partitions, from 1 to ``rows``.

    Returns
    -------
    list of int
        The row count of each partition; they sum to ``rows`` and none is zero.

    Raises
    ------
    ValueError
        If ``rows`` or ``partitions`` is below 1, or there are more partitions than rows.
    TypeError
        If either is not an integer.
    """
    rows = whole_number(rows, "rows", 1)
    partitions = whole_number(partitions, "partitions", 1)
    if partitions > rows:
        raise ValueError(f"partitions ({partitions}) cannot exceed rows ({rows})")
    base, extra = divmod(rows, partitions)
    return [base + 1] * extra + [base] * (partitions - extra)


def make_partition(name: str, n_rows: int, seed: int, index: int, first_row: int) -> pd.DataFrame:
    """Make one partition of a synthetic data set.

    Parameters
    ----------
    name
        The generator's name (see :data:`GENERATORS`).
    n_rows
        Rows in this partition (0 gives an empty frame with the full schema).
    seed
        The data set's seed, a non-negative integer.
    index
        The partition's position, a non-negative integer; with ``seed`` it seeds the random
        generator (``SeedSequence([seed, index])``), so the same pair gives the same frame in any
        process.
    first_row
        Global index of the partition's first row (the sum of the sizes before it); identifiers
        and the ``demand`` layout depend on it.

    Returns
    -------
    pandas.DataFrame
        ``n_rows`` rows with a ``RangeIndex``, the columns and dtypes of :func:`meta`.

    Raises
    ------
    ValueError
        If the generator is unknown or a number is negative.
    TypeError
        If a number is not an integer.
    """
    gen = get_generator(name)
    n_rows = whole_number(n_rows, "n_rows", 0)
    seed = whole_number(seed, "seed", 0)
    index = whole_number(index, "index", 0)
    first_row = whole_number(first_row, "first_row", 0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return gen.make(n_rows, rng, first_row)


def meta(name: str) -> pd.DataFrame:
    """Return an empty frame with the generator's exact columns and dtypes.

    Parameters
    ----------
    name
        The generator's name.

    Returns
    -------
    pandas.DataFrame
        Zero rows; categorical columns carry their full list of levels. Suitable as Dask's
        ``meta=``.
    """
    return make_partition(name, 0, 0, 0, 0)
