"""Tree of Thoughts, breadth-first, with the model as its own evaluator
(Yao et al. 2023, arXiv 2305.10601, Algorithm 1 "ToT-BFS", value prompt of §4.1).

    S_0 <- {x}                                           # x: the task's few-shot prompt
    for t = 1 .. T:
        S'_t <- {[s, z] : s in S_{t-1}, z ~ G(s, k)}     # k sampled thoughts per open state (ONE request)
        V_t(s) <- sum over n samples of value(V(s))       # value prompt: sure 20 / likely 1 / impossible 0.001
        S_t <- the b states of S'_t with highest V_t      # complete states stay in the running
        if every state in S_t is complete: break
    s* <- argmax V_T ;  answer <- s* if complete, else G(s*, to the end)   # one rollout finishes it

Thoughts are steps ended by the delimiter (a newline), sampled from the task's own prompt
("sample" thoughts, §3); Game of 24's steps style (`game24:style=steps`) gives Yao et al.'s
`a + b = c (left: ...)` lines. The value prompt goes to the same backend, so every rating token is
on the books. Unrated (unparseable) samples add 0, as in Yao et al.'s code; a state's value is
cached, so a state met twice is rated once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, GenRequest, SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, Strategy
from oomlab.strategies.search_tree import Node, StepSampler, rank_key, sample_seed

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

# Yao et al.'s value map (their game24 code: value_map = {'impossible': 0.001, 'likely': 1, 'sure': 20}).
VALUES: dict[str, float] = {"sure": 20.0, "likely": 1.0, "impossible": 0.001}
RATING = re.compile(r"\b(sure|likely|impossible)\b", re.IGNORECASE)

VALUE_PROMPT = """\
Judge whether each partial solution can still reach a correct final answer. Reply sure, likely or impossible.

Problem: 3 + 5 =
Partial solution: 8
Judgement: sure

Problem: 12 * 3 =
Partial solution: 15
Judgement: impossible

Problem: Input: 4 4 6 8
Partial solution: 4 + 8 = 12 (left: 4 6 12)
Judgement: likely

Problem: Input: 1 1 1 2
Partial solution: 1 + 1 = 2 (left: 1 2 2)
Judgement: impossible

Problem: {question}
Partial solution: {solution}
Judgement:"""


def question_of(prompt: str) -> str:
    """The open question at the end of a few-shot prompt: its last block, else its last line."""
    body = prompt.rstrip()
    block = body.rsplit("\n\n", 1)[-1]
    return (block if block != body else body.rsplit("\n", 1)[-1]).strip()


def parse_rating(text: str) -> str | None:
    """The first of sure / likely / impossible in a value sample, lower-cased; None when absent."""
    m = RATING.search(text)
    return m.group(1).lower() if m else None


@STRATEGIES.register("tot")
class TreeOfThoughts(Strategy):
    description: ClassVar[str] = "Tree of Thoughts (BFS): sampled steps, rated sure/likely/impossible by the model (Yao et al. 2023)"
    knob: ClassVar[str] = "b"
    knob_help: ClassVar[str] = "breadth: states kept per level (each proposes `proposals` steps, each rated `value_samples` times)"

    def __init__(self, proposals: int = 3, value_samples: int = 3, depth: int = 4, delimiter: str = "\n",
                 temperature: float = 0.7, value_temperature: float = 0.7, max_step_tokens: int = 48,
                 value_tokens: int = 4, max_rollout_tokens: int | None = None):
        if min(proposals, value_samples, depth, value_tokens) < 1:
            raise ConfigError("tot: proposals, value_samples, depth and value_tokens must be at least 1")
        if not delimiter:
            raise ConfigError("tot: the step delimiter must not be empty")
        self.proposals, self.value_samples, self.depth, self.delimiter = proposals, value_samples, depth, delimiter
        self.temperature, self.value_temperature = temperature, value_temperature
        self.max_step_tokens, self.value_tokens, self.max_rollout_tokens = max_step_tokens, value_tokens, max_rollout_tokens

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        breadth = budget
        search = StepSampler(task, problem, backend, None, seed, delimiter=self.delimiter,
                             temperature=self.temperature, max_step_tokens=self.max_step_tokens,
                             max_rollout_tokens=self.max_rollout_tokens)
        question = question_of(search.tree.prompt)
        values: dict[str, tuple[float, list[str | None]]] = {}  # solution text -> (value, ratings)
        states: list[Node] = [search.tree.root]
        for _ in range(self.depth):
            pool = [s for s in states if s.complete]
            for state in (s for s in states if not s.complete):
                pool += search.expand(state, self.proposals)
            fresh: list[Node] = []
            for node in pool:
                text = search.tree.solution(node)
                if node.score is None:
                    if text in values:  # a duplicate state: rated once, kept once (Yao et al.'s code does the same)
                        continue
                    values[text] = self.value(search, question, text, seed)
                    node.score, ratings = values[text]
                    node.extra["ratings"] = ratings
                fresh.append(node)
            states = sorted(fresh, key=rank_key)[:breadth]
            if all(s.complete for s in states):
                break
        best = min(states, key=rank_key)  # argmax V
        answer = best.answer
        if not best.complete:  # G(p, s*, 1): finish the best state in one sample
            text, _, answer = search.rollout(best)
            best.extra.update(rollout=text[len(search.tree.solution(best)):], rollout_answer=answer)
        search.tree.choose(best)
        return Attempt(answer, task.check(answer, problem), tuple(search.spent),
                       search.trace(breadth=breadth, value_map=VALUES))

    def value(self, search: StepSampler, question: str, solution: str, seed: int) -> tuple[float, list[str | None]]:
        """V(s): `value_samples` ratings of the state by the value prompt, in ONE request; their summed values."""
        flat = "; ".join(line.strip() for line in solution.splitlines() if line.strip())
        prompt = VALUE_PROMPT.format(question=" ".join(question.split()), solution=flat or "(nothing yet)")
        params = SamplingParams(self.value_temperature, self.value_tokens, stop=("\n",))
        seeds = tuple(sample_seed(seed, "value", prompt, i) for i in range(self.value_samples))
        ratings = [parse_rating(g.text) for g in search.generate(GenRequest(prompt, params, seeds))]
        return sum((VALUES.get(r, 0.0) for r in ratings if r is not None), 0.0), ratings

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "proposals": self.proposals, "value_samples": self.value_samples,
                "depth": self.depth, "delimiter": self.delimiter, "temperature": self.temperature,
                "value_temperature": self.value_temperature, "max_step_tokens": self.max_step_tokens,
                "value_tokens": self.value_tokens, "max_rollout_tokens": self.max_rollout_tokens}
