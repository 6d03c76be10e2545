"""Profiles: listing, lookup, user folder, and clear errors for every malformed file."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench as wb
from workbench.clusters.profiles import get_profile, load_profile_file

SHIPPED = {"local", "local-cpu", "local-gpu", "ssh", "kubernetes", "slurm", "gateway"}


def test_shipped_profiles_are_listed_and_valid() -> None:
    ps = wb.profiles()
    assert set(ps) >= SHIPPED
    assert ps.errors == {}
    assert ps["local"].kind == "auto"
    assert ps["local-gpu"].kind == "local-cuda"
    assert "local-cpu" in repr(ps)
    html = ps._repr_html_()
    assert "<table>" in html and "local-gpu" in html


def test_remote_profiles_require_tls_by_default() -> None:
    ps = wb.profiles()
    for name in ("ssh", "kubernetes", "slurm", "gateway"):
        assert ps[name].remote and ps[name].tls, name
    assert not ps["local-cpu"].tls


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(wb.ProfileError) as err:
        get_profile("lcoal")
    assert "'lcoal'" in str(err.value)
    assert "local-cpu" in str(err.value) and "ssh" in str(err.value)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: local\noptions:\n  n_workers: [1, 2\n  threads: 3\n")
    with pytest.raises(wb.ProfileError) as err:
        load_profile_file(bad)
    msg = str(err.value)
    assert str(bad) in msg
    assert ":4:" in msg or ":5:" in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("kind: spaceship\n", "use one of"),
        ("kind: local\nworkers: 2\n", "unknown key 'workers'"),
        ("kind: local\noptions: 3\n", "'options' must be a mapping"),
        ("kind: local\nsecurity: {tls: maybe}\n", "security.tls must be true or false"),
        ("kind: local\nsecurity: {cafile: x}\n", "unknown security key 'cafile'"),
        ("kind: auto\ngpu: local-gpu\n", "needs both"),
        ("kind: local\nadapt: {min: 1}\n", "unknown adapt key 'min'"),
        ("kind: [local]\n", "use one of"),
        ("kind: local\n1: x\n", "must be a name"),
        ("kind: local\noptions: {1: 2, n_workers: 1}\n", "must be a name"),
        ("kind: local\nidle_timeout: soon\n", "is not a duration"),
        ("kind: local\ndashboard: {adress: x}\n", "unknown dashboard key 'adress'"),
    ],
)
def test_invalid_profiles_are_refused_with_file_and_line(
    tmp_path: Path, text: str, needle: str
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(wb.ProfileError) as err:
        load_profile_file(f)
    assert needle in str(err.value)
    assert str(f) in str(err.value)


def test_user_folder_adds_and_replaces_profiles(user_profiles: Path) -> None:
    (user_profiles / "mine.yaml").write_text(
        "kind: local\ndescription: my own\noptions: {n_workers: 1}\n"
    )
    (user_profiles / "local-cpu.yaml").write_text("kind: local\ndescription: replaced\n")
    (user_profiles / "broken.yaml").write_text("kind: [\n")
    ps = wb.profiles()
    assert ps["mine"].description == "my own"
    assert ps["local-cpu"].description == "replaced"
    assert "broken" in ps.errors and "not valid YAML" in ps.errors["broken"]
    assert "broken" in repr(ps)


def test_security_paths_resolve_relative_to_the_profile(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("kind: ssh\nsecurity: {ca_file: certs/ca.pem, cert_file: /abs/c.pem}\n")
    p = load_profile_file(f)
    assert p.security["ca_file"] == str(tmp_path / "certs" / "ca.pem")
    assert p.security["cert_file"] == "/abs/c.pem"
    assert p.tls


def test_profile_path_can_be_given_directly(tmp_path: Path) -> None:
    f = tmp_path / "direct.yaml"
    f.write_text("kind: local\n")
    assert get_profile(f).name == "direct"
    with pytest.raises(wb.ProfileError, match="does not exist"):
        get_profile(tmp_path / "nope.yaml")
