"""Unit conversions that make compute legible: tokens ↔ working time, J/token ↔ watts, $ and MW.

Every default here is a figure from the literature or the seed estimates, with its
source beside it; every function takes the figure as an argument, so a user's own
numbers replace them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TypeVar

from oomlab.errors import ConfigError
from oomlab.forecast.pace import (
    DEFAULT_PACE,
    SECONDS_PER_HOUR,
    HumanPace,
    HumanTime,
    finite,
    finite_positive,
    human_time_to_tokens,
    tokens_to_human_time,
)

# HumanTime, tokens_to_human_time and human_time_to_tokens live in `pace` and are re-exported here.
__all__ = ["HumanTime", "human_time_to_tokens", "tokens_to_human_time"]

# --- human-equivalent power -----------------------------------------------------------
HUMAN_BRAIN_WATTS = 20.0  # conventional figure; the seed essay gives 10–30 W (FACTS.md)

# --- the seed estimates (issue #5 acceptance; FACTS.md) ------------------------------
SEED_GPUS = 16  # seed: 16 GPUs ...
SEED_WATTS_PER_GPU = 1500.0  # ... at 1,500 W all-in each (seed; FACTS.md: ≈1.4–1.5 kW per H100 all-in)
SEED_STREAMS = 100  # ... serving 100 concurrent streams ...
SEED_SPEED_VS_HUMAN = 300.0  # ... each 300× a human's speed
SEED_USD_PER_GPU_HOUR = 4.0  # seed: $4 per H100-hour (FACTS.md: 2026 cloud $1.5–$4, secondary)
SEED_USD_PER_MILLION_TOKENS = 5.0  # seed: $5 per million tokens
# The seed's third input, 750 human hours per million tokens, is a pace: pace.MONTH_PER_MILLION.

HOURS_PER_WEEK = 24.0 * 7  # a fleet serves around the clock

_T = TypeVar("_T")


def _positive(**values: float) -> None:
    for name, value in values.items():
        finite_positive(name, value)


def _finite_result(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{name} is too large to represent (overflow); use smaller inputs")
    return value


def _checked(result: _T) -> _T:
    """Refuse a result that overflowed to inf (e.g. 1e308 GPUs × $25k) with one clear line."""
    for f in fields(result):  # type: ignore[arg-type]
        value = getattr(result, f.name)
        if isinstance(value, float):
            _finite_result(f.name.replace("_", " "), value)
    return result


# ------------------------------------------------------------------ tokens ↔ time


# The essay's table (SA ch. I): orders of magnitude of thinking tokens and the human time they equal.
# Each row is evaluated at 3 × its power of ten, the middle of the order of magnitude in log terms.
ESSAY_THINKING_TABLE: tuple[tuple[str, float, str], ...] = (
    ("100s", 3e2, "minutes"),
    ("1,000s", 3e3, "half an hour"),
    ("10,000s", 3e4, "half a workday"),
    ("100,000s", 3e5, "a workweek"),
    ("millions", 3e6, "months"),
)


@dataclass(frozen=True)
class ThinkingRow:
    order: str
    tokens: float
    essay_says: str
    human_time: HumanTime


def thinking_time_table(pace: HumanPace = DEFAULT_PACE) -> tuple[ThinkingRow, ...]:
    """The essay's tokens → working-time table, recomputed at `pace` (the essay's own: 100/min, 40 h weeks)."""
    return tuple(
        ThinkingRow(order, tokens, says, tokens_to_human_time(tokens, pace))
        for order, tokens, says in ESSAY_THINKING_TABLE
    )


# ------------------------------------------------------------------ energy ↔ watts


def human_equivalent_watts(joules_per_token: float, pace: HumanPace = DEFAULT_PACE) -> float:
    """Power needed to produce tokens at a human's pace: J/token × the pace's tokens/s."""
    if finite("joules per token", joules_per_token) < 0:
        raise ConfigError(f"joules per token must be non-negative, got {joules_per_token:g}")
    return joules_per_token * pace.tokens_per_second


def joules_per_token_at(watts: float, pace: HumanPace = DEFAULT_PACE) -> float:
    """The J/token a power budget allows at human pace (a 20 W brain at 1 token/s → 20 J/token)."""
    _positive(watts=watts)
    return watts / pace.tokens_per_second


@dataclass(frozen=True)
class FleetEstimate:
    """A serving fleet in human terms: how many people-at-their-pace it replaces, per watt."""

    gpus: float
    watts_per_gpu: float
    streams: float
    speed_vs_human: float
    human_tokens_per_second: float
    total_watts: float
    tokens_per_second: float
    human_equivalents: float  # people thinking at the same moment
    full_time_workers: float  # people working the pace's hours a week, if the fleet runs around the clock
    watts_per_human_equivalent: float
    joules_per_token: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fleet_estimate(
    gpus: float = SEED_GPUS,
    watts_per_gpu: float = SEED_WATTS_PER_GPU,
    streams: float = SEED_STREAMS,
    speed_vs_human: float = SEED_SPEED_VS_HUMAN,
    pace: HumanPace = DEFAULT_PACE,
) -> FleetEstimate:
    """GPUs × watts over (streams × speed) human-equivalents; the seed's inputs give 0.8 W each, at any pace.

    Speed is relative to a human, so watts per human-equivalent do not depend on the
    pace; J/token and the fleet's tokens/s do, and so do full-time workers (a fleet
    runs 168 h a week, a person the pace's hours).
    """
    _positive(gpus=gpus, watts_per_gpu=watts_per_gpu, streams=streams, speed_vs_human=speed_vs_human)
    total = gpus * watts_per_gpu
    humans = streams * speed_vs_human
    tps = humans * pace.tokens_per_second
    return _checked(FleetEstimate(gpus, watts_per_gpu, streams, speed_vs_human, pace.tokens_per_second,
                                  total, tps, humans, humans * HOURS_PER_WEEK / pace.hours_per_week,
                                  total / humans, total / tps))


@dataclass(frozen=True)
class PriceEnergyEstimate:
    """Energy behind a token price, assuming the price is all GPU rental at a known power."""

    usd_per_gpu_hour: float
    watts_per_gpu: float
    usd_per_million_tokens: float
    human_tokens_per_second: float
    human_hours_per_million_tokens: float  # hours of thinking at the pace, not calendar time
    human_workdays_per_million_tokens: float  # those hours in the pace's working days
    gpu_hours_per_million_tokens: float
    watt_hours_per_million_tokens: float
    joules_per_token: float
    human_equivalent_watts: float  # energy per million tokens ÷ the human hours they replace = J/token × tokens/s

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def energy_from_price(
    usd_per_gpu_hour: float = SEED_USD_PER_GPU_HOUR,
    watts_per_gpu: float = SEED_WATTS_PER_GPU,
    usd_per_million_tokens: float = SEED_USD_PER_MILLION_TOKENS,
    pace: HumanPace = DEFAULT_PACE,
) -> PriceEnergyEstimate:
    """$/M tokens ÷ $/GPU-hour = GPU-hours per M tokens; × watts = energy; ÷ human hours = watts.

    The seed's inputs ($4/H100-hour, 1.5 kW, $5/M tokens) give 6.75 J/token; at the
    seed's own pace (750 h per million tokens, `pace.MONTH_PER_MILLION`) that is 2.5 W,
    at 100 tokens/minute 11.25 W. An upper bound on energy where the price also pays
    for margin and idle time.
    """
    _positive(usd_per_gpu_hour=usd_per_gpu_hour, watts_per_gpu=watts_per_gpu,
              usd_per_million_tokens=usd_per_million_tokens)
    gpu_hours = usd_per_million_tokens / usd_per_gpu_hour
    watt_hours = gpu_hours * watts_per_gpu
    human_hours = pace.hours_per_million_tokens
    return _checked(PriceEnergyEstimate(
        usd_per_gpu_hour, watts_per_gpu, usd_per_million_tokens, pace.tokens_per_second, human_hours,
        human_hours / pace.hours_per_day, gpu_hours, watt_hours, watt_hours * SECONDS_PER_HOUR / 1e6,
        watt_hours / human_hours,
    ))


# ------------------------------------------------------------------ money


def usd_per_million_tokens(usd_per_gpu_hour: float, tokens_per_second_per_gpu: float) -> float:
    """Serving cost from rental price and throughput: $/h ÷ (tokens/s × 3600) × 1e6."""
    _positive(usd_per_gpu_hour=usd_per_gpu_hour, tokens_per_second_per_gpu=tokens_per_second_per_gpu)
    return _finite_result("USD per million tokens", usd_per_gpu_hour / (tokens_per_second_per_gpu * SECONDS_PER_HOUR) * 1e6)


def tokens_per_second_for_price(usd_per_gpu_hour: float, usd_per_million: float) -> float:
    """The per-GPU throughput a price implies (the inverse of `usd_per_million_tokens`)."""
    _positive(usd_per_gpu_hour=usd_per_gpu_hour, usd_per_million=usd_per_million)
    return _finite_result("tokens per second", usd_per_gpu_hour / usd_per_million * 1e6 / SECONDS_PER_HOUR)


GPU_SHARE_OF_CLUSTER_COST = 0.5  # GPUs are about half of a cluster's cost (Situational Awareness IIIa)


@dataclass(frozen=True)
class ClusterEstimate:
    """What a cluster of N accelerators costs to build and draws from the grid."""

    gpus: float
    unit_usd: float
    gpu_share_of_cost: float
    all_in_watts: float
    peak_flops: float | None
    gpu_capex_usd: float
    capex_usd: float
    megawatts: float
    gwh_per_year: float
    peak_flops_total: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def cluster_estimate(
    gpus: float,
    unit_usd: float,
    all_in_watts: float,
    gpu_share_of_cost: float = GPU_SHARE_OF_CLUSTER_COST,
    peak_flops: float | None = None,
) -> ClusterEstimate:
    """Capex = GPUs × unit price ÷ GPU share of cost; power = GPUs × all-in watts (SA IIIa's method)."""
    _positive(gpus=gpus, unit_usd=unit_usd, all_in_watts=all_in_watts)
    if not 0 < finite("the GPU share of cluster cost", gpu_share_of_cost) <= 1:
        raise ConfigError(f"the GPU share of cluster cost must be in (0, 1], got {gpu_share_of_cost}")
    gpu_capex = gpus * unit_usd
    mw = gpus * all_in_watts / 1e6
    return _checked(ClusterEstimate(
        gpus, unit_usd, gpu_share_of_cost, all_in_watts, peak_flops, gpu_capex, gpu_capex / gpu_share_of_cost,
        mw, mw * 24 * 365 / 1000, None if peak_flops is None else gpus * peak_flops,
    ))
