"""Model files: the overwrite rule, modes, paths, object stores, and files that lie (issue 12).

The models are real XGBoost, LightGBM and linear models trained on small NumPy arrays in this
process (no cluster: saving and loading does not need one); the bad files are made for real
with ``zipfile`` and ``json`` from a good one.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import stat
import struct
import threading
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from click.testing import CliRunner
from distributed import Client
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

import workbench as wb
from workbench.cli import main
from workbench.training import archive, store
from workbench.training.backends.linear.solver import LinearModel

FEATURES = {"amount": "numeric", "card age": "numeric", "color": "categorical", "hour": "numeric"}
CATEGORIES = {"color": ["red", "green", "blue"]}
MANIFEST = archive.MANIFEST


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    X[:, 2] = rng.integers(0, 3, 400)
    y = ((X[:, 0] + (X[:, 2] == 1)) > 0.5).astype(float)
    return X, y


def _estimator(kind: str) -> Any:
    X, y = _data()
    names = list(FEATURES)
    if kind == "xgboost":
        d = xgboost.DMatrix(
            X, y, feature_names=names, feature_types=["q", "q", "c", "q"], enable_categorical=True
        )
        return xgboost.train({"objective": "binary:logistic", "nthread": 1}, d, 5)
    if kind == "lightgbm":
        ds = lightgbm.Dataset(X, y, feature_name=names, categorical_feature=[2])
        params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
        return lightgbm.train(params, ds, 5)
    return LinearModel(
        task="binary",
        n_features=4,
        categorical={2: 3},
        mean=np.zeros(3),
        scale=np.ones(3),
        coef=np.linspace(-1, 1, 6),
        intercept=0.1,
        l2=1.0,
        iterations=3,
    )


def _model(kind: str) -> wb.Model:
    return wb.Model(
        kind=kind,
        task="binary",
        target="is_fraud",
        features=dict(FEATURES),
        categories={k: list(v) for k, v in CATEGORIES.items()},
        classes=[0, 1],
        estimator=_estimator(kind),
        params={"max_depth": 3},
        rounds=5,
        history=pd.DataFrame({"train-logloss": [0.6, 0.5, 0.45, 0.42, 0.4]}),
        metrics={"auc": 0.9},
    )


@pytest.fixture(scope="module")
def models() -> dict[str, wb.Model]:
    return {kind: _model(kind) for kind in ("xgboost", "lightgbm", "linear")}


@pytest.fixture
def good(models: dict[str, wb.Model], tmp_path: Path) -> Path:
    """A good XGBoost model file."""
    return Path(models["xgboost"].save(str(tmp_path / "good.wbm")))


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _rewrite(
    good: Path,
    manifest: Callable[[dict[str, Any]], Any] | None = None,
    members: Callable[[dict[str, bytes]], None] | None = None,
) -> Path:
    """A copy of ``good`` with its manifest and/or members changed, zipped again properly."""
    files = _members(good)
    if manifest is not None:
        m = json.loads(files[MANIFEST])
        m = manifest(m) or m
        files[MANIFEST] = m if isinstance(m, bytes) else json.dumps(m).encode()
    if members is not None:
        members(files)
    return _write_zip(good.with_name("bad.wbm"), files)


def _no_temporaries(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


# --- round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "linear"])
def test_every_kind_round_trips_with_its_hash(
    models: dict[str, wb.Model], kind: str, tmp_path: Path
) -> None:
    model = models[kind]
    path = model.save(tmp_path / f"{kind}.wbm")  # a Path is fine
    loaded = wb.load_model(Path(path))
    assert loaded.features == model.features and loaded.categories == model.categories
    own = wb.training.backends.get(kind).to_bytes
    assert own(loaded.estimator) == own(model.estimator)
    manifest = json.loads(_members(Path(path))[MANIFEST])
    assert manifest["format"] == "workbench-model/1"
    ((name, entry),) = manifest["files"].items()
    data = _members(Path(path))[name]
    assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# --- item 2: overwrite rule, modes, paths -------------------------------------------------------
def test_a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_ordinary_mode(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    model = models["xgboost"]
    old = os.umask(0o022)
    try:
        path = tmp_path / "m.wbm"
        model.save(str(path))
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o600)
        model.save(str(path))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.chmod(0o640)
        store.write_atomic(str(path), path.read_bytes())  # the low-level writer too
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    _no_temporaries(tmp_path)
    assert wb.load_model(str(path)).kind == "xgboost"


def test_bytes_and_other_paths_are_refused(
    models: dict[str, wb.Model], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = models["xgboost"]
    with pytest.raises(TypeError, match=r"b'm.wbm' is bytes; give it as a str, e\.g\. 'm.wbm'"):
        model.save(b"m.wbm")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not int"):
        model.save(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is bytes"):
        wb.load_model(b"m.wbm")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        model.save("m.wbm", overwrite="yes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # no file named "b'm.wbm'"


def test_save_replaces_a_model_but_never_other_files(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    xgb_model, linear = models["xgboost"], models["linear"]
    path = tmp_path / "m.wbm"
    xgb_model.save(str(path))
    linear.save(str(path))  # a workbench model is replaced, as to_parquet / save_model do
    assert wb.load_model(str(path)).kind == "linear"

    with pytest.raises(FileExistsError, match=r"m\.wbm' already exists; pass overwrite=True"):
        xgb_model.save(str(path), overwrite=False)
    assert wb.load_model(str(path)).kind == "linear"
    fresh = tmp_path / "fresh.wbm"
    xgb_model.save(str(fresh), overwrite=False)
    assert wb.load_model(str(fresh)).kind == "xgboost"

    csv = tmp_path / "model.wbm"
    csv.write_text("customer,amount\n1,20.5\n")
    for overwrite in (True, False):
        with pytest.raises(FileExistsError, match=rf"{csv.name}'.*(not a workbench|exists)"):
            xgb_model.save(str(csv), overwrite=overwrite)
    assert csv.read_text() == "customer,amount\n1,20.5\n"
    a_zip = tmp_path / "photos.wbm"  # a zip archive, but not a model
    _write_zip(a_zip, {"workbench.json": b'{"photos": 1}'})
    with pytest.raises(FileExistsError, match="is not a workbench model file"):
        xgb_model.save(str(a_zip))
    _no_temporaries(tmp_path)


def test_cli_train_refuses_an_existing_out_before_anything_runs(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    """``--valid 5`` fails before the cluster starts: the --out check must come before it."""
    existing = Path(models["xgboost"].save(str(tmp_path / "m.wbm")))
    before = existing.read_bytes()
    csv = tmp_path / "data.wbm"
    csv.write_text("a,b\n1,2\n")
    runner = CliRunner()

    def train(out: Path, *extra: str) -> Any:
        args = ["train", "--data", "nowhere", "--target", "y", "--valid", "5", "--out", str(out)]
        return runner.invoke(main, [*args, *extra])

    result = train(existing)
    assert result.exit_code == 1, result.output
    assert "already exists; add --overwrite to replace it" in result.output
    result = train(csv, "--overwrite")
    assert result.exit_code == 1 and "is not a workbench model file" in result.output
    result = train(existing, "--overwrite")  # allowed: the next check speaks
    assert result.exit_code == 2 and "--valid 5.0: give a fraction" in result.output
    assert existing.read_bytes() == before and csv.read_text() == "a,b\n1,2\n"


def test_a_checkpoint_path_holding_another_file_is_refused_before_training(
    client: Client, tmp_path: Path
) -> None:
    """A checkpoint rewrites its own model file each time, but never a file of the user's."""
    X, y = _data()
    frame = pd.DataFrame(X, columns=list(FEATURES)).assign(y=y.astype(int))
    frame.to_parquet(tmp_path / "data.parquet")
    ds = wb.load(tmp_path / "data.parquet", target="y", client=client)
    notes = tmp_path / "notes.wbm"
    notes.write_text("my notes\n")
    with pytest.raises(FileExistsError, match=r"notes\.wbm' exists and is not a workbench model"):
        wb.train(ds, rounds=4, checkpoint_every=1, checkpoint_path=notes, client=client)
    assert notes.read_text() == "my notes\n"
    checkpoint = tmp_path / "ckpt.wbm"
    checkpoint.write_bytes(Path(_model("xgboost").save(tmp_path / "old.wbm")).read_bytes())
    wb.train(ds, rounds=4, checkpoint_every=1, checkpoint_path=checkpoint, client=client)
    assert wb.load_model(checkpoint).features == {f: "numeric" for f in FEATURES}


