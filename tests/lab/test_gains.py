"""Compute-equivalent gains and the lab's exchange rate, checked against hand and brute-force answers."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.errors import FitError
from oomlab.lab.exchange import Rung, compute_equivalent_gains, flops_to_reach, frontier


def column(accuracy: float, n: int = 200) -> np.ndarray:
    """A 0/1 column with exactly round(accuracy·n) ones."""
    c = np.zeros(n)
    c[: round(accuracy * n)] = 1
    return c


def rung(flops: float, *accuracies: float) -> Rung:
    return Rung(flops, flops, np.stack([column(a) for a in accuracies]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(60, 150), st.floats(0, 1)), min_size=1, max_size=8, unique_by=lambda t: t[0]))
def test_frontier_is_the_best_of_every_cheaper_model(points):
    points = [(10 ** (e / 10), a) for e, a in points]  # budgets a tenth of an OOM apart at least
    x, best = frontier([c for c, _ in points], [a for _, a in points])
    for xi, bi in zip(x, best):
        assert bi == max(a for c, a in points if math.log10(c) <= xi + 1e-9)
    assert np.all(np.diff(x) > 0) and np.all(np.diff(best) >= 0)


def test_ceg_by_hand():
    baseline = [rung(1e9, 0.2), rung(1e10, 0.4), rung(1e11, 0.6)]
    treated = [rung(1e9, 0.5), rung(1e9, 0.7), rung(1e10, 0.1), rung(1e10, 0.4)]
    g = compute_equivalent_gains(baseline, treated, ["mid", "past", "under", "equal"], n_boot=400)
    # 0.5 lies halfway (in log C) between 1e10 (0.4) and 1e11 (0.6): C* = 10^10.5, from 1e9 a gain of 10^1.5
    assert g[0].status == "within" and g[0].factor == pytest.approx(10**1.5)
    assert g[0].lo < g[0].factor < g[0].hi < math.inf
    assert g[1].status == "beyond" and g[1].factor == pytest.approx(100) and g[1].text.startswith("> 100")
    assert g[2].status == "below" and g[2].factor == pytest.approx(0.1) and g[2].text.startswith("≤ 0.1")
    assert g[3].factor == pytest.approx(1.0)  # the baseline's own accuracy: no gain
    assert g[0].baseline_accuracy == pytest.approx(0.2)


def test_ceg_brute_force_over_a_grid_of_budgets():
    """Against a brute-force search of the baseline's interpolated curve on a fine grid of training FLOPs."""
    rng = random.Random(4)
    budgets = [10.0 ** (9 + 0.5 * i) for i in range(6)]
    accs = sorted(rng.uniform(0.05, 0.95) for _ in budgets)
    baseline = [rung(c, a) for c, a in zip(budgets, accs)]
    grid = np.linspace(9, 11.5, 250_001)
    curve = np.interp(grid, np.log10(budgets), [column(a).mean() for a in accs])
    for target in (0.2, 0.37, 0.5, 0.81):
        if not curve[0] < target <= curve[-1]:
            continue
        g = compute_equivalent_gains(baseline, [rung(1e9, target)], ["t"], n_boot=20)[0]
        brute = grid[np.argmax(curve >= column(target).mean())]
        assert math.log10(g.factor) + 9 == pytest.approx(brute, abs=2e-5)


def test_seeds_widen_the_interval():
    one = [rung(1e9, 0.3), rung(1e10, 0.6)]
    two = [rung(1e9, 0.2, 0.4), rung(1e10, 0.6, 0.6)]
    a = compute_equivalent_gains(one, [rung(1e9, 0.45)], ["x"], n_boot=500)[0]
    b = compute_equivalent_gains(two, [rung(1e9, 0.45)], ["x"], n_boot=500)[0]
    assert a.factor == pytest.approx(b.factor)
    assert math.log10(b.hi / b.lo) > math.log10(a.hi / a.lo)


