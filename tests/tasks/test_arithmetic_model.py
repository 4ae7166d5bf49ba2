"""The arithmetic prompt on the embedded model: the base model follows it, and the levels are graded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oomlab.backends.base import GenRequest
from oomlab.tasks.arithmetic import ArithmeticTask

pytestmark = pytest.mark.slow


def greedy_results(backend, task: ArithmeticTask, n: int) -> list[tuple[str | None, bool]]:
    params = replace(task.sampling(), temperature=0.0)
    out = []
    for problem in task.problems(n, seed=1):
        text = backend.generate(GenRequest(prompt=task.prompt(problem), params=params))[0].text
        answer = task.extract(text)
        out.append((answer, task.check(answer, problem)))
    return out


def test_easiest_level_mostly_right_hardest_mostly_wrong(embedded_backend) -> None:
    easy = greedy_results(embedded_backend, ArithmeticTask(difficulty=1), 40)
    hard = greedy_results(embedded_backend, ArithmeticTask(difficulty=5), 20)
    easy_acc = sum(ok for _, ok in easy) / len(easy)
    hard_acc = sum(ok for _, ok in hard) / len(hard)
    print(f"greedy accuracy: level 1 {easy_acc:.0%}, level 5 {hard_acc:.0%}")
    assert easy_acc >= 0.55  # measured 80-84% (40-100 problems, llama_cpp.Llama)
    assert hard_acc <= 0.2  # measured 0%
    # the base model follows the bare-equation format: an integer comes back nearly always
    assert sum(answer is not None for answer, _ in easy + hard) >= 54
