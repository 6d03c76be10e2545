"""The ``maintenance`` generator.

Machine sensor readings; the target says whether the machine fails within the horizon (about 3.5%),
driven by tool wear, torque-wear overstrain, poor heat dissipation, and hidden bearing faults and
leaks that show in vibration and pressure.

The failure mechanisms follow the AI4I 2020 Predictive Maintenance Dataset (Matzka 2020, UCI),
but no published figure applies: AI4I's labels are fixed rules of its own columns, while this
target adds hidden faults, a horizon and noise (``datasets/maintenance.yaml``).
"""

from __future__ import annotations

import numpy as np

from workbench.data.generators.base import Array, Generator, Schema, choice, chunked, sigmoid

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
    z += 4.0 * sigmoid(12.0 * (torque_rel * wear / 200.0 - 1.1))  # overstrain
    z += 3.5 * sigmoid(2.0 * (9.5 - dissipation)) * sigmoid(25.0 * (0.95 - rpm_rel))
    z += 0.25 * np.maximum(temperature - 48.0, 0.0)
    z += 0.8 * hours / 60000.0
    z += 2.0 * bearing_fault + 1.5 * leak
    return z


def _maintenance_chunk(n: int, rng: np.random.Generator, first_row: int) -> dict[str, Array]:
    kind = choice(rng, _MACHINE_P, n)
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
    failure = rng.random(n) < sigmoid(_MAINTENANCE_INTERCEPT + z)
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


GENERATOR = Generator(
    name="maintenance",
    description="Machine sensor readings (wear, torque, heat, vibration, pressure); "
    "failure within the horizon (~3.5%).",
    task="binary",
    target="failure_within_horizon",
    categorical=("machine_type",),
    default_rows=1_000_000,
    make=chunked(_MAINTENANCE_SCHEMA, _maintenance_chunk),
)
