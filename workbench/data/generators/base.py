"""What every synthetic domain shares: the :class:`Generator` record and the chunked maker.

Each domain is a :class:`Generator`: a function that makes ``n_rows`` rows from a NumPy random
generator, plus what the rest of the workbench needs to know about the result (task, target,
categorical columns). Everything here is plain NumPy and pandas; ``wb.generate`` maps
:func:`make_partition` over the partitions with Dask.

Determinism: :func:`make_partition` seeds its random generator from ``(seed, index)`` only, so a
partition (of given ``n_rows`` and ``first_row``) is the same whichever process, worker or
machine makes it, and the whole data set is the same for a seed whatever the number of workers.
Row-dependent columns (the ``*_id`` row identifiers, the store-item-day layout of ``demand``)
come from ``first_row``, the partition's first global row. Rows are made in fixed-size chunks
into preallocated columns, so memory stays near the frame's own size.

Every categorical column has a fixed list of levels, so all partitions share one encoding. The
target of a binary task is ``int8`` (0/1), of a regression ``float32``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

Array = np.ndarray[Any, Any]
Maker = Callable[[int, np.random.Generator, int], pd.DataFrame]


@dataclass(frozen=True)
class Generator:
    """A synthetic data domain.

    Attributes
    ----------
    name
        The generator's name, for example ``"fraud"``.
    description
        One line about the data.
    task
        ``"binary"`` or ``"regression"``.
    target
        Name of the target column.
    categorical
        Names of the categorical columns (pandas ``Categorical`` with fixed levels).
    default_rows
        Rows to make when the caller does not say.
    make
        ``make(n_rows, rng, first_row)`` returns a frame of ``n_rows`` rows drawn from ``rng``;
        ``first_row`` is the global index of the first row.
    version
        Raised whenever ``make`` draws different rows for the same seed; the catalog's cache
        folders carry it, so data cached from an earlier version is not taken for this one.
    """

    name: str
    description: str
    task: str
    target: str
    categorical: tuple[str, ...]
    default_rows: int
    make: Maker
    version: int = 1


# ------------------------------------------------------------------------------------ helpers


def sigmoid(x: Array) -> Array:
    """Return the logistic function of ``x``."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def choice(rng: np.random.Generator, p: Array, n: int) -> Array:
    """Draw ``n`` indices into ``p`` (probabilities summing to 1), as ``int64``."""
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(n), side="right").clip(0, len(p) - 1)


def choice_rows(rng: np.random.Generator, probs: Array, rows: Array) -> Array:
    """Draw one index per row from ``probs[rows[i]]`` (a table of probability rows)."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(len(rows))
    out = np.zeros(len(rows), dtype=np.int64)
    for k in range(probs.shape[1] - 1):  # a loop over levels, never over rows
        out += u >= cdf[rows, k]
    return out


# A column's kind: a NumPy dtype, or the fixed levels of a categorical column (int8 codes).
Schema = dict[str, np.dtype[Any] | tuple[str, ...]]
ChunkMaker = Callable[[int, np.random.Generator, int], dict[str, Array]]
CHUNK = 65536  # rows made at a time: temporaries stay small, memory stays near the frame's size


def chunked(schema: Schema, make_chunk: ChunkMaker, chunk: int = CHUNK) -> Maker:
    """Return a ``make(n_rows, rng, first_row)`` that fills ``schema``'s columns chunk by chunk.

    The columns are allocated once with their final dtypes and filled from ``make_chunk(rows,
    rng, first_row)`` over chunks of at most ``chunk`` rows, so the peak memory is the frame's
    own size plus one chunk's temporaries. The chunk size is fixed, so the result depends only
    on ``rng``'s state, ``n_rows`` and ``first_row``.
    """

    def make(n: int, rng: np.random.Generator, first_row: int) -> pd.DataFrame:
        cols = {
            name: np.empty(n, dtype=np.int8 if isinstance(kind, tuple) else kind)
            for name, kind in schema.items()
        }
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            piece = make_chunk(stop - start, rng, first_row + start)
            if piece.keys() != schema.keys():  # a programming error in a generator
                raise RuntimeError(f"generator columns {list(piece)} differ from its schema")
            for name, values in piece.items():
                cols[name][start:stop] = values
        frame: dict[str, Any] = {
            name: pd.Categorical.from_codes(cols[name], categories=list(kind))
            if isinstance(kind, tuple)
            else cols[name]
            for name, kind in schema.items()
        }
        return pd.DataFrame(frame, index=pd.RangeIndex(n), copy=False)

    return make
