"""Synthetic tabular data for four domains, made one partition at a time.

Each domain is a :class:`Generator`: a function that makes ``n_rows`` rows from a NumPy random
generator, plus what the rest of the workbench needs to know about the result (task, target,
categorical columns). Everything here is plain NumPy and pandas; ``wb.generate`` maps
:func:`make_partition` over the partitions with Dask.

Determinism: :func:`make_partition` seeds its random generator from ``(seed, index)`` only, so a
partition (of given ``n_rows`` and ``first_row``) is the same whichever process, worker or
machine makes it, and the whole data set is the same for a seed whatever the number of workers.
Row-dependent columns (the ``*_id`` row identifiers, the store-item-day layout of ``demand``)
come from ``first_row``, the partition's first global row. Rows are made in fixed-size chunks
into preallocated columns, so memory stays near the frame's own size.

Every categorical column has a fixed list of levels, so all partitions share one encoding. The
target of a binary task is ``int8`` (0/1), of a regression ``float32``.

The domains:

``fraud``
    Card transactions with a rare fraud class (about 0.5%), driven by night hours, distance from
    home, foreign use, unusual amounts, risky merchant categories, new cards and velocity.
``maintenance``
    Machine sensor readings; the target says whether the machine fails within the horizon
    (about 3.5%), driven by tool wear, torque-wear overstrain, poor heat dissipation, and hidden
    bearing faults and leaks that show in vibration and pressure.
``demand``
    Store-item daily sales (regression): base level per store and item, trend, weekly and yearly
    seasonality, promotions and price elasticity, with count noise. Global row ``r`` is day
    ``r // 2000`` of series ``r % 2000`` (20 stores x 100 items), so partitions cover consecutive
    days of all series.
``higgs``
    28 dense features in the shape of the HIGGS benchmark (21 low-level, 7 high-level invariant
    masses), from a simulated decay chain: signal ``H0 -> W H+ -> W W h -> l v j j b b`` against a
    ``t tbar -> W b W b`` background, with detector smearing, initial-state radiation and
    imperfect b-tagging. The masses carry most of the signal; energies and masses are in GeV.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "GENERATORS",
    "Generator",
    "get_generator",
    "make_partition",
    "meta",
    "partition_sizes",
]

Array = np.ndarray[Any, Any]
Maker = Callable[[int, np.random.Generator, int], pd.DataFrame]


@dataclass(frozen=True)
class Generator:
    """A synthetic data domain.

    Attributes
    ----------
    name
        The generator's name, for example ``"fraud"``.
    description
        One line about the data.
    task
        ``"binary"`` or ``"regression"``.
    target
        Name of the target column.
    categorical
        Names of the categorical columns (pandas ``Categorical`` with fixed levels).
    default_rows
        Rows to make when the caller does not say.
    make
        ``make(n_rows, rng, first_row)`` returns a frame of ``n_rows`` rows drawn from ``rng``;
        ``first_row`` is the global index of the first row.
    """

    name: str
    description: str
    task: str
    target: str
    categorical: tuple[str, ...]
    default_rows: int
    make: Maker


# ------------------------------------------------------------------------------------ helpers


def _sigmoid(x: Array) -> Array:
    """Return the logistic function of ``x``."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _choice(rng: np.random.Generator, p: Array, n: int) -> Array:
    """Draw ``n`` indices into ``p`` (probabilities summing to 1), as ``int64``."""
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(n), side="right").clip(0, len(p) - 1)


