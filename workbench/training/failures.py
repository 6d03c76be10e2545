"""Failures on the workers, told as one readable error naming the worker and the cause."""

from __future__ import annotations

import re
from typing import Any

from workbench.errors import TrainingError

_PREFIX = re.compile(r"^\[\d{2}:\d{2}:\d{2}\] \S+:\d+: (Check failed: \S+: )?")


def cause(text: str) -> str:
    """The first meaningful line of a library's error text (no timestamps, paths or stacks)."""
    text = str(text).split("Stack trace:")[0].strip()
    for wrapper in ("XGBoostError(", "LightGBMError("):
        if text.startswith(wrapper):
            text = text[len(wrapper) :].strip("'\")")
    line = next((ln for ln in text.splitlines() if ln.strip()), text).strip()
    return _PREFIX.sub("", line).removesuffix("\\n").strip() or text


def _erred(dask_scheduler: Any) -> list[tuple[str, list[str], str]]:
    return [
        (str(ts.key), sorted(ts.erred_on or ()), str(ts.exception_text or ""))
        for ts in dask_scheduler.tasks.values()
        if ts.state == "erred" and ts.erred_on
    ]


def explain(client: Any, kind: str, error: BaseException) -> BaseException:
    """``error`` as a :class:`TrainingError` naming the worker(s) where tasks failed.

    Only the failed tasks that raised this very error count (its text is theirs): where the
    scheduler knows of none (the error came from the client side, such as a bad setting), the
    error is returned unchanged, even if unrelated tasks failed earlier on the cluster (a bad
    file loaded before: naming it would blame the wrong thing). A task that failed because its
    worker died ("Invalid worker address") is told with the others that failed beside it.
    """
    try:
        erred = client.run_on_scheduler(_erred)
    except Exception:
        return error
    said = cause(str(error))  # the first line, as the worker's task has it
    mine = [e for e in erred if said and (said in cause(e[2]) or cause(e[2]) in said)]
    if not mine:
        return error
    if not any("Invalid worker address" in e[2] for e in mine):
        erred = mine
    # a task that failed because its worker died and Dask ran it elsewhere tells of a loss, not
    # of the cause: name the others first
    erred.sort(key=lambda e: "Invalid worker address" in e[2])
    workers = sorted({w for _, ws, _ in erred for w in ws})
    reason = cause(erred[0][2]) or cause(str(error))
    where = "worker " + workers[0] if len(workers) == 1 else "workers " + ", ".join(workers)
    return TrainingError(
        f"{kind} training failed on {where}: {reason} "
        f"({type(error).__name__}; the workers' logs have the full traceback)"
    )
