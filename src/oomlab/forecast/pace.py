"""One human pace: how fast a person "thinks" in tokens, and how many hours a day they work.

Every human-time figure in oomlab — tokens as working time, human-equivalent watts,
a fleet in people, the books' human minutes — is computed from one `HumanPace`, so
two numbers printed side by side never rest on two different paces. The sources
use three conventions; each is a named preset, and `DEFAULT_PACE` is the one the
project uses unless told otherwise:

- `100-per-minute` (default): ~100 tokens a minute, 40-hour weeks of 8-hour days
  (Aschenbrenner 2024, "Situational Awareness", ch. I; FACTS.md).
- `one-per-second`: one token a second, 8 hours a day (the seed essay's estimate;
  issue #5: "a human's 1 token/s"; FACTS.md: an 8-hour working day).
- `month-per-million`: a month per million tokens — the seed's 750 human hours per
  million tokens, which is a calendar month of round-the-clock thinking (31.25
  days × 24 h), i.e. 0.37 tokens/s for 24 hours a day, 7 days a week.

This module imports nothing from the rest of oomlab but `errors`, so the ledger can
take its pace from here without pulling in the forecast tables.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from oomlab.errors import ConfigError, UnknownNameError

SECONDS_PER_HOUR = 3600.0
WEEKS_PER_YEAR = 52.0  # working months and years are 52/12 and 52 working weeks (as in 40 h × 52 / 12)


def finite(name: str, value: float) -> float:
    """`value` if it is a finite number; inf and nan are refused with one clear line."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    return float(value)


def finite_positive(name: str, value: float) -> float:
    """`value` if it is finite and > 0."""
    if not finite(name, value) > 0:
        raise ConfigError(f"{name} must be positive, got {value:g}")
    return float(value)


@dataclass(frozen=True)
class HumanPace:
    """A person thinking at `tokens_per_second` for `hours_per_day` hours, `days_per_week` days a week."""

    tokens_per_second: float
    hours_per_day: float
    days_per_week: float = 5.0
    name: str = "custom"
    source: str = "set on the command line"

    def __post_init__(self) -> None:
        finite_positive("the human pace's tokens per second", self.tokens_per_second)
        finite_positive("the human pace's hours per day", self.hours_per_day)
        finite_positive("the human pace's days per week", self.days_per_week)
        if self.hours_per_day > 24:
            raise ConfigError(f"hours per day must be at most 24, got {self.hours_per_day:g}")
        if self.days_per_week > 7:
            raise ConfigError(f"days per week must be at most 7, got {self.days_per_week:g}")

    @property
    def tokens_per_minute(self) -> float:
        return self.tokens_per_second * 60

    @property
    def tokens_per_hour(self) -> float:
        return self.tokens_per_second * SECONDS_PER_HOUR

    @property
    def hours_per_week(self) -> float:
        return self.hours_per_day * self.days_per_week

    @property
    def hours_per_million_tokens(self) -> float:
        """Hours of thinking a million tokens take at this pace (the seed's 750 at month-per-million)."""
        return 1e6 / self.tokens_per_hour

    def describe(self) -> str:
        """One line for every output that uses the pace: the numbers, the preset and its source."""
        return (f"human pace {self.tokens_per_second:.3g} tokens/s ({self.tokens_per_minute:.3g}/min), "
                f"{self.hours_per_day:g} h/day, {self.days_per_week:g} days/week "
                f"[{self.name}: {self.source}]")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "tokens_per_minute": self.tokens_per_minute,
                "hours_per_million_tokens": self.hours_per_million_tokens}


HUNDRED_PER_MINUTE = HumanPace(
    100 / 60, 8.0, 5.0, "100-per-minute",
    "Aschenbrenner 2024, Situational Awareness ch. I: ~100 tokens/minute, 40-hour weeks",
)
ONE_PER_SECOND = HumanPace(
    1.0, 8.0, 5.0, "one-per-second",
    "seed essay: one token per second, 8 hours a day (issue #5)",
)
MONTH_PER_MILLION = HumanPace(
    1e6 / (750 * SECONDS_PER_HOUR), 24.0, 7.0, "month-per-million",
    "seed essay: 750 human hours per million tokens, a calendar month of round-the-clock thinking",
)
PRESETS: dict[str, HumanPace] = {p.name: p for p in (HUNDRED_PER_MINUTE, ONE_PER_SECOND, MONTH_PER_MILLION)}
DEFAULT_PACE = HUNDRED_PER_MINUTE

