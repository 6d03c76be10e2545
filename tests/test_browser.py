"""The Dask dashboard and the workbench's HTML reprs, rendered in a real headless Chromium.

The browser is the system's ``chromium`` (Debian's package, which ``.ci/run`` installs), driven
by Playwright: no browser is downloaded at test time. Screenshots are kept in ``artifacts/``
(or ``$WORKBENCH_ARTIFACTS``) for people to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask.utils import key_split
from distributed import get_task_stream

import workbench as wb
from tests.conftest import span_prefixes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("WORKBENCH_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))

if CHROMIUM is None:
    if os.environ.get("CI"):  # CI installs it: its absence there is a failure, not a skip
        raise RuntimeError("chromium is not installed; .ci/run installs Debian's chromium")
    pytest.skip("no chromium on this machine (apt-get install chromium)", allow_module_level=True)

# Every ColumnDataSource of the page's Bokeh documents, as {column: values} (strings and numbers).
SOURCES_JS = """
() => {
  if (!window.Bokeh || !Bokeh.documents || !Bokeh.documents.length) return null;
  const out = [];
  for (const doc of Bokeh.documents) {
    const all = doc.all_models ?? doc._all_models;
    const models = all instanceof Map ? [...all.values()] : [...all];
    for (const m of models) {
      const d = m.data;
      if (!d || typeof d !== "object") continue;
      const cols = d instanceof Map ? [...d.entries()] : Object.entries(d);
      if (!cols.length) continue;
      const table = {};
      for (const [k, v] of cols) {
        if (v && typeof v.length === "number" && typeof v !== "string") {
          table[k] = Array.from(v, (x) => (typeof x === "number" ? x : String(x)));
        }
      }
      out.push(table);
    }
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[wb.Cluster]:
    with wb.start_cluster(
        "local-cpu", n_workers=2, threads_per_worker=1, processes=False
    ) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


def _looks_drawn(png: Path) -> int:
    """How many distinct colours the screenshot has (a blank page has one or two)."""
    import matplotlib.image

    pixels = (matplotlib.image.imread(png)[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def test_the_dashboard_shows_the_workers_and_the_trainings_tasks(
    cluster: wb.Cluster, browser: Any, tmp_path: Path
) -> None:
    client = cluster.get_client()
    path = tmp_path / "fraud"
    wb.generate("fraud", 20_000, path, partitions=4, client=client)
    ds = wb.load(
        path, target="is_fraud", categorical=["merchant_category", "device"], client=client
    ).persist(client=client)
    with get_task_stream(client) as stream:
        wb.train(ds, rounds=5, params={"max_depth": 3}, client=client, progress=False)
    prefixes = client.run_on_scheduler(span_prefixes)["workbench-train-xgboost"]
    assert "fn" in prefixes  # xgboost.dask runs its training as one task named fn per worker
    training = {str(t["key"]) for t in stream.data if key_split(t["key"]) == "fn"}
    assert len(training) == 2, f"one training task per worker, not {training}"
    workers = set(client.scheduler_info(n_workers=-1)["workers"])
    assert len(workers) == 2

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.goto(cluster.dashboard_link, wait_until="load", timeout=60_000)
    assert "Dask" in page.title()
    page.wait_for_function(
        f"() => {{ const s = ({SOURCES_JS})(); return s && s.some("
        "(t) => t.worker_thread && t.key && t.key.length > 0); }",
        timeout=60_000,
    )
    page.wait_for_timeout(1000)  # let the other plots take their first update
    sources = page.evaluate(SOURCES_JS)
    stream_source = next(t for t in sources if "worker_thread" in t and "key" in t)
    shown = set(stream_source["key"])
    assert training <= shown, f"training tasks missing from the task stream: {training - shown}"
    pairs = zip(stream_source["key"], stream_source["worker"], strict=True)
    trained_on = {w for k, w in pairs if k in training}
    assert trained_on == workers  # the task stream shows both workers training
    names = set().union(*(set(map(str, t.get("worker", []))) for t in sources))
    escaped = set().union(*(set(map(str, t.get("escaped_worker", []))) for t in sources))
    assert workers <= names | escaped, "the workers are not on the status page"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard-status.png"
    page.screenshot(path=str(shot), full_page=True)
    assert _looks_drawn(shot) > 50, "the dashboard screenshot is blank"
    errors = [m for m in messages if m.startswith("error") and "favicon" not in m]
    assert not errors, errors
    page.close()


def test_cluster_and_dataset_reprs_display(
    cluster: wb.Cluster, browser: Any, tmp_path: Path
) -> None:
    client = cluster.get_client()
    path = tmp_path / "maintenance"
    wb.generate("maintenance", 5_000, path, partitions=2, client=client)
    ds = wb.load(
        path, target="failure_within_horizon", categorical=["machine_type"], client=client
    ).persist(client=client)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    for name, obj, expected in (
        ("cluster", cluster, ["workbench.Cluster", "local-cpu", cluster.scheduler_address]),
        ("dataset", ds, ["workbench.Dataset", "failure_within_horizon", "Placement"]),
    ):
        page.set_content(f"<!doctype html><html><body>{obj._repr_html_()}</body></html>")
        root = page.locator(f"div.workbench-{name}")
        assert root.is_visible()
        box = root.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 80
        for summary in page.locator("summary").all():  # open every folded table
            if summary.locator("..").get_attribute("open") is None:
                summary.click()
        text = page.inner_text("body")
        for part in expected:
            assert part in text, f"{part!r} not shown in the {name} repr"
        for w in workers:  # cluster: its workers table; dataset: where the partitions live
            assert w in text, f"worker {w} not shown in the {name} repr"
        assert page.locator("td").first.is_visible()
        page.screenshot(path=str(ARTIFACTS / f"{name}-repr.png"), full_page=True)
        assert _looks_drawn(ARTIFACTS / f"{name}-repr.png") > 20  # text, anti-aliased
    page.close()
