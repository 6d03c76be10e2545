"""The battery: every bad input gets one clear exception that names the fix, fast, and no output.

Each case is one line in CASES: a name, what to call (given the shared ``Env``), the exception
class and a pattern its message must match. To add a case, add a line. Every case runs against
real files and a real in-process cluster; each must fail without hanging (a 60 s guard) and leave
the output folder as it was.
"""

from __future__ import annotations

import json
import socket
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client

import workbench as wb
from workbench.cli import main


@dataclass
class Env:
    client: Client
    good: Path  # a folder of good Parquet files (y binary, c categorical, a/b numeric)
    tmp: Path  # files made for the cases
    out: Path  # where outputs would go: must stay as it is
    ds: wb.Dataset
    model: wb.Model
    scheduler: str  # a TLS scheduler's address
    certs: dict[str, Path]
    other_certs: dict[str, Path]
    sockets: list[socket.socket] = field(default_factory=list)  # closed by the fixture


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": a,
            "b": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z"], size=n),
            "y": (a + rng.normal(scale=0.5, size=n) > 0).astype(np.int64),
        }
    )


def _write(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path.parent


@pytest.fixture(scope="module")
def env(
    client: Client,
    tmp_path_factory: pytest.TempPathFactory,
    tls_scheduler: str,
    certs: dict[str, Path],
    other_certs: dict[str, Path],
) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("bad")
    good = tmp / "good"
    for i in range(2):
        _write(good / f"part-{i}.parquet", _frame(seed=i))
    ds = wb.load(good, target="y", categorical=["c"], client=client)
    model = wb.train(ds, rounds=3, client=client, progress=False)
    out = tmp_path_factory.mktemp("out")
    e = Env(client, good, tmp, out, ds, model, tls_scheduler, certs, other_certs)
    yield e
    for sock in e.sockets:
        sock.close()


def _corrupt(e: Env) -> Path:
    folder = e.tmp / "corrupt"
    _write(folder / "a.parquet", _frame())
    (folder / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    return folder


def _corrupt_pages(e: Env) -> Path:
    """A file whose footer is sound but whose data pages are not: it fails when read."""
    folder = e.tmp / "pages"
    _write(folder / "a.parquet", _frame())
    path = folder / "b.parquet"
    _write(path, _frame(seed=1))
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    data[4 : len(data) - 8 - footer] = b"\xab" * (len(data) - 12 - footer)
    path.write_bytes(bytes(data))
    return folder


def _schemas(e: Env) -> Path:
    folder = e.tmp / "schemas"
    _write(folder / "a.parquet", _frame())
    _write(folder / "b.parquet", _frame().assign(a=lambda f: f["a"].astype(str)))
    return folder


def _one(e: Env, name: str, frame: pd.DataFrame) -> Path:
    return _write(e.tmp / name / "a.parquet", frame)


def _load(e: Env, path: Path, **kw: Any) -> Any:
    kw.setdefault("target", "y")
    kw.setdefault("categorical", ["c"])
    return wb.load(path, client=e.client, **kw)


def _without_b(e: Env) -> wb.Dataset:
    return wb.Dataset(
        frame=e.ds.frame.drop(columns=["b"]),
        target="y",
        features={"a": "numeric", "c": "categorical"},
        task="binary",
    )


def _a_file(e: Env) -> Path:
    path = e.tmp / "afile.txt"
    path.write_text("x")
    return path


def _foreign_folder(e: Env) -> Path:
    """A folder holding a user's file and subfolder: never the workbench's to replace."""
    folder = e.tmp / "mine"
    (folder / "notes").mkdir(parents=True, exist_ok=True)
    (folder / "raw_customers.csv").write_text("id,name\n1,Ada\n")
    return folder


def _model_file(
    e: Env, name: str, change: Callable[[dict[str, Any], dict[str, bytes]], None]
) -> Path:
    """e.model saved, then its archive rewritten with ``change(manifest, members)`` applied."""
    good = Path(e.model.save(str(e.tmp / "good.wbm")))
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(members.pop("workbench.json"))
    change(manifest, members)
    path = e.tmp / f"{name}.wbm"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("workbench.json", json.dumps(manifest))
        for n, data in members.items():
            z.writestr(n, data)
    return path


def _flip_estimator(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    name = next(iter(members))
    data = bytearray(members[name])
    data[len(data) // 2] ^= 0xFF
    members[name] = bytes(data)


def _reorder(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    features = manifest["features"]  # name -> kind, in the estimator's column order
    manifest["features"] = dict(reversed(list(features.items())))


def _listening_socket(e: Env) -> str:
    """A port on 127.0.0.1 that completes TCP handshakes (the kernel's backlog) and says nothing."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    e.sockets.append(sock)
    return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def _wide_manifest(e: Env) -> Path:
    """15 KB on disk whose workbench.json would expand to 15 MB of tiny JSON values."""
    path = e.tmp / "wide.wbm"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("workbench.json", b"[" + b"{}," * 5_000_000 + b"{}]")
    return path


def _cli(*args: str) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, list(args))
    if result.exit_code == 0:
        return
    raise SystemExit(result.output.strip().splitlines()[-1])


Call = Callable[[Env], Any]
CASES: list[tuple[str, Call, type[BaseException], str]] = [
    # --- loading ----------------------------------------------------------------------------
    ("missing path", lambda e: _load(e, e.tmp / "nothing"), wb.DataNotFoundError, "nothing"),
    ("empty folder", lambda e: _load(e, e.out), wb.DataNotFoundError, "no Parquet or CSV"),
    ("corrupt file", lambda e: _load(e, _corrupt(e)), wb.DataError, r"b\.parquet"),
    ("corrupt pages", lambda e: _load(e, _corrupt_pages(e)), wb.DataError, r"b\.parquet.*thrift"),
    ("bad filter", lambda e: _load(e, e.good, filters=[("q", ">", 0)]), ValueError, r"filters=.*q"),
    (
        "list column",
        lambda e: _load(e, _one(e, "lists", _frame().assign(l=[[1, 2]] * 400))),
        wb.DataError,
        r"'l' holds list<.*features=\[\.\.\.\]",
    ),
    ("schemas differ", lambda e: _load(e, _schemas(e)), wb.DataError, r"'a' is .* in .*b\.parquet"),
    ("missing target", lambda e: _load(e, e.good, target="z"), wb.DataError, "'z'"),
    (
        "string target",
        lambda e: _load(e, _one(e, "st", _frame().assign(y="yes")), task="binary"),
        wb.DataError,
        "encode the classes as numbers",
    ),
    (
        "NaN target",
        lambda e: _load(e, _one(e, "nan", _frame().assign(y=np.nan))),
        wb.DataError,
        "missing",
    ),
    (
        "infinite target",
        lambda e: _load(e, _one(e, "inf", _frame().assign(y=np.inf)), task="regression"),
        wb.DataError,
        "infinite",
    ),
    (
        "undeclared string feature",
        lambda e: _load(e, e.good, categorical=[]),
        wb.DataError,
        "categorical=",
    ),
    ("zero rows", lambda e: _load(e, _one(e, "zero", _frame().iloc[:0])), wb.DataError, "zero"),
    ("unknown generator", lambda e: wb.generate("frod", 10, e.out), ValueError, "fraud"),
    ("unknown task", lambda e: _load(e, e.good, task="ranking"), ValueError, "task="),
    # --- splitting --------------------------------------------------------------------------
    ("fractions sum", lambda e: e.ds.split((0.5, 0.3)), ValueError, "sum to 0.8"),
    ("fractions type", lambda e: e.ds.split("80/20"), (TypeError, ValueError), "fractions"),
    # --- training ---------------------------------------------------------------------------
    (
        "unknown model",
        lambda e: wb.train(e.ds, model="xgb", client=e.client),
        ValueError,
        "xgboost",
    ),
    (
        "rejected param",
        lambda e: wb.train(e.ds, params={"eta": -1}, client=e.client),
        ValueError,
        "eta",
    ),
    (
        "unknown param",
        lambda e: wb.train(e.ds, params={"max_dpth": 2}, client=e.client),
        ValueError,
        "max_dpth",
    ),
    ("rounds as text", lambda e: wb.train(e.ds, rounds="10", client=e.client), ValueError, "10"),
    (
        "a DataFrame, not a Dataset",
        lambda e: wb.train(e.ds.frame, client=e.client),
        TypeError,
        "wb.load",
    ),
    (
        "valid with other columns",
        lambda e: wb.train(e.ds, _without_b(e), client=e.client),
        ValueError,
        r"missing from valid: \['b'\]",
    ),
    (
        "one class",
        lambda e: wb.train(
            _load(e, _one(e, "oneclass", _frame().assign(y=1)), check=False, task="binary"),
            client=e.client,
            progress=False,
        ),
        ValueError,
        "one class only",
    ),
    (
        "early stopping without valid",
        lambda e: wb.train(e.ds, early_stopping=5, client=e.client),
        ValueError,
        "valid=",
    ),
    (
        "lightgbm early stopping",
        lambda e: wb.train(e.ds, e.ds, model="lightgbm", early_stopping=5, client=e.client),
        ValueError,
        "xgboost",
    ),
    (
        "resume with fewer rounds",
        lambda e: wb.train(e.ds, rounds=2, resume=e.model, client=e.client),
        ValueError,
        "already has 3 rounds",
    ),
    # --- predicting -------------------------------------------------------------------------
    (
        "missing feature",
        lambda e: e.model.predict(e.ds.with_frame(e.ds.frame.drop(columns=["a"])), e.client),
        ValueError,
        r"\['a'\]",
    ),
    (
        "strings in a numeric feature",
        lambda e: e.model.predict(
            e.ds.with_frame(e.ds.frame.assign(a=e.ds.frame["c"].astype(str))), e.client
        ),
        ValueError,
        "non-numeric",
    ),
    (
        "predict on a frame",
        lambda e: e.model.predict(dd.from_pandas(_frame(), npartitions=1), e.client),
        TypeError,
        "Dataset",
    ),
    ("unknown metric", lambda e: e.model.evaluate(e.ds, ["acc"], e.client), ValueError, "accuracy"),
    # --- saving and loading models --------------------------------------------------------------
    (
        "save into a file's folder",
        lambda e: e.model.save(str(_a_file(e) / "m.wbm")),
        NotADirectoryError,
        "is a file",
    ),
    ("save onto a folder", lambda e: e.model.save(str(e.out)), ValueError, "is a folder"),
    (
        "load a missing model",
        lambda e: wb.load_model(str(e.out / "m.wbm")),
        FileNotFoundError,
        "no model",
    ),
    (
        "load a non-model",
        lambda e: wb.load_model(str(next(e.good.iterdir()))),
        ValueError,
        "not a workbench model",
    ),
    # --- replacing what is already there (issue 12) ------------------------------------------
    (
        "generate over your folder",
        lambda e: wb.generate("fraud", 100, _foreign_folder(e), overwrite=True, client=e.client),
        FileExistsError,
        "was not written by the workbench",
    ),
    (
        "generate over a file",
        lambda e: wb.generate("fraud", 100, _a_file(e), overwrite=True, client=e.client),
        FileExistsError,
        "never replaces a file",
    ),
    ("save to a bytes path", lambda e: e.model.save(b"m.wbm"), TypeError, "is bytes"),
    ("load a bytes path", lambda e: wb.load_model(b"m.wbm"), TypeError, "is bytes"),
    (
        "save onto your file",
        lambda e: e.model.save(str(_a_file(e))),
        FileExistsError,
        "not a workbench model file",
    ),
    (
        "save over a model with overwrite=False",
        lambda e: e.model.save(e.model.save(str(e.tmp / "kept.wbm")), overwrite=False),
        FileExistsError,
        "already exists",
    ),
    (
        "checkpoint onto your file",
        lambda e: wb.train(e.ds, rounds=2, checkpoint_path=str(_a_file(e)), client=e.client),
        FileExistsError,
        "not a workbench model",
    ),
    (
        "cli train over an existing model",
        lambda e: _cli("train", "--data", str(e.good), "--target", "y", "--out", str(_a_file(e))),
        SystemExit,
        "--overwrite",
    ),
    # --- model files that are not what they say (issue 12) ------------------------------------
    (
        "model of a later format",
        lambda e: wb.load_model(
            _model_file(e, "v99", lambda m, f: m.update(format="workbench-model/99"))
        ),
        wb.ModelFileError,
        "workbench-model/99",
    ),
    (
        "model without its kind",
        lambda e: wb.load_model(_model_file(e, "nokind", lambda m, f: m.pop("kind"))),
        wb.ModelFileError,
        "kind",
    ),
    (
        "model with a flipped byte",
        lambda e: wb.load_model(_model_file(e, "flipped", _flip_estimator)),
        wb.ModelFileError,
        "SHA-256",
    ),
    (
        "model with reordered features",
        lambda e: wb.load_model(_model_file(e, "reordered", _reorder)),
        wb.ModelFileError,
        "order",
    ),
    (
        "a manifest that expands a thousandfold",
        lambda e: wb.load_model(_wide_manifest(e)),
        wb.ModelFileError,
        "'workbench.json' would expand to .* refused unread",
    ),
    ("a device as a model", lambda e: wb.load_model("/dev/null"), ValueError, "character device"),
    # --- clusters ---------------------------------------------------------------------------
    ("unknown profile", lambda e: wb.start_cluster("locl"), wb.ProfileError, "local"),
    (
        "unreachable scheduler",
        lambda e: wb.connect("tcp://127.0.0.1:9", timeout=2),
        wb.ClusterConnectionError,
        "127.0.0.1:9",
    ),
    (
        "a port that says nothing",
        lambda e: wb.connect(_listening_socket(e), timeout=2, set_as_default=False),
        wb.ClusterConnectionError,
        "did not speak Dask's protocol within 2",
    ),
    ("port out of range", lambda e: wb.connect("tcp://127.0.0.1:99999"), ValueError, "65535"),
    (
        "certificates of another CA",
        lambda e: wb.connect(
            e.scheduler,
            security={k: str(v) for k, v in e.other_certs.items()},
            timeout=5,
            set_as_default=False,
        ),
        wb.ClusterConnectionError,
        "certificate",
    ),
    # --- command line -----------------------------------------------------------------------
    (
        "cli predict into a used folder",
        lambda e: _cli("predict", "--model", "m", "--data", str(e.good), "--out", str(e.good)),
        SystemExit,
        "already exists",
    ),
    # --- issue 14: devices, recovery and worker settings ----------------------------------------
    (
        "persist on a device that does not exist",
        lambda e: e.ds.persist(client=e.client, device="tpu"),
        ValueError,
        r"device='tpu': use 'auto', 'cpu' or 'gpu'",
    ),
    (
        "persist on the GPU of CPU workers",
        lambda e: _load(e, e.good).persist(client=e.client, device="gpu"),
        wb.GPUUnavailableError,
        r"device='gpu'",
    ),
    (
        "train on the GPU of CPU workers",
        lambda e: wb.train(e.ds, rounds=2, device="gpu", client=e.client, progress=False),
        wb.GPUUnavailableError,
        r"device='gpu'",
    ),
    (
        "restart-grace that is not a duration",
        lambda e: _with_config(
            {"workbench.train.restart-grace": "soon"},
            lambda: wb.train(_load(e, e.good), rounds=2, client=e.client, progress=False),
        ),
        ValueError,
        r"restart-grace",
    ),
    (
        "malloc setting that is not a number of bytes",
        lambda e: _with_config(
            {"workbench.cluster.malloc-trim-threshold": "64k"},
            lambda: wb.start_cluster("local-cpu", n_workers=1),
        ),
        ValueError,
        r"malloc-trim-threshold='64k': use null",
    ),
]


def _with_config(settings: dict[str, Any], call: Callable[[], Any]) -> Any:
    with dask.config.set(settings):
        return call()


@pytest.mark.timeout(60)  # a hang guard (with the module's fixtures), not a speed test
@pytest.mark.parametrize(("name", "call", "error", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(env: Env, name: str, call: Call, error: type[BaseException], match: str) -> None:
    before = sorted(p.name for p in env.out.iterdir())
    with pytest.raises(error, match=match):
        call(env)
    assert sorted(p.name for p in env.out.iterdir()) == before, f"{name} left output behind"


def test_the_battery_is_large_enough() -> None:
    assert len(CASES) >= 20
