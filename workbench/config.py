"""Workbench defaults in dask.config's ``workbench`` namespace.

The defaults live in ``workbench.yaml`` beside this module. They are merged *under* what
dask.config already holds, so a user's YAML files and ``DASK_WORKBENCH__...`` environment
variables win over them, and an explicit argument wins over both. Values are read at call time
with :func:`get`, never captured at import time.
"""

from __future__ import annotations

import html
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


def in_kernel() -> bool:
    """Whether this process is a Jupyter (IPython) kernel.

    IPython is not imported for the question: a process that has not loaded it is no kernel.
    A terminal IPython shell has no ``kernel`` attribute and is not one either.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return getattr(shell, "kernel", None) is not None


# A note reads as text, in the notebook's own colours, wrapped between words (Jupyter shows
# stream output in a <pre> that breaks lines anywhere, mid-word included, and stderr in pink).
_NOTE_HTML = (
    '<div class="workbench-note" style="font-family: var(--jp-ui-font-family, sans-serif); '
    "font-size: var(--jp-ui-font-size1, 13px); color: var(--jp-ui-font-color2, #616161); "
    'white-space: normal; word-break: normal; overflow-wrap: break-word">{}</div>'
)


def show_note(text: str) -> None:
    """Show ``text`` in the running notebook cell as a neutral note (call it in a kernel).

    The note is an HTML display (with ``workbench: text`` as its plain-text form, which a
    saved notebook's viewers without HTML show); where it cannot be displayed, it goes to
    stderr.
    """
    plain = f"workbench: {text}"
    try:
        from IPython.display import display

        display({"text/plain": plain, "text/html": _NOTE_HTML.format(html.escape(plain))}, raw=True)
    except Exception:  # no display publisher after all: say it on stderr rather than not at all
        sys.stderr.write(plain + "\n")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each message; in a notebook, notes for info.

    In a Jupyter kernel, messages below WARNING are shown as neutral notes
    (:func:`show_note`) rather than on stderr, which Jupyter shows as an error block; warnings
    and errors stay on stderr. Elsewhere (a terminal, a script, a pipe) everything goes to
    stderr, as Python's logging and command-line tools do, so that stdout holds the results.
    """

    _workbench = True

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and in_kernel():
            try:
                show_note(record.getMessage())
            except Exception:
                self.handleError(record)
            return
        super().emit(record)


def setup_logging() -> None:
    """Give the ``workbench`` logger its handler at the configured level.

    The handler is added once; messages read ``workbench: ...``, on stderr, except that in a
    Jupyter kernel informational ones are shown as notes in the cell (warnings stay on
    stderr). Set ``workbench.logging.level`` to ``warning`` to hide informational messages.
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
