"""The ``fraud`` generator.

Card transactions with a rare fraud class (about 0.5%), driven by night hours, distance from home,
foreign use, unusual amounts, risky merchant categories, new cards and velocity.
"""

from __future__ import annotations

import numpy as np

from workbench.data.generators.base import (
    Array,
    Generator,
    Schema,
    choice,
    choice_rows,
    chunked,
    sigmoid,
)

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
    z += 1.8 * sigmoid(2.0 * (np.log(distance) - np.log(150.0)))
    z += np.where(merchant == _TRAVEL, 0.4, 1.4) * foreign
    z += 0.9 * np.maximum(np.log(amount / avg_amount), 0.0)
    z += 1.5 * np.exp(-card_age / 45.0)
    z += 0.35 * np.maximum(tx_count - 2.0, 0.0)
    return z


def _fraud_chunk(n: int, rng: np.random.Generator, first_row: int) -> dict[str, Array]:
    merchant = choice(rng, _MERCHANT_P, n)
    device = choice_rows(rng, _MERCHANT_DEVICE, merchant)
    hour = choice(rng, _HOUR_P, n)
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
    is_fraud = rng.random(n) < sigmoid(_FRAUD_INTERCEPT + z)
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


GENERATOR = Generator(
    name="fraud",
    description="Card transactions (amount, merchant, hour, device, distance); "
    "rare fraud class (~0.5%).",
    task="binary",
    target="is_fraud",
    categorical=("merchant_category", "device"),
    default_rows=1_000_000,
    make=chunked(_FRAUD_SCHEMA, _fraud_chunk),
)
