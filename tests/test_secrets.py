"""Secrets stay out of what is printed or logged (issue 12, item 8), and are still used.

Real objects with real secrets in them: a gateway profile with an inline password, a Parquet
load with ``storage_options``, catalog entries with cloud keys and a password in a URL.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from dask.base import tokenize
from distributed import Client

import workbench as wb
from workbench._redact import MASK, is_secret_key, redact
from workbench.clusters.profiles import get_profile
from workbench.data.catalog import datasets, get_entry

SECRET = "Sup3r-S3cret-Value-0xC0FFEE"
KEY_ID = "AKIAWORKBENCHTESTKEY"
NESTED = "nested-S3cret-in-client-kwargs"
SECRETS = (SECRET, KEY_ID, NESTED)


def shows_no_secret(text: str) -> bool:
    return not any(s in text for s in SECRETS)


@contextlib.contextmanager
def all_logs() -> Iterator[io.StringIO]:
    """Every log record at DEBUG, from the root logger and ``workbench`` (which does not
    propagate), formatted with its traceback, into a buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(), logging.getLogger("workbench")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "secret",
        "token",
        "key",
        "aws_secret_access_key",
        "aws_session_token",
        "AccountKey",
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",
        "credentials",
        "x-api-key",
        "Authorization",
        "sig",
    ],
)
def test_secret_keys(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "key_file",
        "cert_file",
        "password_env",
        "token_path",
        "endpoint_url",
        "username",
        "anon",
        "region_name",
        "monkey",
        "keys",
        3,
    ],
)
def test_keys_that_are_not_secret(name: object) -> None:
    assert not is_secret_key(name)


def test_redact_masks_nested_values_and_urls_and_keeps_the_rest() -> None:
    options = {
        "key": KEY_ID,
        "secret": SECRET,
        "token": None,
        "use_ssl": True,
        "client_kwargs": {"aws_secret_access_key": NESTED, "region_name": "eu-west-1"},
        "endpoint_url": f"https://alice:{SECRET}@minio.example.com:9000/?X-Amz-Signature={NESTED}",
        "key_file": "/certs/key.pem",
    }
    shown = redact(options)
    assert shows_no_secret(repr(shown))
    assert shown["key"] == shown["secret"] == MASK
    assert shown["client_kwargs"]["aws_secret_access_key"] == MASK
    assert shown["token"] is None and shown["use_ssl"] is True
    assert shown["client_kwargs"]["region_name"] == "eu-west-1"
    assert shown["endpoint_url"].startswith(f"https://alice:{MASK}@minio.example.com:9000/")
    assert shown["key_file"] == "/certs/key.pem"
    assert options["secret"] == SECRET  # the original is untouched
    assert redact("s3://bucket/data/*.parquet") == "s3://bucket/data/*.parquet"


def test_a_gateway_profile_hides_its_inline_password(user_profiles: Path) -> None:
    path = user_profiles / "gw.yaml"
    path.write_text(
        "kind: gateway\n"
        "description: a gateway with its password inline\n"
        "options:\n"
        "  address: https://gateway.example.com\n"
        "  username: alice\n"
        f"  password: {SECRET}\n"
    )
    profile = get_profile("gw")
    listing = wb.profiles()
    for text in (
        repr(profile),
        str(profile),
        repr(profile.with_overrides({"n_workers": 2})),
        repr(listing),
        listing._repr_html_(),
        repr(dict(listing)),
    ):
        assert shows_no_secret(text), text
    assert f"'password': '{MASK}'" in repr(profile) and "'username': 'alice'" in repr(profile)
    # still used: the gateway gets it
    assert profile.options["password"] == SECRET
    pytest.importorskip("dask_gateway")
    from workbench.clusters.remote import gateway_arguments

    assert gateway_arguments(profile, tls=True)["auth"].password == SECRET


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "t.parquet"
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {"a": rng.normal(size=200), "b": rng.normal(size=200), "y": rng.integers(0, 2, 200)}
    ).to_parquet(path)
    return path


def test_a_parquet_load_shows_and_logs_no_storage_option_secret(
    client: Client, parquet_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # fsspec's local filesystem takes any options, so these reach a real filesystem
    options = {"key": KEY_ID, "password": SECRET, "client_kwargs": {"token": NESTED}}
    with all_logs() as logs:
        ds = wb.load(str(parquet_file), target="y", storage_options=options, client=client)
        _, y = ds.to_arrays(client=client)
        total = client.compute(ds.frame["a"].sum()).result()
    assert ds.plan is not None
    reader = ds.plan.reader
    ds.frame.expr.pprint()  # printed the reader's storage_options before the fix
    printed = capsys.readouterr().out
    assert "ParquetReader(" in printed and "storage_options=" in printed
    graph_keys = [str(k) for k in dict(ds.frame.__dask_graph__())]
    for text in (
        printed,
        repr(reader),
        str(reader),
        repr(ds.plan),
        repr(ds),
        ds._repr_html_(),
        logs.getvalue(),
        " ".join(graph_keys),
        tokenize(reader),
    ):
        assert shows_no_secret(text), text
    assert f"'password': '{MASK}'" in repr(reader)
    assert "DEBUG" in logs.getvalue()  # the capture worked
    # still used: the reader holds them, tasks read with them, a different secret is another task
    assert reader.storage_options == options
    assert total == pytest.approx(pd.read_parquet(parquet_file)["a"].sum())
    assert len(client.compute(y).result()) == 200
    other = replace(reader, storage_options={**options, "password": "another"})
    assert tokenize(other) != tokenize(reader)


def test_catalog_entries_hide_storage_options_and_url_passwords(tmp_path: Path) -> None:
    (tmp_path / "cloud.yaml").write_text(
        "description: on object storage\n"
        "target: y\n"
        "source:\n"
        "  path: s3://bucket/cloud/*.parquet\n"
        "  format: parquet\n"
        f"  storage_options: {{key: {KEY_ID}, secret: {SECRET}, "
        f"client_kwargs: {{aws_session_token: {NESTED}}}}}\n"
    )
    (tmp_path / "web.yaml").write_text(
        f"target: y\nsource: {{path: 'https://alice:{SECRET}@data.example.com/t.parquet'}}\n"
    )
    with dask.config.set({"workbench.data.path": str(tmp_path)}):
        catalog = datasets()
        cloud, web = get_entry("cloud"), get_entry("web")
    assert cloud is not None and web is not None
    for text in (
        repr(cloud),
        str(cloud),
        repr(web),
        repr(catalog),
        catalog._repr_html_(),
        repr(dict(catalog)),
    ):
        assert shows_no_secret(text), text
    assert "https://alice:***@data.example.com/t.parquet" in catalog._repr_html_()
    # still there for the load
    assert cloud.source["storage_options"]["secret"] == SECRET
    assert cloud.source["storage_options"]["client_kwargs"]["aws_session_token"] == NESTED
    assert SECRET in web.source["path"]


def test_a_dataset_from_a_url_with_a_password_hides_it() -> None:
    frame = dd.from_pandas(pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}), npartitions=1)
    source = "https://analyst:hunter2-secret@data.example/fraud/*.parquet"
    ds = wb.Dataset(frame, "y", {"a": "numeric"}, "binary", source=source)
    for shown in (repr(ds), str(ds), ds._repr_html_()):
        assert "hunter2-secret" not in shown
        assert f"analyst:{MASK}@data.example" in shown
    assert ds.source == source  # kept as given
