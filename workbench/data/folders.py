"""Folders the workbench owns: a stamp says what it wrote, and only that is ever replaced.

The stamp and the rules for which folders the workbench owns are in
:mod:`workbench.data.stamps`.

:func:`replace_folder` writes such a folder so that a crash at any step loses nothing:

- On a local disk the files land in a temporary sibling ``PATH.tmp-XXXXXXXX``. When all are
  written, an existing ``PATH`` is renamed aside to ``PATH.old-XXXXXXXX``, the new folder is
  renamed to ``PATH``, and only then are the old folder's own files removed. A failure while
  writing removes only the temporary folder. A crash between the two renames leaves the old
  data whole in ``PATH.old-XXXXXXXX``; :func:`check_replaceable` and :func:`recover` rename
  it back, and once ``PATH`` is whole they remove the workbench's own files from the
  complete ``.old-`` and ``.tmp-`` folders a crash left (and the folders, once empty).
- Object stores (any fsspec filesystem but the local one) cannot rename a folder, so the new
  files are written into ``PATH`` beside the old ones under new names (a generation in each
  name, see :func:`generation`), and the stamp, one object put and so atomic, is the commit:
  first it is put again naming the new files as ``leftover`` (the old data stays the data),
  then the files are written, then ``_SUCCESS``, then the stamp is put listing the new files
  as the data and the old ones as ``leftover``; only then are the old files removed, and the
  stamp is put a last time without them. Readers (:mod:`workbench.data.sources`) take only
  the files a stamp lists as data, so a crash at any step leaves the old or the new data whole
  and loadable. A failure while writing removes the new files it wrote and keeps the stamp,
  which still names them, so a file a cancelled task writes later is still the workbench's.

:func:`_step` marks the point between two steps; the tests stop the process there.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem

from workbench.data.stamps import (
    DEMO_MARKER,
    DONE,
    FORMATS,
    GENERATED,
    STAMP,
    _complete,
    _owned,
    _put_stamp,
    _resolve,
    _valid,
    _write_markers,
    data_files,
    read_stamp,
)

__all__ = [
    "DEMO_MARKER",
    "DONE",
    "FORMATS",
    "GENERATED",
    "STAMP",
    "check_replaceable",
    "data_files",
    "generation",
    "read_stamp",
    "recover",
    "replace_folder",
]

logger = logging.getLogger(__name__)

_SIBLING = re.compile(r"\.(old|tmp)-[0-9a-f]{8}")
T = TypeVar("T")


def _step(name: str, path: str) -> None:
    """Mark the point between two steps of writing or replacing ``path`` (logged at debug).

    Each step leaves the folder in a state the module docstring describes; the tests stop the
    process here to check that a crash at any step loses nothing.
    """
    logger.debug("folder: %s: %s", name, path)


def _remove_owned(fs: fsspec.AbstractFileSystem, folder: str, stamp: dict[str, Any] | None) -> None:
    """Remove the workbench's own files from ``folder``, then the folder if it is empty.

    ``_SUCCESS`` goes first (a half-removed folder is never taken as complete), the stamp
    last (a half-removed folder is still known as the workbench's). Nothing else is removed.
    """
    named = [*stamp["files"], *stamp.get("leftover", [])] if stamp else []
    _remove(fs, folder, [DONE, *named, DEMO_MARKER, STAMP], "removing")
    if isinstance(fs, LocalFileSystem):
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("left %s: it holds files the workbench did not write", folder)


def _remove(fs: fsspec.AbstractFileSystem, folder: str, names: list[str], step: str) -> None:
    """Remove each of ``names`` that ``folder`` holds; ``_step(step)`` after the second."""
    for i, n in enumerate(names):
        if fs.exists(f"{folder}/{n}"):
            fs.rm_file(f"{folder}/{n}")
        if i == 1:
            _step(step, folder)


def _recover(fs: fsspec.AbstractFileSystem, root: str, url: str) -> None:
    """Settle what an interrupted replacement of ``root`` left in ``ROOT.old-*``/``.tmp-*``.

    If ``root`` is missing, the one complete old folder is renamed back to ``root`` (two or
    more are refused, named). If ``root`` is complete, the workbench's own files in the old
    folders and in complete temporary ones are removed, then the folders if empty (a folder
    holding anything else is left, with a warning; an incomplete temporary folder, which a
    write in progress may be filling, is left as it is).
    """
    parent, base = posixpath.split(root)
    if not parent or not fs.isdir(parent):
        return
    names = {posixpath.basename(p.rstrip("/")): p for p in fs.ls(parent, detail=False)}
    found = {
        p: m.group(1)
        for n, p in sorted(names.items())
        if n.startswith(base) and (m := _SIBLING.fullmatch(n[len(base) :])) and fs.isdir(p)
    }
    if not found:
        return
    if not fs.exists(root):
        whole = [p for p, kind in found.items() if kind == "old" and _complete(fs, p)]
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
    for p, kind in found.items():
        if kind == "tmp" and not _complete(fs, p):
            continue
        try:
            stamp = _owned(fs, p, p)
        except FileExistsError as err:
            logger.warning("left %s, which an interrupted replacement left: %s", p, err)
            continue
        _remove_owned(fs, p, stamp)
        what = "moved aside" if kind == "old" else "written"
        logger.info("removed %s, the data an interrupted replacement had %s", p, what)


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
    """Write the new files beside the old ones; the stamp's put commits them; remove the old."""
    new = list(stamp["files"])
    base = old if old is not None else {**stamp, "files": []}
    stale = [*base["files"], *base.get("leftover", [])]
    if set(new) & set(stale):
        raise ValueError(
            f"the new files {sorted(set(new) & set(stale))} have the names of files already in "
            f"{root}: on an object store each write needs new names (see folders.generation)"
        )
    fs.makedirs(root, exist_ok=True)
    # the old data stays the data; the new names are the workbench's before any is written
    _put_stamp(fs, root, {**base, "leftover": [*base.get("leftover", []), *new]})
    _step("announced", root)
    try:
        result = write(fs.unstrip_protocol(root))
    except BaseException:
        # only the new files go: the old data is still committed, and the stamp still names
        # the new files, so one a cancelled task writes later is still the workbench's
        try:
            _remove(fs, root, new, "cleaning")
        except OSError as err:  # pragma: no cover - the store failed as well
            logger.warning("could not remove the partial data in %s: %s", root, err)
        raise
    _step("written", root)
    if not fs.isfile(f"{root}/{DONE}"):
        fs.pipe_file(f"{root}/{DONE}", b"")
    _put_stamp(fs, root, {**stamp, "leftover": stale})  # the commit
    _step("committed", root)
    _remove(fs, root, [*stale, DEMO_MARKER], "removing")
    _put_stamp(fs, root, stamp)
    return result


def generation(path: str | os.PathLike[str]) -> str:
    """What to put in the names of files written to ``path`` so that they are new names.

    On a local disk the files are written into a new temporary folder, so nothing (``""``);
    on an object store they are written beside the old ones, so a new random generation
    followed by a dot (``"3fa2b1c0."``), which the format's file-name rule allows.
    """
    fs, _, _ = _resolve(path)
    return "" if isinstance(fs, LocalFileSystem) else f"{uuid.uuid4().hex[:8]}."


def recover(path: str | os.PathLike[str]) -> None:
    """Settle what an interrupted local replacement of ``path`` left beside it.

    A missing ``path`` gets back the whole old folder a crash left in ``PATH.old-*``; once
    ``path`` is whole, the workbench's own files in such folders, and in complete
    ``PATH.tmp-*`` folders, are removed. Nothing is done on object stores, where nothing is
    moved aside (the next replacement removes the files a crash left there).

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
        sibling on a local disk, ``path`` itself on an object store, where the names must
        differ from those already there: put :func:`generation` in them); its result is
        returned.
    old
        What :func:`check_replaceable` returned for ``path``: the files an object store
        removes once the new ones are committed. A local replacement checks the folder
        again after writing.

    Returns
    -------
    object
        What ``write`` returned.

    Raises
    ------
    ValueError
        ``stamp`` is not one the workbench may write (unknown format, or a file name its
        format does not allow), or on an object store names a file ``path`` already holds.
    FileExistsError
        On a local disk: ``path`` came to hold something the workbench did not write while
        ``write`` ran. The new files are removed and the folder is left as it was.

    Notes
    -----
    The order of the steps, and what a crash at each leaves, is in the module docstring. A
    failure in ``write`` removes only what was written for this call; the old data stays.
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
