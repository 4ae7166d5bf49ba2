"""The MATH grader: Math-Verify equivalence in worker processes, safe off the main thread, bounded in time.

Every verdict here comes from the real Math-Verify (no mock): the grader's worker processes run it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from oomlab.tasks.math_grading import MathGrader

# (answer as a model would write it, reference as MATH writes it)
ACCEPT = [
    ("14/3", "\\frac{14}{3}"),  # a plain-text fraction
    ("\\dfrac{14}{3}", "\\frac{14}{3}"),
    ("\\sqrt{18}", "3\\sqrt{2}"),  # radicals
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"),
    ("[2,5)", "[2, 5)"),  # intervals
    ("(-\\infty, 2]", "(-\\infty,2]"),
    ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)"),  # a tuple (MATH-500's first problem)
    ("\\{2,1\\}", "\\{1,2\\}"),  # sets are unordered
    ("90", "90^\\circ"),  # degrees
    ("10", "10\\%"),  # percentages
    ("Evelyn", "\\text{Evelyn}"),  # \text{} answers
    ("C", "\\text{(C)}"),
    ("x(x+2)", "x^2+2x"),  # algebra
    ("1,000", "1000"),
    ("0.5", "\\frac12"),
    ("x=5", "5"),
]

REJECT = [
    ("-5", "5"),  # a wrong sign
    ("5", "-5"),
    ("(\\frac{\\pi}{2}, 3)", "\\left( 3, \\frac{\\pi}{2} \\right)"),  # a swapped tuple
    ("3.14", "\\pi"),  # a decimal for pi
    ("0.33", "\\frac{1}{3}"),  # a rounded decimal for a fraction
    ("0.333", "\\frac{1}{3}"),
    ("(2,5)", "[2,5)"),  # an open interval for a half-open one
    ("\\text{Bob}", "\\text{Evelyn}"),
    ("15/4", "\\frac{14}{3}"),
    ("", "5"),  # empty and missing answers
    ("   ", "5"),
    (None, "5"),
]


@pytest.fixture(scope="module")
def grader():
    g = MathGrader(workers=2)
    yield g
    g.close()


def test_equivalent_forms_are_accepted(grader: MathGrader) -> None:
    verdicts = grader.grade_many(ACCEPT)
    assert [pair for pair, ok in zip(ACCEPT, verdicts) if not ok] == []


def test_wrong_answers_are_rejected(grader: MathGrader) -> None:
    verdicts = grader.grade_many(REJECT)
    assert [pair for pair, ok in zip(REJECT, verdicts) if ok] == []


def test_plain_integers_agree_with_math_verify(grader: MathGrader) -> None:
    pairs = [("42", "42"), ("-7", "-7"), ("007", "7"), ("7", "-7"), ("41", "42")]
    slow = MathGrader(workers=1, integer_fast_path=False)
    try:
        assert grader.grade_many(pairs) == slow.grade_many(pairs) == [True, True, True, False, False]
        assert slow.stats.integers == 0
    finally:
        slow.close()


def test_grading_from_threads_and_async_code(grader: MathGrader) -> None:
    """Math-Verify's own alarms would raise off the main thread; the grader's workers do not care."""
    pairs = [(f"\\frac{{{i}}}{{{i + 1}}}", f"{i}/{i + 1}") for i in range(12)] + [("\\pi", f"{i}") for i in range(4)]
    expected = [True] * 12 + [False] * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(lambda p: grader.grade(*p), pairs)) == expected

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(grader.agrade(a, r) for a, r in pairs)))

    assert asyncio.run(main()) == expected
    errors: list[BaseException] = []

    def in_a_thread_with_its_own_loop() -> None:
        try:
            assert asyncio.run(grader.agrade("\\frac{1}{2}", "0.5")) is True
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=in_a_thread_with_its_own_loop)
    t.start()
    t.join()
    assert errors == []


def test_a_pathological_expression_costs_its_deadline_not_a_hang() -> None:
    """9^(9^(9^9)) has 10^(3.7e8) digits: SymPy would compute forever. The worker is killed and replaced."""
    g = MathGrader(workers=1, timeout=2.0)
    try:
        g.warm()
        started = time.monotonic()
        assert g.grade("9^{9^{9^{9}}}", "1") is False
        assert time.monotonic() - started < 8.0
        assert g.stats.timeouts == 1
        assert g.grade("\\frac{1}{2}", "0.5") is True  # a fresh worker took over
        assert g.stats.workers_started == 2
    finally:
        g.close()


def test_a_batch_with_one_hang_keeps_the_other_verdicts() -> None:
    g = MathGrader(workers=1, timeout=2.0)
    try:
        verdicts = g.grade_many([("\\frac{1}{2}", "0.5"), ("9^{9^{9^{9}}}", "1"), ("-5", "-5.0")])
        assert verdicts == [True, False, True]
        assert g.stats.timeouts == 1
    finally:
        g.close()


def test_verdicts_are_cached(grader: MathGrader) -> None:
    before = grader.stats.cached
    assert grader.grade("\\sqrt{8}", "2\\sqrt{2}") is True
    assert grader.grade("\\sqrt{8}", "2\\sqrt{2}") is True
    assert grader.stats.cached == before + 1


def test_a_closed_grader_refuses_work() -> None:
    from oomlab.errors import ConfigError

    g = MathGrader(workers=1)
    g.close()
    with pytest.raises(ConfigError, match="closed"):
        g.grade("1/2", "0.5")
