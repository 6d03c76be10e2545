"""Row identifiers: flagged by ``load``, kept with the rows, left out of the features; generated
files carry their roles (target, task, categorical and id columns) in their Parquet metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from distributed import Client

import workbench as wb
from workbench.data.parquet import ROLES_KEY, Roles
from workbench.data.summary import identifies_rows, order

N = 400  # rows, in two files


def _table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(10_000, 10_000 + N, dtype="int64"),  # increasing
            "ref": [f"r-{v:08x}" for v in rng.permutation(N)],  # unique text, any order
            "countdown": np.arange(N, 0, -1, dtype="int32"),  # decreasing
            "shuffled": rng.permutation(N).astype("int64"),  # unique, but in no order
            "hour": rng.integers(0, 24, size=N).astype("int16"),  # repeats
            "x": x,
            "y": (x + rng.normal(scale=0.5, size=N) > 0).astype("int8"),
        }
    )


def _write(folder: Path, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    half = len(frame) // 2
    frame.iloc[:half].to_parquet(folder / "a.parquet", index=False)
    frame.iloc[half:].to_parquet(folder / "b.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("ids") / "t", _table())


def test_identifiers_are_flagged_kept_and_left_out(client: Client, folder: Path) -> None:
    ds = wb.load(folder, target="y", client=client)
    assert ds.id_columns == ["transaction_id", "ref", "countdown"]
    assert list(ds.features) == ["shuffled", "hour", "x"]  # unique in no order: a number
    assert set(ds.id_columns) <= set(ds.frame.columns)  # kept with the rows
    assert "id_columns=['transaction_id', 'ref', 'countdown']" in repr(ds)
    html = ds._repr_html_()
    assert "Row identifiers, not features" in html and "<code>transaction_id</code>" in html
    assert "<td>id</td>" in html
    # splits and persisted parts keep them
    train, test = ds.split((0.5, 0.5), seed=0)
    assert train.id_columns == ds.id_columns
    kept = test.persist(client)
    assert kept.id_columns == ds.id_columns
    ids = client.compute(kept.frame["transaction_id"]).result()
    assert ids.is_unique and len(ids) == kept.rows
    model = wb.train(train, rounds=3, client=client, progress=False)
    assert model.feature_names == ["shuffled", "hour", "x"]
    assert set(model.evaluate(test, client=client)) >= {"auc"}


def test_identifiers_named_or_turned_off(client: Client, folder: Path) -> None:
    asked = wb.load(folder, target="y", features=["transaction_id", "x"], client=client)
    assert list(asked.features) == ["transaction_id", "x"] and asked.id_columns == []
    off = wb.load(folder, target="y", id_columns=None, categorical=["ref"], client=client)
    assert off.id_columns == [] and "transaction_id" in off.features
    assert off.features["ref"] == "categorical"
    named = wb.load(folder, target="y", id_columns=["hour"], categorical=["ref"], client=client)
    assert named.id_columns == ["hour"] and "transaction_id" in named.features
    # without the check pass nothing is detected; strings must then be declared
    unchecked = wb.load(folder, target="y", check=False, categorical=["ref"], client=client)
    assert unchecked.id_columns == [] and "transaction_id" in unchecked.features


def test_bad_id_columns_are_refused(client: Client, folder: Path) -> None:
    with pytest.raises(TypeError, match=r"id_columns='ref': pass 'auto', a list .*\['ref'\]"):
        wb.load(folder, target="y", id_columns="ref", client=client)
    with pytest.raises(TypeError, match="id_columns must be 'auto', a list of column names"):
        wb.load(folder, target="y", id_columns=[1], client=client)  # type: ignore[list-item]
    with pytest.raises(wb.DataError, match=r"id_columns \['nope'\] are not in the data"):
        wb.load(folder, target="y", id_columns=["nope"], client=client)
    with pytest.raises(ValueError, match="target 'y' cannot also be an id column"):
        wb.load(folder, target="y", id_columns=["y"], client=client)
    with pytest.raises(ValueError, match=r"\['x'\] are named both in features and in id_columns"):
        wb.load(folder, target="y", features=["x"], id_columns=["x"], client=client)


def test_what_is_not_an_identifier(client: Client, tmp_path: Path) -> None:
    frame = _table(1)
    # a repeat across the files' boundary, a missing value, a text that repeats
    frame["transaction_id"] = np.r_[np.arange(N // 2), np.arange(N // 2 - 1, N - 1)]
    frame["countdown"] = pd.array([*range(N - 1), None], dtype="Int64")
    frame["ref"] = [f"r{i % 50}" for i in range(N)]
    path = _write(tmp_path / "t", frame)
    ds = wb.load(path, target="y", categorical=["ref"], client=client)
    assert ds.id_columns == []
    assert {"transaction_id", "countdown", "ref"} <= set(ds.features)
    # an undeclared text column that names no row is still refused as before
    with pytest.raises(wb.DataError, match=r"'ref' holds strings .* not declared categorical"):
        wb.load(path, target="y", client=client)


def test_csv_identifiers(client: Client, tmp_path: Path) -> None:
    frame = _table(2)
    frame.iloc[:200].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "b.csv", index=False)
    ds = wb.load(tmp_path / "*.csv", target="y", client=client)
    assert ds.id_columns == ["transaction_id", "ref", "countdown"]


def test_order_summaries_fold_across_partitions() -> None:
    import pyarrow as pa

    def orders(*parts: list[object]) -> list[tuple[object, ...]]:
        return [order(pa.chunked_array([pa.array(p)])) for p in parts]

    assert identifies_rows(orders([1, 2, 3], [], [4, 9]), text=False)
    assert identifies_rows(orders([9, 4], [3, 1]), text=False)
    assert not identifies_rows(orders([1, 2, 3], [3, 4]), text=False)  # 3 twice
    assert not identifies_rows(orders([1, 3, 2]), text=False)
    assert not identifies_rows(orders([1, None, 3]), text=False)
    assert not identifies_rows(orders([7]), text=False)  # one row tells nothing
    assert not identifies_rows(orders([]), text=False)
    assert identifies_rows(orders(["b", "a"], ["z", "c"]), text=True)  # unique per partition
    assert not identifies_rows(orders(["b", "a"], ["z", "c"]), text=False)
    assert not identifies_rows(orders(["a", "b", "a"]), text=True)


def test_generated_files_carry_their_roles(client: Client, tmp_path: Path) -> None:
    made = wb.generate("fraud", rows=2_000, path=tmp_path / "fraud", partitions=2, client=client)
    first = sorted((tmp_path / "fraud").glob("*.parquet"))[0]
    schema = pq.read_schema(first)
    roles = json.loads(schema.metadata[ROLES_KEY])
    assert roles["target"] == "is_fraud" and roles["task"] == "binary"
    assert roles["id_columns"] == ["transaction_id"]
    assert roles["features"]["device"] == "categorical" and roles["features"]["amount"] == "numeric"
    assert b"pandas" in schema.metadata  # pandas' own metadata is kept
    assert Roles.of(schema) == Roles("is_fraud", "binary", roles["features"], ("transaction_id",))

    loaded = wb.load(tmp_path / "fraud", client=client)  # no target, no categorical
    assert (loaded.target, loaded.task) == ("is_fraud", "binary")
    assert loaded.features == made.features and loaded.id_columns == made.id_columns
    assert made.id_columns == ["transaction_id"] and "transaction_id" not in made.features
    assert sorted(loaded.categories["device"]) == sorted(made.categories["device"])
    assert list(loaded.frame.columns) == list(made.frame.columns)
    # what is passed wins over the files' roles
    other = wb.load(tmp_path / "fraud", target="amount", task="regression", client=client)
    assert other.task == "regression" and "is_fraud" in other.features
    # without the check pass, the roles still name the id column
    fast = wb.load(tmp_path / "fraud", check=False, client=client)
    assert fast.id_columns == ["transaction_id"] and fast.target == "is_fraud"


def test_unreadable_roles_are_ignored_with_a_warning(
    client: Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pyarrow as pa

    table = pa.Table.from_pandas(_table(3), preserve_index=False)
    bad = table.replace_schema_metadata({**table.schema.metadata, ROLES_KEY: b'{"version": 9}'})
    (tmp_path / "t").mkdir()
    pq.write_table(bad, tmp_path / "t" / "a.parquet")
    ds = wb.load(tmp_path / "t", target="y", client=client)
    said = caplog.text + capsys.readouterr().err  # stderr where the workbench's handler is set
    assert "metadata is not readable (not a version 1 object)" in said
    assert ds.id_columns == ["transaction_id", "ref", "countdown"]  # found by the checks
