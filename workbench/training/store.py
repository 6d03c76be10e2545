"""Atomic writes of models and checkpoints, to a local path or an fsspec URL.

A file is written under a temporary name beside its destination, flushed to disk, then renamed
over it: a reader sees the old file or the new one, never half of one, whatever happens to the
writer in between. On object stores a single ``put`` is already all or nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import fsspec

MANIFEST = "workbench.json"
FORMAT = "workbench-model/1"


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def write_atomic(path: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; return the path written.

    Raises
    ------
    ValueError
        ``path`` is an existing folder.
    PermissionError, FileNotFoundError
        The folder cannot be written (named in the message); nothing is left behind.
    """
    target = str(path)
    if _is_url(target):
        fs, _, (where,) = fsspec.get_fs_token_paths(target)
        if fs.isdir(where):
            raise ValueError(f"{target!r} is a folder; give a file name such as {target}/model.wbm")
        tmp = f"{where}.tmp-{os.getpid()}"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, where)
        return target
    local = Path(_local(target)).expanduser()
    if local.is_dir():
        raise ValueError(f"{target!r} is a folder; give a file name such as {local / 'model.wbm'}")
    folder = local.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(
            f"cannot write {target!r}: a part of {str(folder)!r} is a file, not a folder; "
            "choose another path"
        ) from None
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write to the folder {str(folder)!r}: choose another path")
    fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".tmp", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # as an ordinary file would be, not mkstemp's 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, local)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dirfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    return str(local)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a local file or fsspec URL; ``FileNotFoundError`` naming it if missing."""
    target = str(path)
    if _is_url(target):
        with fsspec.open(target, "rb") as f:
            return bytes(f.read())
    local = Path(_local(target)).expanduser()
    if not local.exists():
        raise FileNotFoundError(f"no model at {target!r}: check the path (wb.load_model(path))")
    if local.is_dir():
        raise ValueError(f"{target!r} is a folder, not a workbench model file")
    return local.read_bytes()


def pack(manifest: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """A zip archive of ``workbench.json`` (the manifest) and the model's files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(MANIFEST, json.dumps({"format": FORMAT, **manifest}, indent=1, default=str))
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def unpack(data: bytes, source: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of :func:`pack`; ``ValueError`` if it is not a workbench model."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            manifest = json.loads(z.read(MANIFEST))
            files = {n: z.read(n) for n in z.namelist() if n != MANIFEST}
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(
            f"{source!r} is not a workbench model (no {MANIFEST} inside); save one with "
            "model.save(path), or load an XGBoost file with xgboost.Booster(model_file=...)"
        ) from None
    if not str(manifest.get("format", "")).startswith("workbench-model/"):
        raise ValueError(f"{source!r} is not a workbench model (format {manifest.get('format')!r})")
    return manifest, files
