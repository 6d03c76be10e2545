"""The base layer's client: the default-client hook and the one-question cluster snapshot."""

from __future__ import annotations

from typing import Any

import pytest
from distributed import Client

import workbench as wb
from workbench import _client, api
from workbench._client import (
    ClusterSnapshot,
    ensure_client,
    set_default_client_factory,
    snapshot,
)


def test_snapshot_asks_the_scheduler_once(
    client: Client, identity_calls: list[dict[str, Any]]
) -> None:
    snap = snapshot(client)
    assert len(identity_calls) == 1
    assert isinstance(snap, ClusterSnapshot)
    info = client.scheduler_info(n_workers=-1)["workers"]  # a second question, for the check
    assert len(identity_calls) == 2
    assert snap.address == client.scheduler.address
    assert snap.n_workers == 2 and snap.addresses == sorted(info)
    assert snap.hosts == sorted({w["host"] for w in info.values()})
    assert snap.threads == sum(w["nthreads"] for w in info.values()) == 2
    assert snap.memory == sum(w["memory_limit"] for w in info.values()) > 0
    # the workers report the machine's GPU where NVML sees one (whether or not they are GPU
    # workers: see test_data's test of device="auto")
    seen = 2 if wb.hardware().gpus else 0
    assert snap.gpus == seen and snap.all_gpu == bool(seen)
    assert snap.tls is False
    with pytest.raises(AttributeError):
        snap.address = "tcp://elsewhere:1"  # type: ignore[misc]


def test_snapshot_tls_from_the_address() -> None:
    assert ClusterSnapshot(address="tls://127.0.0.1:8786", workers=()).tls
    assert ClusterSnapshot(address="gateway://127.0.0.1:8000/x", workers=()).tls
    assert not ClusterSnapshot(address="tcp://127.0.0.1:8786", workers=()).tls
    assert not ClusterSnapshot(address="tcp://127.0.0.1:8786", workers=()).all_gpu


def test_the_api_layer_registers_the_default_cluster_hook() -> None:
    assert wb.api is api
    assert _client._default_factory == [api.default_client]


def test_ensure_client_without_a_hook_says_what_to_do() -> None:
    with pytest.raises(ValueError):
        Client.current()
    set_default_client_factory(None)
    try:
        with pytest.raises(wb.WorkbenchError, match=r"no Dask client is connected.*client="):
            ensure_client()
    finally:
        set_default_client_factory(api.default_client)


def test_ensure_client_calls_the_registered_hook(client: Client) -> None:
    with pytest.raises(ValueError):
        Client.current()
    asked: list[bool] = []

    def factory() -> Client:
        asked.append(True)
        return client

    set_default_client_factory(factory)
    try:
        assert ensure_client() is client
        assert ensure_client(client) is client and asked == [True]
    finally:
        set_default_client_factory(api.default_client)


def test_set_default_client_factory_refuses_a_non_callable() -> None:
    with pytest.raises(TypeError, match="callable or None, not str"):
        set_default_client_factory("local")  # type: ignore[arg-type]
    assert _client._default_factory == [api.default_client]
