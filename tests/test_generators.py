"""The synthetic domain generators: determinism, schema, partition sizes and real signal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

from workbench.data.catalog import get_entry, load_entry, resolve_entry
from workbench.data.generators import (
    GENERATORS,
    HIGGS_HIGH_LEVEL,
    HIGGS_LOW_LEVEL,
    N_SERIES,
    get_generator,
    make_partition,
    meta,
    partition_sizes,
)
from workbench.errors import DataError

NAMES = sorted(GENERATORS)


def features_and_target(name: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Model inputs: everything but the target and the row identifiers."""
    target = GENERATORS[name].target
    features = [c for c in frame.columns if c != target and not c.endswith("_id")]
    return frame[features], frame[target]


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties share their average rank)."""
    ranks = pd.Series(score).rank().to_numpy()
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --- the catalog ------------------------------------------------------------------------------
def test_generators_describe_themselves() -> None:
    assert set(GENERATORS) == {"fraud", "maintenance", "demand", "higgs"}
    for name, gen in GENERATORS.items():
        assert gen.name == name and gen.description and "\n" not in gen.description
        assert gen.task in ("binary", "regression") and gen.default_rows > 0
        empty = meta(name)
        assert gen.target in empty.columns
        assert set(gen.categorical) == {
            c for c in empty.columns if isinstance(empty[c].dtype, pd.CategoricalDtype)
        }
        expected = np.int8 if gen.task == "binary" else np.float32
        assert empty[gen.target].dtype == expected
        assert all(  # compact numeric dtypes only
            isinstance(t, pd.CategoricalDtype) or t.itemsize <= 4 or c.endswith("_id")
            for c, t in empty.dtypes.items()
        )
    assert len([c for c in meta("higgs").columns if c != "is_signal"]) == 28


def test_get_generator_unknown_name_lists_the_known_ones() -> None:
    assert get_generator("fraud") is GENERATORS["fraud"]
    with pytest.raises(ValueError, match="'weather'") as err:
        get_generator("weather")
    for name in NAMES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="known"):
        make_partition("weather", 10, 0, 0, 0)


# --- partition sizes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "partitions"), [(1, 1), (10, 3), (10, 10), (1_000_003, 8), (7, 1), (100, 7)]
)
def test_partition_sizes_split_evenly(rows: int, partitions: int) -> None:
    sizes = partition_sizes(rows, partitions)
    assert len(sizes) == partitions and sum(sizes) == rows
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    assert sizes == partition_sizes(rows, partitions)
    assert partition_sizes(np.int64(rows), partitions) == sizes  # type: ignore[arg-type]


def test_partition_sizes_errors() -> None:
    with pytest.raises(ValueError, match="rows"):
        partition_sizes(0, 1)
    with pytest.raises(ValueError, match="partitions"):
        partition_sizes(10, 0)
    with pytest.raises(ValueError, match=r"partitions \(11\) cannot exceed rows \(10\)"):
        partition_sizes(10, 11)
    with pytest.raises(TypeError):
        partition_sizes(10.0, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        partition_sizes(10, True)


# --- determinism and schema -------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_and_index_give_the_same_frame(name: str) -> None:
    a = make_partition(name, 3_000, 7, 2, 6_000)
    pd.testing.assert_frame_equal(a, make_partition(name, 3_000, 7, 2, 6_000))
    target = GENERATORS[name].target
    other_index = make_partition(name, 3_000, 7, 3, 6_000)
    other_seed = make_partition(name, 3_000, 8, 2, 6_000)
    for other in (other_index, other_seed):
        assert not a[target].equals(other[target])
        assert not a.equals(other)
    assert len(a) == 3_000 and isinstance(a.index, pd.RangeIndex) and a.index[0] == 0


@pytest.mark.parametrize("name", NAMES)
def test_meta_matches_a_made_partition(name: str) -> None:
    empty = meta(name)
    made = make_partition(name, 500, 0, 1, 500)
    assert len(empty) == 0
    assert list(empty.columns) == list(made.columns)
    pd.testing.assert_series_equal(empty.dtypes, made.dtypes)
    pd.testing.assert_frame_equal(empty, make_partition(name, 0, 5, 5, 5))


@pytest.mark.parametrize("name", [n for n in NAMES if GENERATORS[n].categorical])
def test_categorical_levels_are_fixed_across_partitions(name: str) -> None:
    a = make_partition(name, 200, 0, 0, 0)
    b = make_partition(name, 50, 1, 1, 200)  # few rows: not every level appears
    for col in GENERATORS[name].categorical:
        assert a[col].dtype == b[col].dtype == meta(name)[col].dtype
        assert list(a[col].cat.categories) == list(b[col].cat.categories)
        assert len(a[col].cat.categories) >= 2


def test_same_frames_in_another_process() -> None:
    code = (
        "import pandas as pd\n"
        "from workbench.data.generators import GENERATORS, make_partition\n"
        "for name in sorted(GENERATORS):\n"
        "    frame = make_partition(name, 20_000, 11, 4, 80_000)\n"
        "    print(int(pd.util.hash_pandas_object(frame).sum()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    here = [
        int(pd.util.hash_pandas_object(make_partition(name, 20_000, 11, 4, 80_000)).sum())
        for name in NAMES
    ]
    assert [int(line) for line in out.stdout.split()] == here


def test_row_identifiers_and_the_demand_layout_follow_first_row() -> None:
    fraud = make_partition("fraud", 100, 0, 3, 1_000)
    assert fraud["transaction_id"].tolist() == list(range(1_000, 1_100))
    maintenance = make_partition("maintenance", 10, 0, 0, 5)
    assert maintenance["reading_id"].tolist() == list(range(5, 15))
    # demand: global row r is day r // N_SERIES of series r % N_SERIES (store-major), whatever
    # the partitioning.
    first = N_SERIES * 10 + 5
    whole = make_partition("demand", 4_000, 0, 0, first)
    halves = pd.concat(
        [
            make_partition("demand", 1_500, 0, 0, first),
            make_partition("demand", 2_500, 0, 1, first + 1_500),
        ],
        ignore_index=True,
    )
    layout = ["store", "item", "day", "day_of_week", "day_of_year"]
    pd.testing.assert_frame_equal(whole[layout], halves[layout])
    row = whole.iloc[0]
    assert (row["day"], row["store"], row["item"]) == (10, "store_01", "item_006")
    assert whole["day"].iloc[N_SERIES - 5] == 11 and whole["store"].iloc[N_SERIES - 5] == "store_01"

    # 2020-01-01 (day 0) was a Wednesday; 2020 is a leap year.
    def day(d: int) -> pd.Series:
        return make_partition("demand", 1, 0, 0, N_SERIES * d).iloc[0]

    assert (day(0)["day_of_week"], day(0)["day_of_year"]) == (2, 1)
    assert (day(5)["day_of_week"], day(365)["day_of_year"], day(366)["day_of_year"]) == (0, 366, 1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="seed"):
        make_partition("fraud", 10, -1, 0, 0)
    with pytest.raises(ValueError, match="n_rows"):
        make_partition("fraud", -1, 0, 0, 0)
    with pytest.raises(ValueError, match="first_row"):
        make_partition("fraud", 10, 0, 0, -5)
    with pytest.raises(TypeError, match="index"):
        make_partition("fraud", 10, 0, 1.5, 0)  # type: ignore[arg-type]


# --- real signal ------------------------------------------------------------------------------
def test_fraud_is_as_rare_as_in_the_card_dataset() -> None:
    # the European card dataset: 492 frauds in 284,807 transactions (0.172%)
    rate = make_partition("fraud", 1_000_000, 0, 0, 0)["is_fraud"].mean()
    assert 0.0015 <= rate <= 0.0021


def test_maintenance_failures_are_a_few_percent() -> None:
    rate = make_partition("maintenance", 200_000, 0, 0, 0)["failure_within_horizon"].mean()
    assert 0.02 <= rate <= 0.05


def fit_and_score(name: str, seed: int = 0, columns: tuple[str, ...] = ()) -> float:
    """Train XGBoost on 60k rows, score on 20k other rows: test AUC, or R^2 for regression."""
    train = make_partition(name, 60_000, seed, 0, 0)
    test = make_partition(name, 20_000, seed, 1, 60_000)
    x_train, y_train = features_and_target(name, train)
    x_test, y_test = features_and_target(name, test)
    if columns:
        x_train, x_test = x_train[list(columns)], x_test[list(columns)]
    binary = GENERATORS[name].task == "binary"
    params = {
        "objective": "binary:logistic" if binary else "reg:squarederror",
        "tree_method": "hist",
        "max_depth": 6,
        "learning_rate": 0.2,
        # One thread: on a busy 2-core machine, two OpenMP threads spin and run 10-30x slower.
        "nthread": 1,
        "verbosity": 0,
    }
    booster = xgb.train(
        params, xgb.DMatrix(x_train, label=y_train, enable_categorical=True), num_boost_round=50
    )
    pred = booster.predict(xgb.DMatrix(x_test, enable_categorical=True))
    y = y_test.to_numpy()
    if binary:
        return auc(y, pred)
    baseline = ((y - y_train.mean()) ** 2).sum()
    return float(1.0 - ((y - pred) ** 2).sum() / baseline)


@pytest.mark.parametrize(
    ("name", "floor"), [("fraud", 0.70), ("maintenance", 0.70), ("higgs", 0.70), ("demand", 0.5)]
)
def test_a_model_beats_the_trivial_baseline(name: str, floor: float) -> None:
    # binary: test AUC against 0.5 for a constant; regression: R^2 against the train mean.
    assert fit_and_score(name) >= floor


def test_higgs_looks_like_physics_and_its_masses_carry_more_signal() -> None:
    frame = make_partition("higgs", 40_000, 0, 0, 0)
    median = frame.groupby("is_signal").median()
    assert 75 < median["m_jj"].loc[0] < 85 and 75 < median["m_jj"].loc[1] < 85  # W -> j j
    assert 165 < median["m_jjj"].loc[0] < 185  # background: t -> W b
    assert 300 < median["m_wbb"].loc[1] < 350  # signal: H+ -> W h
    assert (frame["m_lv"] >= 80.0).mean() > 0.99  # the neutrino's pz from the W mass
    assert set(np.unique(frame[[f"jet{j}_b_tag" for j in range(1, 5)]])) == {0.0, 1.0, 2.0}
    for j in range(1, 4):  # jets in order of pt
        assert frame[f"jet{j}_pt"].ge(frame[f"jet{j + 1}_pt"]).all()
    assert frame["lepton_phi"].abs().max() <= np.pi + 1e-6
    # Seven masses derived from the 21 low-level features say more than those features do.
    high = fit_and_score("higgs", columns=HIGGS_HIGH_LEVEL)
    low = fit_and_score("higgs", columns=HIGGS_LOW_LEVEL)
    assert high > low + 0.02


# --- calibrated against the real datasets -----------------------------------------------------
CALIBRATION_ROWS = 200_000
CALIBRATION_TRAIN = 150_000
METRICS = {"aucpr": average_precision_score, "auc": roc_auc_score}


def held_out_figure(name: str, metric: str, seed: int = 0) -> float:
    """XGBoost on 200k generated rows: trained on the first 150k, scored on the 50k held out.

    The protocol behind each catalog entry's ``reference.tolerance``: single-process
    ``xgboost.train``, hist, depth 6, learning rate 0.1, 200 rounds, fixed seeds.
    """
    frame = make_partition(name, CALIBRATION_ROWS, seed, 0, 0)
    x, y = features_and_target(name, frame)
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": 6,
        "learning_rate": 0.1,
        "nthread": 1,  # see fit_and_score
        "seed": 0,
        "verbosity": 0,
    }
    train = xgb.DMatrix(
        x.iloc[:CALIBRATION_TRAIN], label=y.iloc[:CALIBRATION_TRAIN], enable_categorical=True
    )
    booster = xgb.train(params, train, num_boost_round=200)
    score = booster.predict(xgb.DMatrix(x.iloc[CALIBRATION_TRAIN:], enable_categorical=True))
    return float(METRICS[metric](y.iloc[CALIBRATION_TRAIN:].to_numpy(), score))


REFERENCED = ["fraud", "higgs"]  # the generators that imitate a dataset with a published figure


def test_the_catalog_documents_the_published_figures() -> None:
    for name in NAMES:
        entry = get_entry(name)
        assert entry is not None and entry.source["generator"] == name
        if name in REFERENCED:
            ref = entry.reference
            assert ref["metric"] in METRICS and 0 < ref["tolerance"] <= 0.1
            assert ref["source"] and str(ref["value"]) in entry.description
        else:  # no published figure applies: the entry says why, and claims none
            assert entry.reference == {} and "no published figure" in entry.description


@pytest.mark.parametrize("name", REFERENCED)
def test_xgboost_reaches_the_published_figure_within_the_tolerance(name: str) -> None:
    entry = get_entry(name)
    assert entry is not None
    ref = entry.reference
    figure = held_out_figure(name, ref["metric"])
    assert abs(figure - ref["value"]) <= ref["tolerance"], (name, ref["metric"], figure)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("{metric: auc, value: 0.8, tolerance: 0.1}", r"reference lacks source; give all of"),
        (
            "{metric: auc, value: 0.8, tolerance: 0.1, source: x, seed: 1}",
            "unknown reference key 'seed'",
        ),
        (
            "{metric: auc, value: high, tolerance: 0.1, source: x}",
            "reference value 'high' must be a non-negative number",
        ),
        (
            "{metric: auc, value: 0.8, tolerance: -0.1, source: x}",
            r"reference tolerance -0.1 must be",
        ),
        (
            "{metric: '', value: 0.8, tolerance: 0.1, source: x}",
            "reference metric '' must be a non-empty text",
        ),
        ("[auc, 0.8]", "'reference' must be a mapping"),
    ],
)
def test_a_bad_reference_is_refused_by_name(tmp_path: Path, reference: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(f"target: y\nsource: {{generator: fraud}}\nreference: {reference}\n")
    with pytest.raises(DataError, match=message) as err:
        load_entry(path)
    assert str(path) in str(err.value)


def test_cache_folders_carry_the_generators_version() -> None:
    """Data cached before a generator changed (its version) is not taken for the new one."""
    fraud = Path(resolve_entry(get_entry("fraud")).path).name
    assert fraud.startswith("fraud-v2-") and fraud.endswith("-seed0")
    maintenance = Path(resolve_entry(get_entry("maintenance")).path).name
    assert maintenance.startswith("maintenance-") and "-v" not in maintenance  # still version 1
