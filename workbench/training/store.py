"""Model files: atomic writes with an overwrite rule, and reading that trusts nothing.

Writing
-------
A model file is written so that a reader sees the old file or the new one, never half of one,
whatever happens to the writer in between. How depends on where it goes:

- A local path (or ``file://`` / ``local://`` URL): the bytes go to a temporary file beside the
  destination (``.NAME.RANDOM.tmp``), are flushed to disk, and the file is renamed over the
  destination. A new file gets the ordinary mode (``0666 & ~umask``); a replaced file keeps
  its mode (a ``0600`` model stays ``0600``).
- An object store, whose single ``put`` is already all or nothing (the protocols in
  :data:`OBJECT_STORES`: ``s3``, ``gs``/``gcs``, ``az``/``abfs``, ``oss``, ``memory``): one
  put straight to the key. A temporary object and a "rename" would be a copy and a delete
  there: two uploads, and a stray object left by a crash between them.
- Any other fsspec filesystem (``sftp``, ``hdfs``, ``webdav``...): a temporary file beside the
  destination, then the filesystem's ``mv``, which renames on real file systems.

What may be replaced is the caller's choice (``if_exists``): anything (``"replace"``, the
checkpoint writer's low-level default), only a workbench model file (``"model"``: a zip archive
whose ``workbench.json`` starts with a workbench format: :meth:`Model.save`'s default, as
``DataFrame.to_parquet`` and ``Booster.save_model`` replace their own files), or nothing
(``"refuse"``). A file that is not a workbench model, such as a CSV named ``model.wbm``, is
never replaced by ``"model"``. Locally ``"refuse"`` is atomic (a hard link that fails if the
name exists); on other filesystems the check comes just before the write.

Reading
-------
:func:`read` opens the file as a zip archive and reads only what it expects, each member at most
:data:`MAX_MANIFEST` (``workbench.json``) or :data:`MAX_MEMBER` bytes and at most
:data:`MAX_EXPANSION` times its compressed size (beyond :data:`SMALL_MEMBER`), checked on the
archive's declared sizes and again while reading, since those can lie. The manifest must be
format ``workbench-model/N`` with N in :data:`READS`, at most :data:`MAX_DEPTH` levels deep, and
list every other member with its size and SHA-256 (``files``), which are checked; a member it
does not list is refused. Files without the hashes (written before they were added, none of
them released) are refused. Every failure is one :class:`~workbench.errors.ModelFileError`
naming the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from workbench.errors import ModelFileError

MANIFEST = "workbench.json"
#: The format this workbench writes, and the major versions it reads.
FORMAT_VERSION = 1
FORMAT = f"workbench-model/{FORMAT_VERSION}"
READS = (1,)
#: The most bytes ``workbench.json`` may hold, and any other member.
MAX_MANIFEST = 256 << 20
MAX_MEMBER = 4 << 30
#: A member bigger than SMALL_MEMBER may hold at most MAX_EXPANSION times its compressed size.
#: Real models compress 2 to 65 times (XGBoost's most repetitive: thousands of empty trees);
#: a deflate "zip bomb" about 1000 times.
MAX_EXPANSION = 200
SMALL_MEMBER = 16 << 20
#: The deepest nesting of JSON values in a manifest (real ones have about 5 levels).
MAX_DEPTH = 64
#: fsspec protocols whose single put is atomic: written straight to the key.
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "memory"})

IfExists = Literal["replace", "model", "refuse"]
_IF_EXISTS = ("replace", "model", "refuse")
_FORMAT = re.compile(r"workbench-model/(\d+)")
_HEAD = re.compile(rb'\{\s*"format"\s*:\s*"workbench-model/')
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


def as_path(path: Any, what: str = "path") -> str:
    """``path`` as a string; ``TypeError`` for bytes and anything not a str or ``os.PathLike``.

    Parameters
    ----------
    path
        A local path or fsspec URL, as ``str`` or a path object.
    what
        What the value is called in the message.
    """
    value: str | bytes
    if isinstance(path, str | bytes | bytearray):
        value = bytes(path) if isinstance(path, bytearray) else path
    elif isinstance(path, os.PathLike):
        value = os.fspath(path)
    else:
        raise TypeError(
            f"{what} must be a str or a path object (a local path or fsspec URL), "
            f"not {type(path).__name__} ({path!r:.80})"
        )
    if isinstance(value, bytes):
        raise TypeError(
            f"{what} {path!r} is bytes; give it as a str, e.g. "
            f"{value.decode('utf-8', errors='replace')!r}"
        )
    if not value:
        raise ValueError(f"{what} is empty; give a file name such as 'model.wbm'")
    return value


def _split(target: str) -> tuple[Any, str]:
    """``(fs, path)``: ``fs`` is ``None`` for a local file (a plain path, ``file://``, ``local://``)."""
    if "://" not in target:
        return None, target
    fs, where = url_to_fs(target)
    if isinstance(fs, LocalFileSystem):
        return None, where
    return fs, where


def single_put(fs: Any) -> bool:
    """Whether ``fs`` is an object store whose one put is atomic (see :data:`OBJECT_STORES`)."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & OBJECT_STORES)


# --- what is there already ----------------------------------------------------------------------
def _is_model(f: IO[bytes]) -> bool:
    """Whether the open file is a zip archive whose manifest starts as a workbench model's does."""
    try:
        with zipfile.ZipFile(f) as z, z.open(MANIFEST) as m:
            return _HEAD.match(m.read(256)) is not None
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError, RuntimeError):
        return False


