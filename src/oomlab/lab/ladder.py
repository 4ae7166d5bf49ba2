"""The training ladder: budgets in FLOPs, and the rule that turns a budget into a model and a step count.

The rule (stated once, here): for a budget C, the target size is N* = sqrt(C / (6·r)), the size
at which C = 6·N·D buys D = r·N tokens (r = `tokens_per_param`; Hoffmann et al. 2022,
arXiv 2203.15556, find r ≈ 20 compute-optimal for language modelling). The model is the shape of
SHAPES nearest N* in log N; the number of steps is the most that fit the budget, counted exactly
(`TrainSpec.flops`: 6N per token plus the attention term, padding included). The lab's default r
was picked by measuring a small grid on the lab task (see PRESETS' notes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from oomlab.errors import ConfigError
from oomlab.lab.data import row_tokens_for
from oomlab.lab.model import GPTConfig, training_flops
from oomlab.lab.train import TrainSpec
from oomlab.tasks.base import TASKS, create_task

# (d_model, n_layer) from small to large; heads of 16 dims up to d=64, then of 32.
SHAPES: tuple[tuple[int, int], ...] = (
    (16, 1), (24, 1), (32, 1), (32, 2), (48, 2), (64, 2), (64, 3), (96, 3), (128, 3), (128, 4), (160, 4),
    (192, 4), (256, 4), (256, 6), (320, 6), (384, 6), (512, 6), (512, 8), (640, 8), (768, 8), (768, 12),
    (1024, 12),
)


def heads_for(d_model: int) -> int:
    return max(1, d_model // (16 if d_model <= 64 else 32))


@dataclass(frozen=True)
class Ladder:
    """A ladder of training runs: budgets × formats × seeds of one task, and the sweep each model gets."""

    name: str
    budgets: tuple[float, ...]
    formats: tuple[str, ...] = ("direct", "cot")
    primary: str = "cot"  # the format whose strategies the summary and `oomlab ooms --lab` lead with
    seeds: tuple[int, ...] = (0,)
    task: str = "lab-sum"
    task_options: dict[str, Any] = field(default_factory=dict)
    tokens_per_param: float = 20.0
    rows: int = 32  # sequences per step
    lr: float = 2e-3
    shapes: tuple[tuple[int, int], ...] = SHAPES
    # the sweep of each trained model
    problems: int = 200
    n: int = 16  # samples per problem for the sampled strategies
    temperature: float = 0.6
    device: str = "cpu"
    note: str = ""

    def validate(self) -> None:
        if not self.budgets or any(b <= 0 for b in self.budgets):
            raise ConfigError("a ladder needs positive training budgets (FLOPs)")
        if self.tokens_per_param <= 0 or self.rows < 1 or self.lr <= 0:
            raise ConfigError("tokens_per_param, rows and lr must be positive")

    @property
    def span_ooms(self) -> float:
        return math.log10(max(self.budgets) / min(self.budgets))

    def with_options(self, **changes: Any) -> Ladder:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def reference_free(self) -> bool:
        """True when the task's checker reads only the problem (`Task.reference_free_check`): a deployable verifier."""
        return bool(TASKS.get(self.task).reference_free_check)

    def strategies(self) -> list[str]:
        """Greedy, and selectors over one shared draw at the ladder's temperature: majority, best-of-n by the
        model's confidence, by the task's checker where it reads only the problem (`check`: deployable), and by
        the oracle (coverage)."""
        t = self.temperature
        out = ["greedy", f"majority:temperature={t}", f"best-of-n:scorer=logprob,temperature={t}"]
        if self.reference_free:
            out.append(f"best-of-n:scorer=check,temperature={t}")
        return out + [f"best-of-n:scorer=oracle,temperature={t}"]

    def specs(self) -> list[tuple[float, str, int, TrainSpec]]:
        """(budget, format, seed, spec) for every training run, cheapest first."""
        self.validate()
        out = []
        for budget in sorted(self.budgets):
            for fmt in self.formats:
                for seed in self.seeds:
                    out.append((budget, fmt, seed, plan(self, budget, fmt, seed)))
        return out


def shape_for(target_params: float, vocab_size: int, n_ctx: int, shapes=SHAPES) -> GPTConfig:
    """The shape whose non-embedding N is nearest `target_params` in log N."""
    configs = [GPTConfig(vocab_size, n_ctx, L, heads_for(d), d) for d, L in shapes]
    return min(configs, key=lambda c: abs(math.log(c.n_params_non_embedding / target_params)))


def plan(ladder: Ladder, budget: float, fmt: str, seed: int) -> TrainSpec:
    """The training run the rule gives for `budget` FLOPs: N ≈ sqrt(C/(6r)), steps = floor(C / FLOPs per step)."""
    options = {**ladder.task_options, "format": fmt}
    task = create_task(ladder.task, **options)
    config = shape_for(math.sqrt(budget / (6.0 * ladder.tokens_per_param)), len(task.vocab), row_tokens_for(task),
                       ladder.shapes)
    # the steps whose FLOPs fit the budget (step lengths vary with the level each step draws)
    mean = sum(training_flops(config, ladder.rows, row_tokens_for(task, lv)) for lv in task.levels) / len(task.levels)
    guess = max(1, int(budget / mean * 1.1) + 16)
    while True:
        spec = TrainSpec(task=ladder.task, task_options=options, config=config, steps=guess, rows=ladder.rows,
                         lr=ladder.lr, seed=seed)
        total, steps = 0.0, 0
        for f in spec.flops_through(guess):
            if total + f > budget:
                break
            total, steps = total + f, steps + 1
        if steps < guess:
            break
        guess *= 2
    if steps < 1:
        raise ConfigError(f"budget {budget:.2g} FLOPs buys less than one step of the smallest shape")
    return replace(spec, steps=steps)
