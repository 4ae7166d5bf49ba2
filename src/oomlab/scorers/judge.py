"""The judge scorer: the model grades a candidate answer (LLM-as-a-judge), on the books.

Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena" (arXiv 2306.05685),
single-answer grading, in two forms:

    mode="yesno" (default):  "... Is the answer correct? Answer Yes or No.\\nVerdict:" -> greedy token
        score = P(Yes) ≈ exp(logprob) when it says Yes, 1 - exp(logprob) when it says No
        (the sampled token's probability; a continuous score ranks candidates with fewer ties)
    mode="grade":  "... Grade the answer from 1 (wrong) to 10 (certainly correct).\\nGrade:" -> n / 10

An unreadable verdict scores -inf, so such a candidate is picked only when nothing else is.

The judge spends tokens, so it needs a backend, and every judge token must be metered: the
caller binds one with `judge.bind(backend)` before scoring (a strategy binds the backend it was
given, the sweep's `MeteredBackend`). The judge keeps the Generations it caused;
`take_generations()` hands them over (and forgets them) so a strategy can put them in
`Attempt.generations`. Judging is greedy: the same candidate is judged once, then cached.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.scorers.base import SCORERS, Candidate, Scorer

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

_YES = re.compile(r"^\W*(yes|correct|true)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|incorrect|wrong|false)\b", re.IGNORECASE)
_GRADE = re.compile(r"^\D*?(\d+(?:\.\d+)?)\s*(?:/\s*10)?")


def parse_verdict(text: str) -> bool | None:
    """True for a leading Yes (correct/true), False for No (incorrect/wrong/false), None otherwise."""
    if _YES.search(text):
        return True
    if _NO.search(text):
        return False
    return None


def parse_grade(text: str, low: int = 1, high: int = 10) -> float | None:
    """The first number in the text ("7", " 7/10", "Grade: 8.5") if it lies in low..high, else None."""
    match = _GRADE.search(text.strip())
    if not match:
        return None
    value = float(match.group(1))
    return value if low <= value <= high else None


@SCORERS.register("judge")
class Judge(Scorer):
    """The model as its own verifier: a prompt asks whether (or how well) a candidate answers the problem."""

    description: ClassVar[str] = "the model judges each candidate (Yes/No or a 1-10 grade); judge tokens are metered"
    oracle: ClassVar[bool] = False
    needs_logprobs: ClassVar[bool] = False  # of the candidates; the judge asks for its own
    probability: ClassVar[bool] = True  # P(Yes), or grade / 10

    YESNO: ClassVar[str] = "{prompt}{completion}\n\nIs the answer above correct? Answer Yes or No.\nVerdict:"
    GRADE: ClassVar[str] = ("{prompt}{completion}\n\nGrade the answer above from 1 (wrong) to 10 (certainly correct)."
                            "\nGrade:")

    def __init__(self, mode: str = "yesno", backend: Backend | None = None, template: str | None = None):
        if mode not in ("yesno", "grade"):
            raise ConfigError(f"judge mode must be 'yesno' or 'grade', got '{mode}'")
        self.mode = mode
        self.template = template or (self.YESNO if mode == "yesno" else self.GRADE)
        self.backend = backend
        self._generations: list[Generation] = []

    def bind(self, backend: Backend) -> Judge:
        """Judge with `backend` from now on (pass the metered backend so judge tokens are on the books)."""
        self.backend = backend
        return self

    def take_generations(self) -> list[Generation]:
        """The judge's generations since the last call, for the caller's Attempt.generations."""
        out, self._generations = self._generations, []
        return out

    def request(self, candidate: Candidate) -> GenRequest:
        prompt = self.template.format(prompt=candidate.prompt, completion=candidate.generation.text)
        params = SamplingParams(temperature=0.0, max_tokens=4, stop=("\n",))
        return GenRequest(prompt, params, (0,), logprobs=self.mode == "yesno")

    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        """P(Yes) (yesno) or grade/10 (grade); -inf when the candidate has no answer or the verdict is unreadable."""
        if self.backend is None:
            raise ConfigError("the judge scorer needs a backend: call judge.bind(backend) before scoring")
        if candidate.answer is None:
            return -math.inf  # nothing to judge, and no tokens spent on it
        (g,) = self.backend.generate(self.request(candidate))
        self._generations.append(g)
        if self.mode == "grade":
            grade = parse_grade(g.text)
            return -math.inf if grade is None else grade / 10.0
        verdict = parse_verdict(g.text)
        if verdict is None:
            return -math.inf
        p = math.exp(g.token_logprobs[0]) if g.token_logprobs else 1.0
        p = min(max(p, 0.0), 1.0)
        return p if verdict else 1.0 - p

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode}
