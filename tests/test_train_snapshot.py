"""One ``wb.train`` asks the scheduler for its workers once: one snapshot, passed down."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost.dask as dxgb
from dask.utils import key_split
from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

import workbench as wb


def _asking_for_workers(calls: list[dict[str, Any]]) -> int:
    """The calls that ask for every worker's details, as the workbench asks (``n_workers=-1``).

    Two other askers reach the same handler and are not the workbench's: the client's own
    periodic refresh (every ``distributed.client.scheduler-info-interval``, so their number
    depends on time) asks with ``n_workers=0``, and ``xgboost.dask`` checks its workers are
    alive with a bare ``identity()``. The test also measures plain ``xgboost.dask.train`` on the
    same cluster and subtracts what it asks this way (none, with the versions pinned now).
    """
    return sum(1 for c in calls if c.get("n_workers") == -1)


def test_train_asks_the_scheduler_for_its_workers_once(
    client: Client, tmp_path: Path, identity_calls: list[dict[str, Any]]
) -> None:
    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
    wb.generate("fraud", 4_000, tmp_path / "fraud", partitions=4, seed=1, client=client)
    ds = wb.load(tmp_path / "fraud", target="is_fraud", client=client)
    train, valid = ds.split((0.8, 0.2), seed=0)
    X, y = train.to_arrays(device="cpu", client=client)

    del identity_calls[:]
    with client.as_current():  # the arrays' futures belong to this client
        dxgb.train(client, {"tree_method": "hist"}, dxgb.DaskDMatrix(client, X, y), 3)
    engine = _asking_for_workers(identity_calls)  # xgboost.dask's own, if it asks this way

    del identity_calls[:]
    model = wb.train(train, valid, rounds=3, client=client, progress=False)
    ours = _asking_for_workers(identity_calls) - engine
    assert ours == 1, identity_calls
    assert model.info["workers"] == 2
    assert model.info["train_rows"] == X.shape[0]
    assert set(model.info["placement"]) == set(client.scheduler_info(n_workers=-1)["workers"])

    del identity_calls[:]  # predicting asks once too: the device and the arrays share a snapshot
    scores = client.compute(model.predict_proba(valid, client=client)).result()
    assert _asking_for_workers(identity_calls) == 1, identity_calls
    assert len(scores) == valid.count_rows()


class _TaskPrefixes(SchedulerPlugin):
    """Counts the tasks the real scheduler finishes, by key prefix (as ``key_split`` gives it)."""

    name = "count-task-prefixes"

    def __init__(self) -> None:
        self.done: Counter[str] = Counter()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "memory":
            self.done[key_split(key)] += 1


@pytest.fixture()
def task_prefixes(client: Client) -> Iterator[_TaskPrefixes]:
    """A :class:`_TaskPrefixes` on the in-process scheduler for the test, removed after."""
    scheduler = client.cluster.scheduler
    plugin = _TaskPrefixes()
    scheduler.add_plugin(plugin)
    try:
        yield plugin
    finally:
        scheduler.remove_plugin(name=plugin.name)


def test_train_takes_the_classes_found_while_encoding(
    client: Client, tmp_path: Path, task_prefixes: _TaskPrefixes
) -> None:
    wb.generate("fraud", 4_000, tmp_path / "fraud", partitions=4, seed=1, client=client)
    ds = wb.load(tmp_path / "fraud", target="is_fraud", client=client)
    train, valid = ds.split((0.8, 0.2), seed=0)

    task_prefixes.done.clear()
    model = wb.train(train, valid, rounds=3, client=client, progress=False)
    # da.unique's tasks, fused or not (e.g. 'getitem-unique-aggregate'), were the pass
    unique = {k: n for k, n in task_prefixes.done.items() if "unique" in k}
    assert unique == {}, task_prefixes.done  # no pass of its own over y to find the classes
    assert model.classes is not None and list(model.classes) == [0, 1]

    # what load learned travels with the dataset; a split's part may lack a class, so it
    # is not kept there: the classes of exactly the rows encoded come with the arrays
    assert ds.classes == [0, 1]
    assert train.classes is None and valid.classes is None
    arrays = train.encoded(client, device="cpu")
    want = np.unique(client.compute(arrays.y).result())
    assert arrays.classes is not None
    np.testing.assert_array_equal(arrays.classes, want)
    unchecked = wb.load(tmp_path / "fraud", target="is_fraud", client=client, check=False)
    assert unchecked.classes is None
    regression = wb.load(tmp_path / "fraud", target="amount", task="regression", client=client)
    assert regression.classes is None
    assert regression.encoded(client, device="cpu").classes is None