# --- item 3: object stores and filesystems that rename ---------------------------------------
class _RecordingMemoryFS(MemoryFileSystem):
    """fsspec's in-memory object store (the data really lands there), recording every write.

    Its own store and its own protocol, ``wbrecord://``; it is also a ``memory`` filesystem, so
    :data:`store.OBJECT_STORES` counts it as an object store, as ``s3`` or ``gs`` are.
    """

    protocol = ("wbrecord", "memory")
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    writes: ClassVar[list[tuple[str, ...]]] = []

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        return str(super()._strip_protocol(str(path).removeprefix("wbrecord://")))

    def pipe_file(self, path: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
        key = self._strip_protocol(path)
        self.writes.append(("pipe_file", key, hashlib.sha256(value).hexdigest()))
        self._piping = True  # pipe_file writes through _open: one write, recorded once
        try:
            return super().pipe_file(path, value, *args, **kwargs)
        finally:
            self._piping = False

    def mv(self, path1: Any, path2: Any, *args: Any, **kwargs: Any) -> Any:
        self.writes.append(("mv", str(path1), str(path2)))
        return super().mv(path1, path2, *args, **kwargs)

    def cp_file(self, path1: Any, path2: Any, *args: Any, **kwargs: Any) -> Any:
        self.writes.append(("cp_file", str(path1), str(path2)))
        return super().cp_file(path1, path2, *args, **kwargs)

    def put_file(self, lpath: Any, rpath: Any, *args: Any, **kwargs: Any) -> Any:
        self.writes.append(("put_file", str(lpath), str(rpath)))
        return super().put_file(lpath, rpath, *args, **kwargs)

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if set(mode) & set("wax+") and not getattr(self, "_piping", False):
            self.writes.append(("open", self._strip_protocol(path), mode))
        return super()._open(path, mode, *args, **kwargs)


@pytest.fixture
def recording() -> Iterator[_RecordingMemoryFS]:
    fsspec.register_implementation("wbrecord", _RecordingMemoryFS, clobber=True)
    fs = _RecordingMemoryFS()
    yield fs
    fs.store.clear()
    fs.writes.clear()


def test_an_object_store_gets_one_put_straight_to_the_key(
    models: dict[str, wb.Model], recording: _RecordingMemoryFS
) -> None:
    fs = recording
    url = "wbrecord://bucket/models/fraud[1].wbm"  # glob characters are a plain name
    key = "/bucket/models/fraud[1].wbm"

    def one_put() -> None:  # exactly one write: a put of what is now at the key; no move, copy
        assert fs.writes == [("pipe_file", key, hashlib.sha256(fs.cat_file(key)).hexdigest())]
        fs.writes.clear()

    assert models["xgboost"].save(url) == url
    one_put()
    assert fs.ls("/bucket/models", detail=False) == [key]
    manifest, files = archive.unpack(fs.cat_file(key), url)  # the content is the model's
    assert manifest["features"] == FEATURES
    assert files == {
        "model.ubj": wb.training.backends.get("xgboost").to_bytes(models["xgboost"].estimator)
    }
    loaded = wb.load_model(url)
    assert loaded.kind == "xgboost" and loaded.features == FEATURES
    models["linear"].save(url)  # a model object is replaced ...
    one_put()
    assert wb.load_model(url).kind == "linear"
    with pytest.raises(FileExistsError, match="already exists"):  # ... unless told not to
        models["xgboost"].save(url, overwrite=False)
    other = "/bucket/models/table.csv"
    fs.pipe_file(other, b"a,b\n1,2\n")
    fs.writes.clear()
    with pytest.raises(FileExistsError, match=r"table\.csv' exists and is not a workbench model"):
        models["xgboost"].save(f"wbrecord:/{other}")
    assert fs.cat_file(other) == b"a,b\n1,2\n"
    with pytest.raises(ValueError, match="is a folder"):
        models["xgboost"].save("wbrecord://bucket/models")
    assert fs.writes == []  # nothing written by the refused saves
    assert sorted(fs.ls("/bucket/models", detail=False)) == [key, other]


def test_filesystems_that_rename_get_a_temporary_file_and_a_move(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    # file:// and local:// URLs are local paths: the same rules, modes kept
    (tmp_path / "u.wbm").write_bytes(Path(models["linear"].save(tmp_path / "v.wbm")).read_bytes())
    (tmp_path / "u.wbm").chmod(0o600)
    for url in (f"file://{tmp_path}/u.wbm", f"local://{tmp_path}/u.wbm"):
        models["xgboost"].save(url)
        assert stat.S_IMODE((tmp_path / "u.wbm").stat().st_mode) == 0o600
        assert wb.load_model(url).kind == "xgboost"
    data = archive.pack(models["linear"].manifest(), {"model.json": b"{}"})
    renaming = DirFileSystem(path=str(tmp_path), fs=LocalFileSystem())  # a real fsspec FS
    assert not store.single_put(renaming) and not store.single_put(LocalFileSystem())
    renaming.makedirs("sub", exist_ok=True)
    store.put_atomic(renaming, "sub/m.wbm", data)
    assert (tmp_path / "sub" / "m.wbm").read_bytes() == data
    assert os.listdir(tmp_path / "sub") == ["m.wbm"]
    with pytest.raises(FileExistsError, match="already exists"):
        store.put_atomic(renaming, "sub/m.wbm", b"other", if_exists="refuse")
    assert os.listdir(tmp_path / "sub") == ["m.wbm"]  # the temporary file is gone
    assert (tmp_path / "sub" / "m.wbm").read_bytes() == data
    _no_temporaries(tmp_path)


# --- item 10: files that are not what they say ------------------------------------------------
def test_another_format_version_is_refused(good: Path) -> None:
    for fmt in ("workbench-model/99", "workbench-model/10", "workbench-model/1x"):
        bad = _rewrite(good, manifest=lambda m, fmt=fmt: {**m, "format": fmt})
        with pytest.raises(wb.ModelFileError, match=rf"bad\.wbm'.*{fmt}.*workbench-model/1\b"):
            wb.load_model(str(bad))


def test_a_manifest_without_kind_or_with_a_wrong_type_is_refused(good: Path) -> None:
    bad = _rewrite(good, manifest=lambda m: m.pop("kind") and None)
    with pytest.raises(wb.ModelFileError, match=r"bad\.wbm'.*lacks 'kind'"):
        wb.load_model(str(bad))
    bad = _rewrite(good, manifest=lambda m: {**m, "rounds": "many"})
    with pytest.raises(wb.ModelFileError, match="rounds='many'; it must be an integer >= 0"):
        wb.load_model(str(bad))
    bad = _rewrite(good, manifest=lambda m: {**m, "features": ["amount"]})
    with pytest.raises(wb.ModelFileError, match=r"features=.*it must be an object"):
        wb.load_model(str(bad))


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_deeply_nested_manifest_is_refused(good: Path, depth: int) -> None:
    def nest(m: dict[str, Any]) -> bytes:
        text = json.dumps(m)
        return (text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}").encode()

    bad = _rewrite(good, manifest=nest)
    with pytest.raises(wb.ModelFileError, match=r"bad\.wbm'.*nested too deeply"):
        wb.load_model(str(bad))


def test_a_flipped_byte_in_the_estimator_fails_its_hash(good: Path) -> None:
    def flip(files: dict[str, bytes]) -> None:
        data = bytearray(files["model.ubj"])
        data[len(data) // 2] ^= 0x01
        files["model.ubj"] = bytes(data)

    bad = _rewrite(good, members=flip)  # a well-formed zip: only the hash can tell
    with pytest.raises(wb.ModelFileError, match=r"'model\.ubj' does not match the SHA-256"):
        wb.load_model(str(bad))


def test_a_flipped_byte_in_the_archive_is_damage(good: Path, tmp_path: Path) -> None:
    raw = good.read_bytes()
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("model.ubj")
    data_at = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for where, expect in (
        (data_at + info.compress_size // 2, "member 'model.ubj' cannot be read"),
        (raw.rindex(b"PK\x01\x02"), "not a readable zip archive"),  # the central directory
    ):
        damaged = bytearray(raw)
        damaged[where] ^= 0x01
        path = tmp_path / "damaged.wbm"
        path.write_bytes(bytes(damaged))
        with pytest.raises(wb.ModelFileError, match=rf"damaged\.wbm'.*damaged.*{expect}"):
            wb.load_model(str(path))


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_reordered_features_are_refused(
    models: dict[str, wb.Model], kind: str, tmp_path: Path
) -> None:
    path = Path(models[kind].save(str(tmp_path / "good.wbm")))

    def swap(m: dict[str, Any]) -> dict[str, Any]:
        items = list(m["features"].items())
        items[0], items[1] = items[1], items[0]
        return {**m, "features": dict(items)}

    bad = _rewrite(path, manifest=swap)
    with pytest.raises(
        wb.ModelFileError,
        match=r"feature 0 is 'card.age' in workbench.json but 'amount' in the estimator "
        r"\(the same names in another order\)",
    ):
        wb.load_model(str(bad))


def test_features_the_linear_model_does_not_have_are_refused(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    path = Path(models["linear"].save(str(tmp_path / "good.wbm")))
    bad = _rewrite(path, manifest=lambda m: m["features"].pop("hour") and None)
    with pytest.raises(wb.ModelFileError, match="lists 3 features but the linear estimator has 4"):
        wb.load_model(str(bad))

    def move_category(m: dict[str, Any]) -> None:
        m["features"] = {"color": "categorical", "amount": "numeric", "card age": "numeric"}
        m["features"]["hour"] = "numeric"

    bad = _rewrite(path, manifest=move_category)
    with pytest.raises(
        wb.ModelFileError,
        match=r"columns are \[0\] \['color'\] in workbench.json but \[2\] in the estimator",
    ):
        wb.load_model(str(bad))


def test_members_the_manifest_does_not_list_are_refused(good: Path) -> None:
    bad = _rewrite(good, members=lambda files: files.update({"evil.pkl": b"\x80\x04K\x01."}))
    with pytest.raises(wb.ModelFileError, match=r"\['evil.pkl'\] that its workbench.json"):
        wb.load_model(str(bad))


def test_a_file_without_hashes_is_refused(good: Path) -> None:
    bad = _rewrite(good, manifest=lambda m: m.pop("files", None) and None)
    with pytest.raises(wb.ModelFileError, match="lists no files with their SHA-256"):
        wb.load_model(str(bad))


@pytest.fixture(scope="module")
def bomb(models: dict[str, wb.Model]) -> bytes:
    """A model file whose ``model.ubj`` inflates to 1 GiB of zeros (about 1 MB compressed).

    Its manifest says the member holds 1000 bytes; the archive's directory says 1 GiB.
    """
    manifest = json.loads(json.dumps(models["xgboost"].manifest()))
    manifest["format"] = archive.FORMAT
    manifest["files"] = {"model.ubj": {"bytes": 1000, "sha256": "0" * 64}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(MANIFEST, json.dumps(manifest))
        zeros = bytes(1 << 20)
        with z.open("model.ubj", "w") as m:
            for _ in range(1024):
                m.write(zeros)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_unread(bomb: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bomb.wbm"
    path.write_bytes(bomb)
    assert len(bomb) < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(
            wb.ModelFileError,
            match=r"bomb\.wbm'.*member 'model.ubj' would expand to 1,073,741,824 bytes; the "
            r"cap is [\d,]+ bytes \(at most 4,294,967,296, and 200 times",
        ):
            wb.load_model(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # far from the gigabyte it would inflate to


def test_a_member_that_lies_about_its_size_is_not_read_past_it(bomb: bytes, tmp_path: Path) -> None:
    """The archive's directory says 1000 bytes (as the manifest does): 1 GiB follows."""
    raw = bytearray(bomb)
    at = raw.rindex(b"PK\x01\x02")  # the central directory entry of model.ubj
    assert raw[at + 46 : at + 46 + 9] == b"model.ubj"
    raw[at + 24 : at + 28] = struct.pack("<I", 1000)  # its "uncompressed size"
    path = tmp_path / "liar.wbm"
    path.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(wb.ModelFileError, match=r"liar\.wbm'.*damaged.*'model.ubj'"):
            wb.load_model(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def _peak(call: Callable[[], Any]) -> int:
    """The most memory Python allocated (tracemalloc) while ``call`` ran."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _with_manifest(models: dict[str, wb.Model], manifest: bytes) -> bytes:
    """A model file of the XGBoost model's estimator and ``manifest``, compressed hard."""
    estimator = wb.training.backends.get("xgboost").to_bytes(models["xgboost"].estimator)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(MANIFEST, manifest)
        z.writestr("model.ubj", estimator)
    return buf.getvalue()


def test_a_small_file_with_a_huge_manifest_is_refused_unread(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    """15 MB of ``[{},{},...]`` in 15 KB: parsed, it took most of a gigabyte (3-byte ``{},``
    became 64-byte dicts) under the old 16 MiB allowance for small members."""
    raw = _with_manifest(models, b"[" + b"{}," * 5_000_000 + b"{}]")
    assert len(raw) < 20_000
    path = tmp_path / "wide.wbm"
    path.write_bytes(raw)

    def load() -> None:
        with pytest.raises(
            wb.ModelFileError,
            match=r"wide\.wbm'.*member 'workbench.json' would expand to 15,000,004 bytes; the "
            r"cap is 4,194,304 bytes: refused unread",
        ):
            wb.load_model(str(path))

    assert _peak(load) < 16 << 20

    lying = bytearray(raw)  # the archive's directory says 1000 bytes: still read no further
    at = lying.index(b"PK\x01\x02")  # the central directory entry of workbench.json
    assert lying[at + 46 : at + 46 + len(MANIFEST)] == MANIFEST.encode()
    lying[at + 24 : at + 28] = struct.pack("<I", 1000)
    path.write_bytes(bytes(lying))

    def load_lying() -> None:
        with pytest.raises(wb.ModelFileError, match=r"wide\.wbm'.*damaged.*'workbench.json'"):
            wb.load_model(str(path))

    assert _peak(load_lying) < 16 << 20


def test_a_manifest_of_too_many_values_is_refused_unparsed(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    """3 MB (under the byte cap) of a million ``{}``: counted, not parsed."""
    path = tmp_path / "many.wbm"
    text = b'{"format": "workbench-model/1", "x": [' + b"{}," * 999_999 + b"{}]}"
    path.write_bytes(_with_manifest(models, text))

    def load() -> None:
        with pytest.raises(
            wb.ModelFileError,
            match=r"many\.wbm'.*workbench.json holds more than 250,000 JSON values, the cap "
            r"\(a manifest holds a few thousand\): refused unparsed",
        ):
            wb.load_model(str(path))

    assert _peak(load) < 32 << 20  # parsed, the million dicts alone would take 64 MB


def test_large_real_manifests_fit_and_save_refuses_one_it_could_not_read(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    features = {f"feature_number_{i:05d}": "numeric" for i in range(10_000)}
    history = pd.DataFrame(np.random.default_rng(0).random((10_000, 4)), columns=list("abcd"))
    big = {
        "features": features,
        "categories": {
            f"feature_number_{i:05d}": [f"level {j}" for j in range(1000)] for i in range(50)
        },
        "history": json.loads(history.to_json(orient="split")),
    }
    manifest, files = archive.unpack(archive.pack(big, {"m": b"x"}), "big")  # 2.4 MB: it fits
    assert manifest["features"] == features and files == {"m": b"x"}

    model = copy.copy(models["linear"])
    model.categories = {"color": [f"merchant {j}" for j in range(300_000)]}
    path = tmp_path / "huge.wbm"
    with pytest.raises(
        wb.ModelFileError,
        match=r"workbench.json would hold [\d,]+ bytes and about [\d,]+ JSON values; a model "
        r"file's is capped at 4,194,304 bytes and 250,000 values, so it could not be loaded "
        "again and nothing is written",
    ):
        model.save(path)
    assert list(tmp_path.iterdir()) == []


def test_a_named_pipe_or_device_is_refused_without_opening_it(
    models: dict[str, wb.Model], tmp_path: Path
) -> None:
    """Opening a named pipe to read blocks until a writer comes: one comes here, to find out
    whether anyone opened the pipe (so the test fails rather than hangs if one does)."""
    fifo = tmp_path / "model.wbm"
    os.mkfifo(fifo)
    stop, readers = threading.Event(), []

    def writer() -> None:
        while not stop.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # only if a reader waits
                readers.append(1)
            except OSError:  # ENXIO: nobody has it open to read
                stop.wait(0.01)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(
            ValueError,
            match=r"model\.wbm' is a named pipe \(FIFO\), not a "
            "workbench model file",
        ):
            wb.load_model(str(fifo))
        with pytest.raises(FileExistsError, match=r"model\.wbm' exists and is not a workbench"):
            models["xgboost"].save(str(fifo))  # overwrite=True replaces only a model file
        with pytest.raises(FileExistsError, match=r"model\.wbm' already exists"):
            models["xgboost"].save(str(fifo), overwrite=False)
    finally:
        stop.set()
        thread.join()
    assert readers == []  # nobody opened the pipe
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # left as it was
    if os.path.exists(os.devnull):
        with pytest.raises(ValueError, match=r"is a character device, not a workbench model"):
            wb.load_model(os.devnull)


def test_a_duplicated_member_is_refused(good: Path) -> None:
    files = _members(good)
    bad = good.with_name("twice.wbm")
    with zipfile.ZipFile(bad, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in [*files.items(), ("model.ubj", b"other")]:
            z.writestr(name, data)
    with pytest.raises(wb.ModelFileError, match=r"holds \['model.ubj'\] more than once"):
        wb.load_model(str(bad))


def test_not_a_model_and_missing_files_keep_their_messages(tmp_path: Path) -> None:
    other = tmp_path / "table.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(wb.ModelFileError, match=r"table\.csv' is not a workbench model"):
        wb.load_model(str(other))
    with pytest.raises(FileNotFoundError, match="no model at"):
        wb.load_model(str(tmp_path / "none.wbm"))
    with pytest.raises(ValueError, match="is a folder"):
        wb.load_model(str(tmp_path))
