"""Budget forcing (strategy `budget`) for reasoning models: cap the thinking, or force it longer with "Wait".

Budget forcing (Muennighoff et al. 2025, "s1: Simple test-time scaling", arXiv 2501.19393, §3.1):
"to enforce a maximum, we simply append the end-of-thinking token delimiter and 'Final Answer:'
to early exit the thinking stage ... to enforce a minimum, we suppress the generation of the
end-of-thinking token delimiter and optionally append the string 'Wait' to the model's current
reasoning trace to encourage the model to reflect on its current generation."

    cap = budget · unit thinking tokens;  thinking = "";  waits = 0
    loop:
        t ~ M(x + <think> + thinking, max_tokens = cap - used, stop = </think>)
        thinking += t
        if the cap is reached: break                  # maximum: cut it off, force </think>
        if waits == w: break                          # it ended by itself, and may now
        thinking += "Wait";  waits += 1               # minimum: suppress </think>, append "Wait"
    a ~ M(x + <think> + thinking + </think> + "Final Answer:")   # the task's format and stop strings
    return extract(a)

The backend has no logit bias, so the end marker is a stop string: generation halts where the
model would emit it, which is the same as suppressing it and continuing with "Wait". A model
without markers (a base model) still runs: the marker never appears, so thinking runs to the cap
or to end-of-sequence. Every continuation re-sends the prompt and the thinking so far, and the
ledger counts those prompt tokens: that is what a stateless API would charge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, Strategy
from oomlab.strategies.revise import round_seed, with_temperature

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@STRATEGIES.register("budget")
class BudgetForcing(Strategy):
    description: ClassVar[str] = (
        "s1 budget forcing: cap thinking tokens, or extend thinking with 'Wait' (Muennighoff et al. 2025)"
    )
    knob: ClassVar[str] = "thinking_tokens"
    knob_help: ClassVar[str] = (
        "thinking-token cap in units of `unit` tokens (default 32): rung b thinks at most 32·b tokens"
    )

    def __init__(self, unit: int = 32, wait: int = 0, start_marker: str = "<think>", end_marker: str = "</think>",
                 open_thinking: bool = True, wait_text: str = " Wait", answer_prefix: str = "\nFinal Answer:",
                 temperature: float = 0.8):
        if unit < 1:
            raise ConfigError(f"budget unit must be at least 1 token, got {unit}")
        if wait < 0:
            raise ConfigError(f"budget wait must be >= 0, got {wait}")
        if not end_marker:
            raise ConfigError("budget needs an end_marker (the end-of-thinking delimiter, e.g. </think>)")
        self.unit, self.wait = unit, wait
        self.start_marker, self.end_marker, self.open_thinking = start_marker, end_marker, open_thinking
        self.wait_text, self.answer_prefix, self.temperature = wait_text, answer_prefix, temperature

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        prompt = task.prompt(problem)
        opened = prompt + (f"{self.start_marker}\n" if self.open_thinking and self.start_marker else "")
        cap = budget * self.unit
        generations: list[Generation] = []

        def ask(text: str, params: SamplingParams, step: int) -> Generation:
            (g,) = backend.generate(GenRequest(text, params, (round_seed(seed, step),)))
            generations.append(g)
            return g

        thinking, used, waits, forced_end = "", 0, 0, False
        while True:
            params = SamplingParams(temperature=self.temperature, max_tokens=cap - used, top_k=task.sampling().top_k,
                                    top_p=task.sampling().top_p, stop=(self.end_marker,))
            g = ask(opened + thinking, params, len(generations))
            thinking += g.text
            used += g.completion_tokens
            if g.finish_reason == "length" or used >= cap:
                forced_end = True  # the maximum: the model is cut off and the end marker forced
                break
            if waits >= self.wait:
                break
            thinking += self.wait_text  # the minimum: the end marker is suppressed, "Wait" appended
            waits += 1
        answer_prompt = opened + thinking + self.end_marker + self.answer_prefix
        final = ask(answer_prompt, with_temperature(task.sampling(), self.temperature), len(generations))
        answer = task.extract(final.text)
        trace = {"thinking_cap": cap, "thinking_tokens": used, "waits": waits, "forced_end": forced_end,
                 "thinking": thinking[-4000:], "answer_text": final.text}
        return Attempt(answer, task.check(answer, problem), tuple(generations), trace)


    def config(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "wait": self.wait, "start_marker": self.start_marker,
                "end_marker": self.end_marker, "temperature": self.temperature}
