"""Stamps: what the workbench wrote in a folder, and whether it may write there again.

A folder the workbench writes gets ``_workbench.json`` (the *stamp*: its format, who wrote
it, what, the list of data files, ``files``, and the names of files it wrote that are not (or
no longer) data, ``leftover``) and ``_SUCCESS`` once every file is written. A folder may be
(re)written only when it is missing, empty, stamped and holding nothing but the stamp,
``_SUCCESS``, ``_workbench_demo.json`` and the files the stamp names, or a folder an earlier
version wrote (only ``_SUCCESS``, ``part.00000.parquet`` onwards and optionally
``_workbench_demo.json``). A file, any other folder, or a stamped one holding anything else is
refused with FileExistsError naming the path and the first foreign entry, before anything is
written or removed. A stamp names only files that follow its format's rule, so an edited stamp
cannot make the workbench remove a file it did not write.

:func:`read_stamp` and :func:`data_files` read a complete folder's stamp; the replacement of a
folder is in :mod:`workbench.data.folders`.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from workbench._redact import shown
from workbench.errors import DataNotFoundError

__all__ = ["DEMO_MARKER", "DONE", "FORMATS", "GENERATED", "STAMP", "data_files", "read_stamp"]

#: The stamp that marks a folder as written by the workbench: the only kind it may replace.
STAMP = "_workbench.json"
#: The marker written last: the folder holds every file its stamp lists.
DONE = "_SUCCESS"
#: The marker an earlier version of ``workbench demo`` wrote beside the data.
DEMO_MARKER = "_workbench_demo.json"
#: The stamp format of the data ``generate`` writes.
GENERATED = "workbench-generated/1"
#: Each stamp format the workbench writes, with the rule every file name it lists follows
#: (a plain name inside the folder: a stamp never lists anything outside it).
#: ``part.00000.parquet`` on a local disk, ``part.<generation>.00000.parquet`` on object stores.
FORMATS: dict[str, re.Pattern[str]] = {
    GENERATED: re.compile(r"part\.(?:[0-9a-f]{8}\.)?\d{5}\.parquet")
}

_LEGACY_PART = re.compile(r"part\.\d{5}\.parquet")


def _resolve(path: str | os.PathLike[str]) -> tuple[fsspec.AbstractFileSystem, str, str]:
    """The filesystem of ``path``, its root without a trailing ``/``, and ``path`` to show.

    The third is for messages and log lines only: ``path`` as given, with a URL password or
    signature masked (:func:`workbench._redact.shown`).
    """
    url = os.fspath(path)
    fs, root = url_to_fs(url)
    return fs, root.rstrip("/"), shown(url)


def _valid(stamp: Any) -> bool:
    """Whether ``stamp`` is one the workbench writes: a known format and files it allows."""
    if not isinstance(stamp, dict) or not isinstance(stamp.get("files"), list):
        return False
    leftover = stamp.get("leftover", [])
    fmt = stamp.get("format")
    rule = FORMATS.get(fmt) if isinstance(fmt, str) else None
    return (
        rule is not None
        and isinstance(leftover, list)
        and all(isinstance(n, str) and rule.fullmatch(n) for n in [*stamp["files"], *leftover])
    )


def _put_stamp(fs: fsspec.AbstractFileSystem, folder: str, stamp: dict[str, Any]) -> None:
    """Write the stamp of ``folder`` in one put (the commit on an object store)."""
    fs.pipe_file(f"{folder}/{STAMP}", json.dumps(stamp, indent=1).encode())


def _write_markers(
    fs: fsspec.AbstractFileSystem, folder: str, stamp: dict[str, Any], *, done: bool
) -> None:
    _put_stamp(fs, folder, stamp)
    if done:
        fs.pipe_file(f"{folder}/{DONE}", b"")


def _legacy(entries: dict[str, Any]) -> dict[str, Any] | None:
    """The stamp of a folder an earlier version wrote, or None if ``entries`` are not one.

    That version wrote ``part.00000.parquet`` onwards and ``_SUCCESS`` (and the demo
    ``_workbench_demo.json``) and no stamp; a folder holding exactly these, all files, is
    taken as its own, listing the parts it holds.
    """
    parts = sorted(n for n in entries if _LEGACY_PART.fullmatch(n))
    if (
        DONE not in entries
        or not parts
        or parts != [f"part.{i:05d}.parquet" for i in range(len(parts))]
        or set(entries) - {DONE, DEMO_MARKER, *parts}
        or any(kind != "file" for kind in entries.values())
    ):
        return None
    return {"format": GENERATED, "written_by": "an earlier workbench version", "files": parts}


def _parse_stamp(fs: fsspec.AbstractFileSystem, folder: str, url: str) -> dict[str, Any]:
    """The stamp of ``folder``; FileExistsError if it is not one the workbench wrote."""
    try:
        with fs.open(f"{folder}/{STAMP}", "rb") as f:
            stamp = json.loads(f.read(1 << 20))
        ok = _valid(stamp)
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise FileExistsError(
            f"{url}/{STAMP} is not a stamp the workbench wrote, so {url} is not replaced; "
            "pass another path, or remove the folder yourself"
        )
    return dict(stamp)


def _owned(fs: fsspec.AbstractFileSystem, root: str, url: str) -> dict[str, Any] | None:
    """Check that ``root`` may be written: missing, an empty folder, or one the workbench wrote.

    Returns
    -------
    dict or None
        The stamp of a folder the workbench wrote (for a folder an earlier version wrote, one
        made up from its files); None for a missing or empty folder.

    Raises
    ------
    FileExistsError
        ``root`` is a file, a folder without the stamp, or a stamped folder holding an entry
        the stamp does not name (the first such entry is named).
    """
    if not fs.exists(root):
        return None
    if not fs.isdir(root):
        raise FileExistsError(
            f"{url} is a file; the workbench writes a folder there and never replaces a file: "
            "pass another path"
        )
    entries = {
        posixpath.basename(e["name"].rstrip("/")): e.get("type") for e in fs.ls(root, detail=True)
    }
    if not entries:
        return None
    if STAMP not in entries:
        legacy = _legacy(entries)
        if legacy is not None:
            return legacy
        raise FileExistsError(
            f"{url} holds {_first(entries, sorted(entries))} and was not written by the "
            f"workbench (it has no {STAMP}); the workbench replaces only folders it wrote "
            "itself: pass another path, or remove the folder yourself"
        )
    stamp = _parse_stamp(fs, root, url)
    ours = {STAMP, DONE, DEMO_MARKER, *stamp["files"], *stamp.get("leftover", [])}
    foreign = sorted(n for n, kind in entries.items() if n not in ours or kind != "file")
    if foreign:
        raise FileExistsError(
            f"{url} holds {_first(entries, foreign)}, which the workbench did not write, so "
            f"the folder is not replaced: pass another path, or move {foreign[0]!r} out"
        )
    return stamp


def _first(entries: dict[str, Any], names: list[str]) -> str:
    """``the file 'x.csv' (and 2 more)``: the first of ``names`` and how many follow."""
    what = "folder" if entries[names[0]] == "directory" else "file"
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    return f"the {what} {names[0]!r}{more}"


def _complete(fs: fsspec.AbstractFileSystem, folder: str) -> bool:
    """Whether ``folder`` is whole: a valid stamp listing files, each of them, and ``_SUCCESS``."""
    try:
        stamp = _parse_stamp(fs, folder, folder)
    except FileExistsError:
        return False
    names = stamp["files"]
    return bool(names) and all(fs.isfile(f"{folder}/{n}") for n in [DONE, *names])


def data_files(fs: fsspec.AbstractFileSystem, folder: str) -> list[str] | None:
    """The data files of a folder the workbench wrote, as its stamp lists them.

    Parameters
    ----------
    fs, folder
        The filesystem and the folder's path on it.

    Returns
    -------
    list of str or None
        The paths of the files the stamp commits as data, in order; None when ``folder``
        holds no stamp the workbench wrote (its files are then found as any folder's).

    Raises
    ------
    DataNotFoundError
        The stamp names no data yet (an interrupted first write) or a file it lists is
        missing; the message names the folder.
    """
    try:
        with fs.open(f"{folder}/{STAMP}", "rb") as f:
            stamp = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return None
    if not _valid(stamp):
        return None
    if not _complete(fs, folder):
        raise DataNotFoundError(
            f"{shown(fs.unstrip_protocol(folder))} is incomplete: the workbench's write of it was "
            "interrupted before it was committed; generate it again (overwrite=True)"
        )
    return [f"{folder}/{n}" for n in stamp["files"]]


def read_stamp(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The stamp of a complete folder the workbench wrote, or None.

    Parameters
    ----------
    path
        Folder or fsspec URL.

    Returns
    -------
    dict or None
        The stamp; None when ``path`` is missing, is not a folder the workbench stamped, or
        is incomplete (no ``_SUCCESS``, no data committed yet, or a listed file is missing).
    """
    fs, root, url = _resolve(path)
    if not fs.isdir(root) or not _complete(fs, root):
        return None
    return _parse_stamp(fs, root, url)
