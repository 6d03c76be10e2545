"""Secrets stay out of what is printed or logged (issue 12, item 8), and are still used.

Real objects with real secrets in them: a gateway profile with an inline password, a Parquet
load with ``storage_options``, catalog entries with cloud keys and a password in a URL.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import io
import logging
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dask.base import tokenize
from distributed import Client
from fsspec.core import url_to_fs

import workbench as wb
from workbench._redact import MASK, is_secret_key, redact
from workbench.clusters.profiles import get_profile
from workbench.clusters.remote import gateway_arguments
from workbench.data.catalog import datasets, get_entry
from workbench.data.parquet import Piece, parquet_frame, parquet_reader, pieces
from workbench.errors import DataError, DataNotFoundError, ProfileError

SECRET = "Sup3r-S3cret-Value-0xC0FFEE"
KEY_ID = "AKIAWORKBENCHTESTKEY"
NESTED = "nested-S3cret-in-client-kwargs"
SECRETS = (SECRET, KEY_ID, NESTED)


def shows_no_secret(text: str) -> bool:
    return not any(s in text for s in SECRETS)


@contextlib.contextmanager
def all_logs(skip: tuple[str, ...] = ()) -> Iterator[io.StringIO]:
    """Every log record at DEBUG, from the root logger and ``workbench`` (which does not
    propagate), formatted with its traceback, into a buffer; less those of loggers named
    ``skip`` and their children."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.DEBUG)
    handler.addFilter(lambda r: not any(r.name == s or r.name.startswith(f"{s}.") for s in skip))
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


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, with the byte ranges Parquet readers ask for; remembers the
    credentials each request brought."""

    seen_auth: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization", ""))
        asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if asked is None or not path.is_file():
            super().do_GET()
            return
        data = path.read_bytes()
        start, stop = int(asked[1]), int(asked[2] or len(data) - 1)
        part = data[start : stop + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def do_HEAD(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization", ""))
        super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:  # no request lines on stderr
        pass


@pytest.fixture(scope="module")
def http_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A real HTTP server on 127.0.0.1 serving a folder: (folder, port)."""
    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(_Files, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield folder, int(server.server_address[1])
        finally:
            server.shutdown()
            thread.join(10)


def test_a_load_from_a_url_with_a_password_prints_and_logs_none(
    client: Client,
    parquet_file: Path,
    http_folder: tuple[Path, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, port = http_folder
    shutil.copy(parquet_file, folder / "t.parquet")
    url = f"http://bob:{SECRET}@127.0.0.1:{port}/t.parquet"
    _Files.seen_auth.clear()
    # fsspec's own DEBUG lines name the URL as given (not the workbench's to change)
    with all_logs(skip=("fsspec",)) as logs:
        ds = wb.load(url, target="y", client=client)
        total = client.compute(ds.frame["a"].sum()).result()
    assert ds.plan is not None
    ds.frame.expr.pprint()  # printed the pieces' URLs with the password before the fix
    printed = capsys.readouterr().out
    assert f"Piece(url='http://bob:{MASK}@127.0.0.1:{port}/t.parquet'" in printed
    for text in (printed, repr(ds.plan), repr(ds.plan.pieces), repr(ds), logs.getvalue()):
        assert shows_no_secret(text), text
    # still used: the URL is read as given, with the password sent to the server
    assert ds.plan.pieces[0].url == url
    assert total == pytest.approx(pd.read_parquet(parquet_file)["a"].sum())
    sent = {base64.b64decode(a.split()[1]).decode() for a in _Files.seen_auth if a}
    assert sent == {f"bob:{SECRET}"}


def test_pieces_of_signed_urls_hide_the_signature_and_keep_it() -> None:
    signed = f"https://bob:{KEY_ID}@example.org/x.parquet?X-Amz-Signature={SECRET}&part=1"
    schema = pa.schema([("a", pa.float64()), ("y", pa.int64())])
    parts = pieces((signed,), ((10,),))
    frame = parquet_frame(parquet_reader(schema), parts, schema)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        frame.expr.pprint()
    for text in (out.getvalue(), repr(parts), str(parts[0])):
        assert shows_no_secret(text), text
        assert f"https://bob:{MASK}@example.org/x.parquet?X-Amz-Signature={MASK}&part=1" in text
    assert parts[0].url == signed and parts[0] == (signed, None, None)  # kept for the reader
    other = Piece(signed.replace(SECRET, "another"), None, None)
    assert tokenize(other) != tokenize(parts[0])
    assert tokenize(Piece(signed, None, None)) == tokenize(parts[0])


def test_messages_and_logs_hide_url_passwords_and_signatures(
    client: Client, parquet_file: Path, http_folder: tuple[Path, int]
) -> None:
    folder, port = http_folder
    base = f"http://bob:{SECRET}@127.0.0.1:{port}"
    with pytest.raises(DataNotFoundError) as missing:
        wb.load(f"{base}/missing.parquet", target="y", client=client)
    with pytest.raises(DataNotFoundError) as unmatched:
        wb.load(f"memory://bucket/none-*.parquet?sig={SECRET}", target="y", client=client)
    # a file that changes after the load: the task that reads it fails, naming it
    shutil.copy(parquet_file, folder / "changing.parquet")
    ds = wb.load(f"{base}/changing.parquet", target="y", check=False, client=client)
    (folder / "changing.parquet").write_bytes(b"not parquet any more")
    with all_logs(skip=("fsspec",)) as logs, pytest.raises(DataError) as unreadable:
        client.compute(ds.frame["a"].sum()).result()
    texts = [str(e.value) for e in (missing, unmatched, unreadable)]
    for text in [*texts, logs.getvalue()]:
        assert shows_no_secret(text), text
    assert f"http://bob:{MASK}@127.0.0.1:{port}/missing.parquet" in texts[0]
    assert f"memory://bucket/none-*.parquet?sig={MASK}" in texts[1]
    assert f"http://bob:{MASK}@127.0.0.1:{port}/changing.parquet" in texts[2]


def test_generate_names_its_folder_without_the_password(client: Client) -> None:
    path = f"memory://bob:{SECRET}@bucket/generated"
    try:
        with all_logs() as logs:
            ds = wb.generate("fraud", 200, path, partitions=1, client=client)
        with pytest.raises(FileExistsError) as exists:
            wb.generate("fraud", 200, path, partitions=1, client=client)
    finally:
        fsspec.filesystem("memory").rm(url_to_fs(path)[1], recursive=True)
    # the lines that name the URL (memory:// paths themselves keep "bob:...@", being no URL)
    named = [line for line in logs.getvalue().splitlines() if "memory://" in line]
    for text in (*named, str(exists.value), repr(ds)):
        assert shows_no_secret(text), text
    assert f"memory://bob:{MASK}@bucket/generated already holds data" in str(exists.value)
    assert f"to memory://bob:{MASK}@bucket/generated" in logs.getvalue()


@pytest.mark.parametrize(
    ("address", "tls", "shown"),
    [
        (f"ftp://alice:{SECRET}@gateway.example.com", False, f"ftp://alice:{MASK}@gateway"),
        (f"http://alice:{SECRET}@gateway.example.com", True, f"http://alice:{MASK}@gateway"),
    ],
)
def test_a_gateway_address_is_named_without_its_password(
    user_profiles: Path, address: str, tls: bool, shown: str
) -> None:
    (user_profiles / "gw.yaml").write_text(f"kind: gateway\noptions:\n  address: '{address}'\n")
    with pytest.raises(ProfileError) as refused:
        gateway_arguments(get_profile("gw"), tls=tls)
    assert shows_no_secret(str(refused.value)) and shown in str(refused.value)
