"""How a training's progress reads, live and saved: the end of the bar, its label, notes.

A training that stops early ends as a success (a full bar, the round kept and its score), in a
terminal, in the `train` command and in a notebook's widget; a failed or interrupted one still
ends as failed. In a notebook, information is a neutral note and warnings stay on stderr; the
plain text a saved notebook keeps of the bar is its final state. The notebook checks run a
real kernel (nbclient) and read the saved .ipynb file.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from distributed import Client
from nbclient import NotebookClient

import workbench as wb
from workbench.cli import main
from workbench.config import in_kernel, setup_logging
from workbench.training.progress import Progress, label, report, stopped_early

# what tqdm writes at the end: "xgboost noisy: 100%|####| 12/12 [00:03, stopped early at ...]"
FINAL = re.compile(r"(\d+)/(\d+) \[[0-9:]+, ([^\]\r\n]+)\]")


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Noisy rows: a model that learns fast (eta=0.5) improves for some rounds, then overfits."""
    folder = tmp_path_factory.mktemp("data") / "noisy"
    folder.mkdir()
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=n) > 0).astype("int64")
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(y=y)
    for k in range(2):
        frame.iloc[k::2].to_parquet(folder / f"part.{k}.parquet", index=False)
    return folder


def test_the_label_is_the_model_and_the_dataset_name() -> None:
    assert label("xgboost", "data/fraud[part 1/3]") == "xgboost fraud"
    assert label("xgboost", "fraud[part 1/3][part 2/2]") == "xgboost fraud"
    assert label("lightgbm", "s3://bucket/higgs/*.parquet[part 2/3]") == "lightgbm higgs"
    assert label("xgboost", "/tmp/x/one.parquet") == "xgboost one"
    assert label("linear", "https://user:secret@host") == "linear host"  # no password
    long = label("xgboost", "data/" + "transactions_of_the_last_ten_years")
    assert len(long) == 28 and long.endswith("\u2026") and long.startswith("xgboost trans")


def test_the_line_of_an_early_stop_names_the_round_kept_and_its_score() -> None:
    history = {"valid": {"logloss": [0.6, 0.5, 0.55, 0.56], "auc": [0.7, 0.83871, 0.8, 0.79]}}
    assert (
        stopped_early(4, 200, 1, history) == "stopped early at 4, best round 1 (valid-auc 0.8387)"
    )
    assert stopped_early(200, 200, 150, history) is None  # every round ran: no early stop
    assert stopped_early(4, 200, None, history) is None  # no early stopping asked
    train_only = {"train": {"rmse": [3.0, 2.0, 2.5]}}
    assert (
        stopped_early(3, 10, 1, train_only)
        == "stopped early at 3, best round 1 (train-rmse 2.0000)"
    )


def test_info_goes_to_stderr_outside_a_notebook(capsys: pytest.CaptureFixture[str]) -> None:
    assert not in_kernel()  # pytest is no Jupyter kernel
    setup_logging()
    logging.getLogger("workbench.test_progress_display").info("wrote 50,000 rows")
    logging.getLogger("workbench.test_progress_display").warning("a warning")
    out = capsys.readouterr()
    assert "workbench: wrote 50,000 rows" in out.err and "workbench: a warning" in out.err
    assert out.out == ""  # stdout stays for results


