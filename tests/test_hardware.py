"""The hardware report, on this machine (no GPU here; tests/gpu covers GPUs)."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

import workbench as wb
from workbench.hardware import detect_gpus


def test_cores_and_memory_are_plausible() -> None:
    hw = wb.hardware()
    assert 1 <= hw.cpu_count <= (psutil.cpu_count() or 1)
    assert 0 < hw.memory_total <= psutil.virtual_memory().total
    assert hw.hostname


def test_no_gpu_is_reported_cleanly_with_a_reason() -> None:
    hw = wb.hardware()
    if hw.gpus:  # pragma: no cover - GPU machines run tests/gpu
        assert hw.gpu_note is None
        return
    assert hw.gpu_count == 0
    assert hw.gpu_note
    assert "no GPU" in repr(hw)
    assert "no GPU" in hw._repr_html_()


def test_cuda_visible_devices_empty_hides_all_gpus() -> None:
    code = (
        "from workbench.hardware import detect_gpus; g, n = detect_gpus(); print(len(g)); print(n)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    count, note = out.stdout.splitlines()
    assert count == "0" and note


def test_without_nvidia_ml_py_it_says_so() -> None:
    code = (
        "import sys; sys.modules['pynvml'] = None\n"
        "from workbench.hardware import detect_gpus; print(detect_gpus()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "nvidia-ml-py is not installed" in out.stdout


def test_cpu_affinity_is_honoured() -> None:
    # a process allowed on one core only must report one core
    code = (
        "import os; os.sched_setaffinity(0, {0})\n"
        "import workbench as wb; print(wb.hardware().cpu_count)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert isinstance(detect_gpus()[0], tuple)
