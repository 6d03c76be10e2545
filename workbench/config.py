"""Workbench defaults in dask.config's ``workbench`` namespace.

The defaults live in ``workbench.yaml`` beside this module. They are merged *under* what
dask.config already holds, so a user's YAML files and ``DASK_WORKBENCH__...`` environment
variables win over them, and an explicit argument wins over both. Values are read at call time
with :func:`get`, never captured at import time.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import dask.config
import yaml

_DEFAULTS_FILE = Path(__file__).with_name("workbench.yaml")
_MISSING = object()


def _load_defaults() -> None:
    with _DEFAULTS_FILE.open() as f:
        defaults = yaml.safe_load(f)
    dask.config.update_defaults(defaults)


def get(key: str, override: Any = None) -> Any:
    """Return ``override`` if given, otherwise the config value ``workbench.<key>``.

    Parameters
    ----------
    key
        Dotted key below the ``workbench`` namespace, for example ``"cluster.connect-timeout"``.
    override
        An explicit argument from the caller; it wins when it is not ``None``.
    """
    if override is not None:
        return override
    return dask.config.get(f"workbench.{key}")


def positive_seconds(value: Any) -> float | None:
    """``value`` (``"10s"``, ``"2min"``, 10) as seconds if it is a positive duration, else None."""
    try:
        seconds = dask.utils.parse_timedelta(value, default="seconds")
    except (KeyError, ValueError, TypeError):
        return None
    return float(seconds) if seconds is not None and seconds > 0 else None


def timeout_seconds(key: str, override: float | str | None = None) -> float:
    """Return a timeout from the argument or config, as seconds (``"10s"``, ``"2min"``, 10)."""
    value = get(key, override)
    seconds = positive_seconds(value)
    if seconds is None:
        raise ValueError(
            f"timeout {value!r} (workbench.{key}) must be a positive duration such as 10 or '30s'"
        )
    return seconds


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time of each message."""

    _workbench = True

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging() -> None:
    """Give the ``workbench`` logger a stderr handler at the configured level.

    The handler is added once; messages read ``workbench: ...``. Set
    ``workbench.logging.level`` to ``warning`` to hide informational messages.
    """
    logger = logging.getLogger("workbench")
    level = str(dask.config.get("workbench.logging.level", "info")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(
            f"workbench.logging.level is {level.lower()!r}; use debug, info, warning or error"
        )
    logger.setLevel(level)
    handlers = [h for h in logger.handlers if isinstance(h, _StderrHandler)]
    if not handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("workbench: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        handlers = [handler]
    for h in handlers:  # records of child loggers set to DEBUG (workbench.xgboost) stop here too
        h.setLevel(level)


_load_defaults()