def test_the_train_command_ends_an_early_stop_as_a_success(noisy: Path, tmp_path: Path) -> None:
    """The bar (stderr) ends full with the line the command prints (stdout), not red at 42/200."""
    args = ["train", "--data", str(noisy), "--target", "y", "--rounds", "200"]
    args += ["--early-stopping", "5", "--valid", "0.3", "--param", "eta=0.5", "--progress"]
    args += ["--param", "max_depth=4", "-p", "local-cpu", "--out", str(tmp_path / "m.wbm")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    model = wb.load_model(str(tmp_path / "m.wbm"))
    done, best = len(model.history), model.best_iteration
    assert best is not None and 0 < best < done < 200
    auc = model.history["valid-auc"].iloc[best]
    line = f"stopped early at {done}, best round {best} (valid-auc {auc:.4f})"
    assert model.info["stopped_early"] == line
    assert line in result.stdout.splitlines()  # the command says it
    # the bar said what it did before round 1, then ended complete with the same line
    assert re.search(r"0/200 .*reading the data on \d+ workers?\]", result.stderr)
    assert re.search(r"0/200 .*building the training matrices on \d+ workers?\]", result.stderr)
    last = result.stderr.split("\r")[-1]
    assert last.startswith("xgboost noisy: 100%"), last
    match = FINAL.search(last)
    assert match is not None and match.groups() == (str(done), str(done), line), last


def _report_rounds(topic: str, n: int) -> None:
    for r in range(n):
        report(topic, r, {"valid": {"auc": 0.5 + r / 100}})


def _after_rounds(client: Client, bar: Progress, n: int) -> None:
    """Send ``n`` rounds from a worker and wait for the bar to have them."""
    client.submit(_report_rounds, bar.topic, n, pure=False).result()
    deadline = time.monotonic() + 30
    while len(bar.rounds) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_failed_training_ends_as_failed(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    bar = Progress(client, 10, desc="xgboost noisy")

    def fails() -> None:
        _after_rounds(client, bar, 3)
        raise RuntimeError("a worker died")

    with pytest.raises(RuntimeError, match="a worker died"):
        bar.run(fails, outcome=lambda _: "never shown")
    last = capsys.readouterr().err.split("\r")[-1]
    match = FINAL.search(last)
    assert match is not None and match.groups() == ("3", "10", "failed after 3 rounds"), last
    assert "30%" in last and bar.outcome is None


def test_an_interrupted_training_ends_as_interrupted(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C (a real SIGINT): the model so far comes back, and the bar does not turn green."""
    bar = Progress(client, 10, desc="xgboost noisy")
    asked = threading.Event()

    def stops() -> str:
        _after_rounds(client, bar, 4)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        assert asked.wait(30)
        return "the model so far"

    assert bar.run(stops, on_interrupt=asked.set, rounds_of=lambda _: 4) == "the model so far"
    last = capsys.readouterr().err.split("\r")[-1]
    match = FINAL.search(last)
    assert match is not None and match.groups() == ("4", "10", "interrupted after 4 rounds"), last
    assert any("interrupted" in n["note"] for n in bar.notes)


NOTEBOOK = [
    """
    import json, logging, threading, time
    import workbench as wb
    from distributed import Client, LocalCluster
    from workbench.config import in_kernel, setup_logging
    from workbench.training.progress import Progress, report

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    setup_logging()
    print(json.dumps({"in_kernel": in_kernel()}))
    """,
    """
    log = logging.getLogger("workbench.notebook")
    log.info("wrote 50,000 rows of 'fraud' in 8 partitions to data/fraud")
    log.warning("a real warning")
    """,
    """
    ds = wb.load(PATH, target="y", client=client)
    train, valid = ds.split((0.7, 0.3), seed=0)
    model = wb.train(train, valid, rounds=200, early_stopping=5, client=client, progress=True,
                     params={"eta": 0.5, "max_depth": 4})
    print(json.dumps({"line": model.info["stopped_early"], "rounds": len(model.history)}))
    """,
    """
    def rounds(topic, n):
        for r in range(n):
            report(topic, r, {"valid": {"auc": 0.5}})

    bar = Progress(client, 10, desc="xgboost noisy")

    def fails():
        client.submit(rounds, bar.topic, 3, pure=False).result()
        deadline = time.monotonic() + 30
        while len(bar.rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError("a worker died")

    try:
        bar.run(fails)
    except RuntimeError as e:
        print("failed:", e)
    """,
    """
    wb.generate("fraud", 2_000, "generated", partitions=2, client=client)
    client.close()
    cluster.close()
    """,
]


def _widget(nb: dict[str, Any], cell: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The plain text kept of the cell's tqdm widget, and its parts' saved states."""
    (out,) = [
        o
        for o in cell["outputs"]
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    states = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    box = states[out["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]]["state"]
    left, bar, right = (states[c.removeprefix("IPY_MODEL_")]["state"] for c in box["children"])
    text = out["data"]["text/plain"]
    return "".join(text) if isinstance(text, list) else text, {
        "left": left["value"].replace("\u2007", " "),
        "bar": bar,
        "right": right["value"].replace("\u2007", " "),
    }


def _text(outputs: list[dict[str, Any]], name: str) -> str:
    return "".join(
        "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
        for o in outputs
        if o["output_type"] == "stream" and o["name"] == name
    )


def test_a_notebook_shows_and_saves_the_final_state(noisy: Path, tmp_path: Path) -> None:
    """In a real kernel: info as a note, the widget's end (early stop, failure) live and saved."""
    cells = [textwrap.dedent(c) for c in NOTEBOOK]
    cells[0] = f"PATH = {str(noisy)!r}\n" + cells[0]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    saved = tmp_path / "trained.ipynb"
    nbformat.write(nb, saved)
    book = json.loads(saved.read_text())  # what GitHub and nbviewer read
    setup_cell, notes, training, failure, generated = book["cells"]

    assert json.loads(_text(setup_cell["outputs"], "stdout")) == {"in_kernel": True}

    # information: a neutral HTML note, wrapped between words; warnings: stderr
    (note,) = [o for o in notes["outputs"] if o["output_type"] == "display_data"]
    html = "".join(note["data"]["text/html"])
    assert (
        "workbench: wrote 50,000 rows of &#x27;fraud&#x27;" in html
        and "white-space: normal" in html
    )
    assert "".join(note["data"]["text/plain"]) == (
        "workbench: wrote 50,000 rows of 'fraud' in 8 partitions to data/fraud"
    )
    assert "wrote" not in _text(notes["outputs"], "stderr") + _text(notes["outputs"], "stdout")
    assert "workbench: a real warning" in _text(notes["outputs"], "stderr")

    # an early stop: a full green bar with the line, in the widget and in the saved text
    result = json.loads(_text(training["outputs"], "stdout").splitlines()[-1])
    line, done = result["line"], result["rounds"]
    assert line.startswith(f"stopped early at {done}, best round ") and "(valid-auc 0." in line
    text, parts = _widget(book, training)
    assert text.startswith("xgboost noisy: 100%"), text
    match = FINAL.search(text)
    assert match is not None and match.groups() == (str(done), str(done), line), text
    assert "/200" not in text  # not the first state, nor a stale count
    assert parts["bar"]["bar_style"] == "success"
    assert parts["bar"]["value"] == parts["bar"]["max"] == done
    assert line in parts["right"] and "xgboost noisy" in parts["left"]
    for side in ("left", "right"):  # on one line in a narrow cell
        assert parts[side].startswith('<span style="white-space: nowrap">')
    assert not _text(training["outputs"], "stderr").strip()  # nothing looks like an error

    # a failure stays a failure: red, where it stopped
    text, parts = _widget(book, failure)
    match = FINAL.search(text)
    assert match is not None and match.groups() == ("3", "10", "failed after 3 rounds"), text
    assert parts["bar"]["bar_style"] == "danger" and parts["bar"]["value"] == 3
    assert "failed: a worker died" in _text(failure["outputs"], "stdout")

    # wb.generate's bar over the partitions is saved in its final state too
    text, parts = _widget(book, generated)
    assert text.startswith("generate fraud: 100%") and " 2/2 " in text, text
    assert parts["bar"]["value"] == parts["bar"]["max"] == 2
