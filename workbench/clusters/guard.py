"""Detect scripts that start a process-based cluster without a ``__main__`` guard.

Dask starts worker processes with ``spawn``: each new process imports the script that started
the cluster, as ``__mp_main__``. Code at the script's top level, outside
``if __name__ == "__main__":``, then runs again in every worker, starts another cluster there,
and the first one waits forever. We look before anything starts: find the top-level statement of
the main script that is running, and check whether it sits inside such a guard.
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
from functools import cache
from pathlib import Path

from workbench import config
from workbench.errors import MainGuardError

_FIX = (
    "Dask starts each worker as a new process that re-runs your script, so put the code that "
    'starts the cluster under `if __name__ == "__main__":` (or in a function called from '
    "there), or start the cluster with processes=False."
)


def _is_main_test(node: ast.expr) -> bool:
    """Whether ``node`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return False
    if not isinstance(node.ops[0], ast.Eq):
        return False
    sides = [node.left, node.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


@cache
def _guarded_ranges(path: str) -> tuple[tuple[int, int], ...] | None:
    """Line ranges of the top-level ``if __name__ == "__main__":`` blocks, or None if unparsable."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    return tuple(
        (stmt.lineno, stmt.end_lineno or stmt.lineno)
        for stmt in tree.body
        if isinstance(stmt, ast.If) and _is_main_test(stmt.test)
    )


def unguarded_call_site() -> tuple[str, int] | None:
    """Return where the main script runs a cluster start outside a ``__main__`` guard.

    Returns
    -------
    tuple or None
        ``(file, line)`` of the running top-level statement of the main script when it is
        outside the guard; ``None`` when it is guarded or there is no script (a notebook,
        ``python -c``, an interactive shell).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or hasattr(sys, "ps1") or not str(path).endswith(".py"):
        return None
    main_file = str(Path(path).resolve())
    frame = sys._getframe(1)
    top: tuple[str, int] | None = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and frame.f_globals is vars(main):
            try:
                if str(Path(code.co_filename).resolve()) == main_file:
                    top = (main_file, frame.f_lineno)
            except OSError:
                pass
        frame = frame.f_back  # type: ignore[assignment]
    if top is None:
        return None
    ranges = _guarded_ranges(top[0])
    if ranges is None or any(lo <= top[1] <= hi for lo, hi in ranges):
        return None
    return top


def check_main_guard(what: str = "a process-based cluster") -> None:
    """Raise :class:`MainGuardError` where starting ``what`` now would re-run the script.

    Two cases: in a worker process that is re-running the parent's script (``__mp_main__``),
    and in the parent, when the call comes from the script's top level outside a guard.
    Turn the check off with the config key ``workbench.cluster.check-main-guard: false``.
    """
    if not config.get("cluster.check-main-guard"):
        return
    main = sys.modules.get("__main__")
    if (
        multiprocessing.parent_process() is not None
        and getattr(main, "__name__", "") == "__mp_main__"
    ):
        raise MainGuardError(
            f"{what} is being started from inside a worker process that is re-running "
            f"{getattr(main, '__file__', 'the main script')}. {_FIX}"
        )
    site = unguarded_call_site()
    if site is not None:
        raise MainGuardError(
            f"{site[0]}, line {site[1]}: this script starts {what} outside an "
            f'`if __name__ == "__main__":` block. {_FIX}'
        )
