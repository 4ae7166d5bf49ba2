"""Chain addition for the lab: add k numbers, directly or with a scratchpad of running sums.

    direct:  37+5+81=123
    cot:     37+5+81=42,123;123      (running sums, then ';' and the answer)

Difficulty level = number of operands minus one (level 1: two numbers). In the direct format the
model must add all k numbers in one go, most significant digit first; in the scratchpad each
step is one two-number sum whose first operand it has just written (the "scratchpad" of Nye et
al. 2021, arXiv 2112.00114; Lee et al. 2023, arXiv 2307.03381, §4, on addition formats).
Held-out problems: see oomlab.lab.problems.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from oomlab.errors import ConfigError
from oomlab.lab.problems import EOS, Example, LabTask
from oomlab.tasks.base import TASKS


@TASKS.register("lab-sum")
class LabSumTask(LabTask):
    description: ClassVar[str] = "lab: add 2-5 numbers, direct answer or a scratchpad of running sums"
    vocab: ClassVar[str] = EOS + "0123456789+=,;"

    def __init__(self, format: str = "cot", max_operands: int = 5, digits: int = 2, padded: bool = True,
                 reverse: bool = True, min_operands: int = 2, split: str = "eval") -> None:
        super().__init__(format, split)
        if not 2 <= min_operands <= max_operands <= 9 or not 1 <= digits <= 6:
            raise ConfigError("lab-sum: need 2 <= min_operands <= max_operands <= 9 and digits 1-6")
        self.max_operands, self.digits, self.padded, self.reverse = max_operands, digits, padded, reverse
        self.min_operands = min_operands
        self.levels = tuple(range(min_operands - 1, max_operands))
        self.width = len(str(max_operands * (10**digits - 1)))  # of the largest sum

    def draw(self, rng: random.Random, level: int) -> Example:
        """level+1 numbers, each uniform in 0 .. 10^digits - 1."""
        numbers = [rng.randrange(10**self.digits) for _ in range(level + 1)]
        key = "+".join(map(str, numbers))
        sums = [numbers[0]]
        for x in numbers[1:]:
            sums.append(sums[-1] + x)
        written = [self._write(s) for s in sums[1:]]
        answer = written[-1] if self.format == "direct" else ",".join(written) + ";" + written[-1]
        prompt = "+".join(str(x).zfill(self.digits) if self.padded else str(x) for x in numbers) + "="
        return Example(key=key, prompt=prompt, answer=answer + EOS, level=level, reference=str(sums[-1]))

    def _write(self, value: int) -> str:
        text = str(value).zfill(self.width) if self.padded else str(value)
        return text[::-1] if self.reverse else text

    def extract(self, text: str) -> str | None:
        """The final answer as an integer (its digits read back in place when the format reverses them)."""
        line = self.final_text(text)
        if line is None or not line.isdigit():
            return None
        return str(int(line[::-1] if self.reverse else line))

    def max_answer_tokens(self, level: int | None = None) -> int:
        steps = self.levels[-1] if level is None else level
        if self.format == "direct":
            return self.width + 1
        return steps * (self.width + 1) + self.width + 1

    def max_prompt_tokens(self, level: int | None = None) -> int:
        return ((self.levels[-1] if level is None else level) + 1) * (self.digits + 1)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "min_operands": self.min_operands, "max_operands": self.max_operands,
                "digits": self.digits, "padded": self.padded, "reverse": self.reverse}
