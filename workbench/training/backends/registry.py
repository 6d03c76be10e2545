"""Backends by name: the built-in ones, loaded on first use, and those registered at run time.

A built-in backend is one entry here, its name and the module that holds its ``BACKEND``; the
module is imported when the backend is first asked for, so that ``import workbench`` does not
import XGBoost or LightGBM (LightGBM is optional: asking for it without it installed raises
:class:`~workbench.errors.MissingDependencyError`). Another backend is registered with
:func:`register`.
"""

from __future__ import annotations

import importlib
import logging
import threading

from workbench.training.backends.base import Backend

logger = logging.getLogger(__name__)

_BUILTIN: dict[str, str] = {
    "xgboost": "workbench.training.backends.xgboost",
    "lightgbm": "workbench.training.backends.lightgbm",
    "linear": "workbench.training.backends.linear",
}
_loaded: dict[str, Backend] = {}
_registered: dict[str, Backend] = {}
_lock = threading.Lock()


def names() -> tuple[str, ...]:
    """The names of every backend, built-in first."""
    with _lock:
        return (*_BUILTIN, *(n for n in _registered if n not in _BUILTIN))


def get(name: str) -> Backend:
    """The backend called ``name``.

    Raises
    ------
    ValueError
        No backend has that name (the message lists those that do).
    MissingDependencyError
        The backend's library is not installed.
    """
    with _lock:
        found = _registered.get(name) or _loaded.get(name)
    if found is not None:
        return found
    if not isinstance(name, str) or name not in _BUILTIN:
        raise ValueError(f"unknown model kind {name!r}; use one of {', '.join(names())}")
    backend = importlib.import_module(_BUILTIN[name]).BACKEND
    with _lock:
        _loaded[name] = backend
    return backend


def register(backend: Backend) -> None:
    """Make ``backend`` trainable as ``wb.train(ds, model=backend.name)``.

    Its models load from files too (where its capabilities allow files). A backend with a
    built-in's name replaces that one until :func:`unregister`.

    Parameters
    ----------
    backend
        An object with the :class:`~workbench.training.backends.base.Backend` protocol's
        attributes and methods.

    Raises
    ------
    TypeError
        ``backend`` does not have them (the message names what it lacks).
    """
    missing = [
        attr
        for attr in ("name", "capabilities", "file_name", *_METHODS)
        if not hasattr(backend, attr)
    ]
    if missing or not isinstance(backend, Backend):
        raise TypeError(
            f"{backend!r} is not a training backend: it lacks {', '.join(missing)} "
            "(see workbench.training.backends.Backend)"
        )
    if not isinstance(backend.name, str) or not backend.name:
        raise TypeError(f"a backend's name must be a non-empty string, not {backend.name!r}")
    with _lock:
        _registered[backend.name] = backend
    logger.debug("registered training backend %r", backend.name)


def unregister(name: str) -> None:
    """Forget a backend given to :func:`register` (a built-in one comes back)."""
    with _lock:
        if _registered.pop(name, None) is None:
            raise ValueError(f"no backend {name!r} was registered")


_METHODS = (
    "default_params",
    "check_params",
    "effective_params",
    "prepare",
    "fit",
    "predict",
    "to_bytes",
    "from_bytes",
    "importance",
    "layout",
    "rounds_done",
)
