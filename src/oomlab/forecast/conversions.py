"""Unit conversions that make compute legible: tokens ↔ working time, J/token ↔ watts, $ and MW.

Every default here is a figure from the literature or the seed estimates, with its
source beside it; every function takes the figure as an argument, so a user's own
numbers replace them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from oomlab.errors import ConfigError

# --- human working time -------------------------------------------------------------
TOKENS_PER_HUMAN_MINUTE = 100.0  # a human "thinks" ~100 tokens/minute (Aschenbrenner 2024, ch. I)
WORKDAY_HOURS = 8.0  # (Aschenbrenner 2024, ch. I: 8-hour days)
WORKWEEK_HOURS = 40.0  # (Aschenbrenner 2024, ch. I: 40-hour weeks)
WORKMONTH_HOURS = WORKWEEK_HOURS * 52 / 12  # 173.3 h: 52 weeks / 12 months (derived)

# --- human-equivalent power -----------------------------------------------------------
HUMAN_TOKENS_PER_SECOND = 1.0  # seed estimate: "a human's 1 token/s" (issue #5 acceptance)
HUMAN_BRAIN_WATTS = 20.0  # conventional figure; the seed essay gives 10–30 W (FACTS.md)

# --- the seed estimates (issue #5 acceptance; FACTS.md) ------------------------------
SEED_GPUS = 16  # seed: 16 GPUs ...
SEED_WATTS_PER_GPU = 1500.0  # ... at 1,500 W all-in each (seed; FACTS.md: ≈1.4–1.5 kW per H100 all-in)
SEED_STREAMS = 100  # ... serving 100 concurrent streams ...
SEED_SPEED_VS_HUMAN = 300.0  # ... each 300× a human's speed
SEED_USD_PER_GPU_HOUR = 4.0  # seed: $4 per H100-hour (FACTS.md: 2026 cloud $1.5–$4, secondary)
SEED_USD_PER_MILLION_TOKENS = 5.0  # seed: $5 per million tokens
SEED_HUMAN_HOURS_PER_MILLION_TOKENS = 750.0  # seed: 750 human working hours per million tokens

SECONDS_PER_HOUR = 3600.0


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")


# ------------------------------------------------------------------ tokens ↔ time


@dataclass(frozen=True)
class HumanTime:
    """How long a person working at 100 tokens/minute, 8 h/day, 40 h/week would take."""

    tokens: float
    minutes: float
    hours: float
    workdays: float
    workweeks: float
    workmonths: float

    def phrase(self) -> str:
        """The largest unit that reads naturally: '3.0 minutes', '5.3 hours (0.66 workdays)', ..."""
        if self.hours < 1:
            return f"{self.minutes:.3g} minutes"
        if self.hours < WORKDAY_HOURS:
            return f"{self.hours:.3g} hours ({self.workdays:.2g} workdays)"
        if self.hours < WORKWEEK_HOURS:
            return f"{self.workdays:.3g} workdays"
        if self.hours < WORKMONTH_HOURS:
            return f"{self.workweeks:.3g} workweeks"
        if self.workmonths < 24:
            return f"{self.workmonths:.3g} working months"
        return f"{self.workmonths / 12:.3g} working years"


def tokens_to_human_time(tokens: float, tokens_per_minute: float = TOKENS_PER_HUMAN_MINUTE) -> HumanTime:
    """Thinking tokens as human working time (Aschenbrenner 2024, ch. I: ~100 tokens/minute)."""
    if tokens < 0:
        raise ConfigError(f"tokens must be non-negative, got {tokens}")
    _positive(tokens_per_minute=tokens_per_minute)
    minutes = tokens / tokens_per_minute
    hours = minutes / 60
    return HumanTime(tokens, minutes, hours, hours / WORKDAY_HOURS, hours / WORKWEEK_HOURS, hours / WORKMONTH_HOURS)


def human_time_to_tokens(hours: float, tokens_per_minute: float = TOKENS_PER_HUMAN_MINUTE) -> float:
    """Working hours as the tokens a person would produce in them."""
    if hours < 0:
        raise ConfigError(f"hours must be non-negative, got {hours}")
    return hours * 60 * tokens_per_minute


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


def thinking_time_table(tokens_per_minute: float = TOKENS_PER_HUMAN_MINUTE) -> tuple[ThinkingRow, ...]:
    """The essay's tokens → working-time table, recomputed from 100 tokens/minute and 8 h/40 h."""
    return tuple(
        ThinkingRow(order, tokens, says, tokens_to_human_time(tokens, tokens_per_minute))
        for order, tokens, says in ESSAY_THINKING_TABLE
    )


# ------------------------------------------------------------------ energy ↔ watts


def human_equivalent_watts(joules_per_token: float, human_tokens_per_second: float = HUMAN_TOKENS_PER_SECOND) -> float:
    """Power needed to produce tokens at a human's pace: J/token × tokens/s (1 token/s by default)."""
    _positive(human_tokens_per_second=human_tokens_per_second)
    if joules_per_token < 0:
        raise ConfigError(f"joules per token must be non-negative, got {joules_per_token}")
    return joules_per_token * human_tokens_per_second


