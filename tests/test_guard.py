"""Scripts that start a process-based cluster without a __main__ guard get a clear error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _run(tmp_path: Path, body: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )


def test_unguarded_script_is_refused_fast_with_file_and_line(tmp_path: Path) -> None:
    t = time.monotonic()
    out = _run(
        tmp_path,
        """\
        import workbench as wb

        cluster = wb.start_cluster("local-cpu", n_workers=1)
        print("should not get here")
    """,
    )
    assert time.monotonic() - t < 60
    assert out.returncode != 0
    assert "MainGuardError" in out.stderr
    assert "job.py, line 3" in out.stderr
    assert 'if __name__ == "__main__":' in out.stderr
    assert "should not get here" not in out.stdout


def test_unguarded_call_through_a_function_is_refused(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """\
        import workbench as wb

        def main():
            return wb.start_cluster("local-cpu", n_workers=1)

        main()
    """,
    )
    assert out.returncode != 0
    assert "job.py, line 6" in out.stderr


def test_guarded_script_runs(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """\
        import workbench as wb

        def main():
            with wb.start_cluster("local-cpu", n_workers=1) as cluster:
                print(cluster.get_client().submit(sum, [1, 2]).result())

        if __name__ == "__main__":
            main()
    """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_in_process_cluster_needs_no_guard(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """\
        import workbench as wb

        with wb.start_cluster("local-cpu", n_workers=1, processes=False) as cluster:
            print(cluster.get_client().submit(sum, [2, 2]).result())
    """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"


def test_reversed_guard_is_recognised(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """\
        import workbench as wb

        if "__main__" == __name__:
            with wb.start_cluster("local-cpu", n_workers=1) as cluster:
                print("guarded")
    """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["guarded"]


def test_config_turns_the_check_off(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        """\
        import dask
        import workbench as wb
        from workbench.clusters.guard import check_main_guard

        with dask.config.set({"workbench.cluster.check-main-guard": False}):
            check_main_guard()
        print("off")
        try:
            check_main_guard()
        except wb.MainGuardError:
            print("refused")
    """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["off", "refused"]


@pytest.mark.parametrize("entry", ["workbench", "-m workbench"])
def test_workbench_entry_points_are_safe(entry: str) -> None:
    cmd = (
        [str(Path(sys.executable).with_name("workbench"))]
        if entry == "workbench"
        else [sys.executable, "-m", "workbench"]
    ) + ["--help"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "cluster" in out.stdout
