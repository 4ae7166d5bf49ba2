"""The waste line: work the hardware did that produced no sample a run kept, shown beside the useful work."""

from __future__ import annotations

from oomlab.store import WasteTotals


def waste_line(w: WasteTotals) -> str:
    """Work the hardware did that produced no kept sample, beside the useful work."""
    reasons = ", ".join(f"{n}× {r}" for r, n in sorted(w.reasons.items()))
    est = " (estimated)" if w.estimated else ""
    return (f"waste{est}: {w.requests} request{'s' if w.requests != 1 else ''} with no kept sample · "
            f"{w.tokens:,} tokens · {w.seconds:.1f} s · {reasons}")

