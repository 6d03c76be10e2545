"""Argument checks shared by the whole package: whole numbers and fractions.

One rule for every public function: a whole number is a Python ``int`` or a NumPy integer
(``np.int64(5)`` is fine), never a ``bool`` or a float (``5.0`` is refused: it is often a
mistake such as ``rows=1e6``); a fraction is a finite real number in a stated range. A value
of the wrong type raises :class:`TypeError`, a value out of range :class:`ValueError`; both
name the argument and the value given.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["ArgumentTypeError", "fraction", "split_fractions", "whole_number"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a ``TypeError``, and a ``ValueError`` too.

    Both, because callers have long caught one or the other for a bad value (``rounds="10"``
    was a ``ValueError`` in ``wb.train``, ``rows=2.5`` a ``TypeError`` in ``wb.generate``).
    """


def whole_number(value: Any, name: str, minimum: int = 0, *, hint: str = "") -> int:
    """Return ``value`` as an ``int`` when it is a whole number ``>= minimum``.

    Parameters
    ----------
    value
        The argument given.
    name
        Its name, for the message (``rows``, ``seed``...).
    minimum
        The smallest value allowed.
    hint
        Appended to the message, e.g. ``"e.g. rounds=100"``.

    Returns
    -------
    int
        ``value`` as a Python integer.

    Raises
    ------
    ArgumentTypeError
        ``value`` is a bool, a float or anything but an integer (a ``TypeError`` and a
        ``ValueError``).
    ValueError
        ``value`` is below ``minimum``.
    """
    tail = f": {hint}" if hint else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{name}={value!r} must be a whole number >= {minimum}, "
            f"not {type(value).__name__}{tail}"
        )
    if value < minimum:
        raise ValueError(f"{name}={value!r} must be a whole number >= {minimum}{tail}")
    return int(value)


def fraction(value: Any, name: str, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as a ``float`` when it is a real number with ``low < value <= high``.

    Parameters
    ----------
    value
        The argument given.
    name
        Its name, for the message.
    low, high
        The range: above ``low``, at most ``high``.

    Returns
    -------
    float
        ``value`` as a Python float.

    Raises
    ------
    TypeError
        ``value`` is a bool or not a real number.
    ValueError
        ``value`` is NaN, infinite or outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a number in ({low:g}, {high:g}]")
    number = float(value)
    if not math.isfinite(number) or not low < number <= high:
        raise ValueError(f"{name}={value!r} must be a number in ({low:g}, {high:g}]")
    return number


def split_fractions(fractions: Any) -> tuple[float, ...]:
    """Return split fractions as floats: two or more positive numbers that sum to 1.

    Raises
    ------
    TypeError
        ``fractions`` is not a sequence of numbers.
    ValueError
        Fewer than two, one not positive or not finite, or a sum other than 1.
    """
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise TypeError(
            f"fractions must be a list of numbers such as (0.8, 0.2), not {fractions!r}"
        ) from None
    if len(values) < 2 or any(not math.isfinite(f) or f <= 0 for f in values):
        raise ValueError(
            f"fractions {fractions!r} must be two or more positive numbers, e.g. (0.8, 0.2)"
        )
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"fractions {fractions!r} sum to {total:g}, not 1; e.g. (0.8, 0.1, 0.1)")
    return values
