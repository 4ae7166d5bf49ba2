"""A plan → propose → critique → select scaffold: one model playing four roles, each a prompt.

The agent-scaffold pattern (plan, then act, then reflect; e.g. Wang et al. 2023, "Plan-and-Solve
Prompting", arXiv 2305.04091, for the plan; Shinn et al. 2023, "Reflexion", arXiv 2303.11366,
for the self-critique) reduced to one problem and k candidates:

    plan  = M(PLAN(x))                              # one plan
    c_1..c_k ~ M(PROPOSE(x, plan))                  # k candidates in the task's own format
    crit  = M(CRITIQUE(x, c_1..c_k))                # one critique of all of them
    j     = parse(M(SELECT(x, c_1..c_k, crit)))     # "The best candidate is number (j"
    return answer(c_j)     # an unreadable pick falls back to the plurality answer (ties: seeded)

The roles are class-level templates (`PLAN`, `PROPOSE`, `CRITIQUE`, `SELECT`); pass `roles=`
to replace any of them. Placeholders: {prompt} (the task's prompt), {head} and {question}
(the prompt split before its last block), {plan}, {candidates}, {critique}. Every role runs on
the backend the strategy is given, so every token is metered.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, GenRequest, Generation
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, Strategy, draw_seeds
from oomlab.strategies.revise import round_seed, split_question, with_temperature

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

_NUMBER = re.compile(r"\d+")


@STRATEGIES.register("scaffold")
class Scaffold(Strategy):
    description: ClassVar[str] = (
        "plan, propose k candidates, critique them, select one: an agent scaffold in four prompts"
    )
    knob: ClassVar[str] = "k"
    knob_help: ClassVar[str] = "candidates proposed (plus 3 generations: plan, critique, selection)"

    PLAN: ClassVar[str] = "{head}{question}\n\nBefore answering, make a short plan.\nPlan:"
    PROPOSE: ClassVar[str] = "{head}Plan:{plan}\n\n{question}"
    CRITIQUE: ClassVar[str] = "{head}{question}\n\nCandidate answers:\n{candidates}\n\nCritique of each candidate:"
    SELECT: ClassVar[str] = ("{head}{question}\n\nCandidate answers:\n{candidates}\n\nCritique:{critique}\n\n"
                             "The best candidate is number (")

    def __init__(self, temperature: float = 0.8, plan_tokens: int = 48, critique_tokens: int = 64,
                 roles: dict[str, str] | None = None):
        unknown = set(roles or {}) - {"plan", "propose", "critique", "select"}
        if unknown:
            raise ConfigError(f"scaffold roles are plan, propose, critique, select; got {', '.join(sorted(unknown))}")
        self.temperature = temperature
        self.plan_tokens = plan_tokens
        self.critique_tokens = critique_tokens
        self.roles = {"plan": self.PLAN, "propose": self.PROPOSE, "critique": self.CRITIQUE, "select": self.SELECT}
        self.roles.update(roles or {})

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        prompt = task.prompt(problem)
        head, question = split_question(prompt)
        fill: dict[str, Any] = {"prompt": prompt, "head": head, "question": question}
        base = task.sampling()
        free_text = with_temperature(base, self.temperature, max_tokens=self.plan_tokens, stop=("\n\n",))
        generations: list[Generation] = []

        def ask(role: str, params, seeds: tuple[int, ...]) -> list[Generation]:
            gens = backend.generate(GenRequest(self.roles[role].format(**fill), params, seeds))
            generations.extend(gens)
            return gens

        fill["plan"] = ask("plan", free_text, (round_seed(seed, 0),))[0].text
        # k candidates share the plan's prompt; seeds nest, so rung k+1 re-uses rung k's candidates from the cache
        proposals = ask("propose", with_temperature(base, self.temperature), draw_seeds(seed, budget))
        answers = [task.extract(g.text) for g in proposals]
        fill["candidates"] = "\n".join(f"({i}) {g.text.strip()}" for i, g in enumerate(proposals, 1))
        critique_params = with_temperature(base, self.temperature, max_tokens=self.critique_tokens, stop=("\n\n",))
        fill["critique"] = ask("critique", critique_params, (round_seed(seed, 1),))[0].text
        select_params = with_temperature(base, 0.0, max_tokens=4, stop=(")", "\n"))
        choice = ask("select", select_params, (round_seed(seed, 2),))[0].text
        pick = parse_choice(choice, budget)
        how = "selected"
        if pick is None or answers[pick] is None:
            pick, how = plurality(answers, seed), "plurality fallback"
        answer = None if pick is None else answers[pick]
        trace = {"k": budget, "plan": fill["plan"], "candidates": answers, "critique": fill["critique"],
                 "selection": choice, "pick": pick, "how": how}
        return Attempt(answer, task.check(answer, problem), tuple(generations), trace)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "plan_tokens": self.plan_tokens,
                "critique_tokens": self.critique_tokens}


def parse_choice(text: str, k: int) -> int | None:
    """0-based index of the candidate the selector named ("2) ..." -> 1); None when it names none of 1..k."""
    match = _NUMBER.search(text)
    if not match:
        return None
    j = int(match.group())
    return j - 1 if 1 <= j <= k else None


def plurality(answers: list[str | None], seed: int) -> int | None:
    """Index of the first candidate with the most common answer (ties broken with `seed`)."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None
    top = max(votes.values())
    winner = random.Random(seed).choice([a for a, v in votes.items() if v == top])
    return answers.index(winner)
