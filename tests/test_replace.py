"""``generate`` and ``demo`` replace only what the workbench wrote, and lose nothing on a crash.

Real folders with the user's own files beside and inside them, a real in-process cluster,
fsspec's real ``memory://`` filesystem, and real processes killed between two steps.
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pytest
from click.testing import CliRunner
from distributed import Client

import workbench as wb
from workbench.cli import main
from workbench.data import folders
from workbench.data import generate as gen
from workbench.data.catalog import CatalogEntry
from workbench.data.generators import make_partition, partition_sizes
from workbench.data.sources import inspect_source
from workbench.demo import _data


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``: a file's bytes, None for a folder."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def user_files(folder: Path) -> dict[str, bytes | None]:
    """The user's own files: a CSV and a folder holding a notebook, as a real user has them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "raw_customers.csv").write_text("id,name\n1,Ada\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "analysis.ipynb").write_text("{}")
    return snapshot(folder)


def expected(rows: int, partitions: int, seed: int) -> pd.DataFrame:
    """What ``generate("fraud", rows, partitions=partitions, seed=seed)`` writes."""
    sizes = partition_sizes(rows, partitions)
    frames = [make_partition("fraud", n, seed, i, sum(sizes[:i])) for i, n in enumerate(sizes)]
    return pd.concat(frames, ignore_index=True)[["transaction_id", "amount", "is_fraud"]]


def written(path: str | Path) -> pd.DataFrame:
    """The rows in a generated folder, read through the stamp's file list."""
    fs, root = fsspec.core.url_to_fs(str(path))
    stamp = json.loads(fs.cat_file(f"{root}/_workbench.json"))
    frames = [pd.read_parquet(fs.open(f"{root}/{n}", "rb")) for n in stamp["files"]]
    frame = pd.concat(frames, ignore_index=True)[["transaction_id", "amount", "is_fraud"]]
    return frame.sort_values("transaction_id", ignore_index=True)


OLD = (2_000, 2, 1)  # rows, partitions, seed
NEW = (3_000, 3, 2)


def make(client: Client, path: str | Path, spec: tuple[int, int, int], **kw: Any) -> Any:
    rows, partitions, seed = spec
    return wb.generate("fraud", rows, path, partitions=partitions, seed=seed, client=client, **kw)


# --- only what the workbench wrote ------------------------------------------------------------
def test_replaces_its_own_folder_and_leaves_the_users_files_beside_it(
    client: Client, tmp_path: Path
) -> None:
    before = user_files(tmp_path)
    make(client, tmp_path / "data", OLD)
    stamp = json.loads((tmp_path / "data" / "_workbench.json").read_text())
    assert stamp["generator"] == "fraud" and (stamp["rows"], stamp["seed"]) == (2_000, 1)
    assert stamp["files"] == ["part.00000.parquet", "part.00001.parquet"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make(client, tmp_path / "data", NEW)
    ds = make(client, tmp_path / "data", NEW, overwrite=True)
    assert ds.rows == 3_000
    pd.testing.assert_frame_equal(written(tmp_path / "data"), expected(*NEW))
    assert sorted(os.listdir(tmp_path / "data")) == [
        "_SUCCESS",
        "_workbench.json",
        "part.00000.parquet",
        "part.00001.parquet",
        "part.00002.parquet",
    ]
    assert sorted(os.listdir(tmp_path)) == ["data", "notes", "raw_customers.csv"]  # no siblings
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("data")} == before
    # load does not take the stamp (or _SUCCESS) for data
    assert [Path(u).name for u in inspect_source(str(tmp_path / "data")).urls] == [
        "part.00000.parquet",
        "part.00001.parquet",
        "part.00002.parquet",
    ]
    assert wb.load(tmp_path / "data", target="is_fraud", client=client).rows == 3_000


