"""Training backends behind one protocol, found by name.

:class:`Backend` is what a backend implements; :class:`FitRequest` and :class:`FitResult` are
what it is asked and answers; :class:`Capabilities` is what :func:`workbench.train` reads to
decide what to refuse. The built-in backends are ``xgboost``, ``lightgbm`` and ``linear``;
another one is a module with an object of the protocol, made trainable by :func:`register`::

    from workbench.training import backends

    backends.register(MyBackend())  # then wb.train(ds, model=MyBackend.name)
"""

from __future__ import annotations

from workbench.training.backends.base import (
    Backend,
    Capabilities,
    FitRequest,
    FitResult,
    History,
    Layout,
)
from workbench.training.backends.registry import get, names, register, unregister

__all__ = [
    "Backend",
    "Capabilities",
    "FitRequest",
    "FitResult",
    "History",
    "Layout",
    "get",
    "names",
    "register",
    "unregister",
]
