"""Notebooks 01 and 03 run in JupyterLab under ``workbench lab``, in a real browser (issue 15).

As a data scientist would: ``workbench lab`` starts a cluster and JupyterLab; the notebook is
opened in headless Chromium and run from JupyterLab's own "run all" command. What is checked:

- every cell runs without an error output, and no information is shown as stderr (item 4);
- the notebook's work ran on the lab's cluster (item 1): its scheduler saw the training's
  tasks, and the notebook's ``wb.start_cluster()`` started no second one;
- a screenshot of the whole notebook is kept in ``artifacts/`` for people to look at.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from distributed import Client

from tests.conftest import ROOT
from tests.test_browser import ARTIFACTS, _looks_drawn
from tests.test_lab import Lab, _start, _worker_processes

# The state of the notebook NAME, open and current: "starting", "running", "error: ..." or "done".
STATE_JS = """
() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  if (!kernel || !panel.content || panel.context.path !== NAME) return "starting";
  const cells = panel.content.widgets.filter((c) => c.model.type === "code");
  for (const c of cells) {
    for (const o of c.model.outputs.toJSON()) {
      if (o.output_type === "error") return "error: " + o.ename + ": " + o.evalue;
    }
  }
  const ran = cells.every((c) => c.model.executionCount !== null);
  return ran && kernel.status === "idle" ? "done" : "running";
}
"""

# Every output of the notebook, as {cell, type, name, text}.
OUTPUTS_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const out = [];
  panel.content.widgets.forEach((c, i) => {
    if (c.model.type !== "code") return;
    for (const o of c.model.outputs.toJSON()) {
      const text = o.text ?? (o.data && o.data["text/plain"]) ?? "";
      out.push({cell: i, type: o.output_type, name: o.name ?? "",
                text: Array.isArray(text) ? text.join("") : String(text)});
    }
  });
  return out;
}
"""


# The notebook's whole height, and a scroll back to its top: the scrolling element is the
# notebook's windowed panel (JupyterLab 4), or the notebook itself.
SCROLL_HEIGHT_JS = """
() => Math.max(...[...document.querySelectorAll(
  '.jp-NotebookPanel .jp-WindowedPanel-outer, .jp-NotebookPanel .jp-Notebook')]
  .map((e) => e.scrollHeight))
"""
TO_TOP_JS = """
() => document.querySelectorAll(
  '.jp-NotebookPanel .jp-WindowedPanel-outer, .jp-NotebookPanel .jp-Notebook')
  .forEach((e) => { e.scrollTop = 0; })
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab-notebooks")
    for name in ("01-quickstart.ipynb", "03-fraud-detection.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, tmp / name)
    # every cell rendered (JupyterLab draws only the visible ones by default), for the picture
    settings = tmp / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = tmp / "user-settings" / "@jupyterlab" / "apputils-extension"  # no "news?" toast
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    started = _start(
        tmp,
        "-p",
        "local-cpu",
        "--no-tls",
        "-o",
        "n_workers=1",
        "-o",
        "threads_per_worker=2",
        "--LabApp.expose_app_in_browser=True",
    )
    yield started
    started.stop()


def _run_notebook(lab: Lab, browser: Any, name: str) -> list[dict[str, Any]]:
    """Open ``name`` in JupyterLab, run all its cells, screenshot it; return its outputs.

    A notebook that has not finished after 10 minutes fails with its cells' outputs so far and a
    screenshot of where it stands (``notebook-NN-unfinished.png``).
    """
    from playwright.sync_api import TimeoutError as PageTimeout

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    stem = f"notebook-{name.split('-')[0]}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        state_js = STATE_JS.replace("NAME", json.dumps(name))
        # ?reset: a workspace of its own, not the tabs an earlier notebook left open
        page.goto(f"{lab.base}/lab/tree/{name}?reset&token={lab.token}", timeout=120_000)
        page.wait_for_function(f"({state_js})() !== 'starting'", timeout=180_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(f"({state_js})() !== 'running'", timeout=600_000, polling=1000)
        except PageTimeout:
            page.screenshot(path=str(ARTIFACTS / f"{stem}-unfinished.png"), full_page=True)
            so_far = page.evaluate(OUTPUTS_JS)
            raise AssertionError(f"{name} unfinished after 10 minutes: {so_far}") from None
        state = page.evaluate(f"({state_js})()")
        outputs: list[dict[str, Any]] = page.evaluate(OUTPUTS_JS)
        page.wait_for_timeout(1500)  # the last widgets and plots finish drawing
        height = page.evaluate(SCROLL_HEIGHT_JS)
        page.set_viewport_size({"width": 1400, "height": min(int(height) + 200, 16000)})
        page.evaluate(TO_TOP_JS)
        page.wait_for_timeout(500)
        shot = ARTIFACTS / f"{stem}.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()
    assert state == "done", state
    assert _looks_drawn(shot) > 50, f"the screenshot {shot.name} is blank"
    return outputs


def _scheduler_prefixes(address: str) -> set[str]:
    """The task prefixes the lab's scheduler has seen."""

    def prefixes(dask_scheduler: Any) -> list[str]:
        return sorted(dask_scheduler.task_prefixes)

    with Client(address, set_as_default=False) as c:
        return set(c.run_on_scheduler(prefixes))


@pytest.mark.timeout(900)  # 03 trains 200,000 rows for up to 300 rounds
@pytest.mark.parametrize("name", ["01-quickstart.ipynb", "03-fraud-detection.ipynb"])
def test_notebook_runs_on_the_labs_cluster(lab: Lab, browser: Any, name: str) -> None:
    workers = {p.pid for p in _worker_processes(lab)}
    outputs = _run_notebook(lab, browser, name)
    shown = [o for o in outputs if o["type"] == "stream" and o["name"] == "stderr"]
    info = [o["text"] for o in shown if "WARNING" not in o["text"] and "Warning" not in o["text"]]
    assert not info, f"information shown as stderr (pink) in {name}: {info}"
    # the work ran on the lab's cluster, and the notebook started no cluster of its own
    assert "fn" in _scheduler_prefixes(lab.printed("scheduler:"))  # XGBoost's training task
    assert {p.pid for p in _worker_processes(lab)} == workers
    texts = " ".join(o["text"] for o in outputs)
    assert "joined the running cluster" in texts