def test_an_empty_folder_may_be_used(client: Client, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert make(client, tmp_path / "data", OLD).rows == 2_000
    pd.testing.assert_frame_equal(written(tmp_path / "data"), expected(*OLD))


@pytest.mark.parametrize(
    "case", ["file", "folder", "both", "added file", "added folder", "stamp", "stamp leftover"]
)
def test_a_folder_holding_anything_else_is_refused_and_untouched(
    client: Client, tmp_path: Path, case: str
) -> None:
    data = tmp_path / "data"
    if case.startswith("added"):
        make(client, data, OLD)  # the workbench's own folder, then the user adds to it
        if case == "added file":
            (data / "raw_customers.csv").write_text("id\n1\n")
        else:
            (data / "notes").mkdir()
            (data / "notes" / "a.txt").write_text("mine")
        name = "raw_customers.csv" if case == "added file" else "notes"
    elif case.startswith("stamp"):  # a _workbench.json the workbench did not write
        data.mkdir()
        files = ["raw_customers.csv"] if case == "stamp" else ["part.00000.parquet"]
        leftover = ["raw_customers.csv"] if case != "stamp" else []
        stamp = {"format": folders.GENERATED, "files": files, "leftover": leftover}
        (data / "_workbench.json").write_text(json.dumps(stamp))
        (data / "raw_customers.csv").write_text("id\n1\n")
        name = "_workbench.json"
    else:
        data.mkdir()
        if case in ("file", "both"):
            (data / "raw_customers.csv").write_text("id\n1\n")
        if case in ("folder", "both"):
            (data / "notes").mkdir()
            (data / "notes" / "a.txt").write_text("mine")
        name = "notes" if case == "folder" else "raw_customers.csv" if case == "file" else "notes"
    before = snapshot(tmp_path)
    for overwrite in (True, False):
        with pytest.raises(FileExistsError, match=f"{data}.*{name}.*another path"):
            make(client, data, NEW, overwrite=overwrite)
    assert snapshot(tmp_path) == before  # nothing removed, nothing written beside it


def test_a_file_is_never_replaced(client: Client, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("mine")
    with pytest.raises(FileExistsError, match=f"{tmp_path / 'data'} is a file"):
        make(client, tmp_path / "data", OLD, overwrite=True)
    assert snapshot(tmp_path) == {"data": b"mine"}


def test_a_failure_while_writing_removes_only_the_temporary_folder(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = user_files(tmp_path)
    make(client, tmp_path / "data", OLD)
    old = snapshot(tmp_path / "data")

    def fail(step: str, path: str) -> None:
        if step == "written":
            raise OSError("disk full")

    monkeypatch.setattr(folders, "_step", fail)
    with pytest.raises(OSError, match="disk full"):
        make(client, tmp_path / "data", NEW, overwrite=True)
    assert snapshot(tmp_path / "data") == old
    assert sorted(os.listdir(tmp_path)) == ["data", "notes", "raw_customers.csv"]
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("data")} == before


def legacy(fs: Any, folder: str, extra: str | None = None) -> None:
    """The folder an earlier version wrote: parts, ``_SUCCESS`` and the demo's marker."""
    fs.makedirs(folder, exist_ok=True)
    rows, partitions, seed = OLD
    sizes = partition_sizes(rows, partitions)
    for i, n in enumerate(sizes):
        frame = make_partition("fraud", n, seed, i, sum(sizes[:i]))
        fs.pipe_file(f"{folder}/part.{i:05d}.parquet", frame.to_parquet(index=False))
    fs.pipe_file(f"{folder}/_SUCCESS", b"")
    fs.pipe_file(f"{folder}/_workbench_demo.json", b'{"name": "fraud", "rows": 2000, "seed": 0}')
    if extra:
        fs.pipe_file(f"{folder}/{extra}", b"id\n1\n")


@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_folder_an_earlier_version_wrote_is_replaced_as_its_own(
    client: Client, tmp_path: Path, memory: Any, where: str
) -> None:
    fs, folder = (
        (fsspec.filesystem("file"), str(tmp_path / "data"))
        if where == "local"
        else (memory, "/wbreplace/data")
    )
    url = folder if where == "local" else f"memory:/{folder}"
    legacy(fs, folder)
    with pytest.raises(FileExistsError, match=r"an earlier version.*overwrite=True"):
        make(client, url, NEW)
    make(client, url, NEW, overwrite=True)
    pd.testing.assert_frame_equal(written(url), expected(*NEW))
    stamp = folders.read_stamp(url)
    assert stamp is not None
    assert objects(fs, folder) == sorted(["_SUCCESS", "_workbench.json", *stamp["files"]])
    assert wb.load(url, target="is_fraud", client=client).rows == 3_000
    if where == "local":
        assert sorted(os.listdir(tmp_path)) == ["data"]


@pytest.mark.parametrize("extra", ["raw_customers.csv", "part.7.parquet", "part.00005.parquet"])
def test_an_earlier_versions_layout_with_anything_else_is_refused(
    client: Client, tmp_path: Path, extra: str
) -> None:
    legacy(fsspec.filesystem("file"), str(tmp_path / "data"), extra)
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=r"no _workbench\.json"):
        make(client, tmp_path / "data", NEW, overwrite=True)
    assert snapshot(tmp_path) == before


# --- a crash between two steps ----------------------------------------------------------------
CRASH = """
import os, signal, sys
from distributed import Client, LocalCluster
import workbench as wb
from workbench.data import folders

at, path = sys.argv[1], sys.argv[2]

def crash(step, where):
    if step == at:
        os.kill(os.getpid(), signal.SIGKILL)

folders._step = crash
with (
    LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                 dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as c,
    Client(c, set_as_default=False) as client,
):
    wb.generate("fraud", 3000, path, partitions=3, seed=2, overwrite=True, client=client)
print("no crash")
"""


@pytest.mark.parametrize(
    ("step", "whole"),
    [("written", OLD), ("moved aside", OLD), ("moved into place", NEW), ("removing", NEW)],
)
def test_a_crash_at_any_step_leaves_the_old_or_the_new_data_whole(
    client: Client, tmp_path: Path, step: str, whole: tuple[int, int, int]
) -> None:
    before = user_files(tmp_path)
    data = tmp_path / "data"
    make(client, data, OLD)
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, step, str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DASK_WORKBENCH__DATA__PROGRESS": "False"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    if step == "moved aside":  # the one moment PATH is missing: the old data waits beside it
        assert not data.exists()
        assert len(list(tmp_path.glob("data.old-*"))) == 1
    # what the next generate (or catalog load) of PATH does first
    folders.check_replaceable(data)
    stamp = folders.read_stamp(data)
    assert stamp is not None and (stamp["rows"], stamp["partitions"], stamp["seed"]) == whole
    pd.testing.assert_frame_equal(written(data), expected(*whole))
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("data")} == before
    # and the next replacement works, leaving no .old- folder behind
    make(client, data, NEW, overwrite=True)
    pd.testing.assert_frame_equal(written(data), expected(*NEW))
    assert not list(tmp_path.glob("data.old-*"))
    assert not list(tmp_path.glob("data.tmp-*"))  # nor the new data a crash left beside it
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("data")} == before


