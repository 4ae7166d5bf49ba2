"""A measured run's books as the figures the OOMs argument uses: J/token, $/M, tokens/s, watts.

All per-token figures are per *completion* token: the tokens a model thinks in,
which is what human working time and human-equivalent watts compare against.
Human time and watts are recomputed here at the chosen pace, not read from the
books, so one table never mixes two paces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from oomlab.forecast.conversions import human_equivalent_watts
from oomlab.forecast.pace import DEFAULT_PACE, HumanPace, tokens_to_human_time

if TYPE_CHECKING:  # the ledger imports the pace from forecast; a runtime import back would be a cycle
    from oomlab.ledger import LedgerTotals


@dataclass(frozen=True)
class MeasuredFigures:
    """One run, in the OOMs units. None where the books hold nothing to divide."""

    model_id: str
    samples: int
    completion_tokens: float
    joules_per_token: float | None
    usd_per_million_tokens: float | None
    tokens_per_second: float | None
    speed_vs_human: float | None
    human_equivalent_watts: float | None
    human_hours: float
    energy_measured: bool  # False: joules were estimated from a configured device power
    pace: HumanPace = DEFAULT_PACE

    @property
    def energy_label(self) -> str:
        return "measured" if self.energy_measured else "estimated"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "pace": self.pace.as_dict(), "energy": self.energy_label}


def measured_figures(totals: LedgerTotals, pace: HumanPace = DEFAULT_PACE) -> MeasuredFigures:
    """J/token, $/M tokens, tokens/s and human-equivalent watts from a run's ledger totals, at `pace`."""
    tokens = totals.completion_tokens
    has_tokens = tokens > 0
    jpt = totals.joules / tokens if has_tokens and totals.joules > 0 else None
    tps = tokens / totals.seconds if has_tokens and totals.seconds > 0 else None
    return MeasuredFigures(
        model_id=totals.model_id,
        samples=totals.samples,
        completion_tokens=tokens,
        joules_per_token=jpt,
        usd_per_million_tokens=totals.dollars / tokens * 1e6 if has_tokens else None,
        tokens_per_second=tps,
        speed_vs_human=None if tps is None else tps / pace.tokens_per_second,
        human_equivalent_watts=None if jpt is None else human_equivalent_watts(jpt, pace),
        human_hours=tokens_to_human_time(tokens, pace).hours,
        energy_measured=totals.energy_measured,
        pace=pace,
    )
