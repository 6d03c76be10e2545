"""Training that survives lost workers: real worker processes killed with SIGKILL mid-training."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import workbench as wb
from workbench._client import scheduler_workers
from workbench.training.watch import Watch

ROUNDS = 120
PARAMS = {"max_depth": 6, "eta": 0.1}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("higgs-like")
    rng = np.random.default_rng(0)
    for i in range(4):
        x = rng.normal(size=(40_000, 12)).astype(np.float32)
        logit = x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3]
        y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(x.shape[1])]).assign(y=y)
        frame.to_parquet(folder / f"part-{i}.parquet")
    return folder


@pytest.fixture
def cluster() -> Iterator[tuple[LocalCluster, Client]]:
    """Two worker processes (with nannies, which replace a killed worker)."""
    with (
        dask.config.set({"workbench.train.checkpoint-every": 5}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as c,
        Client(c, set_as_default=False) as client,
    ):
        yield c, client


def _training_tasks(dask_scheduler: Any) -> set[str]:
    """XGBoost's training tasks (``fn-...``) running now."""
    tasks = dask_scheduler.tasks.values()
    return {str(ts.key) for ts in tasks if str(ts.key).startswith("fn-") and ts.processing_on}


def _worker_pids(client: Client) -> dict[str, int]:
    return client.run(os.getpid)


def kill_later(
    cluster: LocalCluster,
    client: Client,
    victims: list[tuple[float, bool]],
    log: list[dict[str, Any]],
    ready: Callable[[], bool] = lambda: True,
) -> threading.Thread:
    """Each ``(seconds, for_good)``: once XGBoost's tasks run, wait, then SIGKILL a worker.

    ``for_good`` turns its nanny's restarts off first, so that nothing replaces the worker.
    ``ready``: also wait until it is true (for example, until a checkpoint was written), so
    that what the test needs has happened however slow the machine is.
    """

    def run() -> None:
        seen: set[str] = set()
        for delay, for_good in victims:
            deadline = time.monotonic() + 120
            while len(client.run_on_scheduler(_training_tasks) - seen) < 2 or not ready():
                if time.monotonic() > deadline:  # a new attempt, and ready
                    return
                time.sleep(0.05)
            time.sleep(delay)
            address, pid = sorted(_worker_pids(client).items())[-1]
            if for_good:  # the nanny lets its worker go instead of starting another
                for nanny in cluster.workers.values():
                    if getattr(nanny, "worker_address", None) == address:
                        nanny.close_gracefully(reason="test: this host is gone")
            os.kill(pid, signal.SIGKILL)
            log.append({"address": address, "pid": pid, "time": time.monotonic()})
            seen |= client.run_on_scheduler(_training_tasks)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _train(client: Client, data: Path, **kwargs: Any) -> wb.Model:
    ds = wb.load(data, target="y", client=client)
    train, valid = ds.split((0.8, 0.2), seed=0)
    return wb.train(
        train, valid, rounds=ROUNDS, params=PARAMS, client=client, progress=False, **kwargs
    )


@pytest.fixture(scope="module")
def reference(data: Path, client: Client) -> wb.Model:
    """The same training, uninterrupted (on the shared in-process cluster)."""
    return _train(client, data)


def test_a_killed_worker_is_replaced_and_training_completes(
    cluster: tuple[LocalCluster, Client], data: Path, reference: wb.Model
) -> None:
    c, client = cluster
    killed: list[dict[str, Any]] = []
    killer = kill_later(c, client, [(1.5, False)], killed)
    model = _train(client, data)
    killer.join(5)
    assert len(killed) == 1
    recoveries = model.info["recoveries"]
    assert len(recoveries) == 1, recoveries
    assert recoveries[0]["lost_workers"] == [killed[0]["address"]]
    assert recoveries[0]["ended_by"] == "error"  # it failed by itself: nothing was restarted
    assert len(model.history) == ROUNDS
    assert model.estimator.num_boosted_rounds() == ROUNDS
    assert not model.history.isna().any().any()
    # within a small tolerance of the uninterrupted run's validation metric
    assert model.metrics["auc"] == pytest.approx(reference.metrics["auc"], abs=0.01)
    assert model.metrics["logloss"] == pytest.approx(reference.metrics["logloss"], rel=0.03)


def test_two_kills_in_one_training(
    cluster: tuple[LocalCluster, Client], data: Path, reference: wb.Model
) -> None:
    c, client = cluster
    killed: list[dict[str, Any]] = []
    killer = kill_later(c, client, [(1.0, False), (1.0, False)], killed)
    model = _train(client, data)
    killer.join(5)
    assert len(killed) == 2
    assert len(model.info["recoveries"]) == 2
    assert len(model.history) == ROUNDS
    assert model.metrics["auc"] == pytest.approx(reference.metrics["auc"], abs=0.01)