def _choice_rows(rng: np.random.Generator, probs: Array, rows: Array) -> Array:
    """Draw one index per row from ``probs[rows[i]]`` (a table of probability rows)."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(len(rows))
    out = np.zeros(len(rows), dtype=np.int64)
    for k in range(probs.shape[1] - 1):  # a loop over levels, never over rows
        out += u >= cdf[rows, k]
    return out


# A column's kind: a NumPy dtype, or the fixed levels of a categorical column (int8 codes).
Schema = dict[str, np.dtype[Any] | tuple[str, ...]]
ChunkMaker = Callable[[int, np.random.Generator, int], dict[str, Array]]
_CHUNK = 65536  # rows made at a time: temporaries stay small, memory stays near the frame's size


def _chunked(schema: Schema, make_chunk: ChunkMaker, chunk: int = _CHUNK) -> Maker:
    """Return a ``make(n_rows, rng, first_row)`` that fills ``schema``'s columns chunk by chunk.

    The columns are allocated once with their final dtypes and filled from ``make_chunk(rows,
    rng, first_row)`` over chunks of at most ``chunk`` rows, so the peak memory is the frame's
    own size plus one chunk's temporaries. The chunk size is fixed, so the result depends only
    on ``rng``'s state, ``n_rows`` and ``first_row``.
    """

    def make(n: int, rng: np.random.Generator, first_row: int) -> pd.DataFrame:
        cols = {
            name: np.empty(n, dtype=np.int8 if isinstance(kind, tuple) else kind)
            for name, kind in schema.items()
        }
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            piece = make_chunk(stop - start, rng, first_row + start)
            if piece.keys() != schema.keys():  # a programming error in a generator
                raise RuntimeError(f"generator columns {list(piece)} differ from its schema")
            for name, values in piece.items():
                cols[name][start:stop] = values
        frame: dict[str, Any] = {
            name: pd.Categorical.from_codes(cols[name], categories=list(kind))
            if isinstance(kind, tuple)
            else cols[name]
            for name, kind in schema.items()
        }
        return pd.DataFrame(frame, index=pd.RangeIndex(n), copy=False)

    return make


# -------------------------------------------------------------------------------------- fraud

MERCHANT_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurant",
    "fuel",
    "pharmacy",
    "clothing",
    "electronics",
    "jewelry",
    "travel",
    "entertainment",
    "utilities",
    "online_retail",
    "cash_withdrawal",
)
DEVICES: tuple[str, ...] = ("mobile", "web", "pos", "atm")

_MERCHANT_P = np.array([22, 14, 9, 5, 8, 4, 1, 3, 6, 5, 16, 7], dtype=np.float64)
# Mean log amount (dollars) per merchant category.
_MERCHANT_LOG_AMOUNT = np.array([3.6, 3.3, 3.7, 3.0, 4.0, 5.0, 5.5, 5.6, 3.5, 4.5, 3.9, 4.4])
# Fraud log-odds per merchant category.
_MERCHANT_RISK = np.array([-0.6, -0.4, 0.3, -0.5, 0.0, 0.9, 1.2, 0.3, 0.0, -1.0, 0.6, 0.4])
# Probability of a foreign transaction per merchant category.
_MERCHANT_FOREIGN = np.array(
    [0.01, 0.02, 0.01, 0.01, 0.03, 0.04, 0.03, 0.25, 0.03, 0.01, 0.08, 0.03]
)
# Device (mobile, web, pos, atm) probabilities per merchant category.
_MERCHANT_DEVICE = np.array(
    [
        [0.25, 0.10, 0.65, 0.00],  # grocery
        [0.25, 0.05, 0.70, 0.00],  # restaurant
        [0.20, 0.00, 0.80, 0.00],  # fuel
        [0.20, 0.10, 0.70, 0.00],  # pharmacy
        [0.20, 0.25, 0.55, 0.00],  # clothing
        [0.20, 0.35, 0.45, 0.00],  # electronics
        [0.15, 0.25, 0.60, 0.00],  # jewelry
        [0.30, 0.50, 0.20, 0.00],  # travel
        [0.35, 0.35, 0.30, 0.00],  # entertainment
        [0.30, 0.60, 0.10, 0.00],  # utilities
        [0.45, 0.55, 0.00, 0.00],  # online_retail
        [0.00, 0.00, 0.00, 1.00],  # cash_withdrawal
    ]
)
_DEVICE_RISK = np.array([0.1, 0.5, -0.3, 0.4])  # mobile, web, pos, atm
# Transactions per hour of day (relative).
# fmt: off
_HOUR_P = np.array([
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4.0, 5.0, 5.5, 6.0,  # 00:00 - 11:00
    6.5, 6.0, 5.5, 5.5, 6.0, 6.5, 6.5, 6.0, 5.0, 4.0, 3.0, 2.0,  # 12:00 - 23:00
])
# fmt: on
_FRAUD_INTERCEPT = -7.39
_TRAVEL = MERCHANT_CATEGORIES.index("travel")
_ATM = DEVICES.index("atm")


def _fraud_logit(
    merchant: Array,
    device: Array,
    hour: Array,
    amount: Array,
    avg_amount: Array,
    distance: Array,
    foreign: Array,
    card_age: Array,
    tx_count: Array,
) -> Array:
    """Return the fraud log-odds without the intercept."""
    night = (hour <= 5).astype(np.float64)
    z = _MERCHANT_RISK[merchant] + _DEVICE_RISK[device]
    z += 1.5 * night + 0.8 * night * (device == _ATM)
    z += 1.8 * _sigmoid(2.0 * (np.log(distance) - np.log(150.0)))
    z += np.where(merchant == _TRAVEL, 0.4, 1.4) * foreign
    z += 0.9 * np.maximum(np.log(amount / avg_amount), 0.0)
    z += 1.5 * np.exp(-card_age / 45.0)
    z += 0.35 * np.maximum(tx_count - 2.0, 0.0)
    return z


def _fraud_chunk(n: int, rng: np.random.Generator, first_row: int) -> dict[str, Array]:
    merchant = _choice(rng, _MERCHANT_P, n)
    device = _choice_rows(rng, _MERCHANT_DEVICE, merchant)
    hour = _choice(rng, _HOUR_P, n)
    avg_amount = np.exp(rng.normal(4.0, 0.5, n))
    amount = np.exp(
        _MERCHANT_LOG_AMOUNT[merchant] + 0.5 * (np.log(avg_amount) - 4.0) + rng.normal(0, 0.7, n)
    )
    amount = np.maximum(np.round(amount, 2), 0.01)
    foreign = rng.random(n) < _MERCHANT_FOREIGN[merchant]
    distance = np.exp(rng.normal(np.log(5.0), 1.0, n))
    distance *= np.where(merchant == _TRAVEL, 20.0, 1.0)
    distance += foreign * rng.uniform(300.0, 5000.0, n)
    card_age = np.floor(np.minimum(rng.exponential(700.0, n), 3650.0))
    tx_count = rng.poisson(1.5, n) + 1
    z = _fraud_logit(
        merchant, device, hour, amount, avg_amount, distance, foreign, card_age, tx_count
    )
    is_fraud = rng.random(n) < _sigmoid(_FRAUD_INTERCEPT + z)
    return {
        "transaction_id": np.arange(first_row, first_row + n, dtype=np.int64),
        "amount": amount,
        "merchant_category": merchant,
        "device": device,
        "hour": hour,
        "distance_from_home_km": distance,
        "is_foreign": foreign,
        "card_age_days": card_age,
        "tx_count_24h": tx_count,
        "avg_amount_30d": avg_amount,
        "is_fraud": is_fraud,
    }


_FRAUD_SCHEMA: Schema = {
    "transaction_id": np.dtype(np.int64),
    "amount": np.dtype(np.float32),
    "merchant_category": MERCHANT_CATEGORIES,
    "device": DEVICES,
    "hour": np.dtype(np.int16),
    "distance_from_home_km": np.dtype(np.float32),
    "is_foreign": np.dtype(np.int8),
    "card_age_days": np.dtype(np.int16),
    "tx_count_24h": np.dtype(np.int16),
    "avg_amount_30d": np.dtype(np.float32),
    "is_fraud": np.dtype(np.int8),
}


# -------------------------------------------------------------------------------- maintenance

MACHINE_TYPES: tuple[str, ...] = ("lathe", "mill", "drill", "press", "pump")
_MACHINE_P = np.array([0.25, 0.25, 0.2, 0.15, 0.15])
_MACHINE_RPM = np.array([1500.0, 2800.0, 3500.0, 600.0, 1800.0])
_MACHINE_POWER_KW = np.array([6.0, 7.0, 4.0, 15.0, 9.0])
_MACHINE_TORQUE = _MACHINE_POWER_KW * 1000.0 / (_MACHINE_RPM * 2.0 * np.pi / 60.0)  # N m
_MACHINE_HEAT = np.array([12.0, 14.0, 10.0, 18.0, 9.0])  # process above ambient, deg C
_MACHINE_VIBRATION = np.array([2.0, 2.8, 3.2, 4.0, 1.8])  # mm/s
_MACHINE_PRESSURE = np.array([6.0, 6.0, 6.0, 150.0, 8.0])  # bar
_MAINTENANCE_INTERCEPT = -6.35


def _maintenance_logit(
    wear: Array,
    torque_rel: Array,
    rpm_rel: Array,
    dissipation: Array,
    temperature: Array,
    hours: Array,
    bearing_fault: Array,
    leak: Array,
) -> Array:
    """Return the failure log-odds without the intercept."""
    w = wear / 240.0
    z = 2.0 * w**4
    z += 4.0 * _sigmoid(12.0 * (torque_rel * wear / 200.0 - 1.1))  # overstrain
    z += 3.5 * _sigmoid(2.0 * (9.5 - dissipation)) * _sigmoid(25.0 * (0.95 - rpm_rel))
    z += 0.25 * np.maximum(temperature - 48.0, 0.0)
    z += 0.8 * hours / 60000.0
    z += 2.0 * bearing_fault + 1.5 * leak
    return z


def _maintenance_chunk(n: int, rng: np.random.Generator, first_row: int) -> dict[str, Array]:
    kind = _choice(rng, _MACHINE_P, n)
    hours = rng.uniform(0.0, 60000.0, n)
    wear = rng.integers(0, 241, n)
    rpm_rel = rng.normal(1.0, 0.08, n)
    rpm = _MACHINE_RPM[kind] * rpm_rel
    power = _MACHINE_POWER_KW[kind] * rng.normal(1.0, 0.15, n).clip(0.3)
    torque = power * 1000.0 / (rpm * 2.0 * np.pi / 60.0)
    torque_rel = torque / _MACHINE_TORQUE[kind]
    ambient = rng.normal(24.0, 3.0, n)
    temperature = (
        ambient
        + _MACHINE_HEAT[kind] * rng.normal(1.0, 0.12, n)
        + 2.0 * (power / _MACHINE_POWER_KW[kind] - 1.0)
        + 2.0 * wear / 240.0
    )
    bearing_fault = rng.random(n) < 0.03
    leak = rng.random(n) < 0.02
    vibration = (
        _MACHINE_VIBRATION[kind]
        * np.exp(rng.normal(0.0, 0.25, n))
        * (1.0 + wear / 400.0)
        * (1.0 + hours / 60000.0)
        * np.where(bearing_fault, 2.0, 1.0)
    )
    pressure = _MACHINE_PRESSURE[kind] * rng.normal(1.0, 0.04, n) * np.where(leak, 0.85, 1.0)
    z = _maintenance_logit(
        wear, torque_rel, rpm_rel, temperature - ambient, temperature, hours, bearing_fault, leak
    )
    failure = rng.random(n) < _sigmoid(_MAINTENANCE_INTERCEPT + z)
    return {
        "reading_id": np.arange(first_row, first_row + n, dtype=np.int64),
        "machine_type": kind,
        "operating_hours": hours,
        "tool_wear_min": wear,
        "rpm": rpm,
        "torque": torque,
        "ambient_temperature": ambient,
        "temperature": temperature,
        "vibration": vibration,
        "pressure": pressure,
        "failure_within_horizon": failure,
    }


_MAINTENANCE_SCHEMA: Schema = {
    "reading_id": np.dtype(np.int64),
    "machine_type": MACHINE_TYPES,
    "operating_hours": np.dtype(np.float32),
    "tool_wear_min": np.dtype(np.int16),
    "rpm": np.dtype(np.float32),
    "torque": np.dtype(np.float32),
    "ambient_temperature": np.dtype(np.float32),
    "temperature": np.dtype(np.float32),
    "vibration": np.dtype(np.float32),
    "pressure": np.dtype(np.float32),
    "failure_within_horizon": np.dtype(np.int8),
}


# ------------------------------------------------------------------------------------- demand

N_STORES = 20
N_ITEMS = 100
N_SERIES = N_STORES * N_ITEMS
STORES: tuple[str, ...] = tuple(f"store_{i + 1:02d}" for i in range(N_STORES))
ITEMS: tuple[str, ...] = tuple(f"item_{i + 1:03d}" for i in range(N_ITEMS))
DEMAND_START = np.datetime64("2020-01-01", "D")  # day 0, a Wednesday

# The catalogue of stores and items is fixed (the same for every seed); the seed changes the
# noise, promotions and prices.
_catalogue = np.random.default_rng(20240601)
_STORE_SCALE = np.exp(_catalogue.normal(0.0, 0.35, N_STORES))
_STORE_GROWTH = _catalogue.normal(0.04, 0.03, N_STORES)  # per year
_ITEM_POPULARITY = np.exp(_catalogue.normal(0.0, 0.9, N_ITEMS))
_ITEM_PRICE = np.round(np.exp(_catalogue.normal(1.3, 0.6, N_ITEMS)), 2)
_ITEM_ELASTICITY = _catalogue.uniform(1.0, 2.5, N_ITEMS)
_ITEM_YEARLY = _catalogue.uniform(0.0, 0.4, N_ITEMS)
_ITEM_PHASE = _catalogue.uniform(0.0, 365.25, N_ITEMS)
del _catalogue
_WEEKLY = np.array([0.85, 0.8, 0.85, 0.95, 1.1, 1.35, 1.1])  # Monday .. Sunday
_BASE_SALES = 20.0
_PROMO_P = 0.08
_PROMO_LIFT = 1.25


def _demand_chunk(n: int, rng: np.random.Generator, first_row: int) -> dict[str, Array]:
    row = np.arange(first_row, first_row + n, dtype=np.int64)
    day = row // N_SERIES
    series = row - day * N_SERIES
    store = series // N_ITEMS
    item = series - store * N_ITEMS
    dates = DEMAND_START + day
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    day_of_week = (day + 2) % 7  # Monday is 0
    years = day / 365.25
    trend = np.maximum(1.0 + _STORE_GROWTH[store] * years, 0.2)
    yearly = (
        1.0
        + _ITEM_YEARLY[item] * np.sin(2.0 * np.pi * (day_of_year - _ITEM_PHASE[item]) / 365.25)
        + 0.4 * np.exp(-(((day_of_year - 355.0) / 10.0) ** 2))  # the December peak
    )
    promo = rng.random(n) < _PROMO_P
    discount = np.where(promo, rng.uniform(0.1, 0.3, n), 0.0)
    price = np.round(_ITEM_PRICE[item] * (1.0 - discount) * rng.normal(1.0, 0.03, n), 2)
    price = np.maximum(price, 0.01)
    mean = (
        _BASE_SALES
        * _STORE_SCALE[store]
        * _ITEM_POPULARITY[item]
        * trend
        * _WEEKLY[day_of_week]
        * yearly
        * np.where(promo, _PROMO_LIFT, 1.0)
        * (price / _ITEM_PRICE[item]) ** -_ITEM_ELASTICITY[item]
    )
    mean *= rng.gamma(20.0, 1.0 / 20.0, n)  # day-to-day overdispersion
    return {
        "store": store,
        "item": item,
        "day": day,
        "day_of_week": day_of_week,
        "day_of_year": day_of_year,
        "promo": promo,
        "price": price,
        "sales": rng.poisson(mean),
    }


_DEMAND_SCHEMA: Schema = {
    "store": STORES,
    "item": ITEMS,
    "day": np.dtype(np.int32),
    "day_of_week": np.dtype(np.int16),
    "day_of_year": np.dtype(np.int16),
    "promo": np.dtype(np.int8),
    "price": np.dtype(np.float32),
    "sales": np.dtype(np.float32),
}


# -------------------------------------------------------------------------------------- higgs

HIGGS_LOW_LEVEL: tuple[str, ...] = (
    "lepton_pt",
    "lepton_eta",
    "lepton_phi",
    "missing_energy_magnitude",
    "missing_energy_phi",
    *(f"jet{j}_{part}" for j in range(1, 5) for part in ("pt", "eta", "phi", "b_tag")),
)
HIGGS_HIGH_LEVEL: tuple[str, ...] = ("m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb")

_M_W = 80.4
_M_TOP = 172.5
_M_H = 125.0
_M_HPLUS = 325.0
_M_H0 = 425.0
_JET_RESOLUTION = 0.2  # relative jet energy resolution
_B_TAG = 0.6  # b-tagging efficiency
_MISTAG = 0.12  # light jets tagged as b
_ISR_P = 0.35  # events where a radiated jet replaces one of the four

Vec = tuple[Array, Array, Array, Array]  # E, px, py, pz


def _add(*vs: Vec) -> Vec:
    e, px, py, pz = vs[0]
    for v in vs[1:]:
        e, px, py, pz = e + v[0], px + v[1], py + v[2], pz + v[3]
    return e, px, py, pz


def _mass(*vs: Vec) -> Array:
    e, px, py, pz = _add(*vs)
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))


def _where(mask: Array, a: Vec, b: Vec) -> Vec:
    e, px, py, pz = (np.where(mask, a[i], b[i]) for i in range(4))
    return e, px, py, pz


def _angle(rng: np.random.Generator, n: int) -> Array:
    """Uniform angles in [-pi, pi), as float32 (cheap sines and cosines)."""
    return rng.random(n, dtype=np.float32) * np.float32(2 * np.pi) - np.float32(np.pi)


def _produce(rng: np.random.Generator, mass: Array, n: int) -> Vec:
    """A system of ``mass`` with a little transverse momentum and a spread of rapidity."""
    pt = rng.exponential(25.0, n)
    phi = _angle(rng, n)
    ey = np.exp(rng.normal(0.0, 1.0, n))  # e**rapidity
    mt = np.sqrt(mass * mass + pt * pt)
    return (
        0.5 * mt * (ey + 1.0 / ey),
        pt * np.cos(phi),
        pt * np.sin(phi),
        0.5 * mt * (ey - 1.0 / ey),
    )


def _decay(
    rng: np.random.Generator, parent: Vec, m0: Array | float, m1: Array | float, m2: Array | float
) -> tuple[Vec, Vec]:
    """Decay ``parent`` (of mass ``m0``) isotropically into masses ``m1`` and ``m2``."""
    e, px, py, pz = parent
    n = len(e)
    m0sq = m0 * m0
    p = np.sqrt(np.maximum((m0sq - (m1 + m2) ** 2) * (m0sq - (m1 - m2) ** 2), 0.0)) / (2 * m0)
    cos_t = 2.0 * rng.random(n, dtype=np.float32) - 1.0
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    phi = _angle(rng, n)
    qx, qy, qz = p * (sin_t * np.cos(phi)), p * (sin_t * np.sin(phi)), p * cos_t
    # Boost both daughters from the parent's rest frame by beta = p / E.
    inv_e = 1.0 / e
    bx, by, bz = px * inv_e, py * inv_e, pz * inv_e
    gamma = e / m0
    bq = (gamma * gamma / (gamma + 1.0)) * (bx * qx + by * qy + bz * qz)
    e1 = np.sqrt(p * p + m1 * m1)
    e2 = np.sqrt(p * p + m2 * m2)
    c1 = bq + gamma * e1
    c2 = gamma * e2 - bq
    bq_e = (gamma + 1.0) / gamma * bq  # gamma * (beta . q)
    d1 = (gamma * e1 + bq_e, qx + c1 * bx, qy + c1 * by, qz + c1 * bz)
    d2 = (gamma * e2 - bq_e, c2 * bx - qx, c2 * by - qy, c2 * bz - qz)
    return d1, d2


def _eta_phi(v: Vec, pt: Array) -> tuple[Array, Array]:
    """Pseudorapidity and azimuth of ``v`` (float32)."""
    abs_pz = np.abs(v[3])
    ratio = (np.sqrt(pt * pt + v[3] * v[3]) + abs_pz) / np.maximum(pt, 1e-6)
    eta = np.copysign(np.log(ratio.astype(np.float32)), v[3].astype(np.float32))
    return eta, np.arctan2(v[2].astype(np.float32), v[1].astype(np.float32))


def _higgs_chunk(n: int, rng: np.random.Generator, first_row: int) -> dict[str, Array]:
    # One decay chain for both classes, with per-event masses:
    #   signal      H0 -> W_lep H+,  H+ -> W_had h,  h -> b1 b2
    #   background  X -> t_lep t_had,  t_had -> W_had b2,  t_lep -> W_lep b1
    sig = rng.random(n) < 0.5
    m_sys = np.where(sig, _M_H0, 2 * _M_TOP + 5.0 + rng.exponential(130.0, n))
    m1 = np.where(sig, _M_W, _M_TOP)
    m2 = np.where(sig, _M_HPLUS, _M_TOP)
    x1, x2 = _decay(rng, _produce(rng, m_sys, n), m_sys, m1, m2)
    w_had, y = _decay(rng, x2, m2, _M_W, np.where(sig, _M_H, 0.0))
    d1, d2 = _decay(
        rng, _where(sig, y, x1), np.where(sig, _M_H, _M_TOP), np.where(sig, 0.0, _M_W), 0.0
    )
    w_lep, b1, b2 = _where(sig, x1, d1), _where(sig, d1, d2), _where(sig, d2, y)
    lep, nu = _decay(rng, w_lep, _M_W, 0.0, 0.0)
    q1, q2 = _decay(rng, w_had, _M_W, 0.0, 0.0)

    # Detector: a smeared lepton and jets (b-jets first here), imperfect b-tagging, and missing
    # energy from the neutrino and the jets' mismeasurement.
    lep_scale = rng.normal(1.0, 0.02, n)
    lv: Vec = (lep[0] * lep_scale, lep[1] * lep_scale, lep[2] * lep_scale, lep[3] * lep_scale)
    met_x = nu[1] + rng.normal(0.0, 8.0, n)
    met_y = nu[2] + rng.normal(0.0, 8.0, n)
    vecs = np.empty((n, 4, 4))  # [event, jet, (E, px, py, pz)]
    feats = np.empty((n, 4, 4), dtype=np.float32)  # [event, jet, (pt, eta, phi, b_tag)]
    # Initial-state radiation: in some events a radiated jet takes the place of one of the four,
    # which is lost (out of acceptance; its momentum shows up as missing energy).
    isr_slot = np.where(rng.random(n) < _ISR_P, rng.integers(0, 4, n), -1)
    isr_pt = 20.0 + rng.exponential(30.0, n)
    isr_phi = _angle(rng, n)
    isr_ey = np.exp(rng.normal(0.0, 1.8, n))
    isr: Vec = (
        0.5 * isr_pt * (isr_ey + 1.0 / isr_ey),
        isr_pt * np.cos(isr_phi),
        isr_pt * np.sin(isr_phi),
        0.5 * isr_pt * (isr_ey - 1.0 / isr_ey),
    )
    pts: list[Array] = []
    b_scores: list[Array] = []
    jets: list[Vec] = []
    for j, (v, p_tag) in enumerate(((b1, _B_TAG), (b2, _B_TAG), (q1, _MISTAG), (q2, _MISTAG))):
        lost = isr_slot == j
        scale = np.maximum(rng.normal(1.0, _JET_RESOLUTION, n), 0.3)
        miss = np.where(lost, -1.0, scale - 1.0)
        met_x -= miss * v[1]
        met_y -= miss * v[2]
        jet = _where(lost, isr, (v[0] * scale, v[1] * scale, v[2] * scale, v[3] * scale))
        jets.append(jet)
        for i in range(4):
            vecs[:, j, i] = jet[i]
        u = rng.random(n, dtype=np.float32)
        p = np.where(lost, np.float32(_MISTAG), np.float32(p_tag))
        tag = (u < p).astype(np.float32) + (u < p / 2)  # 0, 1 or 2
        pt = np.sqrt(jet[1] * jet[1] + jet[2] * jet[2])
        eta, phi = _eta_phi(jet, pt)
        feats[:, j, 0], feats[:, j, 1], feats[:, j, 2], feats[:, j, 3] = pt, eta, phi, tag
        pts.append(pt)
        b_scores.append(tag * 1e4 + pt)

    # Reconstruction: the two most b-like jets are the b pair and the others come from the W;
    # the neutrino's pz comes from the W mass constraint.
    rows = 4 * np.arange(n)
    b_rank = _ranks(b_scores)
    flat = vecs.reshape(4 * n, 4)
    rb1v = flat[rows + sum(j * (r == 0) for j, r in enumerate(b_rank))]
    rb2v = flat[rows + sum(j * (r == 1) for j, r in enumerate(b_rank))]
    rb1: Vec = (rb1v[:, 0], rb1v[:, 1], rb1v[:, 2], rb1v[:, 3])
    rb2: Vec = (rb2v[:, 0], rb2v[:, 1], rb2v[:, 2], rb2v[:, 3])
    bb = _add(rb1, rb2)
    total = _add(*jets)
    w_h: Vec = (total[0] - bb[0], total[1] - bb[1], total[2] - bb[2], total[3] - bb[3])
    l_pt = np.sqrt(lv[1] * lv[1] + lv[2] * lv[2])
    met_pt2 = met_x * met_x + met_y * met_y
    mu = _M_W**2 / 2.0 + lv[1] * met_x + lv[2] * met_y
    lpt2 = l_pt * l_pt
    a = mu * lv[3] / lpt2
    root = np.sqrt(np.maximum(a * a - (lv[0] * lv[0] * met_pt2 - mu * mu) / lpt2, 0.0))
    nu_pz = np.where(np.abs(a - root) < np.abs(a + root), a - root, a + root)
    w_l = _add(lv, (np.sqrt(met_pt2 + nu_pz * nu_pz), met_x, met_y, nu_pz))
    # Pair each b with the hadronic or the leptonic top, whichever assignment fits better.
    m_jjj_a, m_jlv_a = _mass(w_h, rb1), _mass(w_l, rb2)
    m_jjj_b, m_jlv_b = _mass(w_h, rb2), _mass(w_l, rb1)
    dist_a = (m_jjj_a - _M_TOP) ** 2 + (m_jlv_a - _M_TOP) ** 2
    first = dist_a <= (m_jjj_b - _M_TOP) ** 2 + (m_jlv_b - _M_TOP) ** 2

    l_eta, l_phi = _eta_phi(lv, l_pt)
    out: dict[str, Array] = {
        "lepton_pt": l_pt,
        "lepton_eta": l_eta,
        "lepton_phi": l_phi,
        "missing_energy_magnitude": np.sqrt(met_pt2),
        "missing_energy_phi": np.arctan2(met_y.astype(np.float32), met_x.astype(np.float32)),
    }
    # Jets in order of measured pt, as the benchmark lists them.
    ordered = np.empty_like(feats)
    ordered_flat = ordered.reshape(4 * n, 4)
    for j, r in enumerate(_ranks(pts)):
        ordered_flat[rows + r] = feats[:, j, :]
    for j in range(4):
        for f, part in enumerate(("pt", "eta", "phi", "b_tag")):
            out[f"jet{j + 1}_{part}"] = ordered[:, j, f]
    out["m_jj"] = _mass(w_h)
    out["m_jjj"] = np.where(first, m_jjj_a, m_jjj_b)
    out["m_lv"] = _mass(w_l)
    out["m_jlv"] = np.where(first, m_jlv_a, m_jlv_b)
    out["m_bb"] = _mass(bb)
    out["m_wbb"] = _mass(w_h, bb)
    out["m_wwbb"] = _mass(w_l, w_h, bb)
    out["is_signal"] = sig
    return out


def _ranks(values: list[Array]) -> list[Array]:
    """Rank of each array's element among the others, element-wise (0 = largest; ties by order)."""
    n = len(values[0])
    ranks = [np.zeros(n, dtype=np.int64) for _ in values]
    for j in range(len(values)):
        for k in range(j + 1, len(values)):
            k_wins = values[k] > values[j]
            ranks[j] += k_wins
            ranks[k] += ~k_wins
    return ranks


