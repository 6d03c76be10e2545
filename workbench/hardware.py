"""What the machine has: GPUs (through NVML), CPU cores and memory, cgroup-aware.

Core and memory counts come from Dask, which already honours CPU affinity, cgroup CPU quotas and
cgroup memory limits (``dask.system.CPU_COUNT``, ``distributed.system.MEMORY_LIMIT``). GPUs come
from NVML through ``nvidia-ml-py``; where the library or the driver is missing, the report says
"no GPU" and why, and never raises.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from dataclasses import dataclass, field

from dask.system import CPU_COUNT
from dask.utils import format_bytes
from distributed.system import MEMORY_LIMIT

from workbench.display import render


@dataclass(frozen=True)
class GPU:
    """One visible NVIDIA GPU.

    Attributes
    ----------
    index
        Index among the visible devices (after ``CUDA_VISIBLE_DEVICES``).
    name
        Device name, for example ``"NVIDIA H200"``.
    memory_total
        Device memory in bytes.
    uuid
        The device UUID (``GPU-...``).
    """

    index: int
    name: str
    memory_total: int
    uuid: str


@dataclass(frozen=True)
class Hardware:
    """A report of the machine's cores, memory and GPUs.

    Attributes
    ----------
    hostname
        This machine's host name.
    cpu_count
        Cores this process may use (affinity and cgroup quota applied).
    memory_total
        Bytes of memory this process may use (cgroup limit applied).
    gpus
        The visible GPUs; empty when there are none.
    gpu_note
        Why there are no GPUs (``"NVML library not found"``, ...), or ``None``.
    """

    hostname: str
    cpu_count: int
    memory_total: int
    gpus: tuple[GPU, ...] = field(default_factory=tuple)
    gpu_note: str | None = None

    @property
    def gpu_count(self) -> int:
        """Number of visible GPUs."""
        return len(self.gpus)

    def __repr__(self) -> str:
        gpus = (
            ", ".join(f"{g.name} ({format_bytes(g.memory_total)})" for g in self.gpus)
            if self.gpus
            else f"no GPU ({self.gpu_note})"
        )
        return (
            f"Hardware(host={self.hostname!r}, cpus={self.cpu_count}, "
            f"memory={format_bytes(self.memory_total)}, gpus=[{gpus}])"
        )

    def _repr_html_(self) -> str:
        return render("hardware.html.j2", hw=self, format_bytes=format_bytes)


def _visible_indices(count: int) -> list[int | str]:
    """Devices named by ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs), else all ``count``."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(count))
    out: list[int | str] = []
    for item in (s.strip() for s in env.split(",")):
        if not item:
            continue
        if item.isdigit():
            out.append(int(item))
        elif item.startswith(("GPU-", "MIG-")):
            out.append(item)
        else:
            break  # CUDA stops at the first invalid entry, and so do we
    return out


def detect_gpus() -> tuple[tuple[GPU, ...], str | None]:
    """Return the visible GPUs and, where there are none, the reason.

    Returns
    -------
    gpus, note
        ``note`` is ``None`` when at least one GPU is visible.
    """
    try:
        import pynvml
    except ImportError:
        return (), "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return (), "NVML library not found, so no NVIDIA driver"
    except pynvml.NVMLError as err:
        return (), f"NVML could not start: {err}"

    def text(value: bytes | str) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    try:
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [text(pynvml.nvmlDeviceGetUUID(h)) for h in handles]
        gpus = []
        for visible_index, dev in enumerate(_visible_indices(count)):
            if isinstance(dev, int):
                found = dev if dev < count else None
            else:  # CUDA accepts any unique prefix of a UUID
                matches = [i for i, u in enumerate(uuids) if u.startswith(dev)]
                found = matches[0] if len(matches) == 1 else None
            if found is None:
                break  # CUDA stops at the first entry it cannot resolve, and so do we
            handle = handles[found]
            gpus.append(
                GPU(
                    index=visible_index,
                    name=text(pynvml.nvmlDeviceGetName(handle)),
                    memory_total=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                    uuid=uuids[found],
                )
            )
    except pynvml.NVMLError as err:
        return (), f"NVML error while listing GPUs: {err}"
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
    if not gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            return (), f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
        return (), "the NVIDIA driver reports no GPU"
    return tuple(gpus), None


def hardware() -> Hardware:
    """Report this machine's cores, memory and GPUs.

    Returns
    -------
    Hardware
        Counts honour CPU affinity, cgroup quotas and ``CUDA_VISIBLE_DEVICES``.

    Examples
    --------
    >>> import workbench as wb
    >>> wb.hardware()  # doctest: +SKIP
    Hardware(host='box', cpus=2, memory=23.47 GiB, gpus=[no GPU (NVML library not found ...)])
    """
    gpus, note = detect_gpus()
    return Hardware(
        hostname=socket.gethostname() or platform.node(),
        cpu_count=int(CPU_COUNT),
        memory_total=int(MEMORY_LIMIT),
        gpus=gpus,
        gpu_note=note,
    )
