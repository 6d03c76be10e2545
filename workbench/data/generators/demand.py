"""The ``demand`` generator.

Store-item daily sales (regression): base level per store and item, trend, weekly and yearly
seasonality, promotions and price elasticity, with count noise. Global row ``r`` is day ``r //
2000`` of series ``r % 2000`` (20 stores x 100 items), so partitions cover consecutive days of all
series.

The layout is that of Kaggle's "Store Item Demand Forecasting Challenge", but no published figure
applies: the stores, items, prices and promotions are this generator's own
(``datasets/demand.yaml``).
"""

from __future__ import annotations

import numpy as np

from workbench.data.generators.base import Array, Generator, Schema, chunked

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


GENERATOR = Generator(
    name="demand",
    description="Store-item daily sales with trend, weekly and yearly seasonality, "
    "promotions and prices (regression).",
    task="regression",
    target="sales",
    categorical=("store", "item"),
    default_rows=N_SERIES * 730,
    make=chunked(_DEMAND_SCHEMA, _demand_chunk),
)
