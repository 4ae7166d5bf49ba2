"""Chained modular arithmetic for the lab: apply k operations left to right, modulo 7.

    direct:  3+5*2-4......=5
    cot:     3+5*2-4......=1,2,5;5      (the value after each operation, then ';' and the answer)

Difficulty level = k, the number of operations. Each step of the scratchpad is one lookup in a
small table, while the direct answer composes k of them in one forward pass: the setting in
which Feng et al. 2023 ("Towards Revealing the Mystery behind Chain of Thought", NeurIPS
2023, arXiv 2305.15408) prove that a bounded-depth transformer needs the chain of thought for
arithmetic modulo a prime. Prompts are padded with '.' to the longest level (`aligned`), so the
answer always starts at the same position and step i of the scratchpad always reads operand i
from the same place: measured on the 2-core CPU at 1e12 FLOPs (99k parameters, levels 2-6), the
scratchpad model reached 19.5% greedy with ragged prompts (chance is 1/7) and 60.5% aligned.
Held-out problems: see oomlab.lab.problems.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from oomlab.errors import ConfigError
from oomlab.lab.problems import EOS, Example, LabTask
from oomlab.tasks.base import TASKS

APPLY = {"+": lambda x, a: x + a, "-": lambda x, a: x - a, "*": lambda x, a: x * a}


@TASKS.register("lab-chain")
class LabChainTask(LabTask):
    description: ClassVar[str] = "lab: k operations on digits, left to right, mod 7; direct answer or a scratchpad"
    vocab: ClassVar[str] = EOS + "0123456789+-*=,;."

    def __init__(self, format: str = "cot", modulus: int = 7, min_ops: int = 2, max_ops: int = 8,
                 ops: str = "+-*", aligned: bool = True, split: str = "eval") -> None:
        super().__init__(format, split)
        if not 2 <= modulus <= 10:
            raise ConfigError("lab-chain: modulus must be 2-10 (one digit per value)")
        if not 1 <= min_ops <= max_ops <= 16:
            raise ConfigError("lab-chain: need 1 <= min_ops <= max_ops <= 16")
        if not ops or any(o not in APPLY for o in ops):
            raise ConfigError(f"lab-chain: ops must be drawn from '+-*', got {ops!r}")
        self.modulus, self.min_ops, self.max_ops, self.ops, self.aligned = modulus, min_ops, max_ops, ops, aligned
        self.levels = tuple(range(min_ops, max_ops + 1))
        self.chance = 1.0 / modulus

    def draw(self, rng: random.Random, level: int) -> Example:
        """level operations, operators uniform over `ops`, operands uniform over 0..m-1 (1..m-1 after '*').

        Multiplying by a non-zero residue of a prime modulus is a bijection, so every answer stays
        equally likely (chance = 1/m) instead of collapsing to 0.
        """
        m = self.modulus
        x = rng.randrange(m)
        key, states = str(x), []
        for _ in range(level):
            op = rng.choice(self.ops)
            a = rng.randrange(1, m) if op == "*" else rng.randrange(m)
            x = APPLY[op](x, a) % m
            key += f"{op}{a}"
            states.append(str(x))
        answer = states[-1] if self.format == "direct" else ",".join(states) + ";" + states[-1]
        prompt = key.ljust(2 * self.max_ops + 1, ".") if self.aligned else key
        return Example(key=key, prompt=prompt + "=", answer=answer + EOS, level=level, reference=states[-1])

    def max_answer_tokens(self, level: int | None = None) -> int:
        k = self.max_ops if level is None else level
        return 2 if self.format == "direct" else 2 * k + 2

    def max_prompt_tokens(self, level: int | None = None) -> int:
        return 2 * (self.max_ops if level is None or self.aligned else level) + 2

    def config(self) -> dict[str, Any]:
        return {**super().config(), "modulus": self.modulus, "min_ops": self.min_ops, "max_ops": self.max_ops,
                "ops": self.ops, "aligned": self.aligned}
