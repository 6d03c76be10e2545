"""The :class:`Dataset`: a lazy Dask DataFrame and what the workbench knows about it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import dask.dataframe as dd
import numpy as np
from dask.utils import format_bytes

from workbench._redact import redact
from workbench.checks import split_fractions, whole_number
from workbench.data.columns import numeric_kind
from workbench.data.parquet import ReadPlan
from workbench.data.placement import (
    Placement,
    check_device,
    check_dtype,
    encoded_arrays,
    persist_partitions,
    resolve_device,
    table_arrays,
)
from workbench.data.split import split_frame, stratify_column
from workbench.display import render

if TYPE_CHECKING:
    from distributed import Client

    from workbench._client import ClusterSnapshot

__all__ = ["Arrays", "Dataset", "Placement", "check_device", "numeric_kind"]


class Arrays(NamedTuple):
    """What :meth:`Dataset.encoded` gives: the arrays, their levels, the device, the classes.

    Attributes
    ----------
    X, y
        As :meth:`Dataset.to_arrays` returns them (``y`` is ``None`` without a target).
    levels
        The levels each categorical column of ``X`` is encoded with: the dataset's
        ``categories``, and for columns without known levels, those found while encoding.
    device
        ``cpu`` or ``gpu``: where the chunks are.
    classes
        The sorted distinct values of ``y`` (the classes of exactly these rows), found by the
        tasks that encode the blocks; ``None`` for regression or without a target.
    """

    X: Any
    y: Any
    levels: dict[str, list[Any]]
    device: str
    classes: np.ndarray | None


@dataclass(frozen=True)
class Dataset:
    """A partitioned table on the cluster, with its target, feature kinds and categories.

    Make one with :func:`workbench.load` or :func:`workbench.generate`. Methods return new
    datasets; nothing is computed until :meth:`persist`, :meth:`to_arrays` or a count.

    Attributes
    ----------
    frame
        The lazy Dask DataFrame (features, target and id columns).
    target
        The target column, or ``None``.
    features
        Feature columns and their kinds (``numeric`` or ``categorical``), in column order.
    task
        ``binary``, ``multiclass``, ``regression``, or ``None`` without a target.
    categories
        The levels of each categorical column, the same in every partition.
    source
        Where the data came from (a catalog name, path or URL).
    rows
        The number of rows when known (from file metadata or a pass over the data).
    nbytes
        Estimated in-memory bytes when known.
    report
        What the checks noticed: ``all_null`` and ``constant`` columns.
    placement
        Rows and bytes per worker once persisted.
    plan
        How the rows come from Parquet files, while the frame is as ``load`` made it (maybe
        split); ``to_arrays`` then reads Arrow straight into ``X``. ``None`` otherwise.
    classes
        The sorted classes of a classification target in these rows, as ``load``'s checks
        found them; ``None`` when unknown (``check=False``, or after a split, whose parts may
        lack a class) or for regression. Training takes the classes of the rows it trains on
        from :meth:`encoded`.
    id_columns
        Columns of :attr:`frame` that identify rows (``transaction_id``): kept with the rows,
        never features. ``load`` names them (see its ``id_columns``).
    """

    frame: dd.DataFrame
    target: str | None
    features: dict[str, str]
    task: str | None = None
    categories: dict[str, list[Any]] = field(default_factory=dict)
    source: str = ""
    rows: int | None = None
    nbytes: int | None = None
    report: dict[str, list[str]] = field(default_factory=dict)
    placement: Placement | None = None
    plan: ReadPlan | None = field(default=None, repr=False, compare=False)
    classes: list[Any] | None = None
    id_columns: list[str] = field(default_factory=list)

    # --- shape -------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """Feature columns, then the target."""
        return [*self.features, *([self.target] if self.target else [])]

    @property
    def npartitions(self) -> int:
        """Number of partitions."""
        return int(self.frame.npartitions)

    @property
    def persisted(self) -> bool:
        """Whether the partitions are held in cluster memory."""
        return self.placement is not None

    def count_rows(self) -> int:
        """Return the number of rows, computing it (one pass) if it is not known yet."""
        if self.rows is None:
            rows = int(self.frame.map_partitions(len).sum().compute())
            object.__setattr__(self, "rows", rows)
        return int(self.rows)  # type: ignore[arg-type]

    def with_frame(self, frame: dd.DataFrame, **changes: Any) -> Dataset:
        """A copy with another frame; rows, bytes, placement, plan, classes reset unless given.

        The id columns are those of this dataset's that ``frame`` still has.
        """
        for key in ("rows", "nbytes", "placement", "plan", "classes"):
            changes.setdefault(key, None)
        changes.setdefault("id_columns", [c for c in self.id_columns if c in frame.columns])
        return replace(self, frame=frame, **changes)

    # --- operations (the work is done in their own modules) -----------------------------
    def split(
        self,
        fractions: tuple[float, ...] | list[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        stratify: bool = False,
    ) -> tuple[Dataset, ...]:
        """Split into parts by row, partition by partition (no shuffle), deterministically.

        Each partition draws its own random numbers from its index and ``seed``, so the same
        seed gives the same rows in each part on any cluster (see :mod:`workbench.data.split`).

        Parameters
        ----------
        fractions
            Positive fractions that sum to 1, e.g. ``(0.8, 0.1, 0.1)``.
        seed
            The same seed gives the same rows in each part, on any cluster.
        stratify
            Keep the class proportions of the target in every part and partition (for rare
            classes, such as 0.2% fraud).

        Returns
        -------
        tuple of Dataset
            One per fraction, in order.
        """
        parts = split_fractions(fractions)
        seed = whole_number(seed, "seed")
        stratify_by = stratify_column(self.target, self.task, stratify)
        pieces = split_frame(self.frame, self.plan, parts, seed, stratify_by)
        return tuple(
            self.with_frame(
                frame,
                source=f"{self.source}[part {k + 1}/{len(parts)}]",
                report=self.report,
                plan=plan,
            )
            for k, (frame, plan) in enumerate(pieces)
        )

    def persist(self, client: Any = None, *, device: str = "cpu") -> Dataset:
        """Load the partitions into the workers' memory, spread over every worker.

        See :func:`workbench.data.placement.persist`: a memory check first, then each
        partition on the next worker in turn.

        Returns
        -------
        Dataset
            The same dataset over persisted partitions, with ``rows``, ``nbytes`` and
            ``placement`` (rows and bytes per worker) filled in; itself when persisted.
        """
        done = persist_partitions(self, client=client, device=device)
        if done is None:
            return self
        return self.with_frame(
            done.frame,
            rows=done.rows,
            nbytes=done.nbytes,
            placement=done.placement,
            classes=self.classes,  # the same rows
        )

    def to_arrays(
        self, device: str = "auto", dtype: Any = "float32", client: Any = None
    ) -> tuple[Any, Any]:
        """Return ``(X, y)`` Dask arrays with known chunks, persisted on the workers.

        See :func:`workbench.data.placement.to_arrays`.
        """
        return table_arrays(self, device=device, dtype=dtype, client=client)

    def encoded(
        self,
        client: Client,
        *,
        device: str = "auto",
        dtype: Any = "float32",
        cluster: ClusterSnapshot | None = None,
    ) -> Arrays:
        """:meth:`to_arrays` with the levels ``X`` is encoded with, the device and the classes.

        The classes of ``y``'s rows are found by the tasks that encode each block, so
        training needs no pass over ``y`` of its own to find them.

        Parameters
        ----------
        client
            The Dask client.
        device, dtype
            As for :meth:`to_arrays`.
        cluster
            The operation's :func:`~workbench._client.snapshot` of the cluster (workers, their
            memory and GPUs), so that the scheduler is not asked again; asked if ``None``.
        """
        check_device(device)
        np_dtype = check_dtype(dtype)
        where = resolve_device(client, device, cluster)
        X, y, levels, classes = encoded_arrays(
            self, device=where, dtype=np_dtype, client=client, cluster=cluster
        )
        return Arrays(X, y, levels, where, classes)

    # --- reprs -------------------------------------------------------------------------
    def _column_rows(self) -> list[dict[str, Any]]:
        dtypes = self.frame.dtypes
        out: list[dict[str, Any]] = [
            {"name": c, "role": "id", "kind": "", "dtype": str(dtypes[c]), "levels": None}
            for c in self.id_columns
            if c in dtypes
        ]
        for name, kind in self.features.items():
            levels = self.categories.get(name)
            out.append(
                {
                    "name": name,
                    "role": "feature",
                    "kind": kind,
                    "dtype": str(dtypes[name]),
                    "levels": len(levels) if levels is not None else None,
                }
            )
        if self.target:
            out.append(
                {
                    "name": self.target,
                    "role": "target",
                    "kind": self.task or "",
                    "dtype": str(dtypes[self.target]),
                    "levels": None,
                }
            )
        return out

    def __repr__(self) -> str:
        rows = f"{self.rows:,}" if self.rows is not None else "?"
        size = format_bytes(self.nbytes) if self.nbytes else "?"
        where = f", persisted on {len(self.placement.workers)} workers" if self.placement else ""
        kinds = ", ".join(
            f"{n}:{'cat' if k == 'categorical' else 'num'}" for n, k in self.features.items()
        )
        source = redact(self.source)  # a URL's password is not shown
        ids = f", id_columns={self.id_columns!r}" if self.id_columns else ""
        return (
            f"<workbench.Dataset {source!r}: {rows} rows x {len(self.features)} features "
            f"[{kinds}], target={self.target!r} ({self.task}){ids}, {self.npartitions} "
            f"partitions, {size}{where}>"
        )

    def _repr_html_(self) -> str:
        where = self.placement.to_frame() if self.placement else None
        return render(
            "dataset.html.j2",
            ds=self,
            source=redact(self.source),
            columns=self._column_rows(),
            placement=where,
            format_bytes=format_bytes,
        )
