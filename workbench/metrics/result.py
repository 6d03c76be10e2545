""":class:`Metrics`: what ``model.evaluate`` returns, a dict that knows which rows it measured.

It is a ``dict`` of metric names to plain floats (so ``m["auc"]``, ``dict(m)``, ``json.dumps(m)``,
``m == {...}`` and ``pandas.DataFrame({"a": m1, "b": m2})`` work as with the plain dict it
replaces), with the name of the evaluated set and its number of rows beside the values. A
notebook shows it as a small table of rounded values (the exact value on hover); its text
``repr`` keeps every digit.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from workbench.display import render

__all__ = ["Metrics"]


def _shown(value: float) -> str:
    """A value rounded for reading: 4 decimals, or 4 significant digits where those hide it."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.4g}"


class Metrics(dict[str, float]):
    """Metrics of a model on one set of rows: a ``dict`` of name to value, with the set's name.

    ``model.evaluate(test)`` returns one. The values are full-precision floats; only the HTML
    table rounds them.

    Parameters
    ----------
    values : mapping or iterable of (str, float) pairs
        The metrics, in the order to show them. Each value is stored as a ``float``.
    name : str, optional
        The evaluated set (a dataset's source, ``"fraud[part 3/3]"`` for a split's third part).
    rows : int, optional
        How many rows were evaluated.

    Raises
    ------
    TypeError
        If a name is not a string, a value is not a real number, or ``name`` or ``rows`` has
        the wrong type.
    ValueError
        If ``rows`` is negative.

    Examples
    --------
    >>> m = Metrics({"auc": 0.8412345678901234, "logloss": 0.25}, name="test", rows=1000)
    >>> m["auc"], m == {"auc": 0.8412345678901234, "logloss": 0.25}
    (0.8412345678901234, True)
    >>> m
    Metrics({'auc': 0.8412345678901234, 'logloss': 0.25}, name='test', rows=1000)
    >>> m.to_series().round(2).to_dict()
    {'auc': 0.84, 'logloss': 0.25}
    """

    name: str | None
    rows: int | None

    def __init__(
        self,
        values: Mapping[str, float] | Iterable[tuple[str, float]] = (),
        *,
        name: str | None = None,
        rows: int | None = None,
    ) -> None:
        pairs = values.items() if isinstance(values, Mapping) else values
        checked: dict[str, float] = {}
        for key, value in pairs:
            if not isinstance(key, str):
                raise TypeError(f"metric names must be strings; got {key!r}")
            if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
                raise TypeError(f"metric {key!r} must be a real number; got {value!r}")
            checked[key] = float(value)  # NumPy scalars too
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None; got {type(name).__name__}")
        if rows is not None:
            if isinstance(rows, bool) or not isinstance(rows, int):
                raise TypeError(f"rows must be an int or None; got {rows!r}")
            if rows < 0:
                raise ValueError(f"rows must be 0 or more; got {rows}")
        super().__init__(checked)
        self.name = name
        self.rows = rows

    def to_series(self) -> pd.Series:
        """The metrics as a float64 ``pandas.Series`` named after the set, indexed by metric.

        Returns
        -------
        pandas.Series
            One value per metric, in order; ``name`` is :attr:`name`, the index is named
            ``"metric"``.
        """
        series = pd.Series(dict(self), dtype="float64", name=self.name)
        series.index.name = "metric"
        return series

    def __repr__(self) -> str:
        return f"Metrics({dict(self)!r}, name={self.name!r}, rows={self.rows!r})"

    def _repr_html_(self) -> str:
        return render(
            "metrics.html.j2",
            name=self.name,
            rows=self.rows,
            values=[(k, _shown(v), repr(v)) for k, v in self.items()],
        )
