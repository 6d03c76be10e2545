"""The ``workbench`` command line."""

from __future__ import annotations

import copy
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click
import yaml

from workbench.errors import WorkbenchError


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE (e.g. -o n_workers=2)")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2 if isinstance(err, (ValueError, TypeError)) else 1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workbench")
def main() -> None:
    """Dask clusters, data and distributed training, on CPUs or GPUs."""
    from workbench.config import setup_logging

    setup_logging()


@main.group()
def cluster() -> None:
    """Start a cluster, or inspect a running one."""


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


_option = click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Deployment option that wins over the profile's, e.g. -o n_workers=2.",
)


@cluster.command("up")
@click.option("--profile", "-p", default=None, help="Profile name or YAML file (default: local).")
@click.option(
    "--tls/--no-tls", default=None, help="Encrypt cluster traffic (default: the profile's)."
)
@_option
@click.option("--minimum", type=int, default=None, help="Adaptive scaling: fewest workers.")
@click.option("--maximum", type=int, default=None, help="Adaptive scaling: most workers.")
@click.option("--idle-timeout", default=None, help="Close after this long idle, e.g. 1h.")
@click.option("--dashboard-address", default=None, help="e.g. 127.0.0.1:8787.")
def cluster_up(
    profile: str | None,
    tls: bool | None,
    options: tuple[str, ...],
    minimum: int | None,
    maximum: int | None,
    idle_timeout: str | None,
    dashboard_address: str | None,
) -> None:
    """Run a cluster in the foreground until Ctrl-C, printing its address and dashboard."""
    from workbench.clusters.start import start_cluster

    try:
        c = start_cluster(
            profile,
            tls=tls,
            minimum=minimum,
            maximum=maximum,
            idle_timeout=idle_timeout,
            dashboard_address=dashboard_address,
            **_parse_options(options),
        )
    except (WorkbenchError, ValueError, TypeError) as err:
        _fail(err)
        return
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        click.echo(f"scheduler: {c.scheduler_address}")
        click.echo(f"dashboard: {c.dashboard_link or 'none'}")
        click.echo(repr(c))
        click.echo("Press Ctrl-C to stop.", err=True)
        sys.stdout.flush()
        while c.status == "running":
            time.sleep(0.5)
        click.echo("the scheduler closed (idle timeout or shut down)", err=True)
    except (KeyboardInterrupt, _Stop):
        click.echo("stopping...", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        c.close()
        click.echo("cluster closed", err=True)


@cluster.command("info")
@click.argument("address")
@click.option("--ca-file", type=click.Path(dir_okay=False), help="TLS: the CA certificate.")
@click.option("--cert-file", type=click.Path(dir_okay=False), help="TLS: the client certificate.")
@click.option("--key-file", type=click.Path(dir_okay=False), help="TLS: the client key.")
@click.option("--timeout", default=None, help="Give up after this long (default 10s).")
def cluster_info(
    address: str,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    timeout: str | None,
) -> None:
    """Show the workers, threads, memory and GPUs of the scheduler at ADDRESS."""
    from dask.utils import format_bytes

    from workbench.clusters.cluster import workers_of
    from workbench.clusters.connect import connect

    security = None
    if ca_file or cert_file or key_file:
        security = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
    try:
        client = connect(address, security=security, timeout=timeout, set_as_default=False)
    except (WorkbenchError, ValueError, TypeError) as err:
        _fail(err)
        return
    try:
        ws = workers_of(client)
        info = client.scheduler_info(n_workers=0)
        dash = info.get("services", {}).get("dashboard")
        click.echo(f"scheduler: {info.get('address', address)}")
        click.echo(f"tls:       {'on' if address.startswith('tls://') else 'off'}")
        click.echo(f"dashboard port: {dash if dash else 'none'}")
        click.echo(
            f"workers:   {len(ws)}, threads: {sum(w.threads for w in ws)}, "
            f"memory: {format_bytes(sum(w.memory_limit for w in ws))}, "
            f"gpus: {sum(1 for w in ws if w.gpu_name)}"
        )
        for w in ws:
            gpu = f", GPU {w.gpu_name} ({format_bytes(w.gpu_memory or 0)})" if w.gpu_name else ""
            click.echo(
                f"  {w.name}  {w.address}  threads={w.threads}  "
                f"memory={format_bytes(w.memory_limit)}{gpu}"
            )
    finally:
        client.close()


@cluster.command("render")
@click.argument("profile")
@_option
@click.option("--tls/--no-tls", default=None, help="Override the profile's TLS setting.")
@click.option(
    "--with-secret",
    is_flag=True,
    help="Kubernetes: include the Secret with the private key (keep the output private).",
)
def cluster_render(
    profile: str, options: tuple[str, ...], tls: bool | None, with_secret: bool
) -> None:
    """Print what PROFILE deploys, without deploying it.

    Kubernetes: the manifests for `kubectl apply -f -` (the TLS Secret is made with the
    `kubectl create secret` line printed first, so the private key never lands in a
    manifest file); Slurm: one job's batch script; SSH: the scheduler and each worker, with
    the SSH host it runs on and the options it starts with (its own `host` among them).
    """
    from workbench.clusters import remote
    from workbench.clusters.profiles import get_profile
    from workbench.clusters.security import security_for_profile

    try:
        p = get_profile(profile).with_overrides(_parse_options(options))
        if p.kind not in ("kubernetes", "slurm", "ssh"):
            raise ValueError(
                f"profile {p.name!r} is of kind {p.kind}; "
                "render works for kubernetes, slurm and ssh"
            )
        sec = security_for_profile(p.security, remote=True, where=p.where("security"), tls=tls)
        if p.kind == "kubernetes":
            docs = remote.kubernetes_manifests(p, sec, include_secret=with_secret)
            if sec is not None and not with_secret:
                name = p.options.get("tls_secret") or f"{p.options.get('name', 'workbench')}-tls"
                words = ["kubectl", "create", "secret", "generic", str(name)]
                if p.options.get("namespace"):
                    words += ["-n", str(p.options["namespace"])]
                words += [
                    f"--from-file={k}={p.security[f]}"
                    for k, f in (
                        ("ca.pem", "ca_file"),
                        ("cert.pem", "cert_file"),
                        ("key.pem", "key_file"),
                    )
                ]
                click.echo(f"# first: {shlex.join(words)}")
            click.echo(yaml.safe_dump_all(docs, sort_keys=False))
        elif p.kind == "slurm":
            click.echo(remote.slurm_job_script(p, sec))
        else:
            args = remote.ssh_arguments(p, security=sec, dashboard_address="127.0.0.1:8787")
            scheduler, workers, _ = remote.ssh_specs(args)
            # each process: the SSH host it runs on, then how it is started there
            parts = [copy.deepcopy(spec["options"]) for spec in (scheduler, *workers.values())]
            plan = [{"ssh_host": part.pop("address"), **part} for part in parts]
            click.echo(yaml.safe_dump({"scheduler": plan[0], "workers": plan[1:]}, sort_keys=False))
    except (WorkbenchError, ValueError, TypeError) as err:
        _fail(err)


@main.command("profiles")
def profiles_cmd() -> None:
    """List the cluster profiles."""
    from workbench.clusters.profiles import builtin_dir, profiles, user_dir

    click.echo(repr(profiles()))
    click.echo(f"\nbuilt-in: {builtin_dir()}\nyours:    {user_dir()}")


@main.command("hardware")
def hardware_cmd() -> None:
    """Show this machine's cores, memory and GPUs."""
    from dask.utils import format_bytes

    from workbench.hardware import hardware

    hw = hardware()
    click.echo(f"host:   {hw.hostname}")
    click.echo(f"cores:  {hw.cpu_count}")
    click.echo(f"memory: {format_bytes(hw.memory_total)}")
    if hw.gpus:
        for g in hw.gpus:
            click.echo(f"gpu {g.index}:  {g.name}, {format_bytes(g.memory_total)}, {g.uuid}")
    else:
        click.echo(f"gpus:   none ({hw.gpu_note})")


@main.group()
def data() -> None:
    """The dataset catalog, synthetic data, and what is in a dataset."""


@data.command("list")
def data_list() -> None:
    """List the datasets of the catalog."""
    from workbench.data.catalog import builtin_dir, datasets, user_dir

    click.echo(repr(datasets()))
    click.echo(f"\nbuilt-in: {builtin_dir()}\nyours:    {user_dir()}")


@data.command("generate")
@click.argument("name")
@click.option("--rows", type=int, default=None, help="Rows to make (default: the generator's).")
@click.option("--out", "out", required=True, help="Folder or fsspec URL to write Parquet to.")
@click.option("--partitions", type=int, default=None, help="Number of files.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a folder this command wrote before (never one holding other files).",
)
@click.option("--profile", "-p", default=None, help="Cluster profile to generate on.")
def data_generate(
    name: str,
    rows: int | None,
    out: str,
    partitions: int | None,
    seed: int,
    overwrite: bool,
    profile: str | None,
) -> None:
    """Write synthetic data of domain NAME (fraud, maintenance, demand, higgs) as Parquet."""
    from workbench.clusters.start import start_cluster
    from workbench.data.generate import generate

    try:
        with start_cluster(profile) as cluster:
            ds = generate(
                name,
                rows,
                out,
                partitions=partitions,
                seed=seed,
                overwrite=overwrite,
                client=cluster.get_client(),
            )
    except (WorkbenchError, ValueError, TypeError, FileExistsError) as err:
        _fail(err)
        return
    click.echo(f"wrote {ds.rows:,} rows in {ds.npartitions} partitions to {out}")


@data.command("info")
@click.argument("source")
@click.option("--format", "fmt", default=None, help="parquet or csv, if the names do not say.")
def data_info(source: str, fmt: str | None) -> None:
    """Show the schema, files, rows and sizes of a dataset (catalog name, path or URL).

    Reads file metadata only; nothing is loaded.
    """
    from dask.utils import format_bytes

    from workbench.data.catalog import get_entry, resolve_entry
    from workbench.data.sources import inspect_source

    try:
        entry = get_entry(source) if "/" not in source and "://" not in source else None
        path, entry_format = source, None
        if entry is not None:
            where = resolve_entry(entry)
            path, entry_format = where.path, where.format
            click.echo(f"catalog entry {entry.name!r}: {entry.description}")
            click.echo(f"task: {entry.task}  target: {entry.target}")
            if where.generator is not None:
                click.echo(
                    f"generator: {where.generator}, {where.rows:,} rows, "
                    f"{where.partitions} partitions -> {path}"
                )
                if not Path(path).is_dir():
                    click.echo("not generated yet (wb.load generates it on first use)")
                    return
        info = inspect_source(path, format=fmt or entry_format)
    except (WorkbenchError, ValueError, TypeError) as err:
        _fail(err)
        return
    click.echo(f"format: {info.format}, files: {len(info.urls)}")
    if info.rows is not None:
        click.echo(f"rows: {info.rows:,}")
    click.echo(
        f"bytes: {format_bytes(info.nbytes)} ({'uncompressed' if info.schema else 'on disk'})"
    )
    if info.schema is not None:
        click.echo("columns:")
        for field in info.schema:
            click.echo(f"  {field.name}: {field.type}")
    for url in info.urls[:5]:
        click.echo(f"  {url}")
    if len(info.urls) > 5:
        click.echo(f"  ... and {len(info.urls) - 5} more")


@main.command("demo")
@click.option("--rows", type=int, default=1_000_000, show_default=True, help="Rows of fraud data.")
@click.option(
    "--out",
    default="workbench-demo",
    show_default=True,
    help="Folder for data and model; an OUT/data holding your own files is refused.",
)
@click.option("--rounds", type=int, default=300, show_default=True, help="Most boosting rounds.")
@click.option("--model", default="xgboost", show_default=True, help="xgboost, lightgbm or linear.")
@click.option("--profile", "-p", default=None, help="Cluster profile (default: local).")
def demo_cmd(rows: int, out: str, rounds: int, model: str, profile: str | None) -> None:
    """Generate card transactions, train XGBoost on a local cluster, evaluate and save it."""
    from workbench.demo import run

    try:
        run(rows=rows, out=out, rounds=rounds, profile=profile, model=model)
    except (WorkbenchError, ValueError, TypeError, FileExistsError) as err:
        _fail(err)


def _load_for_cli(
    data: str,
    target: str | None,
    client: Any,
    categorical: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
) -> Any:
    from workbench.data.catalog import get_entry
    from workbench.data.load import load
    from workbench.data.sources import inspect_source

    if target is None and get_entry(data) is not None:
        return load(data, client=client)
    if target is None:
        raise ValueError(f"--target is needed for {data!r}, which is not a catalog name")
    features = None
    if drop:
        schema = inspect_source(data).schema
        names = [f.name for f in schema] if schema is not None else []
        unknown = [c for c in drop if c not in names]
        if unknown:
            raise ValueError(f"--drop {unknown}: no such column in {data!r}; columns: {names}")
        features = [c for c in names if c not in drop and c != target]
    return load(data, target=target, features=features, categorical=categorical, client=client)


@main.command("train")
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
    help="Evaluate the training rows every round too (always when --valid 0).",
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
    from workbench.clusters.start import start_cluster
    from workbench.training import store
    from workbench.training.api import train

    try:
        if_exists: store.IfExists = "model" if overwrite else "refuse"
        try:
            store.check_target(out, if_exists, how="add --overwrite")
        except ValueError as e:
            raise ValueError(f"--out: {e}") from None
        from workbench.data.catalog import get_entry

        if target is None and (categorical or drop) and get_entry(data) is not None:
            raise ValueError(
                f"{data!r} is a catalog entry, which names its own target, categorical and "
                "ignored columns; --categorical and --drop apply with --target (a path or URL)"
            )
        parsed = _parse_options(params)
        if not 0 <= valid_fraction < 1:
            raise ValueError(f"--valid {valid_fraction}: give a fraction in [0, 1), e.g. 0.1")
        with start_cluster(profile) as cluster:
            client = cluster.get_client()
            ds = _load_for_cli(data, target, client, categorical, drop)
            valid = None
            if valid_fraction > 0:
                ds, valid = ds.split(
                    (1 - valid_fraction, valid_fraction), seed=0, stratify=ds.task != "regression"
                )
            trained = train(
                ds,
                valid,
                model=model,
                params=parsed,
                rounds=rounds,
                early_stopping=early_stopping,
                client=client,
                progress=progress,
                eval_train=True if eval_train or valid is None else None,
            )
            path = trained.save(out, overwrite=overwrite)
    except (WorkbenchError, ValueError, TypeError, OSError) as err:
        _fail(err)
        return
    for name, value in trained.metrics.items():
        click.echo(f"valid {name}: {value:.4f}")
    click.echo(f"model saved to {path}")


@main.command("predict")
@click.option("--model", "model_path", required=True, help="A model file from train/save.")
@click.option("--data", "data", required=True, help="Catalog name, path, glob or URL.")
@click.option("--out", required=True, help="Folder or URL to write Parquet predictions to.")
@click.option("--proba", is_flag=True, help="Also write class probabilities.")
@click.option("--profile", "-p", default=None, help="Cluster profile (default: local).")
def predict_cmd(model_path: str, data: str, out: str, proba: bool, profile: str | None) -> None:
    """Predict with a saved model; write one row per input row, in input order."""
    from workbench.clusters.start import start_cluster
    from workbench.training.model import load_model
    from workbench.training.predict_io import check_out, write_predictions

    try:
        check_out(out)
        model = load_model(model_path)
        with start_cluster(profile) as cluster:
            client = cluster.get_client()
            from workbench.data.load import load

            categorical = [c for c, k in model.features.items() if k == "categorical"]
            ds = load(
                data,
                features=model.feature_names,
                categorical=categorical,
                client=client,
                check=False,
            )
            rows = write_predictions(model, ds, out, proba=proba, client=client)
    except (WorkbenchError, ValueError, TypeError, OSError) as err:
        _fail(err)
        return
    click.echo(f"wrote {rows:,} predictions to {out}")


@main.command("lab", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--profile", "-p", default=None, help="Cluster profile to start (default: local).")
@click.option("--tls/--no-tls", default=None, help="Encrypt cluster traffic (default: profile's).")
@_option
@click.option(
    "--scheduler", default=None, help="Use a running scheduler instead, e.g. tls://h:8786."
)
@click.option("--ca-file", type=click.Path(dir_okay=False), help="TLS: the CA certificate.")
@click.option("--cert-file", type=click.Path(dir_okay=False), help="TLS: the client certificate.")
@click.option("--key-file", type=click.Path(dir_okay=False), help="TLS: the client key.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="JupyterLab's address.")
@click.option("--port", type=int, default=None, help="JupyterLab's port (default: Jupyter's).")
@click.option("--browser/--no-browser", default=True, help="Open a browser tab.")
@click.option("--root-dir", default=None, help="The folder JupyterLab shows (default: here).")
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
def lab_cmd(
    profile: str | None,
    tls: bool | None,
    options: tuple[str, ...],
    scheduler: str | None,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    ip: str,
    port: int | None,
    browser: bool,
    root_dir: str | None,
    jupyter_args: tuple[str, ...],
) -> None:
    """Start JupyterLab with the Dask dashboard inside, on a new or a running cluster.

    Without --scheduler, starts the profile's cluster here and keeps it until JupyterLab exits.
    dask-labextension's dashboard URL is set to the cluster's, and notebooks' kernels connect
    to it: distributed.Client() and workbench calls with client=None use it. Arguments after
    the options (or after --) go to JupyterLab.
    """
    from workbench import lab

    if scheduler is not None and (profile or options or tls is not None):
        _fail(
            ValueError("--scheduler uses a running cluster: --profile, --tls and -o do not apply")
        )
        return
    if scheduler is None and (ca_file or cert_file or key_file):
        _fail(ValueError("--ca-file, --cert-file and --key-file go with --scheduler ADDRESS"))
        return
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers inherit it: Ctrl-C
    try:  # is JupyterLab's to confirm, and must not kill the workers of a cluster started here
        lab.check_installed()
        if scheduler is not None:
            from workbench.clusters.connect import connect

            security = None
            if ca_file or cert_file or key_file:
                security = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
            client = connect(scheduler, security=security, set_as_default=False)
            owner: Any = client
            address, sec = scheduler, client.security if scheduler.startswith("tls://") else None
            try:
                dashboard = client.dashboard_link or ""
            except KeyError:  # a scheduler without a dashboard
                dashboard = ""
        else:
            from workbench.clusters.start import start_cluster

            owner = start_cluster(profile, tls=tls, **_parse_options(options))
            address, dashboard, sec = owner.scheduler_address, owner.dashboard_link, owner.security
    except (WorkbenchError, ValueError, TypeError, ImportError) as err:
        _fail(err)
        return
    finally:
        signal.signal(signal.SIGINT, interrupt)
    try:
        click.echo(f"scheduler: {address}")
        click.echo(f"dashboard: {dashboard or 'none'}")
        click.echo(
            "kernels connect to it: distributed.Client(), or workbench calls with client=None"
        )
        sys.stdout.flush()
        status = lab.run(
            address,
            dashboard,
            sec,
            echo=lambda m: click.echo(m, err=True),
            ip=ip,
            port=port,
            browser=browser,
            root_dir=root_dir,
            extra=jupyter_args,
        )
    finally:
        owner.close()
        click.echo(
            "JupyterLab stopped; " + ("cluster closed" if scheduler is None else "disconnected"),
            err=True,
        )
    if status:
        sys.exit(status)


@main.group()
def tls() -> None:
    """TLS certificates for clusters."""


@tls.command("make")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="Host name or IP address clients use to reach the scheduler or a worker (repeat).",
)
@click.option("--days", default=365, show_default=True, help="Validity in days.")
@click.option("--overwrite", is_flag=True, help="Replace certificates already in FOLDER.")
def tls_make(folder: str, hosts: tuple[str, ...], days: int, overwrite: bool) -> None:
    """Write a new CA, a server and a client certificate into FOLDER (one folder per cluster).

    cert.pem/key.pem (the server certificate, for every --host) go to the scheduler and the
    workers; client-cert.pem/client-key.pem to users, notebooks and Lab kernels; ca.pem to all.
    """
    from workbench.clusters.certificates import make_certificates

    try:
        paths = make_certificates(
            folder, hosts or ("127.0.0.1", "localhost"), days=days, overwrite=overwrite
        )
    except (ValueError, OSError) as err:
        _fail(err)
        return
    for role, p in paths.items():
        click.echo(f"{role}: {p}")
    click.echo(
        "scheduler and workers: ca_file, cert_file, key_file; clients (users, notebooks): "
        "ca_file and the client certificate, e.g. wb.connect(address, security={'ca_file': "
        "..., 'cert_file': <client_cert_file>, 'key_file': <client_key_file>})"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
