"""Where a study's trials run: packed (a whole trial per worker) or gang (every worker at once).

Packed trials need the whole training and validation data on every worker: they are chosen
(``placement="auto"``) when that copy, with its matrices, takes at most :data:`BUDGET` of the
smallest worker's memory limit beside what the worker already holds; otherwise the trials run
one after another as distributed trainings on every worker (gang). The decision and its figures
are said to the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from dask.utils import format_bytes

from workbench._client import ClusterSnapshot
from workbench.tuning.packed import REPLICA_FACTOR

#: The share of a worker's memory limit a packed replica may take (beside what it holds).
BUDGET = 0.5

PLACEMENTS = ("auto", "packed", "gang")


@dataclass(frozen=True)
class Placement:
    """The decision: ``mode`` (``"packed"`` or ``"gang"``) and why, in one sentence."""

    mode: str
    reason: str
    need: int  # bytes a packed replica takes on each worker
    room: int  # bytes the smallest worker can give it (0: unknown or none)


def check_placement(placement: object) -> str:
    """``placement`` if it is one of :data:`PLACEMENTS`, else a ``ValueError`` naming them."""
    if not isinstance(placement, str) or placement not in PLACEMENTS:
        raise ValueError(
            f"placement={placement!r}: use 'auto' (packed when the data fit each worker), "
            "'packed' (a whole trial per worker, the data copied to each) or 'gang' (one "
            "distributed trial at a time on every worker)"
        )
    return placement


def decide(
    placement: str,
    *,
    array_bytes: int,
    cluster: ClusterSnapshot,
    packable: str | None,
) -> Placement:
    """Decide where the trials run.

    Parameters
    ----------
    placement
        ``"auto"``, ``"packed"`` or ``"gang"`` (checked by :func:`check_placement`).
    array_bytes
        Bytes of the training and validation arrays (features and labels) as trained on.
    cluster
        The study's workers.
    packable
        ``None`` when the model and data can run packed; else the reason they cannot.

    Raises
    ------
    ValueError
        ``placement="packed"`` where it cannot be: the model or device, or data that do not
        fit (the figures in the message).
    """
    need = int(array_bytes * REPLICA_FACTOR)
    limits = [w.memory_limit - w.memory_used for w in cluster.workers if w.memory_limit]
    unlimited = any(not w.memory_limit for w in cluster.workers)
    room = int(max(0, min(limits)) * BUDGET) if limits else 0
    smallest = min((w.memory_limit for w in cluster.workers if w.memory_limit), default=0)
    fits = bool(cluster.workers) and ((unlimited and not limits) or (bool(limits) and need <= room))
    figures = (
        f"a copy of the data with its matrices takes about {format_bytes(need)} per worker; "
        + (
            f"the smallest worker ({format_bytes(smallest)} limit) has {format_bytes(room)} "
            f"for it ({BUDGET:.0%} of what it has free)"
            if limits
            else "the workers have no memory limit"
        )
    )
    if packable is not None:
        if placement == "packed":
            raise ValueError(f"placement='packed' is not possible: {packable}")
        return Placement("gang", f"gang: {packable}", need, room)
    if placement == "gang":
        return Placement("gang", "gang, as asked", need, room)
    if placement == "packed" and not fits:
        raise ValueError(
            f"placement='packed' does not fit: {figures}. Use placement='gang' (or 'auto'), "
            "or a cluster with more memory per worker"
        )
    if fits:
        return Placement("packed", f"packed: {figures}", need, room)
    return Placement("gang", f"gang: {figures}, too little to copy it to each", need, room)