def check_target(path: Any, if_exists: IfExists, how: str = "pass overwrite=True") -> None:
    """Refuse ``path`` before anything is written, if it may not be (re)placed.

    Parameters
    ----------
    path
        The destination: a local path or fsspec URL.
    if_exists
        ``"replace"`` (anything), ``"model"`` (a workbench model file only) or ``"refuse"``.
    how
        How the caller asks for a replacement, for the message (``add --overwrite``...).

    Raises
    ------
    ValueError
        ``path`` is a folder.
    FileExistsError
        Something that may not be replaced is there (the message names it and says why).
    """
    target = as_path(path)
    if if_exists not in _IF_EXISTS:
        raise ValueError(f"if_exists={if_exists!r}: use one of {', '.join(_IF_EXISTS)}")
    fs, where = _split(target)
    if fs is None:
        local = Path(where).expanduser()
        if local.is_dir():
            raise ValueError(
                f"{target!r} is a folder; give a file name such as {local / 'model.wbm'}"
            )
        exists = os.path.lexists(local)
    else:
        if fs.isdir(where):
            raise ValueError(
                f"{target!r} is a folder; give a file name such as {target.rstrip('/')}/model.wbm"
            )
        exists = fs.exists(where)
    if not exists or if_exists == "replace":
        return
    if if_exists == "refuse":
        raise FileExistsError(
            f"{target!r} already exists; {how} to replace it, or choose another path"
        )
    with _open(fs, where) as f:
        model = f is not None and _is_model(f)
    if not model:
        raise FileExistsError(
            f"{target!r} exists and is not a workbench model file (or is a damaged one), so it "
            "is not replaced: move it away or choose another path"
        )


@contextlib.contextmanager
def _open(fs: Any, where: str) -> Iterator[IO[bytes] | None]:
    """The file opened for reading, or ``None`` if it cannot be (a broken link, no access)."""
    try:
        f = open(Path(where).expanduser(), "rb") if fs is None else fs.open(where, "rb")  # noqa: SIM115
    except OSError:
        yield None
        return
    with f:
        yield f


# --- writing -------------------------------------------------------------------------------------
def write_atomic(path: Any, data: bytes, *, if_exists: IfExists = "replace") -> str:
    """Write ``data`` to ``path`` atomically (see the module's docstring); return the path written.

    Parameters
    ----------
    path
        A local path or fsspec URL.
    data
        The file's bytes.
    if_exists
        What may be replaced: ``"replace"`` (anything), ``"model"`` (a workbench model file
        only) or ``"refuse"`` (nothing).

    Raises
    ------
    TypeError
        ``path`` is bytes, or not a str or path object.
    ValueError
        ``path`` is an existing folder.
    FileExistsError
        ``if_exists`` forbids replacing what is there.
    PermissionError, NotADirectoryError
        The folder cannot be written (named in the message); nothing is left behind.
    """
    target = as_path(path)
    check_target(target, if_exists)
    fs, where = _split(target)
    if fs is None:
        return _write_local(target, Path(where).expanduser(), data, if_exists)
    put_atomic(fs, where, data, if_exists=if_exists, target=target)
    return target


