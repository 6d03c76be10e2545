"""Dask's sampling timers are eased while a training runs, and put back however it ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import workbench as wb
from workbench.training import monitoring

EASED = {"profile": None, **monitoring.SLOWED}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("monitoring")
    rng = np.random.default_rng(0)
    for i in range(2):
        x = rng.normal(size=(30_000, 8)).astype(np.float32)
        y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(np.int8)
        frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(8)]).assign(y=y)
        frame.to_parquet(folder / f"part-{i}.parquet")
    return folder


@pytest.fixture(scope="module")
def nannied() -> Iterator[Client]:
    """Two worker processes with nannies (a nanny has timers of its own)."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        yield c


def everywhere(client: Client) -> dict[str, Any]:
    """The eased timers of every worker, every nanny and the scheduler."""
    out: dict[str, Any] = {"scheduler": client.run_on_scheduler(monitoring.timers)}
    out.update({f"worker {a}": t for a, t in client.run(monitoring.timers).items()})
    if any(w.get("nanny") for w in client.scheduler_info()["workers"].values()):
        out.update({f"nanny {a}": t for a, t in client.run(monitoring.timers, nanny=True).items()})
    return out


def _fit_tasks(dask_scheduler: Any) -> int:
    """XGBoost's training tasks (``fn-...``) that are running now."""
    return sum(
        1
        for ts in dask_scheduler.tasks.values()
        if str(ts.key).startswith("fn-") and ts.processing_on is not None
    )


def test_pause_holds_per_token_and_resume_puts_dask_timers_back(client: Client) -> None:
    before = everywhere(client)
    tick = 1000 * dask.utils.parse_timedelta(dask.config.get("distributed.admin.tick.interval"))
    assert before["scheduler"]["tick"] == pytest.approx(tick)  # Dask's own, to begin with
    workers = list(client.scheduler_info()["workers"])
    monitoring.pause(client, workers, "first")
    monitoring.pause(client, workers, "second")
    eased = everywhere(client)
    assert set(eased) == set(before)
    for name, timers in eased.items():
        expected = {k: v for k, v in EASED.items() if k in before[name]}
        assert timers == expected, name
    monitoring.resume(client, "first")  # the second training still runs
    assert everywhere(client) == eased
    monitoring.resume(client, "unknown")  # a token that holds nothing changes nothing
    assert everywhere(client) == eased
    monitoring.resume(client, "second")
    assert everywhere(client) == before
    monitoring.resume(client, "second")  # twice is harmless
    assert everywhere(client) == before


def test_training_eases_the_timers_of_workers_nannies_and_scheduler(
    nannied: Client, data: Path
) -> None:
    client = nannied
    before = everywhere(client)
    assert all(before[n]["profile"] is not None for n in before if n.startswith("worker"))
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def watch() -> None:  # timers seen while XGBoost's tasks ran, before and after the look
        while not done.is_set():
            if client.run_on_scheduler(_fit_tasks):
                timers = everywhere(client)
                if client.run_on_scheduler(_fit_tasks):
                    seen.append(timers)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        ds = wb.load(data, target="y", client=client)
        wb.train(ds, rounds=300, params={"max_depth": 6}, client=client, progress=False)
    finally:
        done.set()
        watcher.join(30)
    assert seen, "no look at the timers while XGBoost's tasks ran"
    for timers in seen:
        assert set(timers) == set(before)
        for name, t in timers.items():
            assert t == {k: v for k, v in EASED.items() if k in before[name]}, name
    assert everywhere(client) == before  # all back once the training returned


def test_a_failed_training_puts_the_timers_back(client: Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2_000, 4)).astype(np.float32)
    frame = pd.DataFrame(x, columns=list("abcd")).assign(y=x[:, 0] - 5.0)  # all negative
    frame.to_parquet(tmp_path / "part-0.parquet")
    ds = wb.load(tmp_path, target="y", client=client)
    before = everywhere(client)
    with pytest.raises(Exception, match=r"(?i)gamma|label"):
        # XGBoost refuses the negative labels only when it trains, on the workers
        wb.train(ds, rounds=5, params={"objective": "reg:gamma"}, client=client, progress=False)
    assert everywhere(client) == before


def test_ease_monitoring_false_leaves_dask_alone(client: Client) -> None:
    workers = list(client.scheduler_info()["workers"])
    before = everywhere(client)
    with (
        dask.config.set({"workbench.train.ease-monitoring": False}),
        monitoring.paused(client, workers, "off"),
    ):
        assert everywhere(client) == before
    assert everywhere(client) == before


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_bad_ease_monitoring_setting_is_refused_before_training(
    client: Client, data: Path, value: Any
) -> None:
    ds = wb.load(data, target="y", client=client)
    with (
        dask.config.set({"workbench.train.ease-monitoring": value}),
        pytest.raises(ValueError, match=r"ease-monitoring=.*use true"),
    ):
        wb.train(ds, rounds=2, client=client, progress=False)