def test_needs_two_budgets_and_inverts_exactly():
    with pytest.raises(FitError):
        compute_equivalent_gains([rung(1e9, 0.5)], [rung(1e9, 0.6)], ["x"])
    x, best = frontier([1e9, 1e10], [0.2, 0.6])
    assert flops_to_reach(x, best, 0.4) == (pytest.approx(9.5), "within")
    assert flops_to_reach(x, best, 0.2)[1] == "below" and flops_to_reach(x, best, 0.61)[1] == "beyond"


def _point(budget: float, seed: int, shift: float):
    from oomlab.lab.exchange import LabPoint, StrategyCurve

    ks = (1, 2, 4, 8, 16)
    base = {1e9: 0.1, 1e10: 0.3, 1e11: 0.5}[budget] + shift
    matrix = np.stack([column(min(0.95, base + 0.08 * j)) for j in range(len(ks))], axis=1)
    flops = tuple(k * 1e6 * (budget / 1e9) ** 0.3 for k in ks)
    curve = StrategyCurve("majority:temperature=1.0", "majority", False, ks, flops, matrix)
    greedy = StrategyCurve("greedy", "greedy", False, (1,), flops[:1], matrix[:, :1])
    return LabPoint(f"cot-{budget:.0e}-s{seed}", budget, "cot", seed, budget, 1000, "run",
                    {"greedy": greedy, curve.key: curve})


def test_exchange_rate_over_problems_and_training_seeds():
    from oomlab.lab.exchange import exchange

    one = [_point(b, 0, 0.0) for b in (1e9, 1e10, 1e11)]
    two = one + [_point(b, 1, 0.04) for b in (1e9, 1e10, 1e11)]
    a = exchange(one, "cot", "majority:temperature=1.0", n_boot=200)
    b = exchange(two, "cot", "majority:temperature=1.0", n_boot=200)
    assert a.slope < 0 and "seeds" not in a.interval_method
    assert "training seeds" in b.interval_method
    for er in (a, b):
        lo, hi = er.slope_interval
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= er.slope <= hi


def test_no_gain_is_priced_at_chance():
    baseline = [rung(1e9, 0.14), rung(1e10, 0.15), rung(1e11, 0.6)]
    g = compute_equivalent_gains(baseline, [rung(1e9, 0.16), rung(1e9, 0.4)], ["noise", "real"], n_boot=200,
                                 floor=1 / 7 + 0.1)
    assert g[0].status == "chance" and "chance" in g[0].text and math.isnan(g[0].factor)
    assert g[1].status == "within" and g[1].factor > 1


def test_rate_bounds_from_curves_that_never_meet():
    from oomlab.lab.exchange import LabPoint, StrategyCurve, rate_bounds

    def point(budget, accs, flops):
        m = np.stack([column(a) for a in accs], axis=1)
        lo = tuple(max(0.0, a - 0.05) for a in accs)
        hi = tuple(min(1.0, a + 0.05) for a in accs)
        c = StrategyCurve("majority", "majority", False, (1, 16), flops, m, lo, hi)
        return LabPoint(f"m{budget:.0e}", budget, "direct", 0, budget, 1, "r", {"majority": c})

    pts = [point(1e10, (0.2, 0.3), (1e6, 1.6e7)), point(1e11, (0.5, 0.6), (2e6, 3.2e7)),
           point(1e12, (0.58, 0.7), (4e6, 6.4e7))]
    (b,) = rate_bounds(pts, "direct", "majority")  # the second pair overlaps: no bound from it
    assert (b.smaller, b.larger) == ("m1e+10", "m1e+11")
    assert b.train_ooms == pytest.approx(1.0) and b.test_ooms == pytest.approx(math.log10(1.6e7 / 2e6))
    assert b.bound == pytest.approx(math.log10(8))
    assert rate_bounds(pts, "direct", "majority", floor=0.55) == []  # the larger model at chance proves nothing