def put_atomic(
    fs: Any, where: str, data: bytes, *, if_exists: IfExists = "replace", target: str = ""
) -> None:
    """Write ``data`` at ``where`` on the fsspec filesystem ``fs``: one put or tmp + ``mv``.

    An object store (:func:`single_put`) gets one put straight to the key; other filesystems a
    temporary file beside ``where``, moved over it, and removed if anything fails.
    """
    if single_put(fs):
        fs.pipe_file(where, data)
        return
    folder, slash, name = where.rpartition("/")
    tmp = f"{folder}{slash}.{name}.{secrets.token_hex(6)}.tmp"
    try:
        fs.pipe_file(tmp, data)
        if if_exists == "refuse" and fs.exists(where):
            raise FileExistsError(f"{target or where!r} already exists; choose another path")
        fs.mv(tmp, where)
    except BaseException:
        with contextlib.suppress(Exception):
            if fs.exists(tmp):
                fs.rm(tmp)
        raise


def _write_local(target: str, local: Path, data: bytes, if_exists: IfExists) -> str:
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
    try:
        mode: int | None = stat.S_IMODE(os.stat(local).st_mode) & 0o777
    except OSError:
        mode = None  # a new file: the mode os.open gives it (0666 & ~umask)
    fd, tmp = _create_beside(local)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if if_exists == "refuse":
            _link_new(tmp, local, target)
        else:
            os.replace(tmp, local)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dirfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    return str(local)


def _create_beside(local: Path) -> tuple[int, str]:
    """A new, empty temporary file beside ``local``, with an ordinary file's mode."""
    for _ in range(100):
        tmp = str(local.parent / f".{local.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {str(local)!r}")


def _link_new(tmp: str, local: Path, target: str) -> None:
    """Give ``tmp`` the name ``local`` unless that name exists (atomically where links work)."""
    try:
        os.link(tmp, local)
    except FileExistsError:
        raise FileExistsError(f"{target!r} already exists; choose another path") from None
    except OSError:  # a filesystem without hard links: check, then rename
        if os.path.lexists(local):
            raise FileExistsError(f"{target!r} already exists; choose another path") from None
        os.replace(tmp, local)


