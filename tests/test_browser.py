"""The Dask dashboard, its workbench training page and the HTML reprs, in a real headless Chromium.

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
from workbench.dashboard import URL

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
def fraud(cluster: wb.Cluster, tmp_path_factory: pytest.TempPathFactory) -> wb.Dataset:
    client = cluster.get_client()
    path = tmp_path_factory.mktemp("data") / "fraud"
    wb.generate("fraud", 20_000, path, partitions=4, client=client)
    return wb.load(
        path, target="is_fraud", categorical=["merchant_category", "device"], client=client
    )


def _open(browser: Any, url: str, width: int, height: int) -> tuple[Any, list[str]]:
    """A new page at ``url``, and the list its console messages go to."""
    page = browser.new_page(viewport={"width": width, "height": height})
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.goto(url, wait_until="load", timeout=60_000)
    return page, messages


def _shot_and_close(page: Any, messages: list[str], name: str) -> None:
    """Screenshot ``page`` to ARTIFACTS/name, check it is drawn and the console is clean."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / name
    page.screenshot(path=str(shot), full_page=True)
    assert _looks_drawn(shot) > 50, f"the screenshot {name} is blank"
    errors = [m for m in messages if m.startswith("error") and "favicon" not in m]
    assert not errors, errors
    page.close()


def _looks_drawn(png: Path) -> int:
    """How many distinct colours the screenshot has (a blank page has one or two)."""
    import matplotlib.image

    pixels = (matplotlib.image.imread(png)[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def test_the_dashboard_shows_the_workers_and_the_trainings_tasks(
    cluster: wb.Cluster, browser: Any, fraud: wb.Dataset
) -> None:
    client = cluster.get_client()
    ds = fraud.persist(client=client)
    with get_task_stream(client) as stream:
        wb.train(ds, rounds=5, params={"max_depth": 3}, client=client, progress=False)
    prefixes = client.run_on_scheduler(span_prefixes)["workbench-train-xgboost"]
    assert "fn" in prefixes  # xgboost.dask runs its training as one task named fn per worker
    training = {str(t["key"]) for t in stream.data if key_split(t["key"]) == "fn"}
    assert len(training) == 2, f"one training task per worker, not {training}"
    workers = set(client.scheduler_info(n_workers=-1)["workers"])
    assert len(workers) == 2

    page, messages = _open(browser, cluster.dashboard_link, 1600, 1000)
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
    _shot_and_close(page, messages, "dashboard-status.png")


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


def test_the_training_page_draws_the_rounds_as_they_come(
    cluster: wb.Cluster, browser: Any, fraud: wb.Dataset
) -> None:
    client = cluster.get_client()
    train, valid = fraud.split((0.8, 0.2), seed=0)
    rounds = 12
    url = cluster.dashboard_link.rsplit("/", 1)[0] + URL
    page, messages = _open(browser, url, 1400, 1100)
    assert "Workbench training" in page.title()
    page.get_by_text("Workbench training", exact=False).first.wait_for(timeout=60_000)
    # opened before the training: what follows arrives through the page's live updates
    model = wb.train(
        train,
        valid,
        rounds=rounds,
        checkpoint_every=4,
        params={"max_depth": 3},
        client=client,
        progress=False,
        eval_train=True,
    )
    drawn = (
        f"() => {{ const s = ({SOURCES_JS})(); return s && s.some("
        f"(t) => t.round && t.valid && t.train && t.round.length === {rounds}); }}"
    )
    page.wait_for_function(drawn, timeout=60_000)
    page.locator("b", has_text="finished").wait_for(timeout=30_000)  # the header, once ended
    page.wait_for_timeout(1000)  # the tables' and markers' update of the same tick
    sources = page.evaluate(SOURCES_JS)
    curves = [t for t in sources if "round" in t and "valid" in t and "train" in t]
    assert {len(t["round"]) for t in curves} == {rounds}
    assert len(curves) == 2  # one figure per metric: logloss and auc, a line per data set
    for curve in curves:
        assert curve["round"] == list(range(rounds))
        metric = next(
            m
            for m in ("logloss", "auc")
            if np.allclose(curve["valid"], model.history[f"valid-{m}"], rtol=1e-12)
        )
        np.testing.assert_allclose(curve["train"], model.history[f"train-{metric}"], rtol=1e-12)
    marks = [t["round"] for t in sources if set(t) == {"round", "value"} and t["round"]]
    assert marks == [[3, 7, 11]] * 2  # the checkpoints after rounds 4, 8 and 12, on each figure
    for worker in model.info["placement"]:  # the workers table
        assert page.get_by_text(worker, exact=True).count() == 1
    assert page.get_by_text(f"round {rounds} of {rounds}").count() == 1
    assert page.get_by_text(f"{rounds} / {rounds}", exact=True).count() == 1  # trainings table
    assert page.get_by_text("model of 4 rounds", exact=False).count() >= 1  # the events table
    _shot_and_close(page, messages, "dashboard-training.png")
