"""``workbench tune``: a hyperparameter study on a dataset, its best model saved."""

from __future__ import annotations

import logging

import click

from workbench import api
from workbench.cli.options import fail, parse_options
from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)


def _early_stopping(value: str) -> int | str | None:
    if value in ("auto", "none"):
        return None if value == "none" else value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: a number of rounds, 'auto' or 'none'") from None


@click.command("tune")
@click.option("--data", "data", required=True, help="Catalog name, path, glob or URL.")
@click.option("--target", default=None, help="Target column (a catalog entry names its own).")
@click.option("--categorical", multiple=True, metavar="COL", help="A categorical column.")
@click.option("--drop", multiple=True, metavar="COL", help="A column not to train on (an id).")
@click.option("--model", default="xgboost", show_default=True, help="xgboost, lightgbm or linear.")
@click.option("--trials", type=int, default=50, show_default=True)
@click.option("--rounds", type=int, default=500, show_default=True, help="Rounds per trial.")
@click.option(
    "--early-stopping",
    default="auto",
    show_default=True,
    help="Rounds without improvement, 'auto' (20 where the model can) or 'none'.",
)
@click.option(
    "--valid",
    "valid_fraction",
    type=float,
    default=0.2,
    show_default=True,
    help="Fraction held out to judge the trials.",
)
@click.option("--metric", default=None, help="Validation metric to optimise (the model's last).")
@click.option(
    "--placement",
    type=click.Choice(["auto", "packed", "gang"]),
    default="auto",
    show_default=True,
    help="packed: a whole trial per worker; gang: one distributed trial at a time.",
)
@click.option("--pruning/--no-pruning", default=None, help="Stop trials that fall behind.")
@click.option("--experiment", default=None, help="MLflow experiment to record the trials in.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A fixed parameter.")
@click.option("--seed", type=int, default=None, help="The sampler's seed.")
@click.option("--timeout", type=float, default=None, help="Seconds after which no trial starts.")
@click.option("--out", default=None, help="Model file for the best model (local path or URL).")
@click.option("--overwrite", is_flag=True, help="Replace an existing model file at --out.")
@click.option("--profile", "-p", default=None, help="Cluster profile (default: local).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar.")
def tune_cmd(
    data: str,
    target: str | None,
    categorical: tuple[str, ...],
    drop: tuple[str, ...],
    model: str,
    trials: int,
    rounds: int,
    early_stopping: str,
    valid_fraction: float,
    metric: str | None,
    placement: str,
    pruning: bool | None,
    experiment: str | None,
    params: tuple[str, ...],
    seed: int | None,
    timeout: float | None,
    out: str | None,
    overwrite: bool,
    profile: str | None,
    progress: bool | None,
) -> None:
    """Search a model's parameters on a dataset; print the trials and the best parameters.

    The model's default space is searched (see wb.tune); --param fixes a parameter for every
    trial. With --out the best parameters' model is saved there.
    """
    parsed = parse_options(params)
    try:
        study, path = api.tune_on(
            data,
            target=target,
            categorical=categorical,
            drop=drop,
            model=model,
            params=parsed,
            trials=trials,
            rounds=rounds,
            early_stopping=_early_stopping(early_stopping),
            valid_fraction=valid_fraction,
            metric=metric,
            placement=placement,
            pruning=pruning,
            experiment=experiment,
            seed=seed,
            timeout=timeout,
            out=out,
            overwrite=overwrite,
            profile=profile,
            progress=progress,
        )
    except (WorkbenchError, ValueError, TypeError, OSError) as err:
        fail(err)
    table = study.trials.drop(columns=["started"]).set_index("number")
    click.echo(table.to_string(float_format=lambda v: f"{v:.5g}"))
    click.echo(f"{study!r}")
    click.echo(f"best valid-{study.metric}: {study.best_value:.5g} (trial {study.best_trial})")
    for name, value in study.best_params.items():
        click.echo(f"  {name} = {value!r}")
    if study.experiment:
        click.echo(f"recorded in MLflow experiment {study.experiment['name']!r} at "
                   f"{study.experiment['uri']}")  # fmt: skip
    if path:
        click.echo(f"best model saved to {path}")
