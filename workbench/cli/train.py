"""``workbench train`` and ``workbench predict``: a model file from a dataset, and predictions."""

from __future__ import annotations

import logging

import click

from workbench import api
from workbench.cli.options import fail, parse_options
from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)


@click.command("train")
@click.option("--data", "data", required=True, help="Catalog name, path, glob or URL.")
@click.option("--target", default=None, help="Target column (a catalog entry names its own).")
@click.option("--categorical", multiple=True, metavar="COL", help="A categorical column.")
@click.option("--drop", multiple=True, metavar="COL", help="A column not to train on (an id).")
@click.option("--model", default="xgboost", show_default=True, help="xgboost, lightgbm or linear.")
@click.option("--rounds", type=int, default=100, show_default=True)
@click.option("--early-stopping", type=int, default=None, help="Rounds without improvement.")
@click.option(
    "--valid",
    "valid_fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Fraction held out for validation (0: none).",
)
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A model parameter.")
@click.option("--out", required=True, help="Model file to write (local path or URL).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing model file at --out (never a file that is not a model).",
)
@click.option("--profile", "-p", default=None, help="Cluster profile (default: local).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar.")
@click.option(
    "--eval-train",
    is_flag=True,
    help="Evaluate the training rows every round too (off by default, as in XGBoost).",
)
def train_cmd(
    data: str,
    target: str | None,
    categorical: tuple[str, ...],
    drop: tuple[str, ...],
    model: str,
    rounds: int,
    early_stopping: int | None,
    valid_fraction: float,
    params: tuple[str, ...],
    out: str,
    overwrite: bool,
    profile: str | None,
    progress: bool | None,
    eval_train: bool,
) -> None:
    """Train a model on a dataset and save it; print its validation metrics.

    An existing --out is refused before anything runs, unless --overwrite is given and it is a
    workbench model file (a file that is not a model is never replaced).
    """
    parsed = parse_options(params)
    try:
        trained, path = api.train_to_file(
            data,
            out,
            target=target,
            categorical=categorical,
            drop=drop,
            model=model,
            params=parsed,
            rounds=rounds,
            early_stopping=early_stopping,
            valid_fraction=valid_fraction,
            overwrite=overwrite,
            profile=profile,
            progress=progress,
            eval_train=eval_train,
        )
    except (WorkbenchError, ValueError, TypeError, OSError) as err:
        fail(err)
    if trained.info.get("stopped_early"):  # the line the progress bar ended with
        click.echo(trained.info["stopped_early"])
    for name, value in trained.metrics.items():
        click.echo(f"valid {name}: {value:.4f}")
    click.echo(f"model saved to {path}")


@click.command("predict")
@click.option("--model", "model_path", required=True, help="A model file from train/save.")
@click.option("--data", "data", required=True, help="Catalog name, path, glob or URL.")
@click.option("--out", required=True, help="Folder or URL to write Parquet predictions to.")
@click.option("--proba", is_flag=True, help="Also write class probabilities.")
@click.option("--profile", "-p", default=None, help="Cluster profile (default: local).")
def predict_cmd(model_path: str, data: str, out: str, proba: bool, profile: str | None) -> None:
    """Predict with a saved model; write one row per input row, in input order."""
    try:
        rows = api.predict_to_folder(model_path, data, out, proba=proba, profile=profile)
    except (WorkbenchError, ValueError, TypeError, OSError) as err:
        fail(err)
    click.echo(f"wrote {rows:,} predictions to {out}")