def test_the_catalog_cache_gets_its_moved_aside_data_back(client: Client, tmp_path: Path) -> None:
    import dask

    entry = CatalogEntry(
        name="tiny", target="is_fraud", source={"generator": "fraud", "rows": 2000, "partitions": 2}
    )
    with dask.config.set({"workbench.data.cache": str(tmp_path)}):
        path = gen.ensure_generated(entry, client=client)
        done = os.stat(Path(path) / "_SUCCESS")
        os.rename(path, f"{path}.old-0123abcd")  # as a crash between the two renames left it
        assert gen.ensure_generated(entry, client=client) == path
    assert os.stat(Path(path) / "_SUCCESS").st_ino == done.st_ino  # restored, not made again
    assert sorted(os.listdir(tmp_path)) == [Path(path).name]


# --- object stores ----------------------------------------------------------------------------
@pytest.fixture()
def memory() -> Iterator[Any]:
    fs = fsspec.filesystem("memory")
    fs.makedirs("/wbreplace", exist_ok=True)
    yield fs
    fs.rm("/wbreplace", recursive=True)


def test_object_store_replaces_only_its_own_objects(client: Client, memory: Any) -> None:
    url = "memory://wbreplace/data"
    memory.pipe("/wbreplace/raw_customers.csv", b"id\n1\n")  # beside the prefix
    make(client, url, OLD)
    assert memory.isfile("/wbreplace/data/_SUCCESS")
    make(client, url, NEW, overwrite=True)
    pd.testing.assert_frame_equal(written(url), expected(*NEW))
    assert sorted(memory.ls("/wbreplace", detail=False)) == [
        "/wbreplace/data",
        "/wbreplace/raw_customers.csv",
    ]
    assert memory.cat_file("/wbreplace/raw_customers.csv") == b"id\n1\n"
    assert wb.load(url, target="is_fraud", client=client).rows == 3_000
    memory.pipe("/wbreplace/data/notes/a.txt", b"mine")  # the user adds an object
    before = {p: memory.cat_file(p) for p in memory.find("/wbreplace")}
    with pytest.raises(FileExistsError, match=r"wbreplace/data holds the folder 'notes'"):
        make(client, url, OLD, overwrite=True)
    assert {p: memory.cat_file(p) for p in memory.find("/wbreplace")} == before
    memory.pipe("/wbreplace/mine/x.csv", b"1")
    with pytest.raises(FileExistsError, match=r"mine holds the file 'x.csv'.*no _workbench"):
        make(client, "memory://wbreplace/mine", OLD, overwrite=True)
    assert memory.cat_file("/wbreplace/mine/x.csv") == b"1"


