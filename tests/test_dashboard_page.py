"""The workbench training page in the Dask dashboard: served, listed, fed by a real training.

Real local clusters from ``wb.start_cluster`` (plain and TLS), a real ``wb.train``; the page is
fetched over HTTP from the cluster's dashboard, and the plugin's board and the page's drawing
are read on the scheduler itself (``client.run_on_scheduler``). What a browser draws is checked
in ``tests/test_browser.py``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster
from distributed.dashboard import scheduler as dask_dashboard

import workbench as wb
from tests.test_recovery import PARAMS, kill_later
from tests.test_recovery import ROUNDS as RECOVERY_ROUNDS
from workbench.dashboard import PRELOAD, URL, scheduler_options, state
from workbench.dashboard.page import PLUGIN_NAME, TrainingPage, TrainingView, board_of
from workbench.events import TRAINING_PREFIX, is_training_topic
from workbench.training.progress import new_topic

ROUNDS = 6


@pytest.fixture(scope="module")
def cluster() -> Iterator[wb.Cluster]:
    """A TLS cluster: the page must work there as on a plain one (tests/test_browser.py)."""
    with wb.start_cluster("local-cpu", tls=True, n_workers=2, processes=False) as started:
        yield started


@pytest.fixture(scope="module")
def sets(cluster: wb.Cluster, tmp_path_factory: pytest.TempPathFactory) -> list[wb.Dataset]:
    client = cluster.get_client()
    path = tmp_path_factory.mktemp("data") / "fraud"
    wb.generate("fraud", 8_000, path, partitions=4, seed=1, client=client)
    ds = wb.load(
        path, target="is_fraud", categorical=["merchant_category", "device"], client=client
    )
    return list(ds.split((0.8, 0.2), seed=0))


@pytest.fixture(scope="module")
def model(cluster: wb.Cluster, sets: list[wb.Dataset]) -> wb.Model:
    train, valid = sets
    return wb.train(
        train,
        valid,
        rounds=ROUNDS,
        checkpoint_every=2,
        params={"max_depth": 3},
        client=cluster.get_client(),
        progress=False,
    )


def _base(cluster: wb.Cluster) -> str:
    link = cluster.dashboard_link
    assert link, "the cluster has no dashboard"
    return link.rsplit("/", 1)[0]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.read().decode()


def _board(dask_scheduler: Any) -> dict[str, Any]:
    return board_of(dask_scheduler).as_dict()


def _has_plugin(dask_scheduler: Any) -> bool:
    return isinstance(dask_scheduler.plugins.get(PLUGIN_NAME), TrainingPage)


def _drawn(dask_scheduler: Any) -> dict[str, Any]:
    """What the page draws from the board: its curves' columns, its tables' rows, its header."""
    view = TrainingView(board_of(dask_scheduler))
    view.update()
    plain = {
        metric: {k: [float(x) for x in v] for k, v in source.data.items()}
        for metric, (source, _) in view.curves.items()
    }
    marks = {
        metric: {kind: list(m.data["round"]) for kind, m in sources.items()}
        for metric, (_, sources) in view.curves.items()
    }
    return {"curves": plain, "marks": marks, "rows": view.rows, "header": view.header.text}


def _bytes_anywhere(obj: Any) -> bool:
    if isinstance(obj, bytes | bytearray | memoryview):
        return True
    if isinstance(obj, dict):
        return any(_bytes_anywhere(v) for v in obj.values())
    if isinstance(obj, list | tuple | set):
        return any(_bytes_anywhere(v) for v in obj)
    return False


def _current(client: Client) -> dict[str, Any]:
    board = client.run_on_scheduler(_board)
    assert board["current"] is not None, "the board has no training"
    return board["trainings"][board["current"]]


def test_the_page_answers_on_the_dashboard_and_is_listed(cluster: wb.Cluster) -> None:
    assert cluster.scheduler_address.startswith("tls://")
    base = _base(cluster)
    status, body = _get(base + URL)
    assert status == 200
    assert "Bokeh" in body and "Workbench training" in body
    status, listing = _get(base + "/individual-plots.json")
    assert status == 200
    assert URL in json.loads(listing).values()
    assert cluster.get_client().run_on_scheduler(_has_plugin)


def test_the_board_holds_the_trainings_rounds_metrics_and_checkpoints(
    cluster: wb.Cluster, model: wb.Model
) -> None:
    shown = _current(cluster.get_client())
    assert is_training_topic(shown["topic"])
    assert shown["status"] == "done" and shown["outcome"] == "finished"
    assert shown["total"] == ROUNDS and shown["model"] == "xgboost"
    assert shown["rounds"] == list(model.history.index) == list(range(ROUNDS))
    assert set(shown["metrics"]) == set(model.history.columns) == {"valid-logloss", "valid-auc"}
    for column in model.history.columns:
        assert shown["metrics"][column] == list(model.history[column]), column
    placement = {w: r["rows"] for w, r in model.info["placement"].items()}
    assert shown["workers"] == placement
    assert sum(shown["workers"].values()) == model.info["train_rows"]
    assert shown["checkpoints"] == [2, 4, 6]
    assert all(n > 0 for n in shown["checkpoint_bytes"])
    assert not _bytes_anywhere(shown), "the board kept a checkpoint's bytes"
    kinds = [kind for kind, _, _ in shown["events"]]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("checkpoint") == 3


def test_the_page_draws_the_curves_and_the_workers(cluster: wb.Cluster, model: wb.Model) -> None:
    drawn = cluster.get_client().run_on_scheduler(_drawn)
    assert set(drawn["curves"]) == {"logloss", "auc"}
    for metric, curve in drawn["curves"].items():
        assert curve["round"] == [float(r) for r in range(ROUNDS)]
        np.testing.assert_array_equal(curve["valid"], model.history[f"valid-{metric}"])
    assert drawn["marks"]["auc"] == {"checkpoint": [1.0, 3.0, 5.0], "recovery": []}
    workers = drawn["rows"]["workers"]  # worker, rows, rows/s, state
    assert sorted(w[0] for w in workers) == sorted(model.info["placement"])
    for worker, rows, per_second, now in workers:
        assert rows == f"{model.info['placement'][worker]['rows']:,}"
        assert int(per_second.replace(",", "")) > 0 and now == "done"
    assert f"round {ROUNDS} of {ROUNDS}" in drawn["header"]
    assert [e[2] for e in drawn["rows"]["events"]].count("checkpoint") == 3
    assert drawn["rows"]["trainings"][0][-2:] == (f"{ROUNDS} / {ROUNDS}", "finished")


def test_a_plugin_registered_by_a_client_serves_the_page_on_a_running_scheduler(
    monkeypatch: pytest.MonkeyPatch, sets: list[wb.Dataset]
) -> None:
    # a scheduler started without the page, as one started elsewhere without the preload
    monkeypatch.delitem(dask_dashboard.applications, URL, raising=False)
    here = {"dashboard_address": "127.0.0.1:0", "worker_dashboard_address": "127.0.0.1:0"}
    with (
        LocalCluster(n_workers=1, processes=False, **here) as plain,
        Client(plain, set_as_default=False) as client,
    ):
        base = f"http://127.0.0.1:{client.scheduler_info()['services']['dashboard']}"
        with pytest.raises(urllib.error.HTTPError):
            _get(base + URL)
        assert not client.run_on_scheduler(_has_plugin)
        client.register_plugin(TrainingPage())
        assert client.run_on_scheduler(_has_plugin)
        status, body = _get(base + URL)
        assert status == 200 and "Bokeh" in body
        train, valid = sets
        model = wb.train(train, valid, rounds=3, client=client, progress=False)
        shown = _current(client)
        assert shown["rounds"] == [0, 1, 2]
        assert shown["metrics"]["valid-auc"] == list(model.history["valid-auc"])


def test_a_recovery_shows_as_an_event_with_its_lost_worker(tmp_path: Path) -> None:
    """A worker process killed mid-training (as in tests/test_recovery.py), on a plain cluster."""
    path = tmp_path / "higgs"
    with (
        dask.config.set({"workbench.train.checkpoint-every": 5}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
        ) as processes,
        Client(processes, set_as_default=False) as client,
    ):
        client.register_plugin(TrainingPage())
        wb.generate("higgs", 160_000, path, partitions=4, client=client)
        killed: list[dict[str, Any]] = []
        killer = kill_later(processes, client, [(1.5, False)], killed)
        train, valid = wb.load(path, target="is_signal", client=client).split((0.8, 0.2), seed=0)
        model = wb.train(
            train, valid, rounds=RECOVERY_ROUNDS, params=PARAMS, client=client, progress=False
        )
        killer.join(5)
        assert len(killed) == 1 and len(model.info["recoveries"]) == 1
        shown = _current(client)
    assert shown["lost"] == [killed[0]["address"]]
    assert shown["resumed"] == [model.info["recoveries"][0]["resumed_from"]]
    assert [kind for kind, _, _ in shown["events"]].count("recovery") == 1
    assert shown["rounds"] == list(model.history.index) == list(range(RECOVERY_ROUNDS))
    for column in model.history.columns:  # the rounds trained again replaced the lost ones
        assert shown["metrics"][column] == list(model.history[column]), column


# --- the board and the options, without a cluster ---------------------------------------
def test_the_board_is_bounded_and_keeps_no_model_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "ROUND_LIMIT", 10)
    board = state.Board(keep=2)
    for i in range(4):
        topic = f"{TRAINING_PREFIX}{i}"
        board.take(topic, {"start": 0, "total": 30, "workers": {"a": 10}}, now=100.0 * i)
        for r in range(30):
            board.take(topic, {"round": r, "metrics": {"valid": {"auc": r / 30}}}, 100.0 * i + r)
        board.take(topic, {"checkpoint": 30, "booster": b"x" * 1000}, 100.0 * i + 30)
        if i != 1:  # training 1 stays running
            board.take(topic, {"end": 0, "status": "done", "rounds": 30}, 100.0 * i + 31)
    kept = board.as_dict()["trainings"]
    assert set(kept) == {f"{TRAINING_PREFIX}1", f"{TRAINING_PREFIX}3"}  # finished ones go first
    last = kept[f"{TRAINING_PREFIX}3"]
    assert len(last["rounds"]) <= 10 and last["rounds"][0] == 0 and last["rounds"][-1] == 29
    assert last["checkpoint_bytes"] == [1000] and not _bytes_anywhere(board.as_dict())
    assert board.current() is not None and board.current().topic == f"{TRAINING_PREFIX}1"


def test_the_board_words_early_stopping_recoveries_and_studies() -> None:
    board = state.Board()
    topic = new_topic()
    board.take(
        topic,
        {"start": 0, "total": 200, "workers": {"a": 5, "b": 5}, "study": "s", "trial": 3},
        1.0,
    )
    for r in range(42):
        board.take(topic, {"round": r, "metrics": {"valid": {"auc": 0.5}}}, 2.0 + r)
    board.take(topic, {"recovery": "lost worker(s) b", "lost": ["b"], "resumed_from": 40}, 50)
    board.take(topic, {"end": 0, "status": "done", "rounds": 42, "best": 21}, 60.0)
    shown = board.as_dict()["trainings"][topic]
    assert shown["outcome"] == "stopped early at 42 of 200 rounds, best round 21"
    assert shown["lost"] == ["b"] and shown["resumed"] == [40]
    assert ("recovery", 42, "lost worker(s) b") in shown["events"]
    assert [t.trial for t in board.studies()["s"]] == [3]
    board.take(topic, {"round": "not a number"}, 61.0)  # skipped, not raised
    assert board.as_dict()["trainings"][topic]["rounds"][-1] == 41


def test_topics_are_recognised_by_their_prefix() -> None:
    assert new_topic().startswith(TRAINING_PREFIX)
    assert is_training_topic(new_topic())
    assert not is_training_topic("tcp://127.0.0.1:1234") and not is_training_topic(None)


def test_the_preload_joins_the_schedulers_own() -> None:
    assert scheduler_options(None)["preload"][-1] == PRELOAD
    mine = scheduler_options({"preload": ["a", "b"], "preload_argv": ["--x"]})
    assert mine["preload"] == ["a", "b", PRELOAD]
    assert mine["preload_argv"] == [["--x"], ["--x"], []]
    again = scheduler_options(mine)
    assert again["preload"] == mine["preload"] and again["preload_argv"] == mine["preload_argv"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="keep=0"):
        state.Board(keep=0)
    with pytest.raises(ValueError, match="keep='3'"):
        TrainingPage(keep="3")
    with pytest.raises(TypeError, match="scheduler_kwargs must be a dict"):
        scheduler_options(["preload"])
