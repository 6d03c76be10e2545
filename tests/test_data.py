"""Datasets on real clusters and real files: catalog, load, checks, split, persist, arrays."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner
from distributed import Client, LocalCluster, get_task_stream

import workbench as wb
from workbench._client import snapshot
from workbench.cli import main
from workbench.data.placement import resolve_device
from workbench.data.summary import combine, summarize


def _in_process_client(n_workers: int, threads: int) -> Iterator[Client]:
    """A client of an in-process LocalCluster that listens on localhost only."""
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            processes=False,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        ) as c,
        Client(c, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def client2() -> Iterator[Client]:
    yield from _in_process_client(2, 1)


@pytest.fixture(scope="module")
def client1() -> Iterator[Client]:
    yield from _in_process_client(1, 2)


@pytest.fixture(scope="module")
def fraud(client2: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "fraud"
    wb.generate("fraud", 40_000, path, partitions=4, seed=7, client=client2)
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("transaction_id").reset_index(drop=True)


# --- generate ---------------------------------------------------------------------------------
def test_generate_is_deterministic_whatever_the_workers(
    client1: Client, client2: Client, tmp_path: Path
) -> None:
    a = wb.generate("higgs", 9_000, tmp_path / "a", partitions=3, seed=3, client=client1)
    b = wb.generate("higgs", 9_000, tmp_path / "b", partitions=3, seed=3, client=client2)
    assert a.rows == b.rows == 9_000 and a.npartitions == 3
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a"), pd.read_parquet(tmp_path / "b"))
    c = wb.generate("higgs", 9_000, tmp_path / "c", partitions=3, seed=4, client=client2)
    assert not pd.read_parquet(tmp_path / "c").equals(pd.read_parquet(tmp_path / "a"))
    assert c.task == "binary" and c.target == "is_signal"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "_SUCCESS",
        "_workbench.json",
        "part.00000.parquet",
        "part.00001.parquet",
        "part.00002.parquet",
    ]
    assert not list(tmp_path.glob("*.tmp-*"))  # the temporary folder was renamed


def test_generate_refuses_to_overwrite_and_bad_arguments(
    client2: Client, fraud: Path, tmp_path: Path
) -> None:
    with pytest.raises(FileExistsError, match="overwrite=True"):
        wb.generate("fraud", 100, fraud, client=client2)
    with pytest.raises(ValueError, match="unknown"):
        wb.generate("weather", 100, tmp_path / "w", client=client2)
    with pytest.raises(ValueError, match="rows"):
        wb.generate("fraud", 0, tmp_path / "z", client=client2)
    with pytest.raises(ValueError):
        wb.generate("fraud", 10, tmp_path / "p", partitions=20, client=client2)
    assert list(tmp_path.iterdir()) == []  # nothing written for refused calls


# --- load -------------------------------------------------------------------------------------
def test_load_path_checks_and_categories(client2: Client, fraud: Path) -> None:
    ds = wb.load(
        fraud, target="is_fraud", categorical=["merchant_category", "device"], client=client2
    )
    assert ds.rows == 40_000 and ds.npartitions == 4 and ds.task == "binary"
    assert ds.features["device"] == "categorical" and ds.features["amount"] == "numeric"
    assert set(ds.categories["device"]) == {"mobile", "web", "pos", "atm"}
    assert ds.columns[-1] == "is_fraud"
    assert "40,000 rows" in repr(ds)
    html = ds._repr_html_()
    assert "40,000" in html and "merchant_category" in html and "categorical" in html


def test_columns_and_filters_are_pushed_down(client2: Client, fraud: Path) -> None:
    ds = wb.load(
        fraud,
        target="is_fraud",
        columns=["amount", "hour"],
        filters=[("amount", ">", 100.0)],
        client=client2,
    )
    assert list(ds.frame.columns) == ["amount", "hour", "is_fraud"]
    frame = ds.frame.compute(scheduler="sync")
    assert len(frame) == ds.rows and 0 < ds.rows < 40_000
    assert (frame["amount"] > 100.0).all()


def test_load_from_memory_filesystem_and_csv(client2: Client, tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"x": np.arange(100, dtype="float64"), "c": ["a", "b"] * 50, "y": [0, 1] * 50}
    )
    fs = fsspec.filesystem("memory")
    for i in range(2):
        with fs.open(f"/wbtest/part{i}.parquet", "wb") as f:
            df.iloc[i * 50 : (i + 1) * 50].to_parquet(f)
    ds = wb.load("memory://wbtest/", target="y", categorical=["c"], client=client2)
    assert ds.rows == 100 and ds.categories["c"] == ["a", "b"]
    for i in range(2):
        df.iloc[i * 50 : (i + 1) * 50].to_csv(tmp_path / f"p{i}.csv", index=False)
    ds = wb.load(str(tmp_path / "*.csv"), target="y", categorical=["c"], client=client2)
    assert ds.rows == 100 and ds.task == "binary"
    fs.rm("/wbtest", recursive=True)


def test_categories_are_encoded_the_same_in_every_partition(
    client2: Client, tmp_path: Path
) -> None:
    pd.DataFrame({"c": ["b", "b", "a"], "y": [0.0, 1.0, 2.5]}).to_parquet(tmp_path / "p0.parquet")
    pd.DataFrame({"c": ["c", "b", "c"], "y": [1.0, 2.0, 0.5]}).to_parquet(tmp_path / "p1.parquet")
    ds = wb.load(tmp_path, target="y", categorical=["c"], task="regression", client=client2)
    assert ds.categories["c"] == ["a", "b", "c"]
    X, _ = ds.to_arrays(device="cpu", client=client2)
    codes = client2.compute(X).result()[:, 0]
    assert codes.tolist() == [1.0, 1.0, 0.0, 2.0, 1.0, 2.0]  # "b" is 1 in both files


def test_same_levels_in_another_order_are_recoded(client2: Client, tmp_path: Path) -> None:
    # each file's dictionary lists the same values in a different order
    a = pd.DataFrame({"c": pd.Categorical(["x", "y"], categories=["y", "x"]), "t": [0.0, 1.0]})
    b = pd.DataFrame({"c": pd.Categorical(["x", "y"], categories=["x", "y"]), "t": [1.0, 2.0]})
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    ds = wb.load(tmp_path, target="t", task="regression", client=client2)
    assert ds.categories["c"] == ["x", "y"]
    X, _ = ds.to_arrays(device="cpu", client=client2)
    assert client2.compute(X).result()[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    # without the checks, to_arrays finds the common levels itself
    unchecked = wb.load(tmp_path, target="t", task="regression", check=False, client=client2)
    assert unchecked.categories == {}
    X, _ = unchecked.to_arrays(device="cpu", client=client2)
    assert client2.compute(X).result()[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_all_null_and_constant_columns_are_reported(client2: Client, tmp_path: Path) -> None:
    pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "k": [5.0] * 4, "n": [np.nan] * 4, "y": [0, 1, 0, 1]}
    ).to_parquet(tmp_path / "d.parquet")
    ds = wb.load(tmp_path, target="y", client=client2)
    assert ds.report == {"all_null": ["n"], "constant": ["k"]}


def test_catalog_lists_shipped_entries_and_generates_on_first_use(
    client2: Client, tmp_path: Path
) -> None:
    cat = wb.datasets()
    assert {"fraud", "maintenance", "demand", "higgs"} <= set(cat) and cat.errors == {}
    assert "is_fraud" in repr(cat) and "<table>" in cat._repr_html_()
    mine = tmp_path / "catalog"
    mine.mkdir()
    (mine / "tiny.yaml").write_text(
        "name: tiny\ndescription: small fraud\ntask: binary\ntarget: is_fraud\n"
        "source: {generator: fraud, rows: 5000, partitions: 2, seed: 1}\n"
        "features: {transaction_id: ignore, merchant_category: categorical, device: categorical}\n"
    )
    with dask.config.set(
        {"workbench.data.path": str(mine), "workbench.data.cache": str(tmp_path / "cache")}
    ):
        ds = wb.load("tiny", client=client2)
        assert ds.rows == 5000 and ds.target == "is_fraud" and ds.task == "binary"
        assert "transaction_id" not in ds.features and ds.features["device"] == "categorical"
        done = next((tmp_path / "cache").glob("fraud-*")) / "_SUCCESS"
        stamp = done.stat().st_mtime_ns
        wb.load("tiny", client=client2)  # read from the cache, not made again
        assert done.stat().st_mtime_ns == stamp
        result = CliRunner().invoke(main, ["data", "info", "tiny"])
        assert result.exit_code == 0, result.output
        assert "rows: 5,000" in result.output and "merchant_category" in result.output


def test_data_info_finds_a_generated_entry_without_partitions(
    client2: Client, tmp_path: Path
) -> None:
    """``partitions:`` left out: load, generate and ``data info`` resolve the same folder."""
    mine = tmp_path / "catalog"
    mine.mkdir()
    (mine / "nopart.yaml").write_text(
        "name: nopart\ntask: binary\ntarget: is_fraud\n"
        "source: {generator: fraud, rows: 3000, seed: 2}\n"
        "features: {transaction_id: ignore, merchant_category: categorical, device: categorical}\n"
    )
    settings = {
        "workbench.data.path": str(mine),
        "workbench.data.cache": str(tmp_path / "cache"),
        "workbench.data.partition-rows": 1000,
    }
    with dask.config.set(settings):
        ds = wb.load("nopart", client=client2)
        assert ds.rows == 3000 and ds.npartitions == 3
        result = CliRunner().invoke(main, ["data", "info", "nopart"])
    assert result.exit_code == 0, result.output
    assert "not generated yet" not in result.output
    assert "3 partitions" in result.output and "rows: 3,000" in result.output
    assert "files: 3" in result.output


# --- bad inputs: one clear error each, naming the file or column ------------------------------
def _write(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)
    return path


GOOD = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"], "y": [0, 1, 0]})


def test_bad_inputs(client2: Client, tmp_path: Path) -> None:
    with pytest.raises(wb.DataNotFoundError, match="does not exist"):
        wb.load(tmp_path / "nope", client=client2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(wb.DataNotFoundError, match="holds no Parquet or CSV"):
        wb.load(tmp_path / "empty", client=client2)
    with pytest.raises(wb.DataNotFoundError, match="neither a dataset in the catalog"):
        wb.load("no_such_dataset", client=client2)

    corrupt = tmp_path / "corrupt"
    _write(corrupt / "a.parquet", GOOD)
    (corrupt / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(wb.DataError, match=r"b\.parquet is not a readable Parquet file"):
        wb.load(corrupt, target="y", client=client2)

    mixed = tmp_path / "mixed"
    _write(mixed / "a.parquet", GOOD)
    _write(mixed / "b.parquet", GOOD.assign(x=GOOD["x"].astype("int64")))
    with pytest.raises(wb.DataError, match=r"column 'x' is int64 in .*b\.parquet but double"):
        wb.load(mixed, target="y", client=client2)
    other = tmp_path / "other"
    _write(other / "a.parquet", GOOD)
    _write(other / "b.parquet", GOOD.rename(columns={"x": "z"}))
    with pytest.raises(wb.DataError, match=r"b\.parquet has other columns"):
        wb.load(other, target="y", client=client2)

    good = _write(tmp_path / "good" / "a.parquet", GOOD).parent
    with pytest.raises(wb.DataError, match="target 'label' is not a column"):
        wb.load(good, target="label", categorical=["c"], client=client2)
    with pytest.raises(wb.DataError, match=r"'c' holds strings .* not declared categorical"):
        wb.load(good, target="y", client=client2)
    with pytest.raises(wb.DataError, match=r"holds .* values such as"):
        wb.load(good, target="c", task="binary", client=client2)

    nan = _write(tmp_path / "nan" / "a.parquet", GOOD.assign(y=[0.0, np.nan, 1.0])).parent
    with pytest.raises(wb.DataError, match=r"missing .* in 1 of 3 rows"):
        wb.load(nan, target="y", categorical=["c"], client=client2)
    holes = GOOD.assign(y=pd.array([0, None, 1], dtype="Int64"))  # from the statistics alone
    with pytest.raises(wb.DataError, match=r"missing .* in 1 of 3 rows"):
        wb.load(
            _write(tmp_path / "holes" / "a.parquet", holes).parent,
            target="y",
            features=["x"],
            client=client2,
        )
    inf = _write(tmp_path / "inf" / "a.parquet", GOOD.assign(y=[0.5, np.inf, 1.0])).parent
    with pytest.raises(wb.DataError, match="infinite"):
        wb.load(inf, target="y", categorical=["c"], task="regression", client=client2)
    one = _write(tmp_path / "one" / "a.parquet", GOOD.assign(y=[1, 1, 1])).parent
    with pytest.raises(wb.DataError, match="one class only"):
        wb.load(one, target="y", categorical=["c"], task="binary", client=client2)
    labels = _write(tmp_path / "labels" / "a.parquet", GOOD.assign(y=[1, 2, 1])).parent
    # any two numbers are classes (training maps them to 0 and 1), three are not binary
    assert wb.load(labels, target="y", categorical=["c"], client=client2).task == "binary"
    three = _write(tmp_path / "three" / "a.parquet", GOOD.assign(y=[1, 2, 3])).parent
    with pytest.raises(wb.DataError, match="task='binary' but the target 'y' has 3 classes"):
        wb.load(three, target="y", categorical=["c"], task="binary", client=client2)
    zero = _write(tmp_path / "zero" / "a.parquet", GOOD.iloc[:0]).parent
    with pytest.raises(wb.DataError, match="zero rows"):
        wb.load(zero, target="y", categorical=["c"], client=client2)
    with pytest.raises(ValueError, match="task="):
        wb.load(good, target="y", task="ranking", client=client2)


def test_bad_catalog_entry_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nsource: {generator: weather}\n")
    with dask.config.set({"workbench.data.path": str(tmp_path)}):
        cat = wb.datasets()
    assert "unknown generator 'weather'" in cat.errors["bad"]
    assert f"{tmp_path / 'bad.yaml'}:2" in cat.errors["bad"]


# --- split ------------------------------------------------------------------------------------
def test_split_is_deterministic_disjoint_complete_and_stratified(
    client1: Client, client2: Client, fraud: Path
) -> None:
    def ids(client: Client) -> list[set[int]]:
        ds = wb.load(
            fraud, target="is_fraud", categorical=["merchant_category", "device"], client=client
        )
        parts = ds.split((0.8, 0.1, 0.1), seed=5, stratify=True)
        return [set(client.compute(p.frame["transaction_id"]).result()) for p in parts]

    one, two = ids(client1), ids(client2)
    assert one == two  # the same rows on one worker and on two
    assert sum(len(p) for p in two) == 40_000
    assert not (two[0] & two[1]) and not (two[1] & two[2]) and not (two[0] & two[2])
    assert abs(len(two[0]) / 40_000 - 0.8) < 0.01

    ds = wb.load(
        fraud, target="is_fraud", categorical=["merchant_category", "device"], client=client2
    )
    rate = client2.compute(ds.frame["is_fraud"].mean()).result()
    for part in ds.split((0.5, 0.5), seed=1, stratify=True):
        part_rate = client2.compute(part.frame["is_fraud"].mean()).result()
        assert abs(part_rate - rate) < 0.0015  # rare class kept in proportion


def test_split_takes_the_same_rows_whatever_columns_are_loaded(
    client2: Client, fraud: Path
) -> None:
    """Regression: Dask's read_parquet fused the reads of few small columns into fewer
    partitions, and a split draws per partition, so the same seed took other rows."""

    def test_ids(**kw: Any) -> set[int]:
        ds = wb.load(fraud, target="is_fraud", client=client2, **kw)
        test = ds.split((0.8, 0.1, 0.1), seed=3)[2]
        return set(client2.compute(test.frame["transaction_id"]).result())

    few = test_ids(features=["transaction_id"])
    every = test_ids(categorical=["merchant_category", "device"])
    assert len(few) == 4_000 and few == every


def test_files_with_many_row_groups_are_read_in_pieces(client2: Client, tmp_path: Path) -> None:
    n = 10_000
    df = pd.DataFrame(
        {
            "x": np.arange(n, dtype="float64"),
            "c": np.array(["a", "b", "c", "d"])[np.arange(n) % 4],
            "y": np.arange(n) % 2,
        }
    )
    folder = tmp_path / "groups"
    folder.mkdir()
    df.to_parquet(folder / "a.parquet", row_group_size=1_000)  # 10 row groups
    df.iloc[:500].to_parquet(folder / "b.parquet")  # 1 row group
    with dask.config.set({"workbench.data.partition-bytes": "40KiB"}):
        ds = wb.load(folder, target="y", categorical=["c"], client=client2)
        filtered = wb.load(
            folder, target="y", features=["x"], filters=[("x", ">=", 4_500.0)], client=client2
        )
    assert 2 < ds.npartitions <= 11  # row groups of about 17 KiB, two or one to a piece
    whole = pd.concat([df, df.iloc[:500]], ignore_index=True)
    got = client2.compute(ds.frame).result().reset_index(drop=True)
    assert got["x"].tolist() == whole["x"].tolist()  # every row once, in file order
    assert got["c"].astype(str).tolist() == whole["c"].tolist()
    X, y = ds.to_arrays(device="cpu", client=client2)
    assert X.chunks[0] == tuple(client2.compute(ds.frame.map_partitions(len)).result())
    assert np.array_equal(client2.compute(X).result()[:, 0], whole["x"].to_numpy())
    assert np.array_equal(client2.compute(y).result(), whole["y"].to_numpy())
    assert filtered.rows == 5_500
    assert client2.compute(filtered.frame["x"].min()).result() == 4_500.0


def _messy(seed: int, n: int, kinds: list[str]) -> pd.DataFrame:
    """Nulls in every kind of column, categories in another order in every file."""
    rng = np.random.default_rng(seed)
    holes = rng.random(n) < 0.1
    return pd.DataFrame(
        {
            "i": pd.array(np.where(holes, None, rng.integers(0, 9, n)), dtype="Int64"),
            "f": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "b": pd.array(np.where(holes[::-1], None, rng.random(n) < 0.5), dtype="boolean"),
            "s": np.where(rng.random(n) < 0.1, None, rng.choice(["p", "q", "r"], n)),
            "n": rng.choice([10, 20, 30], n),
            "g": np.where(rng.random(n) < 0.1, np.nan, rng.choice([0.5, 1.5], n)),
            "k": pd.Categorical(rng.choice(kinds, n), categories=kinds),
            "y": (rng.random(n) < 0.3).astype("int8"),
        }
    )


def test_arrays_from_arrow_equal_arrays_through_the_frame(client2: Client, tmp_path: Path) -> None:
    """to_arrays reads a loaded (and split) dataset straight from Arrow: same X, y and levels."""
    from workbench.data.placement import arrays_and_levels

    folder = tmp_path / "messy"
    folder.mkdir()
    _messy(0, 3_000, ["u", "v", "w"]).to_parquet(folder / "a.parquet", row_group_size=700)
    _messy(1, 2_000, ["w", "v"]).to_parquet(folder / "b.parquet")
    _messy(2, 1_000, ["x", "u"]).to_parquet(folder / "c.parquet")
    cats = ["s", "n", "g", "k"]
    with dask.config.set({"workbench.data.partition-bytes": "12KiB"}):
        checked = wb.load(folder, target="y", categorical=cats, client=client2)
        unchecked = wb.load(folder, target="y", categorical=cats, check=False, client=client2)
        filtered = wb.load(
            folder, target="y", categorical=cats, filters=[("n", "<", 30)], client=client2
        )
    assert checked.npartitions > 3  # a.parquet in pieces of its row groups
    train, test = checked.split((0.7, 0.3), seed=2, stratify=True)
    variants = {
        "checked": checked,
        "unchecked": unchecked,
        "filtered": filtered,
        "test part": test,
        "split of a split": train.split((0.5, 0.5), seed=4)[1],
        "unchecked part": unchecked.split((0.6, 0.4), seed=1)[0],
    }
    for name, ds in variants.items():
        assert ds.plan is not None, name
        through_frame = ds.with_frame(ds.frame, rows=ds.rows)
        assert through_frame.plan is None
        got = arrays_and_levels(ds, device="cpu", dtype=np.dtype("float32"), client=client2)
        want = arrays_and_levels(
            through_frame, device="cpu", dtype=np.dtype("float32"), client=client2
        )
        assert got[0].chunks == want[0].chunks, name
        X, Xw = client2.compute([got[0], want[0]], sync=True)
        y, yw = client2.compute([got[1], want[1]], sync=True)
        assert np.array_equal(X, Xw, equal_nan=True), name
        assert y.dtype == yw.dtype and np.array_equal(y, yw), name
        assert got[2] == want[2], name
    # the codes are positions in the levels, the same in every file
    X, _, levels = arrays_and_levels(
        unchecked, device="cpu", dtype=np.dtype("float32"), client=client2
    )
    assert levels["k"] == ["u", "v", "w", "x"] and levels["g"] == [0.5, 1.5]
    column = client2.compute(X, sync=True)[:, list(unchecked.features).index("k")]
    assert set(np.unique(column[~np.isnan(column)])) == {0.0, 1.0, 2.0, 3.0}
    assert checked.rows == 6_000


def _both_paths(ds: wb.Dataset, client: Client) -> tuple[np.ndarray, np.ndarray]:
    """X and y straight from Arrow, checked equal to X and y through the persisted frame."""
    from workbench.data.placement import arrays_and_levels

    f32 = np.dtype("float32")
    assert ds.plan is not None and ds.plan.describes(ds.frame)
    got = arrays_and_levels(ds, device="cpu", dtype=f32, client=client)
    want = arrays_and_levels(ds.persist(client=client), device="cpu", dtype=f32, client=client)
    X, y = client.compute([got[0], got[1]], sync=True)
    Xw, yw = client.compute([want[0], want[1]], sync=True)
    assert np.array_equal(X, Xw, equal_nan=True) and np.array_equal(y, yw)
    assert got[2] == want[2]
    return X, y


def test_files_written_by_arrow_load_as_written(client2: Client, tmp_path: Path) -> None:
    """No pandas metadata: booleans with nulls stay booleans, dates stay dates (not text),
    and dictionaries that outgrow their int8 codes over row groups are read whole."""
    import datetime

    import pyarrow.parquet as pq

    folder = tmp_path / "arrow"
    folder.mkdir()
    small = pa.dictionary(pa.int8(), pa.string())
    half = [
        pa.table(
            {
                "flag": pa.array([[True, None, False][i % 3] for i in rows]),
                "kind": pa.array([[True, None, False][i % 3] for i in rows]),
                "day": pa.array([datetime.date(2024, 1, 1 + i % 3) for i in rows]),
                "word": pa.array([f"w{i:03d}" for i in rows]).dictionary_encode().cast(small),
                "y": pa.array([i % 2 for i in rows], pa.int8()),
            }
        )
        for rows in (range(0, 100), range(100, 200))
    ]
    with pq.ParquetWriter(folder / "a.parquet", half[0].schema) as writer:
        for t in half:  # two row groups, 100 words each: 200 levels outgrow int8 codes
            writer.write_table(t)
    ds = wb.load(folder, target="y", categorical=["kind", "day", "word"], client=client2)
    first = client2.compute(ds.frame.get_partition(0)).result()
    assert first["flag"].tolist()[:3] == [True, None, False]  # not the text "True"
    assert ds.categories["kind"] == [False, True] and len(ds.categories["word"]) == 200
    X, _ = _both_paths(ds, client2)
    flag = X[:, list(ds.features).index("flag")]
    assert np.array_equal(flag[:3], [1.0, np.nan, 0.0], equal_nan=True)
    kind = X[:, list(ds.features).index("kind")]
    assert np.array_equal(kind[:3], [1.0, np.nan, 0.0], equal_nan=True)  # codes into [False, True]
    word = X[:, list(ds.features).index("word")]
    assert np.array_equal(word, np.arange(200, dtype="float32"))


def test_a_stored_index_is_not_a_feature(client2: Client, tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10) % 2})
    shuffled = _write(
        tmp_path / "i" / "a.parquet", df.set_index(pd.Index([5, 1, 2, 3, 4, 0, 6, 7, 8, 9]))
    )
    keyed = _write(
        tmp_path / "k" / "a.parquet", df.set_index(pd.Index(list("abcdefghij"), name="key"))
    )
    for path in (shuffled.parent, keyed.parent):
        ds = wb.load(path, target="y", client=client2)
        assert ds.features == {"x": "numeric"}
        X, y = _both_paths(ds, client2)
        assert X[:, 0].tolist() == df["x"].tolist() and y.tolist() == df["y"].tolist()


def test_hive_partition_folders_are_columns(client2: Client, tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(6.0), "y": [0, 1] * 3})
    for year in (2020, 2021):
        _write(tmp_path / "hive" / f"year={year}" / "part.parquet", df.assign(x=df["x"] + year))
    ds = wb.load(tmp_path / "hive", target="y", client=client2)
    assert ds.features == {"x": "numeric", "year": "categorical"}
    assert ds.categories["year"] == [2020, 2021] and ds.rows == 12
    X, _ = _both_paths(ds, client2)
    assert X[:, 1].tolist() == [0.0] * 6 + [1.0] * 6
    late = wb.load(tmp_path / "hive", target="y", filters=[("year", "=", 2021)], client=client2)
    assert late.rows == 6
    assert client2.compute(late.frame["x"]).result().tolist() == (df["x"] + 2021).tolist()
    with pytest.raises(ValueError, match="filters="):
        wb.load(tmp_path / "hive", target="y", filters=[("month", "=", 1)], client=client2)


def test_checks_that_statistics_settle_read_no_data(client2: Client, tmp_path: Path) -> None:
    df = pd.DataFrame({"a": np.arange(1_000.0), "y": np.arange(1_000) % 2})
    binary = _write(tmp_path / "binary" / "a.parquet", df).parent
    with get_task_stream(client=client2) as ts:
        ds = wb.load(binary, target="y", client=client2)
    assert (ds.task, ds.rows, ds.report) == ("binary", 1_000, {"all_null": [], "constant": []})
    assert ts.data == []  # the footers held the rows, the classes and the nulls
    multi = _write(tmp_path / "multi" / "a.parquet", df.assign(y=np.arange(1_000) % 3)).parent
    with get_task_stream(client=client2) as ts:
        ds = wb.load(multi, target="y", client=client2)
    assert ds.task == "multiclass" and len(ts.data) == 1  # three classes: the target is read


def test_check_summary_counts_missing_infinite_and_levels() -> None:
    table = pa.table(
        {
            "t": pa.array([1.0, np.nan, None, np.inf, 0.0]),
            "f": pa.array([1.5, np.nan, None, 1.5, 2.0]),
            "d": pa.array(["b", None, "a", "b", "a"]).dictionary_encode(),
        }
    )
    got = summarize(table, "t", ["f", "d"], ["f"], classes=True)
    assert got["rows"] == 5
    assert got["target"] == {"missing": 2, "infinite": 1, "distinct": [1.0, np.inf, 0.0]}
    assert got["levels"] == {"f": [1.5, 2.0], "d": ["b", "a"]}
    assert got["numeric"] == {"f": (3, 1.5, 2.0)}
    both = combine([got, summarize(table.slice(0, 1), "t", ["f", "d"], ["f"], True)], ["d"], ["f"])
    assert both["rows"] == 6 and both["target_missing"] == 2
    assert both["levels:d"] == ["b", "a"] and both["nonnull"] == {"f": 4}


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.5, 0.6), (1.0,), (0.5, -0.5, 1.0), "80/20"])
def test_fractions_must_be_positive_and_sum_to_one(
    fraud: Path, client2: Client, fractions: object
) -> None:
    ds = wb.load(
        fraud,
        target="is_fraud",
        categorical=["merchant_category", "device"],
        check=False,
        client=client2,
    )
    with pytest.raises((ValueError, TypeError), match="fractions"):
        ds.split(fractions)  # type: ignore[arg-type]


# --- persist and arrays ----------------------------------------------------------------------
def test_persist_spreads_over_workers_and_reports_placement(client2: Client, fraud: Path) -> None:
    ds = wb.load(
        fraud, target="is_fraud", categorical=["merchant_category", "device"], client=client2
    ).persist(client=client2)
    assert ds.persisted and ds.rows == 40_000
    table = ds.placement.to_frame()
    assert len(table) == 2 and (table["partitions"] > 0).all() and table["rows"].sum() == 40_000
    assert ds.placement.empty_workers == []
    html = ds._repr_html_()
    assert "Placement" in html and "20,000" in html


def test_persist_of_few_columns_whose_partitions_fuse(client2: Client, fraud: Path) -> None:
    """Two small columns of four files: Dask fuses the reads into fewer partitions."""
    ds = wb.load(
        fraud,
        target="is_fraud",
        features={"merchant_category": "categorical"},
        client=client2,
    ).persist(client=client2)
    assert ds.rows == 40_000
    assert ds.frame.npartitions == sum(ds.placement.to_frame()["partitions"])
    got = client2.compute(ds.frame).result()
    assert list(got.columns) == ["merchant_category", "is_fraud"] and len(got) == 40_000
    assert got["is_fraud"].sum() == _read(fraud)["is_fraud"].sum()


def test_persist_refuses_what_does_not_fit(client2: Client, fraud: Path) -> None:
    ds = wb.load(
        fraud, target="is_fraud", categorical=["merchant_category", "device"], client=client2
    )
    with (
        dask.config.set({"workbench.data.memory-fraction": 1e-9}),
        pytest.raises(wb.InsufficientMemoryError, match=r"needs about .* free for data"),
    ):
        ds.persist(client=client2)


def test_to_arrays_known_chunks_dtype_and_devices(client2: Client, fraud: Path) -> None:
    ds = wb.load(
        fraud, target="is_fraud", categorical=["merchant_category", "device"], client=client2
    )
    train, _ = ds.split((0.5, 0.5), seed=0)
    # client2's two workers run in this process: one environment, so one CUDA_VISIBLE_DEVICES
    # for both; they are never GPU workers, and "auto" is NumPy on any machine. On a machine
    # with a GPU (NVML sees one from this process) they report it but have none of their own.
    X, y = train.to_arrays(device="auto", client=client2)
    assert X.dtype == np.float32 and not any(np.isnan(c) for c in X.chunks[0])
    assert X.shape[1] == len(ds.features) and X.shape[0] == y.shape[0]
    assert isinstance(X._meta, np.ndarray)
    assert isinstance(client2.compute(X).result(), np.ndarray)
    assert set(np.unique(client2.compute(y).result())) == {0, 1}
    why = "of (their|its) own" if wb.hardware().gpus else "no worker reports a GPU"
    with pytest.raises(wb.GPUUnavailableError, match=f"device='gpu' but .*{why}.*local-gpu"):
        train.to_arrays(device="gpu", client=client2)
    with pytest.raises(ValueError, match="device="):
        train.to_arrays(device="tpu", client=client2)
    with pytest.raises(ValueError, match="floating"):
        train.to_arrays(dtype="int32", client=client2)


def _seeing_a_gpu(n_workers: int, **worker_kwargs: Any) -> LocalCluster:
    """An in-process cluster whose workers report an 80 GiB GPU, as distributed reports one.

    A worker process of its own (a Nanny's, dask-cuda's) on a machine with a GPU reports it
    only through its system monitor's metrics, ``gpu-memory-total`` and ``gpu_memory_used``
    (the ``gpu`` startup information is read before NVML starts there); these workers report
    it through the same metrics, given with the worker's own ``metrics`` option.
    """
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=False,
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
        metrics={
            "gpu-memory-total": lambda worker: 80 * 2**30,
            "gpu_memory_used": lambda worker: 2**20,
        },
        **worker_kwargs,
    )


def test_workers_that_see_a_gpu_are_gpu_workers_only_with_one_of_their_own() -> None:
    # a plain LocalCluster on a GPU machine: every worker sees the GPU, none was given one
    with _seeing_a_gpu(2) as cluster, Client(cluster, set_as_default=False) as client:
        snap = snapshot(client)
        assert snap.gpus == 2 and snap.all_gpu
        assert {w.gpu_memory for w in snap.workers} == {80 * 2**30}
        assert {w.gpu_memory_used for w in snap.workers} == {2**20}
        assert resolve_device(client, "auto", snap) == "cpu"
        with pytest.raises(wb.GPUUnavailableError, match=r"not given one of their own.*local-gpu"):
            resolve_device(client, "gpu", snap)
    # a GPU declared as a resource, but both workers on the same device (the first)
    with (
        _seeing_a_gpu(2, resources={"GPU": 1}) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        assert resolve_device(client, "auto") == "cpu"
        with pytest.raises(wb.GPUUnavailableError, match=r"all use GPU 0.*device of its own"):
            resolve_device(client, "gpu")
    # one worker with a declared GPU: a GPU worker where CuPy is installed
    with (
        _seeing_a_gpu(1, resources={"GPU": 1}) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        if importlib.util.find_spec("cupy") is not None:  # pragma: no cover - GPU machines
            assert resolve_device(client, "auto") == "gpu"
        else:
            assert resolve_device(client, "auto") == "cpu"
            with pytest.raises(wb.GPUUnavailableError, match="CuPy is not installed on worker"):
                resolve_device(client, "gpu")


def test_persist_checks_the_device(client2: Client, fraud: Path) -> None:
    ds = wb.load(fraud, target="is_fraud", client=client2)
    with pytest.raises(ValueError, match=r"device='tpu': use 'auto', 'cpu' or 'gpu'"):
        ds.persist(client=client2, device="tpu")
    # client2's in-process workers are never GPU workers (see above): refused, nothing loaded
    keys = client2.run_on_scheduler(lambda dask_scheduler: set(dask_scheduler.tasks))
    with pytest.raises(wb.GPUUnavailableError, match="device='gpu' but"):
        ds.persist(client=client2, device="gpu")
    assert client2.run_on_scheduler(lambda dask_scheduler: set(dask_scheduler.tasks)) <= keys
    done = ds.persist(client=client2, device="auto")  # host memory checked, as for "cpu"
    assert done.persisted and done.rows == 40_000


# --- CLI ---------------------------------------------------------------------------------------
def test_cli_data_list_and_info(fraud: Path) -> None:
    result = CliRunner().invoke(main, ["data", "list"])
    assert result.exit_code == 0 and "fraud" in result.output and "higgs" in result.output
    result = CliRunner().invoke(main, ["data", "info", str(fraud)])
    assert result.exit_code == 0, result.output
    assert "rows: 40,000" in result.output and "files: 4" in result.output
    assert "is_fraud: int8" in result.output
    result = CliRunner().invoke(main, ["data", "info", str(fraud / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_cli_data_generate_with_progress(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("workbench")
    out = subprocess.run(
        [
            str(exe),
            "data",
            "generate",
            "maintenance",
            "--rows",
            "3000",
            "--out",
            str(tmp_path / "m"),
            "--partitions",
            "3",
            "-p",
            "local-cpu",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "wrote 3,000 rows in 3 partitions" in out.stdout
    assert "generate maintenance" in out.stderr and "3/3" in out.stderr  # the progress bar
    assert len(list((tmp_path / "m").glob("part.*.parquet"))) == 3
    again = subprocess.run(
        [
            str(exe),
            "data",
            "generate",
            "maintenance",
            "--rows",
            "3000",
            "--out",
            str(tmp_path / "m"),
            "-p",
            "local-cpu",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert again.returncode == 1 and "overwrite" in again.stderr