def objects(fs: Any, folder: str) -> list[str]:
    return sorted(posixpath.basename(p) for p in fs.find(folder))


@pytest.mark.parametrize(
    ("step", "whole"),
    [("announced", OLD), ("written", OLD), ("committed", NEW), ("removing", NEW)],
)
def test_object_store_after_a_crash_holds_the_old_or_the_new_data_whole(
    client: Client, memory: Any, monkeypatch: pytest.MonkeyPatch, step: str, whole: Any
) -> None:
    url = "memory://wbreplace/data"
    memory.pipe("/wbreplace/raw_customers.csv", b"id\n1\n")
    make(client, url, OLD)

    def crash(at: str, path: str) -> None:
        if at == step:
            raise KeyboardInterrupt  # the process stops here: nothing after runs

    monkeypatch.setattr(folders, "_step", crash)
    with pytest.raises(KeyboardInterrupt):
        make(client, url, NEW, overwrite=True)
    monkeypatch.undo()
    stamp = folders.read_stamp(url)
    assert stamp is not None and (stamp["rows"], stamp["partitions"], stamp["seed"]) == whole
    pd.testing.assert_frame_equal(written(url), expected(*whole))
    # the loader reads the committed files only, never old and new mixed
    assert wb.load(url, target="is_fraud", client=client).rows == whole[0]
    assert len(inspect_source(url).urls) == whole[1]
    assert memory.cat_file("/wbreplace/raw_customers.csv") == b"id\n1\n"
    # still the workbench's own: replaced again, leaving only the new data
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make(client, url, NEW)
    make(client, url, NEW, overwrite=True)
    pd.testing.assert_frame_equal(written(url), expected(*NEW))
    stamp = folders.read_stamp(url)
    assert stamp is not None and "leftover" not in stamp
    assert objects(memory, "/wbreplace/data") == sorted(
        ["_SUCCESS", "_workbench.json", *stamp["files"]]
    )
    assert memory.cat_file("/wbreplace/raw_customers.csv") == b"id\n1\n"


