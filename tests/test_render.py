"""kubernetes and slurm profiles render their cluster spec / job script, no cluster needed."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import workbench as wb
from tests.conftest import children, threads_settle
from workbench.cli import main
from workbench.clusters import remote
from workbench.clusters.profiles import get_profile
from workbench.clusters.security import security_for_profile


def _tls_profile(user_profiles: Path, name: str, certs: dict, **changes: object) -> str:
    data = yaml.safe_load((Path(wb.__file__).parents[1] / "clusters" / f"{name}.yaml").read_text())
    data["security"] = {"tls": True, **{k: str(v) for k, v in certs.items()}}
    data["options"].update(changes)
    (user_profiles / f"{name}-test.yaml").write_text(yaml.safe_dump(data))
    return f"{name}-test"


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_kubernetes_spec_holds_the_profile_values_and_tls(user_profiles: Path, certs: dict) -> None:
    name = _tls_profile(user_profiles, "kubernetes", certs, n_workers=3, namespace="ml")
    p = get_profile(name)
    sec = security_for_profile(p.security, remote=True, where="test")
    secret, cluster, autoscaler = remote.kubernetes_manifests(p, sec)
    assert secret["kind"] == "Secret" and secret["metadata"] == {
        "name": "workbench-tls",
        "namespace": "ml",
    }
    assert base64.b64decode(secret["data"]["ca.pem"]) == Path(certs["ca_file"]).read_bytes()
    assert cluster["kind"] == "DaskCluster"
    assert cluster["metadata"] == {"name": "workbench", "namespace": "ml"}
    sched = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert cluster["spec"]["worker"]["replicas"] == 3
    assert sched["image"] == worker["image"] == p.options["image"]
    assert sched["args"][:2] == ["dask", "scheduler"] and sched["args"][-2:] == [
        "--protocol",
        "tls",
    ]
    assert worker["args"][:4] == ["dask", "worker", "--nthreads", "4"]
    assert worker["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    for c in (sched, worker):
        env = _env(c)
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
        assert env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] == "/etc/dask/tls/ca.pem"
        assert env["EXTRA_PIP_PACKAGES"] == "workbench"
        assert {"name": "dask-tls", "mountPath": "/etc/dask/tls", "readOnly": True} in c[
            "volumeMounts"
        ]
    assert (
        _env(worker)["DASK_SCHEDULER_ADDRESS"]
        == "tls://workbench-scheduler.ml.svc.cluster.local:8786"
    )
    assert (
        "distributed.http.scheduler.api" in _env(sched)["DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"]
    )
    assert cluster["spec"]["idleTimeout"] == 7200
    assert autoscaler["kind"] == "DaskAutoscaler"
    assert (autoscaler["spec"]["minimum"], autoscaler["spec"]["maximum"]) == (1, 8)


def test_kubernetes_start_with_tls_explains_the_way(user_profiles: Path, certs: dict) -> None:
    name = _tls_profile(user_profiles, "kubernetes", certs)
    with pytest.raises(wb.ProfileError, match="workbench cluster render"):
        wb.start_cluster(name)


def test_kubernetes_unknown_option(user_profiles: Path, certs: dict) -> None:
    name = _tls_profile(user_profiles, "kubernetes", certs, replicas=3)
    with pytest.raises(wb.ProfileError, match=r"unknown option 'replicas'.*n_workers"):
        wb.start_cluster(name)


def test_slurm_job_script_holds_the_profile_values_and_tls(
    user_profiles: Path, certs: dict
) -> None:
    name = _tls_profile(
        user_profiles,
        "slurm",
        certs,
        queue="gpu-short",
        account="proj-42",
        walltime="00:30:00",
        job_extra_directives=["--gres=gpu:1"],
        job_script_prologue=["source /opt/wb/bin/activate"],
    )
    p = get_profile(name)
    sec = security_for_profile(p.security, remote=True, where="test")
    script = remote.slurm_job_script(p, sec, scheduler="tls://login-1:8786")
    for needle in (
        "#SBATCH -p gpu-short",
        "#SBATCH -A proj-42",
        "#SBATCH -t 00:30:00",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --cpus-per-task=16",
        "source /opt/wb/bin/activate",
        "tls://login-1:8786",
        "--nworkers 2",
        "--nthreads 8",
        f"--tls-ca-file {certs['ca_file']}",
        f"--tls-cert {certs['cert_file']}",
        f"--tls-key {certs['key_file']}",
        "--protocol tls://",
    ):
        assert needle in script, needle


def test_slurm_cluster_object_starts_a_local_tls_scheduler_and_closes_clean(
    user_profiles: Path, certs: dict
) -> None:
    before_threads = {t.name for t in threading.enumerate()}
    before = children()
    name = _tls_profile(user_profiles, "slurm", certs, scheduler_options={"host": "127.0.0.1"})
    # minimum 0: no job is submitted, so no sbatch is needed to construct and close
    with wb.start_cluster(name, dashboard_address="127.0.0.1:0") as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        script = cluster.deployment.job_script()
        assert cluster.scheduler_address in script and "--tls-ca-file" in script
        assert cluster.workers() == []
    assert children() == before
    assert threads_settle(before_threads) == set()


def test_cli_render(user_profiles: Path, certs: dict) -> None:
    name = _tls_profile(user_profiles, "kubernetes", certs)
    result = CliRunner().invoke(main, ["cluster", "render", name, "-o", "n_workers=5"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("# first: kubectl create secret generic workbench-tls -n default")
    assert f"--from-file=key.pem={certs['key_file']}" in first
    assert "PRIVATE KEY" not in result.output
    docs = list(yaml.safe_load_all(result.output))
    assert [d["kind"] for d in docs if d] == ["DaskCluster", "DaskAutoscaler"]
    assert docs[0]["spec"]["worker"]["replicas"] == 5
    result = CliRunner().invoke(main, ["cluster", "render", name, "--with-secret"])
    assert next(d["kind"] for d in yaml.safe_load_all(result.output) if d) == "Secret"
    result = CliRunner().invoke(main, ["cluster", "render", "local-cpu"])
    assert result.exit_code == 2 and "render works for" in result.output
    result = CliRunner().invoke(main, ["cluster", "render", "slurm"])  # no cert files here
    assert result.exit_code == 2 and "certificate files are missing" in result.output