def test_no_replacement_finishes_on_the_survivor(
    cluster: tuple[LocalCluster, Client], data: Path
) -> None:
    c, client = cluster
    killed: list[dict[str, Any]] = []
    with dask.config.set({"workbench.train.replace-wait": "3s"}):
        killer = kill_later(c, client, [(1.0, True)], killed)
        model = _train(client, data)
    killer.join(5)
    (recovery,) = model.info["recoveries"]
    assert recovery["workers_after"] == 1
    assert len(model.history) == ROUNDS
    assert len(client.scheduler_info()["workers"]) == 1


def test_no_replacement_fails_clearly_when_survivors_are_not_enough(
    cluster: tuple[LocalCluster, Client], data: Path, tmp_path: Path
) -> None:
    c, client = cluster
    killed: list[dict[str, Any]] = []
    with dask.config.set(
        {"workbench.train.replace-wait": "2s", "workbench.train.recover-on-survivors": False}
    ):
        checkpoint = tmp_path / "last.wbm"
        killer = kill_later(c, client, [(0.0, True)], killed, ready=checkpoint.exists)
        with pytest.raises(wb.TrainingError, match="were not replaced within 2 s") as info:
            _train(client, data, checkpoint_path=str(checkpoint))
    killer.join(5)
    # the error says where the last checkpoint is, and it continues from there
    assert f"is saved at {tmp_path / 'last.wbm'}" in str(info.value)
    saved = wb.load_model(str(tmp_path / "last.wbm"))
    assert 0 < saved.estimator.num_boosted_rounds() < ROUNDS
    assert saved.estimator.num_boosted_rounds() % 5 == 0


def test_without_checkpoints_a_lost_worker_is_a_clear_error(
    cluster: tuple[LocalCluster, Client], data: Path
) -> None:
    c, client = cluster
    killed: list[dict[str, Any]] = []
    killer = kill_later(c, client, [(1.0, False)], killed)
    with pytest.raises(wb.TrainingError, match=r"lost worker.*checkpoints are off"):
        _train(client, data, checkpoint_every=0)
    killer.join(5)


async def _remove_worker(dask_scheduler: Any, address: str) -> Any:
    """The scheduler removes a worker, as when its heartbeats stop (``worker-ttl``).

    Without telling it (``close=False``): on a host that is cut off it cannot be reached.
    """
    return await dask_scheduler.remove_worker(
        address=address, stimulus_id="test-host-cut-off", close=False
    )


@pytest.fixture
def nanny_and_bare_worker() -> Iterator[tuple[Client, subprocess.Popen[bytes]]]:
    """A worker with a nanny (the survivor) and a worker process without one (to be stopped).

    Nothing can restart or end the bare worker once it is stopped, as with a worker on a host
    that is cut off (in a LocalCluster a nanny in this process would end its stopped worker).
    """
    with (
        dask.config.set({"workbench.train.checkpoint-every": 5}),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as c,
        Client(c, set_as_default=False) as client,
    ):
        bare = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                c.scheduler_address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                "bare",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client.wait_for_workers(2, timeout=60)
            yield client, bare
        finally:
            bare.kill()  # a stopped process still takes SIGKILL
            bare.wait()


def test_a_removed_stuck_worker_ends_in_a_restart_of_the_survivors(
    nanny_and_bare_worker: tuple[Client, subprocess.Popen[bytes]],
    data: Path,
    reference: wb.Model,
) -> None:
    """A worker stopped (SIGSTOP: its sockets stay open, as on a host cut off) and removed.

    The survivor waits for it in XGBoost's allreduce; only a restart of the survivor ends that
    wait before the collective timeout (set far above what the recovery takes).
    """
    client, bare = nanny_and_bare_worker
    pids = _worker_pids(client)
    victim = next(a for a, pid in pids.items() if pid == bare.pid)
    survivor = next(a for a in pids if a != victim)
    stopped: list[float] = []

    def stop_and_remove() -> None:
        deadline = time.monotonic() + 120
        while len(client.run_on_scheduler(_training_tasks)) < 2:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        time.sleep(1.5)
        bare.send_signal(signal.SIGSTOP)
        stopped.append(time.monotonic())
        client.run_on_scheduler(_remove_worker, address=victim)

    thread = threading.Thread(target=stop_and_remove, daemon=True)
    with dask.config.set(
        {
            "workbench.train.collective-timeout": "120s",
            "workbench.train.restart-grace": "2s",
            "workbench.train.replace-wait": "60s",  # not waited: the silent worker won't return
        }
    ):
        thread.start()
        model = _train(client, data)
    thread.join(5)
    assert stopped
    (recovery,) = model.info["recoveries"]
    assert recovery["lost_workers"] == [victim]
    assert recovery["ended_by"] == "restart"
    assert recovery["seconds_to_resume"] < 120  # not after the collective timeout
    assert recovery["waited_seconds"] < 60  # nor after waiting for a replacement
    assert recovery["workers_after"] == 1
    assert survivor not in scheduler_workers(client)  # restarted: a new worker took its place
    assert len(model.history) == ROUNDS
    assert model.metrics["auc"] == pytest.approx(reference.metrics["auc"], abs=0.01)