_HIGGS_SCHEMA: Schema = {
    **{name: np.dtype(np.float32) for name in (*HIGGS_LOW_LEVEL, *HIGGS_HIGH_LEVEL)},
    "is_signal": np.dtype(np.int8),
}


# ------------------------------------------------------------------------------------ catalog

GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator(
            name="fraud",
            description="Card transactions (amount, merchant, hour, device, distance); "
            "rare fraud class (~0.5%).",
            task="binary",
            target="is_fraud",
            categorical=("merchant_category", "device"),
            default_rows=1_000_000,
            make=_chunked(_FRAUD_SCHEMA, _fraud_chunk),
        ),
        Generator(
            name="maintenance",
            description="Machine sensor readings (wear, torque, heat, vibration, pressure); "
            "failure within the horizon (~3.5%).",
            task="binary",
            target="failure_within_horizon",
            categorical=("machine_type",),
            default_rows=1_000_000,
            make=_chunked(_MAINTENANCE_SCHEMA, _maintenance_chunk),
        ),
        Generator(
            name="demand",
            description="Store-item daily sales with trend, weekly and yearly seasonality, "
            "promotions and prices (regression).",
            task="regression",
            target="sales",
            categorical=("store", "item"),
            default_rows=N_SERIES * 730,
            make=_chunked(_DEMAND_SCHEMA, _demand_chunk),
        ),
        Generator(
            name="higgs",
            description="28 physics-like features in the shape of the HIGGS benchmark; "
            "signal against background (~50%).",
            task="binary",
            target="is_signal",
            categorical=(),
            default_rows=1_000_000,
            make=_chunked(_HIGGS_SCHEMA, _higgs_chunk, chunk=16384),
        ),
    )
}


