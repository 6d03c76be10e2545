"""The :class:`Dataset`: a lazy Dask DataFrame and what the workbench knows about it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.utils import format_bytes

from workbench._redact import redact

if TYPE_CHECKING:
    from workbench.data.parquet import ReadPlan


@dataclass(frozen=True)
class Placement:
    """Where a persisted dataset's partitions live: rows and bytes per worker."""

    workers: dict[str, dict[str, int]]  # address -> {"partitions", "rows", "bytes"}

    @property
    def empty_workers(self) -> list[str]:
        """Workers that hold no partition."""
        return [w for w, v in self.workers.items() if v["partitions"] == 0]

    def to_frame(self) -> pd.DataFrame:
        """A table of partitions, rows and bytes per worker."""
        return pd.DataFrame.from_dict(self.workers, orient="index").rename_axis("worker")


@dataclass(frozen=True)
class Dataset:
    """A partitioned table on the cluster, with its target, feature kinds and categories.

    Make one with :func:`workbench.load` or :func:`workbench.generate`. Methods return new
    datasets; nothing is computed until :meth:`persist`, :meth:`to_arrays` or a count.

    Attributes
    ----------
    frame
        The lazy Dask DataFrame (features and target).
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
        """A copy with another frame (rows, bytes, placement and plan forgotten unless given)."""
        for key in ("rows", "nbytes", "placement", "plan"):
            changes.setdefault(key, None)
        return replace(self, frame=frame, **changes)

    # --- operations (implemented in their own modules) ----------------------------------
    def split(
        self,
        fractions: tuple[float, ...] | list[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        stratify: bool = False,
    ) -> tuple[Dataset, ...]:
        """Split into parts by row, partition by partition (no shuffle), deterministically.

        See :func:`workbench.data.split.split`.
        """
        from workbench.data.split import split

        return split(self, fractions, seed=seed, stratify=stratify)

    def persist(self, client: Any = None, *, device: str = "cpu") -> Dataset:
        """Load the partitions into the workers' memory, spread over every worker.

        See :func:`workbench.data.placement.persist`.
        """
        from workbench.data.placement import persist

        return persist(self, client=client, device=device)

    def to_arrays(
        self, device: str = "auto", dtype: Any = "float32", client: Any = None
    ) -> tuple[Any, Any]:
        """Return ``(X, y)`` Dask arrays with known chunks, persisted on the workers.

        See :func:`workbench.data.placement.to_arrays`.
        """
        from workbench.data.placement import to_arrays

        return to_arrays(self, device=device, dtype=dtype, client=client)

    # --- reprs -------------------------------------------------------------------------
    def _column_rows(self) -> list[dict[str, Any]]:
        dtypes = self.frame.dtypes
        out = []
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
        return (
            f"<workbench.Dataset {source!r}: {rows} rows x {len(self.features)} features "
            f"[{kinds}], target={self.target!r} ({self.task}), {self.npartitions} partitions, "
            f"{size}{where}>"
        )

    def _repr_html_(self) -> str:
        from workbench.display import render

        placement = self.placement.to_frame() if self.placement else None
        return render(
            "dataset.html.j2",
            ds=self,
            source=redact(self.source),
            columns=self._column_rows(),
            placement=placement,
            format_bytes=format_bytes,
        )


def numeric_kind(dtype: Any) -> bool:
    """Whether a column of this dtype can be used as a number (bool included)."""
    return bool(pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype))


def check_fractions(fractions: Any) -> tuple[float, ...]:
    """Validate split fractions: positive numbers that sum to 1."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise TypeError(
            f"fractions must be a list of numbers such as (0.8, 0.2), not {fractions!r}"
        ) from None
    if len(values) < 2 or any(not np.isfinite(f) or f <= 0 for f in values):
        raise ValueError(
            f"fractions {fractions!r} must be two or more positive numbers, e.g. (0.8, 0.2)"
        )
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"fractions {fractions!r} sum to {total:g}, not 1; e.g. (0.8, 0.1, 0.1)")
    return values
