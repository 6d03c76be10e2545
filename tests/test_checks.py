"""The package's argument checks: one rule for whole numbers and fractions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from distributed import Client

import workbench as wb
from workbench.checks import ArgumentTypeError, fraction, split_fractions, whole_number


def test_whole_number_accepts_numpy_integers_and_refuses_bool_and_floats() -> None:
    assert whole_number(np.int64(5), "rows", 1) == 5
    assert type(whole_number(np.int32(0), "seed")) is int
    for bad in (True, 5.0, "5", None):
        with pytest.raises(TypeError, match=r"rows=.* must be a whole number >= 1"):
            whole_number(bad, "rows", 1)
    with pytest.raises(ValueError, match=r"seed=-1 must be a whole number >= 0"):
        whole_number(-1, "seed")


def test_fraction_and_split_fractions() -> None:
    assert fraction(np.float32(0.5), "subsample") == 0.5
    for bad in (0, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"subsample=.* must be a number in \(0, 1\]"):
            fraction(bad, "subsample")
    with pytest.raises(TypeError, match="subsample=True"):
        fraction(True, "subsample")
    assert split_fractions([0.8, 0.2]) == (0.8, 0.2)
    with pytest.raises(ValueError, match=r"sum to 0\.8"):
        split_fractions((0.5, 0.3))


def test_generate_and_split_agree_on_numpy_integers(client: Client, tmp_path: Path) -> None:
    """``generate`` refused ``np.int64`` rows and seeds that ``split`` accepted."""
    ds = wb.generate("fraud", np.int64(200), tmp_path / "f", seed=np.int64(1), client=client)
    assert ds.rows == 200
    train, test = ds.split((0.5, 0.5), seed=np.int64(3))
    assert train.count_rows() + test.count_rows() == 200
    with pytest.raises(TypeError, match=r"rows=2\.5"):
        wb.generate("fraud", 2.5, tmp_path / "g", client=client)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed=-1"):
        ds.split((0.5, 0.5), seed=-1)


def test_a_wrong_type_is_both_a_type_error_and_a_value_error(tmp_path: Path) -> None:
    """One rule everywhere; callers that caught either exception still catch it."""
    for call in (
        lambda: whole_number("10", "rounds", 1, hint="e.g. rounds=100"),
        lambda: wb.make_certificates(tmp_path / "c", days=1.5),
    ):
        with pytest.raises(ArgumentTypeError) as info:
            call()
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    with pytest.raises(
        ArgumentTypeError,
        match=r"rounds='10' must be a whole number >= 1, not str: e\.g\. rounds=100",
    ):
        whole_number("10", "rounds", 1, hint="e.g. rounds=100")
    with pytest.raises(ValueError, match=r"days=0 must be a whole number >= 1"):
        wb.make_certificates(tmp_path / "d", days=0)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