# ---------------------------------------------------------------------------------- functions


def get_generator(name: str) -> Generator:
    """Return the generator called ``name``.

    Parameters
    ----------
    name
        One of the keys of :data:`GENERATORS`.

    Returns
    -------
    Generator
        The domain's generator.

    Raises
    ------
    ValueError
        If there is no generator of that name; the message lists the known ones.
    """
    if isinstance(name, str) and name in GENERATORS:
        return GENERATORS[name]
    known = ", ".join(sorted(GENERATORS))
    raise ValueError(f"unknown generator {name!r}; the known generators are: {known}")


def _check_int(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return int(value)


def partition_sizes(rows: int, partitions: int) -> list[int]:
    """Split ``rows`` as evenly as possible into ``partitions`` sizes.

    The first ``rows % partitions`` partitions get one row more than the others.

    Parameters
    ----------
    rows
        Total number of rows, at least 1.
    partitions
        Number of partitions, from 1 to ``rows``.

    Returns
    -------
    list of int
        The row count of each partition; they sum to ``rows`` and none is zero.

    Raises
    ------
    ValueError
        If ``rows`` or ``partitions`` is below 1, or there are more partitions than rows.
    TypeError
        If either is not an integer.
    """
    rows = _check_int(rows, "rows", 1)
    partitions = _check_int(partitions, "partitions", 1)
    if partitions > rows:
        raise ValueError(f"partitions ({partitions}) cannot exceed rows ({rows})")
    base, extra = divmod(rows, partitions)
    return [base + 1] * extra + [base] * (partitions - extra)


def make_partition(name: str, n_rows: int, seed: int, index: int, first_row: int) -> pd.DataFrame:
    """Make one partition of a synthetic data set.

    Parameters
    ----------
    name
        The generator's name (see :data:`GENERATORS`).
    n_rows
        Rows in this partition (0 gives an empty frame with the full schema).
    seed
        The data set's seed, a non-negative integer.
    index
        The partition's position, a non-negative integer; with ``seed`` it seeds the random
        generator (``SeedSequence([seed, index])``), so the same pair gives the same frame in any
        process.
    first_row
        Global index of the partition's first row (the sum of the sizes before it); identifiers
        and the ``demand`` layout depend on it.

    Returns
    -------
    pandas.DataFrame
        ``n_rows`` rows with a ``RangeIndex``, the columns and dtypes of :func:`meta`.

    Raises
    ------
    ValueError
        If the generator is unknown or a number is negative.
    TypeError
        If a number is not an integer.
    """
    gen = get_generator(name)
    n_rows = _check_int(n_rows, "n_rows", 0)
    seed = _check_int(seed, "seed", 0)
    index = _check_int(index, "index", 0)
    first_row = _check_int(first_row, "first_row", 0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return gen.make(n_rows, rng, first_row)


def meta(name: str) -> pd.DataFrame:
    """Return an empty frame with the generator's exact columns and dtypes.

    Parameters
    ----------
    name
        The generator's name.

    Returns
    -------
    pandas.DataFrame
        Zero rows; categorical columns carry their full list of levels. Suitable as Dask's
        ``meta=``.
    """
    return make_partition(name, 0, 0, 0, 0)
