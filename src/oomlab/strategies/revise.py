"""Sequential self-correction: answer, then r rounds of critique-and-revise.

Self-Refine (Madaan et al. 2023, arXiv 2303.17651, Algorithm 1), with the model as its own
critic, prompted by a continuation ("Let me check that answer.") rather than a trained verifier:

    y_0 = M(x)                                   # the task's own prompt and format
    for t in 1..r:
        fb_t = M(x, y_{t-1}, "Let me check that answer.")      # critique
        y_t  = M(x, y_{t-1}, fb_t, "Corrected answer:", q)     # revision, in the task's format
    return y_r                                   # the last revision is the final answer

The revision re-opens the question (`q`, the prompt's last block, e.g. `12 + 5 =` or
`Question: ...\\nAnswer:`) so the task's `extract` reads it as it reads any first answer.
Round t's generations use seeds that depend on t only, so rung r+1 of a sweep replays rounds
1..r from the sample cache and pays only for its last round. Huang et al. 2023 (arXiv 2310.01798)
found such intrinsic self-correction rarely helps and often hurts: that is what it measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, Strategy

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


def split_question(prompt: str) -> tuple[str, str]:
    """(head, question): the prompt's last block (after the last blank line, else its last line) and the rest.

    Few-shot prompts end with the open question: `12 + 5 =` (arithmetic), `Question: ...\\nAnswer:`
    (GSM8K), `Input: 4 4 6 8\\nAnswer:` (Game of 24). Strategies that add a turn re-ask it with this.
    """
    cut = prompt.rfind("\n\n")
    if cut >= 0 and prompt[cut + 2 :].strip():
        return prompt[: cut + 2], prompt[cut + 2 :]
    cut = prompt.rstrip("\n").rfind("\n")
    return prompt[: cut + 1], prompt[cut + 1 :]


def with_temperature(params: SamplingParams, temperature: float, **changes: Any) -> SamplingParams:
    """A copy of `params` at `temperature`, with any other fields replaced."""
    fields = params.as_dict() | {"temperature": temperature, "stop": tuple(params.stop)} | changes
    return SamplingParams(**fields)


def round_seed(seed: int, step: int) -> int:
    """The seed of step `step` of a sequential strategy: independent of the budget, so rungs share prefixes."""
    return seed * 1_000_003 + step


@STRATEGIES.register("revise")
class Revise(Strategy):
    description: ClassVar[str] = (
        "answer, then r rounds of self-critique and revision; the last revision wins (Madaan et al. 2023)"
    )
    knob: ClassVar[str] = "rounds"
    knob_help: ClassVar[str] = "critique-and-revise rounds after the first answer (2 generations each)"

    CRITIQUE: ClassVar[str] = "{prompt}{answer}\n\nLet me check that answer."
    REVISE: ClassVar[str] = "{prompt}{answer}\n\nLet me check that answer.{critique}\n\nCorrected answer:\n{question}"

    def __init__(self, temperature: float = 0.8, critique_tokens: int = 48, critique_template: str | None = None,
                 revise_template: str | None = None):
        self.temperature = temperature
        self.critique_tokens = critique_tokens
        self.critique_template = critique_template or self.CRITIQUE
        self.revise_template = revise_template or self.REVISE

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        prompt = task.prompt(problem)
        _, question = split_question(prompt)
        answer_params = with_temperature(task.sampling(), self.temperature)
        critique_params = with_temperature(task.sampling(), self.temperature, max_tokens=self.critique_tokens,
                                           stop=("\n\n",))
        generations: list[Generation] = []

        def ask(text: str, params: SamplingParams, step: int) -> str:
            (g,) = backend.generate(GenRequest(text, params, (round_seed(seed, step),)))
            generations.append(g)
            return g.text

        answer = ask(prompt, answer_params, 0)
        rounds: list[dict[str, Any]] = [{"answer": task.extract(answer), "text": answer}]
        for r in range(1, budget + 1):
            fill = {"prompt": prompt, "question": question, "answer": answer}
            critique = ask(self.critique_template.format(**fill), critique_params, 2 * r - 1)
            answer = ask(self.revise_template.format(**fill, critique=critique), answer_params, 2 * r)
            rounds.append({"critique": critique, "answer": task.extract(answer), "text": answer})
        final = rounds[-1]["answer"]
        return Attempt(final, task.check(final, problem), tuple(generations),
                       {"rounds": budget, "answers": [r["answer"] for r in rounds], "steps": rounds})

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "critique_tokens": self.critique_tokens}