def joules_per_token_at(watts: float, human_tokens_per_second: float = HUMAN_TOKENS_PER_SECOND) -> float:
    """The J/token a power budget allows at human pace (20 W brain at 1 token/s → 20 J/token)."""
    _positive(watts=watts, human_tokens_per_second=human_tokens_per_second)
    return watts / human_tokens_per_second


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
    human_equivalents: float
    watts_per_human_equivalent: float
    joules_per_token: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fleet_estimate(
    gpus: float = SEED_GPUS,
    watts_per_gpu: float = SEED_WATTS_PER_GPU,
    streams: float = SEED_STREAMS,
    speed_vs_human: float = SEED_SPEED_VS_HUMAN,
    human_tokens_per_second: float = HUMAN_TOKENS_PER_SECOND,
) -> FleetEstimate:
    """GPUs × watts over (streams × speed) human-equivalents; the seed's inputs give 0.8 W each."""
    _positive(gpus=gpus, watts_per_gpu=watts_per_gpu, streams=streams, speed_vs_human=speed_vs_human,
              human_tokens_per_second=human_tokens_per_second)
    total = gpus * watts_per_gpu
    humans = streams * speed_vs_human
    tps = humans * human_tokens_per_second
    return FleetEstimate(gpus, watts_per_gpu, streams, speed_vs_human, human_tokens_per_second,
                         total, tps, humans, total / humans, total / tps)


@dataclass(frozen=True)
class PriceEnergyEstimate:
    """Energy behind a token price, assuming the price is all GPU rental at a known power."""

    usd_per_gpu_hour: float
    watts_per_gpu: float
    usd_per_million_tokens: float
    human_hours_per_million_tokens: float
    gpu_hours_per_million_tokens: float
    watt_hours_per_million_tokens: float
    joules_per_token: float
    human_equivalent_watts: float  # energy per million tokens ÷ the human hours they replace

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def energy_from_price(
    usd_per_gpu_hour: float = SEED_USD_PER_GPU_HOUR,
    watts_per_gpu: float = SEED_WATTS_PER_GPU,
    usd_per_million_tokens: float = SEED_USD_PER_MILLION_TOKENS,
    human_hours_per_million_tokens: float = SEED_HUMAN_HOURS_PER_MILLION_TOKENS,
) -> PriceEnergyEstimate:
    """$/M tokens ÷ $/GPU-hour = GPU-hours per M tokens; × watts = energy; ÷ human hours = watts.

    The seed's inputs ($4/H100-hour, 1.5 kW, $5/M tokens, 750 human hours/M) give 2.5 W.
    An upper bound on energy where the price also pays for margin and idle time.
    """
    _positive(usd_per_gpu_hour=usd_per_gpu_hour, watts_per_gpu=watts_per_gpu,
              usd_per_million_tokens=usd_per_million_tokens,
              human_hours_per_million_tokens=human_hours_per_million_tokens)
    gpu_hours = usd_per_million_tokens / usd_per_gpu_hour
    watt_hours = gpu_hours * watts_per_gpu
    return PriceEnergyEstimate(
        usd_per_gpu_hour, watts_per_gpu, usd_per_million_tokens, human_hours_per_million_tokens,
        gpu_hours, watt_hours, watt_hours * SECONDS_PER_HOUR / 1e6, watt_hours / human_hours_per_million_tokens,
    )


# ------------------------------------------------------------------ money


def usd_per_million_tokens(usd_per_gpu_hour: float, tokens_per_second_per_gpu: float) -> float:
    """Serving cost from rental price and throughput: $/h ÷ (tokens/s × 3600) × 1e6."""
    _positive(usd_per_gpu_hour=usd_per_gpu_hour, tokens_per_second_per_gpu=tokens_per_second_per_gpu)
    return usd_per_gpu_hour / (tokens_per_second_per_gpu * SECONDS_PER_HOUR) * 1e6


def tokens_per_second_for_price(usd_per_gpu_hour: float, usd_per_million: float) -> float:
    """The per-GPU throughput a price implies (the inverse of `usd_per_million_tokens`)."""
    _positive(usd_per_gpu_hour=usd_per_gpu_hour, usd_per_million=usd_per_million)
    return usd_per_gpu_hour / usd_per_million * 1e6 / SECONDS_PER_HOUR


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
    if not 0 < gpu_share_of_cost <= 1:
        raise ConfigError(f"the GPU share of cluster cost must be in (0, 1], got {gpu_share_of_cost}")
    gpu_capex = gpus * unit_usd
    mw = gpus * all_in_watts / 1e6
    return ClusterEstimate(
        gpus, unit_usd, gpu_share_of_cost, all_in_watts, peak_flops, gpu_capex, gpu_capex / gpu_share_of_cost,
        mw, mw * 24 * 365 / 1000, None if peak_flops is None else gpus * peak_flops,
    )