def test_a_training_without_a_loss_restarts_nothing(
    cluster: tuple[LocalCluster, Client], data: Path
) -> None:
    _, client = cluster
    with dask.config.set({"workbench.train.restart-grace": "0.1s"}):
        before = _worker_pids(client)
        ds = wb.load(data, target="y", client=client)
        model = wb.train(ds, rounds=20, params=PARAMS, client=client, progress=False)
        # a worker that is not training is removed: the training's workers stay
        first = sorted(before)[0]
        with Watch(client, [first], grace=0.1) as watch:
            client.retire_workers([sorted(before)[1]])
            time.sleep(0.5)  # more than the grace
    assert model.info["recoveries"] == []
    assert watch.removed == {} and watch.restarted == []
    assert _worker_pids(client)[first] == before[first]


def test_survivors_without_a_nanny_are_not_restarted_and_a_warning_says_so(
    nanny_and_bare_worker: tuple[Client, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, bare = nanny_and_bare_worker
    pids = _worker_pids(client)
    survivor = next(a for a, pid in pids.items() if pid == bare.pid)  # it has no nanny
    removed = next(a for a in pids if a != survivor)
    log = logging.getLogger("workbench.training.watch")
    log.addHandler(caplog.handler)  # the workbench logger does not propagate to the root
    try:
        with Watch(client, list(pids), grace=0.1) as watch:
            client.run_on_scheduler(_remove_worker, address=removed)
            deadline = time.monotonic() + 30
            while not watch.without_nanny and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        log.removeHandler(caplog.handler)
    assert list(watch.removed) == [removed]
    assert watch.without_nanny == [survivor] and watch.restarted == []
    assert "without a nanny" in caplog.text and "collective-timeout" in caplog.text
    assert client.run(os.getpid, workers=[survivor]) == {survivor: bare.pid}  # not restarted


@pytest.mark.parametrize("grace", ["soon", 0, "-1s"])
def test_a_bad_restart_grace_is_refused_before_training(
    client: Client, data: Path, grace: Any
) -> None:
    with (
        dask.config.set({"workbench.train.restart-grace": grace}),
        pytest.raises(ValueError, match=r"workbench\.train\.restart-grace.*positive duration"),
    ):
        _train(client, data)


# --- histories of trainings that evaluate other data sets in their parts -------------------------
def test_joined_histories_keep_rounds_aligned_and_train_first() -> None:
    from workbench.training.backends.xgboost import recovery

    first = {"valid": {"auc": [0.6, 0.7]}}  # trained with the defaults: valid only
    then = {"train": {"auc": [0.9]}, "valid": {"auc": [0.72]}}  # resumed with eval_train
    joined = recovery._join(first, then)
    assert list(joined) == ["train", "valid"]
    assert joined["valid"]["auc"] == [0.6, 0.7, 0.72]
    assert np.isnan(joined["train"]["auc"][:2]).all() and joined["train"]["auc"][2] == 0.9
    state = recovery.stopping_state(joined, 3)
    assert state is not None and (state.data, state.best_iteration) == ("valid", 2)


def test_live_history_is_indexed_by_round() -> None:
    from types import SimpleNamespace

    from workbench.training.backends.xgboost import recovery

    bar: Any = SimpleNamespace(
        rounds={
            0: {"valid": {"logloss": 0.5}},
            1: {"valid": {"logloss": 0.4}},
            2: {"train": {"logloss": 0.3}, "valid": {"logloss": 0.35}},
        }
    )
    history = recovery.live_history(bar)
    assert list(history) == ["train", "valid"]
    assert history["valid"]["logloss"] == [0.5, 0.4, 0.35]
    assert np.isnan(history["train"]["logloss"][:2]).all()
    assert history["train"]["logloss"][2] == 0.3


def test_stopping_state_skips_rounds_without_a_value() -> None:
    from workbench.training.backends.xgboost import recovery

    nan = float("nan")
    history = {
        "train": {"logloss": [0.5, 0.4, 0.3, 0.2]},
        "valid": {"logloss": [nan, nan, 0.3, 0.31]},
    }
    state = recovery.stopping_state(history, 4)  # valid is watched, from its first value
    assert state is not None
    assert (state.data, state.metric, state.best_iteration, state.since_best) == (
        "valid",
        "logloss",
        2,
        1,
    )
    assert recovery.stopping_state({"valid": {"auc": [nan, nan]}}, 2) is None
