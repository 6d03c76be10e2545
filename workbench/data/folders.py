"""Folders the workbench owns: a stamp says what it wrote, and only that is ever replaced.

A folder the workbench writes gets ``_workbench.json`` (the *stamp*: its format, who wrote
it, what, and the list of files written) and, once every file is written, ``_SUCCESS``. A
folder may be (re)written only when it is missing, empty, or stamped and holding nothing but
the stamp, ``_SUCCESS`` and the files the stamp lists. A file, an unstamped folder, or a
stamped one holding anything else is refused with FileExistsError naming the path and the
first foreign entry, before anything is written or removed.

:func:`replace_folder` writes such a folder so that a crash at any step loses nothing:

- On a local disk the files land in a temporary sibling ``PATH.tmp-XXXXXXXX``. When all are
  written, an existing ``PATH`` is renamed aside to ``PATH.old-XXXXXXXX``, the new folder is
  renamed to ``PATH``, and only then are the old folder's own files removed. A failure while
  writing removes only the temporary folder. A crash between the two renames leaves the old
  data whole in ``PATH.old-XXXXXXXX``; :func:`check_replaceable` and :func:`recover` rename
  it back, and once ``PATH`` is whole they remove the workbench's own files from ``.old-``
  folders a crash left. ``.tmp-`` folders are never removed.
- Object stores (any fsspec filesystem but the local one) cannot rename a folder, so the files
  are written straight to ``PATH``: the stamp first, then the data, then ``_SUCCESS`` as the
  commit marker (each object put is atomic). The old folder's own files are removed first
  (``_SUCCESS`` first), so a crash leaves an incomplete folder that still carries the stamp.

:func:`_step` marks the point between two steps; the tests stop the process there.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from workbench._redact import shown

logger = logging.getLogger("workbench")

#: The stamp that marks a folder as written by the workbench: the only kind it may replace.
STAMP = "_workbench.json"
#: The marker written last: the folder holds every file its stamp lists.
DONE = "_SUCCESS"
#: The stamp format of the data ``generate`` writes.
GENERATED = "workbench-generated/1"
#: Each stamp format the workbench writes, with the rule every file name it lists follows
#: (a plain name inside the folder: a stamp never lists anything outside it).
FORMATS: dict[str, re.Pattern[str]] = {GENERATED: re.compile(r"part\.\d{5}\.parquet")}

_ASIDE = re.compile(r"\.old-[0-9a-f]{8}")
T = TypeVar("T")


def _step(name: str, path: str) -> None:
    """Mark the point between two steps of writing or replacing ``path`` (logged at debug).

    Each step leaves the folder in a state the module docstring describes; the tests stop the
    process here to check that a crash at any step loses nothing.
    """
    logger.debug("folder: %s: %s", name, path)


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
    fmt = stamp.get("format")
    rule = FORMATS.get(fmt) if isinstance(fmt, str) else None
    return rule is not None and all(
        isinstance(n, str) and rule.fullmatch(n) for n in stamp["files"]
    )


def _write_markers(
    fs: fsspec.AbstractFileSystem, folder: str, stamp: dict[str, Any], *, done: bool
) -> None:
    with fs.open(f"{folder}/{STAMP}", "wb") as f:
        f.write(json.dumps(stamp, indent=1).encode())
    if done:
        with fs.open(f"{folder}/{DONE}", "wb"):
            pass


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
        The stamp of a folder the workbench wrote; None for a missing or empty folder.

    Raises
    ------
    FileExistsError
        ``root`` is a file, a folder without the stamp, or a stamped folder holding an entry
        the stamp does not list (the first such entry is named).
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
        raise FileExistsError(
            f"{url} holds {_first(entries, sorted(entries))} and was not written by the "
            f"workbench (it has no {STAMP}); the workbench replaces only folders it wrote "
            "itself: pass another path, or remove the folder yourself"
        )
    stamp = _parse_stamp(fs, root, url)
    ours = {STAMP, DONE, *stamp["files"]}
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


def _remove_owned(fs: fsspec.AbstractFileSystem, folder: str, stamp: dict[str, Any] | None) -> None:
    """Remove the workbench's own files from ``folder``, then the folder if it is empty.

    ``_SUCCESS`` goes first (a half-removed folder is never taken as complete), the stamp
    last (a half-removed folder is still known as the workbench's). Nothing else is removed.
    """
    names = [DONE, *(stamp["files"] if stamp else []), STAMP]
    for i, n in enumerate(names):
        if fs.exists(f"{folder}/{n}"):
            fs.rm_file(f"{folder}/{n}")
        if i == 1:
            _step("removing", folder)
    if isinstance(fs, LocalFileSystem):
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("left %s: it holds files the workbench did not write", folder)


def _complete(fs: fsspec.AbstractFileSystem, folder: str) -> bool:
    """Whether ``folder`` is whole: a valid stamp, every file it lists, and ``_SUCCESS``."""
    try:
        stamp = _parse_stamp(fs, folder, folder)
    except FileExistsError:
        return False
    return all(fs.isfile(f"{folder}/{n}") for n in [DONE, *stamp["files"]])


def _recover(fs: fsspec.AbstractFileSystem, root: str, url: str) -> None:
    """Settle what an interrupted replacement of ``root`` left in ``ROOT.old-*`` siblings.

    If ``root`` is missing, the one complete old folder is renamed back to ``root`` (two or
    more are refused, named). If ``root`` is complete, the workbench's own files in the old
    folders are removed (a folder holding anything else is left, with a warning).
    """
    parent, base = posixpath.split(root)
    if not parent or not fs.isdir(parent):
        return
    names = {posixpath.basename(p.rstrip("/")): p for p in fs.ls(parent, detail=False)}
    aside = sorted(
        p
        for n, p in names.items()
        if n.startswith(base) and _ASIDE.fullmatch(n[len(base) :]) and fs.isdir(p)
    )
    if not aside:
        return
    if not fs.exists(root):
        whole = [p for p in aside if _complete(fs, p)]
        if len(whole) > 1:
            raise FileExistsError(
                f"{url} is missing and {len(whole)} earlier versions of it were left by "
                f"interrupted replacements: {whole}; rename the one to keep to {url}"
            )
        if whole:
            os.rename(whole[0], root)
            logger.warning(
                "restored %s from %s, where an interrupted replacement had moved it", url, whole[0]
            )
        return
    if not _complete(fs, root):
        return
    for p in aside:
        try:
            stamp = _owned(fs, p, p)
        except FileExistsError as err:
            logger.warning("left %s, which an interrupted replacement moved aside: %s", p, err)
            continue
        _remove_owned(fs, p, stamp)
        logger.info("removed %s, the data an interrupted replacement had moved aside", p)


def _replace_local(
    fs: fsspec.AbstractFileSystem,
    root: str,
    url: str,
    stamp: dict[str, Any],
    write: Callable[[str], T],
) -> T:
    """Write into a temporary sibling, then move the old folder aside, rename, remove the old."""
    token = uuid.uuid4().hex[:8]
    tmp = f"{root}.tmp-{token}"
    aside = f"{root}.old-{token}"
    fs.makedirs(tmp, exist_ok=False)
    placed = False
    try:
        result = write(fs.unstrip_protocol(tmp))
        _write_markers(fs, tmp, stamp, done=True)
        _step("written", tmp)
        old = _owned(fs, root, url)  # again: something may have been added while writing
        if fs.exists(root):
            os.rename(root, aside)
            _step("moved aside", aside)
        os.rename(tmp, root)
        placed = True
        _step("moved into place", root)
    except BaseException:
        if not placed:
            if os.path.isdir(aside):
                if os.path.lexists(root):  # something else took ``root`` meanwhile
                    logger.warning("the data that was at %s is now at %s", url, aside)
                else:
                    os.rename(aside, root)
            fs.rm(tmp, recursive=True)
        raise
    if os.path.isdir(aside):
        try:
            _remove_owned(fs, aside, old)
        except OSError as err:
            logger.warning("could not remove the replaced data in %s: %s", aside, err)
    return result


def _replace_object_store(
    fs: fsspec.AbstractFileSystem,
    root: str,
    old: dict[str, Any] | None,
    stamp: dict[str, Any],
    write: Callable[[str], T],
) -> T:
    """Write straight to ``root``: the stamp first, the files, ``_SUCCESS`` last."""
    if old is not None:
        _remove_owned(fs, root, old)
        _step("old removed", root)
    fs.makedirs(root, exist_ok=True)
    _write_markers(fs, root, stamp, done=False)
    _step("stamped", root)
    try:
        result = write(fs.unstrip_protocol(root))
        _step("written", root)
        with fs.open(f"{root}/{DONE}", "wb"):
            pass
    except BaseException:
        try:
            _remove_owned(fs, root, stamp)
        except OSError as err:  # pragma: no cover - the store failed as well
            logger.warning("could not remove the partial data in %s: %s", root, err)
        raise
    return result


def read_stamp(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The stamp of a complete folder the workbench wrote, or None.

    Parameters
    ----------
    path
        Folder or fsspec URL.

    Returns
    -------
    dict or None
        The stamp; None when ``path`` is missing, is not a folder the workbench wrote, or is
        incomplete (no ``_SUCCESS``, or a listed file is missing).
    """
    fs, root, url = _resolve(path)
    if not fs.isdir(root) or not _complete(fs, root):
        return None
    return _parse_stamp(fs, root, url)


def recover(path: str | os.PathLike[str]) -> None:
    """Settle what an interrupted local replacement of ``path`` left beside it.

    A missing ``path`` gets back the whole old folder a crash left in ``PATH.old-*``; once
    ``path`` is whole, the workbench's own files in such folders are removed. Nothing is done
    on object stores, where nothing is moved aside.

    Parameters
    ----------
    path
        Folder or fsspec URL.

    Raises
    ------
    FileExistsError
        ``path`` is missing and two or more whole old folders wait beside it (they are named).
    """
    fs, root, url = _resolve(path)
    if isinstance(fs, LocalFileSystem):
        _recover(fs, root, url)


def check_replaceable(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Check, before any work, that the workbench may (re)write the folder ``path``.

    First :func:`recover` settles what an interrupted replacement left.

    Parameters
    ----------
    path
        Folder or fsspec URL.

    Returns
    -------
    dict or None
        The stamp of the folder the workbench wrote there (complete or not); None if ``path``
        is missing or an empty folder.

    Raises
    ------
    FileExistsError
        ``path`` is a file, a folder without the workbench's stamp, or a stamped folder
        holding an entry the stamp does not list; the message names the path and the entry.
    """
    fs, root, url = _resolve(path)
    if isinstance(fs, LocalFileSystem):
        _recover(fs, root, url)
    return _owned(fs, root, url)


def replace_folder(
    path: str | os.PathLike[str],
    stamp: dict[str, Any],
    write: Callable[[str], T],
    *,
    old: dict[str, Any] | None,
) -> T:
    """Write the folder ``path`` through ``write``, replacing only what the workbench wrote.

    Parameters
    ----------
    path
        Folder or fsspec URL; :func:`check_replaceable` must have accepted it.
    stamp
        The stamp to write: ``format`` (a key of :data:`FORMATS`), ``files`` (the names
        ``write`` writes, following the format's rule) and whatever says what was written.
    write
        Called once with the URL of the folder to write the listed files into (a temporary
        sibling on a local disk, ``path`` itself on an object store); its result is returned.
    old
        What :func:`check_replaceable` returned for ``path``: the files an object store
        removes first. A local replacement checks the folder again after writing.

    Returns
    -------
    object
        What ``write`` returned.

    Raises
    ------
    ValueError
        ``stamp`` is not one the workbench may write (unknown format, or a file name its
        format does not allow).
    FileExistsError
        On a local disk: ``path`` came to hold something the workbench did not write while
        ``write`` ran. The new files are removed and the folder is left as it was.

    Notes
    -----
    The order of the steps, and what a crash at each leaves, is in the module docstring. A
    failure in ``write`` removes only what was written for this call.
    """
    if not _valid(stamp):
        raise ValueError(
            f"stamp={stamp!r} is not one the workbench writes: it needs a 'format' of "
            f"{sorted(FORMATS)} and 'files' named as that format allows"
        )
    fs, root, url = _resolve(path)
    if isinstance(fs, LocalFileSystem):
        return _replace_local(fs, root, url, stamp, write)
    return _replace_object_store(fs, root, old, stamp, write)
