"""Everything under tests/gpu needs an NVIDIA GPU and the gpu extra; skipped otherwise."""

from __future__ import annotations

import pytest

from workbench.clusters.local import gpu_readiness


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ready, why = gpu_readiness()
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.gpu)
            if not ready:
                item.add_marker(pytest.mark.skip(reason=f"needs a GPU: {why}"))
