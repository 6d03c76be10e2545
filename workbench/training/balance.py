"""The balance gate: every worker holds training rows before a training starts.

XGBoost trains on the workers that hold partitions of the training matrix: a worker without
any sits idle for the whole training, its threads and memory wasted, with no message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import dask.array as da
import pandas as pd

from workbench._client import ClusterSnapshot, snapshot

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


def _same(block: Any) -> Any:
    return block


def balance(
    client: Client, X: da.Array, y: da.Array, cluster: ClusterSnapshot | None = None
) -> tuple[da.Array, da.Array, pd.DataFrame]:
    """Return ``(X, y)`` persisted so that every worker holds rows, and the per-worker table.

    Where some worker holds no block and there are at least as many blocks as workers, blocks
    move from the workers that hold the most. With fewer blocks than workers, the idle
    workers are named in a warning (more partitions would use them). ``cluster`` is the
    operation's :func:`~workbench._client.snapshot` (its workers); without it the scheduler
    is asked.
    """
    from distributed import futures_of, wait

    X, y = client.persist([X.rechunk({1: -1}), y])
    wait([X, y])
    futures = {f.key: f for f in futures_of(X)}
    y_futures = {f.key: f for f in futures_of(y)}
    blocks = [futures[row[0]] for row in X.__dask_keys__()]  # type: ignore[index]
    y_keys = list(y.__dask_keys__())
    who = client.who_has(blocks)
    if cluster is None:
        cluster = snapshot(client)
    workers = cluster.addresses
    held: dict[str, list[int]] = {w: [] for w in workers}
    for i, b in enumerate(blocks):
        for w in who.get(b.key, ())[:1]:
            held.setdefault(w, []).append(i)
    empty = [w for w in workers if not held.get(w)]
    if empty and len(blocks) >= len(workers):
        x_new = list(blocks)
        y_new = [y_futures[k] for k in y_keys]
        for w in empty:
            donor = max(held, key=lambda d: len(held[d]))
            i = held[donor].pop()
            x_new[i] = client.submit(
                _same, blocks[i], workers=[w], allow_other_workers=True, pure=False
            )
            y_new[i] = client.submit(
                _same, y_new[i], workers=[w], allow_other_workers=True, pure=False
            )
            held[w].append(i)
        logger.info(
            "balance: moved %d block(s) to worker(s) that held no training rows: %s",
            len(empty),
            ", ".join(empty),
        )
        X = _rebuild(x_new, X)
        y = _rebuild(y_new, y)
        return balance(client, X, y, cluster)
    rows = X.chunks[0]
    table = pd.DataFrame(
        {
            "blocks": [len(held.get(w, [])) for w in workers],
            "rows": [sum(rows[i] for i in held.get(w, [])) for w in workers],
        },
        index=pd.Index(workers, name="worker"),
    )
    if empty:
        logger.warning(
            "%d of %d workers hold no training rows and will sit idle (the data has %d "
            "partition(s)); load or generate it with more partitions to use them:\n%s",
            len(empty),
            len(workers),
            len(blocks),
            table.to_string(),
        )
    return X, y, table


def _rebuild(futures: list[Any], like: da.Array) -> da.Array:
    parts = [
        da.from_delayed(f, shape=(n, *like.shape[1:]), dtype=like.dtype, meta=like._meta)
        for f, n in zip(futures, like.chunks[0], strict=True)
    ]
    return da.concatenate(parts, axis=0)
