"""The training stream: a pure function of (task, seed, step).

Each step trains on one difficulty level, drawn uniformly, with one example per row at position
0 (where a prompt sits at test time); the rows are as long as that level's longest example, so a
fixed-width format wastes no compute on padding. The model is scored on predicting the answer
tokens (the answer and its EOS, never a prompt's random operands). Packing several examples
into a row (nanoGPT's way) puts most problems at arbitrary offsets and spends a budget in fewer,
larger steps: measured on two-digit sums (64×2 model, 3e11 FLOPs, reversed answers), 237 steps of
packed 64-token rows reached 0% greedy, 1,748 steps of one example per row 98%. Because a step's rows depend only on the seed and the step number, a
resumed run sees exactly the data an uninterrupted one would have.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from oomlab.lab.problems import EOS, Example, LabTask

IGNORE = -1  # target of a position that is not scored


@dataclass(frozen=True)
class Row:
    inputs: list[int]  # T tokens
    targets: list[int]  # T targets, IGNORE where not scored
    example: Example


def row_tokens_for(task: LabTask, level: int | None = None) -> int:
    """Tokens a row of `level` holds (all levels: the longest); the final EOS is a target, not an input."""
    levels = task.levels if level is None else (level,)
    return max(task.max_prompt_tokens(lv) + task.max_answer_tokens(lv) for lv in levels) - 1


def make_row(task: LabTask, ex: Example, row_tokens: int) -> Row:
    """One example at position 0, EOS padding after it (not scored)."""
    p, a = task.encode(ex.prompt), task.encode(ex.answer)
    pad = row_tokens + 1 - len(p) - len(a)
    if pad < 0:
        raise ValueError(f"{task.name}: an example of {len(p) + len(a)} tokens does not fit a row of {row_tokens}")
    tokens = p + a + task.encode(EOS) * pad
    targets = [IGNORE] * (len(p) - 1) + a + [IGNORE] * pad
    return Row(tokens[:-1], targets, ex)


def _rng(task: LabTask, seed: int, step: int) -> random.Random:
    return random.Random(f"{task.name}:{seed}:{step}")


def step_level(task: LabTask, seed: int, step: int) -> int:
    """The level step `step` trains on."""
    return _rng(task, seed, step).choice(task.levels)


def step_rows(task: LabTask, seed: int, step: int, rows: int) -> list[Row]:
    """The rows of training step `step`: the same for every run with this seed, however interrupted."""
    rng = _rng(task, seed, step)
    level = rng.choice(task.levels)
    T = row_tokens_for(task, level)
    return [make_row(task, task.draw_split(rng, level, evaluation=False), T) for _ in range(rows)]