# --- the archive ---------------------------------------------------------------------------------
def pack(manifest: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """A zip archive of ``workbench.json`` (the manifest) and the model's files.

    The manifest gets the format and, under ``files``, each file's size and SHA-256.
    """
    listed = {
        name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in files.items()
    }
    body = {"format": FORMAT, **manifest, "files": listed}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(MANIFEST, json.dumps(body, indent=1, default=str))
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def read(path: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of the model file at ``path`` (a local path or fsspec URL).

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    ValueError
        ``path`` is a folder.
    ModelFileError
        The file is not a workbench model this workbench reads (the message says why).
    """
    target = as_path(path)
    fs, where = _split(target)
    if fs is None:
        local = Path(where).expanduser()
        if local.is_dir():
            raise ValueError(f"{target!r} is a folder, not a workbench model file")
        try:
            f: IO[bytes] = open(local, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no model at {target!r}: check the path (wb.load_model(path))"
            ) from None
    else:
        if fs.isdir(where):
            raise ValueError(f"{target!r} is a folder, not a workbench model file")
        try:
            f = fs.open(where, "rb")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no model at {target!r}: check the path (wb.load_model(path))"
            ) from None
    with f:
        return unpack(f, target)


def unpack(data: bytes | IO[bytes], source: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of :func:`pack`'s archive, checked (see the module's docstring).

    Parameters
    ----------
    data
        The archive's bytes, or a seekable binary file holding it.
    source
        Where it came from, for messages.

    Raises
    ------
    ModelFileError
        It is not a workbench model, is damaged or altered, or is of a format not read here.
    """
    f = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    head = f.read(4)
    f.seek(0)

    def bad(why: str) -> ModelFileError:
        return ModelFileError(f"{source!r}: {why}")

    try:
        z = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        if head != b"PK\x03\x04":
            raise ModelFileError(
                f"{source!r} is not a workbench model (not a zip archive); save one with "
                "model.save(path), or load an XGBoost file with xgboost.Booster(model_file=...)"
            ) from None
        raise bad(f"the file is damaged: not a readable zip archive ({e})") from None
    with z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise bad(f"the archive holds {twice} more than once; a model file holds each once")
        if MANIFEST not in names:
            raise ModelFileError(
                f"{source!r} is not a workbench model (no {MANIFEST} inside); save one with "
                "model.save(path)"
            )
        manifest = _manifest(_member(z, z.getinfo(MANIFEST), MAX_MANIFEST, bad), bad)
        listed = _listed(manifest, bad)
        extra = sorted(set(names) - {MANIFEST} - set(listed))
        if extra:
            raise bad(
                f"the archive holds member(s) {extra} that its {MANIFEST} does not list; a "
                "model file holds only the manifest and the estimator (altered?)"
            )
        missing = sorted(set(listed) - set(names))
        if missing:
            raise bad(f"member(s) {missing} listed in {MANIFEST} are missing (damaged?)")
        files = {}
        for name, (size, digest) in listed.items():
            content = _member(z, z.getinfo(name), MAX_MEMBER, bad, size)
            if hashlib.sha256(content).hexdigest() != digest:
                raise bad(
                    f"member {name!r} does not match the SHA-256 in {MANIFEST} (damaged or "
                    "altered); save the model again"
                )
            files[name] = content
    return manifest, files


def _member(
    z: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, bad: Any, size: int | None = None
) -> bytes:
    """A member's bytes, refused above ``cap`` or the expansion limit, declared or read.

    ``size`` is what the manifest says it holds: the archive must declare the same.
    """
    name = info.filename
    if info.flag_bits & 0x1:
        raise bad(f"member {name!r} is encrypted; a model file is not")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise bad(f"member {name!r} uses compression method {info.compress_type}, not deflate")
    limit = min(cap, max(SMALL_MEMBER, MAX_EXPANSION * info.compress_size))
    if info.file_size > limit:
        raise bad(_too_big(name, f"would expand to {info.file_size:,} bytes", info, cap, limit))
    if size is not None and info.file_size != size:
        raise bad(
            f"member {name!r} holds {info.file_size:,} bytes, but {MANIFEST} says {size:,} "
            "(damaged or altered)"
        )
    out = bytearray()
    try:
        with z.open(info) as m:
            while chunk := m.read(min(_CHUNK, limit + 1 - len(out))):
                out += chunk
                if len(out) > limit:
                    raise bad(_too_big(name, f"expands beyond {limit:,} bytes", info, cap, limit))
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError) as e:
        raise bad(f"the file is damaged: member {name!r} cannot be read ({e})") from None
    return bytes(out)


def _too_big(name: str, what: str, info: zipfile.ZipInfo, cap: int, limit: int) -> str:
    return (
        f"member {name!r} {what}; the cap is {limit:,} bytes (at most {cap:,}, and "
        f"{MAX_EXPANSION} times its {info.compress_size:,} compressed bytes): refused unread "
        "(a zip bomb?)"
    )


def _manifest(raw: bytes, bad: Any) -> dict[str, Any]:
    """The manifest, parsed; its format and depth checked."""
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad(f"{MANIFEST} is not UTF-8 text (damaged?)") from None
    except json.JSONDecodeError as e:
        raise bad(f"{MANIFEST} is not valid JSON ({e}) (damaged?)") from None
    except RecursionError:
        raise bad(f"{MANIFEST} is nested too deeply (more than {MAX_DEPTH} levels)") from None
    if not isinstance(manifest, dict):
        raise bad(f"{MANIFEST} holds a JSON {type(manifest).__name__}, not an object")
    if _depth(manifest) > MAX_DEPTH:
        raise bad(f"{MANIFEST} is nested too deeply (more than {MAX_DEPTH} levels)")
    fmt = manifest.get("format")
    match = _FORMAT.fullmatch(fmt) if isinstance(fmt, str) else None
    reads = ", ".join(f"workbench-model/{v}" for v in READS)
    if match is None:
        raise bad(
            f"not a workbench model file: its format is {fmt!r}; this workbench reads {reads}"
        )
    if int(match[1]) not in READS:
        raise bad(
            f"its format is {fmt!r}, which this workbench does not read (it reads {reads}); "
            "load it with the workbench version that saved it"
        )
    return manifest


def _depth(value: Any) -> int:
    """How deeply JSON ``value`` nests (without recursion), stopping past :data:`MAX_DEPTH`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            break
        children = v.values() if isinstance(v, dict) else v
        stack.extend((x, d + 1) for x in children if isinstance(x, dict | list))
    return deepest


def _listed(manifest: dict[str, Any], bad: Any) -> dict[str, tuple[int, str]]:
    """The manifest's ``files``: name -> (bytes, sha256)."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise bad(
            f"{MANIFEST} lists no files with their SHA-256 ('files'); it was written before "
            "model files carried them, or altered: save the model again with this workbench"
        )
    out = {}
    for name, entry in files.items():
        size = entry.get("bytes") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if (
            name == MANIFEST
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(digest, str)
            or not _SHA256.fullmatch(digest)
        ):
            raise bad(
                f"{MANIFEST}'s files[{name!r}] is {entry!r:.120}; each entry needs 'bytes' (an "
                "integer) and 'sha256' (64 hex digits)"
            )
        out[name] = (size, digest)
    return out
