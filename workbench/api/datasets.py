"""Dataset operations of the command line: the catalog's folders and entries, generating data.

Loaded on first use (see :mod:`workbench.api`): they import the data stack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from workbench.clusters.start import start_cluster
from workbench.data.catalog import (
    CatalogEntry,
    ResolvedEntry,
    builtin_dir,
    get_entry,
    resolve_entry,
    user_dir,
)
from workbench.data.dataset import Dataset
from workbench.data.generate import generate
from workbench.data.sources import inspect_source

logger = logging.getLogger(__name__)

__all__ = ["EntryView", "catalog_folders", "describe_entry", "generate_on", "inspect_source"]


def catalog_folders() -> tuple[Path, Path]:
    """The folders of the built-in catalog entries and of the user's own."""
    return builtin_dir(), user_dir()


@dataclass(frozen=True)
class EntryView:
    """A catalog entry and where its data is, as ``workbench data info`` shows it.

    Attributes
    ----------
    entry
        The catalog entry.
    where
        Its resolved folder (a generator's cache folder), target, task and format.
    generated
        For a generator entry, whether its folder exists yet; ``True`` for a ``path:`` entry.
    """

    entry: CatalogEntry
    where: ResolvedEntry
    generated: bool


def describe_entry(source: str) -> EntryView | None:
    """The catalog entry ``source`` names, or ``None`` for a path or URL or an unknown name.

    Parameters
    ----------
    source
        A catalog name, or a path or URL (anything with ``/``).

    Returns
    -------
    EntryView or None
        The entry with its resolved folder (the same :func:`resolve_entry` that ``load`` and
        the demo use) and whether a generator's data is there yet.
    """
    entry = get_entry(source) if "/" not in source and "://" not in source else None
    if entry is None:
        return None
    where = resolve_entry(entry)
    generated = where.generator is None or Path(where.path).is_dir()
    return EntryView(entry=entry, where=where, generated=generated)


def generate_on(
    name: str,
    rows: int | None,
    out: str,
    *,
    partitions: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    profile: str | None = None,
) -> Dataset:
    """Start ``profile``'s cluster, write synthetic data of domain ``name`` to ``out``, close it.

    Parameters are :func:`workbench.generate`'s, and ``profile`` (default: local) is the
    cluster it runs on.

    Returns
    -------
    Dataset
        The data written.
    """
    with start_cluster(profile) as cluster:
        return generate(
            name,
            rows,
            out,
            partitions=partitions,
            seed=seed,
            overwrite=overwrite,
            client=cluster.get_client(),
        )
