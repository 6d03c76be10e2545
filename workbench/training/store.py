"""Where model files live: atomic writes with an overwrite rule, and opening them to read.

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
:func:`read` opens a local path only if it is a regular file (a named pipe or a device would
block or never end), then hands it to :func:`workbench.training.archive.unpack`, which checks
everything in it (caps on sizes and JSON values, format, SHA-256 of each member).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from workbench.training import archive

#: fsspec protocols whose single put is atomic: written straight to the key.
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "memory"})

IfExists = Literal["replace", "model", "refuse"]
_IF_EXISTS = ("replace", "model", "refuse")


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
        model = f is not None and archive.is_model(f)
    if not model:
        raise FileExistsError(
            f"{target!r} exists and is not a workbench model file (or is a damaged one), so it "
            "is not replaced: move it away or choose another path"
        )


@contextlib.contextmanager
def _open(fs: Any, where: str) -> Iterator[IO[bytes] | None]:
    """The file opened for reading, or ``None`` if it cannot be or is not a regular file."""
    try:
        f = _open_regular(Path(where).expanduser()) if fs is None else fs.open(where, "rb")
    except (OSError, ValueError):
        yield None
        return
    with f:
        yield f


def _kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is, if not a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _open_regular(local: Path, target: str = "") -> IO[bytes]:
    """``local`` opened for reading, if it is a regular file (``target``: its name in messages).

    A named pipe would block until a writer came and a device might never end, so anything
    else is refused before it is opened (``stat``) and again once open (``fstat``), in case it
    was swapped in between; the open itself does not block (``O_NONBLOCK``).

    Raises
    ------
    ValueError
        ``local`` is not a regular file (the message says what it is).
    OSError
        It cannot be opened (``FileNotFoundError``, ``PermissionError``...).
    """
    kind = _kind(os.stat(local).st_mode)
    if kind is None:
        fd = os.open(local, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            kind = _kind(os.fstat(fd).st_mode)
            if kind is None:
                os.set_blocking(fd, True)
                return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise ValueError(f"{target or str(local)!r} is {kind}, not a workbench model file")


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


# --- reading -------------------------------------------------------------------------------------
def read(path: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of the model file at ``path`` (a local path or fsspec URL).

    The archive is checked by :func:`workbench.training.archive.unpack`.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    ValueError
        ``path`` is a folder, a named pipe, a device: not a regular file.
    ModelFileError
        The file is not a workbench model this workbench reads (the message says why).
    """
    target = as_path(path)
    fs, where = _split(target)
    try:
        if fs is None:
            f = _open_regular(Path(where).expanduser(), target)
        else:
            if fs.isdir(where):
                raise ValueError(f"{target!r} is a folder, not a workbench model file")
            f = fs.open(where, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no model at {target!r}: check the path (wb.load_model(path))"
        ) from None
    with f:
        return archive.unpack(f, target)