def test_object_store_first_write_interrupted_is_not_data(
    client: Client, memory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "memory://wbreplace/data"

    def crash(at: str, path: str) -> None:
        if at == "written":
            raise KeyboardInterrupt

    monkeypatch.setattr(folders, "_step", crash)
    with pytest.raises(KeyboardInterrupt):
        make(client, url, NEW)
    monkeypatch.undo()
    assert folders.read_stamp(url) is None
    with pytest.raises(FileNotFoundError, match="wbreplace/data is incomplete"):
        wb.load(url, target="is_fraud", client=client)
    with pytest.raises(FileExistsError, match="incomplete"):
        make(client, url, NEW)
    make(client, url, NEW, overwrite=True)
    pd.testing.assert_frame_equal(written(url), expected(*NEW))


def test_object_store_failure_keeps_the_old_data_and_the_stamp(
    client: Client, memory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "memory://wbreplace/data"
    make(client, url, OLD)
    real = gen._write_partition

    def write(name: str, url: str, file: str, index: int, *args: Any) -> tuple[int, int]:
        if index == 2:
            raise OSError("the store refused partition 2")
        return real(name, url, file, index, *args)

    monkeypatch.setattr(gen, "_write_partition", write)
    with pytest.raises(OSError, match="refused partition 2"):
        make(client, url, NEW, overwrite=True)
    monkeypatch.undo()
    stamp = folders.read_stamp(url)  # the old data is still the data, stamp and _SUCCESS kept
    assert stamp is not None and (stamp["rows"], stamp["seed"]) == (2_000, 1)
    assert wb.load(url, target="is_fraud", client=client).rows == 2_000
    # a cancelled task may still write its part after the failure: still the workbench's own
    late = stamp["leftover"][0]
    real("fraud", url, late, 0, 1000, 0, 2)
    assert folders.check_replaceable(url) is not None
    make(client, url, NEW, overwrite=True)
    pd.testing.assert_frame_equal(written(url), expected(*NEW))
    assert late not in objects(memory, "/wbreplace/data")


# --- the demo ---------------------------------------------------------------------------------
def test_demo_refuses_a_data_folder_holding_the_users_files(tmp_path: Path) -> None:
    data = tmp_path / "demo" / "data"
    data.mkdir(parents=True)
    (data / "raw_customers.csv").write_text("id,name\n1,Ada\n")
    (data / "notes").mkdir()
    (data / "notes" / "analysis.ipynb").write_text("{}")
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--rows", "1000", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 1, result.output
    assert f"{data} holds the folder 'notes' (and 1 more)" in result.output
    assert "another --out" in result.output
    assert snapshot(tmp_path) == before  # refused before anything was started or written


def test_demo_reuses_or_replaces_its_own_data(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_files(tmp_path)
    ds = _data("fraud", 2_000, tmp_path / "data", client)
    assert ds.rows == 2_000
    first = snapshot(tmp_path / "data")
    assert _data("fraud", 2_000, tmp_path / "data", client).rows == 2_000
    assert "using the 2,000 rows already generated" in capsys.readouterr().out
    assert snapshot(tmp_path / "data") == first
    assert _data("fraud", 3_000, tmp_path / "data", client).rows == 3_000
    assert sorted(os.listdir(tmp_path)) == ["data", "notes", "raw_customers.csv"]


def test_demo_replaces_the_data_an_earlier_version_of_it_wrote(
    client: Client, tmp_path: Path
) -> None:
    legacy(fsspec.filesystem("file"), str(tmp_path / "data"))
    assert _data("fraud", 3_000, tmp_path / "data", client).rows == 3_000
    stamp = folders.read_stamp(tmp_path / "data")
    assert stamp is not None and (stamp["generator"], stamp["rows"]) == ("fraud", 3_000)
    assert "_workbench_demo.json" not in os.listdir(tmp_path / "data")


def test_demo_refuses_a_model_file_it_did_not_write_before_starting(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "model.wbm").write_text("my own notes, not a model")
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--rows", "1000", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "model.wbm" in result.output and "is not a workbench model file" in result.output
    assert snapshot(tmp_path) == before  # refused before the cluster started or data was made