# For the ledger's human minutes per sample: the default pace, in the unit the ledger counts in.
HUMAN_TOKENS_PER_MINUTE = DEFAULT_PACE.tokens_per_minute


def preset(name: str) -> HumanPace:
    """A named pace; an unknown name lists the valid ones."""
    found = PRESETS.get(name.strip().lower())
    if found is None:
        raise UnknownNameError("pace", name, sorted(PRESETS))
    return found


def resolve_pace(
    name: str | None = None,
    tokens_per_second: float | None = None,
    hours_per_day: float | None = None,
    days_per_week: float | None = None,
) -> HumanPace:
    """A preset (default `DEFAULT_PACE`) with any of its three numbers replaced; a change renames it."""
    base = DEFAULT_PACE if name is None else preset(name)
    changes = {k: v for k, v in (("tokens_per_second", tokens_per_second), ("hours_per_day", hours_per_day),
                                 ("days_per_week", days_per_week)) if v is not None}
    if not changes:
        return base
    for key, value in changes.items():
        finite_positive(f"the human pace's {key.replace('_', ' ')}", value)
    return replace(base, **changes, name="custom", source=f"{base.name} with {_changed(changes)}")


def _changed(changes: dict[str, float]) -> str:
    units = {"tokens_per_second": "tokens/s", "hours_per_day": "h/day", "days_per_week": "days/week"}
    return ", ".join(f"{v:g} {units[k]}" for k, v in changes.items())


# ------------------------------------------------------------------ tokens ↔ working time


@dataclass(frozen=True)
class HumanTime:
    """How long a person at `pace` would take to think `tokens` tokens, in working units."""

    tokens: float
    minutes: float
    hours: float
    workdays: float
    workweeks: float
    workmonths: float
    pace: HumanPace

    @property
    def workyears(self) -> float:
        return self.workweeks / WEEKS_PER_YEAR

    def phrase(self) -> str:
        """The largest unit that reads naturally: '3.0 minutes', '5.3 hours (0.66 workdays)', ..."""
        if self.hours < 1:
            return f"{self.minutes:.3g} minutes"
        if self.workdays < 1:
            return f"{self.hours:.3g} hours ({self.workdays:.2g} workdays)"
        if self.workweeks < 1:
            return f"{self.workdays:.3g} workdays"
        if self.workmonths < 1:
            return f"{self.workweeks:.3g} workweeks"
        if self.workmonths < 24:
            return f"{self.workmonths:.3g} working months"
        return f"{self.workyears:.3g} working years"

    def as_dict(self) -> dict[str, object]:
        return {"tokens": self.tokens, "minutes": self.minutes, "hours": self.hours, "workdays": self.workdays,
                "workweeks": self.workweeks, "workmonths": self.workmonths, "workyears": self.workyears,
                "phrase": self.phrase(), "pace": self.pace.as_dict()}


def tokens_to_human_time(tokens: float, pace: HumanPace = DEFAULT_PACE) -> HumanTime:
    """Thinking tokens as the working time a person at `pace` needs for them."""
    if finite("tokens", tokens) < 0:
        raise ConfigError(f"tokens must be non-negative, got {tokens:g}")
    hours = tokens / pace.tokens_per_hour
    days = hours / pace.hours_per_day
    weeks = days / pace.days_per_week
    return HumanTime(tokens, hours * 60, hours, days, weeks, weeks * 12 / WEEKS_PER_YEAR, pace)


def human_time_to_tokens(hours: float, pace: HumanPace = DEFAULT_PACE) -> float:
    """Hours of human thinking as the tokens a person at `pace` would produce in them."""
    if finite("hours", hours) < 0:
        raise ConfigError(f"hours must be non-negative, got {hours:g}")
    return hours * pace.tokens_per_hour
