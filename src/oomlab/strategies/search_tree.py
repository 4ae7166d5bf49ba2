"""The search engine of the step-level search strategies (beam, tot, mcts, ...): the tree, its step sampler and trace.

The root is the task's few-shot prompt; every other node is one reasoning step, a piece of
model text ended by a delimiter (a newline by default). A node's *context* is the prompt followed
by the steps on its path, each with its delimiter: the text the model continues from, so a search
pays for the prompt once per request and never re-writes a step.

A node is *complete* when its steps are a whole solution, judged without the reference:
- the step is blank (the model ended the solution, as the few-shot examples end with a blank line);
- the task's own stop strings would have ended a sample here (e.g. arithmetic stops at "\\n", so
  its one-line answers are complete after one step);
- the step states an answer ("Answer: ...", "the answer is ...") that the task's extractor reads.
End-of-generation looks like a delimiter to the search (the backend truncates both); the next
step is then usually blank, which completes the solution.

`SearchTree.to_json()` is what every search strategy puts in `Attempt.trace["tree"]`, and what
`oomlab trace` exports: nodes with id, parent, text, score, visits, depth, and the chosen path.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams
from oomlab.ledger import charged_prompt_tokens
from oomlab.problem import Problem
from oomlab.scorers.base import Candidate, Scorer
from oomlab.tasks.numeric import ANSWER_MARKER

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


@dataclass
class Node:
    """One step of a search tree (the root has no step)."""

    id: int
    parent: int | None
    text: str  # the step, without its delimiter
    depth: int
    logprobs: tuple[float, ...] = ()  # of the step's tokens; not exported
    score: float | None = None  # what the strategy ranked it by (scorer / value prompt / first rollout)
    visits: int = 1  # MCTS counts them; other searches visit each node once
    value_sum: float | None = None  # MCTS: sum of backed-up values
    complete: bool = False
    answer: str | None = None  # what the task extracts from the solution so far
    chosen: bool = False  # on the path of the final answer
    children: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # strategy-specific (ratings, rollout, ...)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite floats become null)."""
        out: dict[str, Any] = {
            "id": self.id, "parent": self.parent, "text": self.text, "depth": self.depth,
            "score": finite(self.score), "visits": self.visits, "complete": self.complete,
            "answer": self.answer, "chosen": self.chosen, "children": list(self.children),
        }  # fmt: skip
        if self.value_sum is not None:
            out["value"] = finite(self.value_sum / self.visits) if self.visits else None
        if self.extra:
            out["extra"] = {k: finite(v) if isinstance(v, float) else v for k, v in self.extra.items()}
        return out


def finite(x: float | None) -> float | None:
    """x, or None when it is missing, infinite or NaN (strict JSON has no -Infinity)."""
    return x if x is not None and math.isfinite(x) else None


class SearchTree:
    """Nodes by id; the text of a path; the chosen path; the JSON trace."""

    def __init__(self, prompt: str, delimiter: str = "\n", root_visits: int = 1):
        self.prompt, self.delimiter = prompt, delimiter
        self.nodes: list[Node] = [Node(0, None, "", 0, visits=root_visits)]

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def add(self, parent: Node, text: str, logprobs: tuple[float, ...] = (), visits: int = 1) -> Node:
        node = Node(len(self.nodes), parent.id, text, parent.depth + 1, logprobs, visits=visits)
        self.nodes.append(node)
        parent.children.append(node.id)
        return node

    def path(self, node: Node) -> list[Node]:
        """Root first, `node` last."""
        out = [node]
        while out[-1].parent is not None:
            out.append(self.nodes[out[-1].parent])
        return out[::-1]

    def solution(self, node: Node) -> str:
        """The steps from the root to `node`, joined by the delimiter."""
        return self.delimiter.join(n.text for n in self.path(node)[1:])

    def context(self, node: Node) -> str:
        """What the model continues from to write the step after `node`."""
        return self.prompt if node.parent is None else self.prompt + self.solution(node) + self.delimiter

    def path_logprobs(self, node: Node) -> tuple[float, ...]:
        return tuple(lp for n in self.path(node) for lp in n.logprobs)

    def choose(self, node: Node) -> None:
        """Mark the path of the final answer."""
        for n in self.path(node):
            n.chosen = True

    def to_json(self) -> dict[str, Any]:
        return {
            "delimiter": self.delimiter,
            "nodes": [n.to_json() for n in self.nodes],
            "chosen": [n.id for n in self.nodes if n.chosen],
        }


def sample_seed(seed: int, role: str, context: str, index: int) -> int:
    """The seed of sample `index` of `role` ("step", "rollout", "value") from `context`.

    A function of the state, not of the order of requests: a state reached again (at another rung,
    or by another search strategy) draws the same samples, which the sweep's cache then serves free.
    """
    digest = hashlib.sha256(f"{seed}|{role}|{index}|{context}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class StepSampler:
    """One solve's access to the model: steps, rollouts and any other request, all on the books.

    Steps and rollouts ask for token log-probabilities when the scorer reads them (scorer None: never).

    Every Generation it causes is kept in `spent` (the strategy returns them in Attempt.generations).
    """

    def __init__(self, task: Task, problem: Problem, backend: Backend, scorer: Scorer | None, seed: int, *,
                 delimiter: str = "\n", temperature: float = 0.8, max_step_tokens: int = 48,
                 max_rollout_tokens: int | None = None):
        self.task, self.problem, self.backend, self.scorer, self.seed = task, problem, backend, scorer, seed
        self.delimiter = delimiter
        base = task.sampling()
        self.task_stops = tuple(s for s in base.stop if s)
        stops = (delimiter, *(s for s in self.task_stops if s != delimiter))
        self.step_params = SamplingParams(temperature, min(max_step_tokens, base.max_tokens), base.top_k, base.top_p, stops)
        rollout_tokens = base.max_tokens if max_rollout_tokens is None else min(max_rollout_tokens, base.max_tokens)
        self.rollout_params = SamplingParams(temperature, rollout_tokens, base.top_k, base.top_p, self.task_stops)
        self.logprobs = scorer is not None and bool(scorer.needs_logprobs)
        self.tree = SearchTree(task.prompt(problem), delimiter)
        self.spent: list[Generation] = []

    def generate(self, request: GenRequest) -> list[Generation]:
        """Ask the backend, and keep the books."""
        gens = self.backend.generate(request)
        self.spent.extend(gens)
        return gens

    def expand(self, node: Node, n: int, first: int = 0, visits: int = 1) -> list[Node]:
        """n next steps after `node` in ONE request (the backend shares the prompt); new children, in seed order."""
        context = self.tree.context(node)
        seeds = tuple(sample_seed(self.seed, "step", context, first + j) for j in range(n))
        gens = self.generate(GenRequest(context, self.step_params, seeds, logprobs=self.logprobs))
        children = []
        for g in gens:
            child = self.tree.add(node, g.text, g.token_logprobs or (), visits=visits)
            self.close(child)
            children.append(child)
        return children

    def rollout(self, node: Node) -> tuple[str, tuple[float, ...], str | None]:
        """Finish the solution from `node` in one sample: (whole solution text, its log-probs, answer)."""
        context = self.tree.context(node)
        seed = sample_seed(self.seed, "rollout", context, 0)
        (g,) = self.generate(GenRequest(context, self.rollout_params, (seed,), logprobs=self.logprobs))
        text = self.tree.solution(node) + self.delimiter + g.text
        return text, self.tree.path_logprobs(node) + (g.token_logprobs or ()), self.task.extract(self.cut(text))

    def close(self, node: Node) -> None:
        """Decide whether `node` completes a solution (module docstring), and extract its answer."""
        solution = self.tree.solution(node)
        ended = self.cut(solution + self.delimiter)
        node.complete = (
            not node.text.strip()
            or len(ended) < len(solution + self.delimiter)
            or (ANSWER_MARKER.search(node.text) is not None and self.task.extract(solution) is not None)
        )
        node.answer = self.task.extract(ended)

    def cut(self, text: str) -> str:
        """`text` up to the first of the task's stop strings (where the task's own sample would end)."""
        hits = [i for i in (text.find(s) for s in self.task_stops) if i >= 0]
        return text[: min(hits)] if hits else text

    def candidate(self, node: Node) -> Candidate:
        """The partial (or whole) solution at `node` as the scorer sees it: text, log-probs, answer."""
        return self.make_candidate(self.tree.solution(node), self.tree.path_logprobs(node), node.answer)

    def make_candidate(self, text: str, logprobs: tuple[float, ...], answer: str | None) -> Candidate:
        view = Generation(text, 0, len(logprobs), 0.0, 0, token_logprobs=logprobs if self.logprobs else None)
        return Candidate(view, answer, self.tree.prompt)

    def score(self, node: Node) -> float:
        """The scorer's value of the solution so far, stored on the node; NaN counts as -inf."""
        if self.scorer is None:
            raise ValueError("this search was set up without a scorer")
        s = float(self.scorer.score(self.candidate(node), self.problem, self.task))
        node.score = -math.inf if math.isnan(s) else s
        return node.score

    def tokens(self) -> dict[str, float]:
        """The tokens of every sample this solve caused, as the ledger charges them (`ledger.charge`):
        a prompt shared by a group of samples is split among them."""
        return {"prompt": sum(charged_prompt_tokens(g) for g in self.spent),
                "completion": sum(g.completion_tokens for g in self.spent), "samples": len(self.spent)}

    def trace(self, **extra: Any) -> dict[str, Any]:
        return {"tree": self.tree.to_json(), "tokens": self.tokens(), **extra}


def rank_key(node: Node) -> tuple[float, int]:
    """Sort key: higher score first, then older node first (deterministic ties)."""
    s = node.score if node.score is not None and not math.isnan(node.score) else -math.inf
    return (-s, node.id)


def best_final(nodes: list[Node]) -> Node:
    """The node whose answer a search returns: complete with an answer, then complete, then any; best score."""
    for pool in ([n for n in nodes if n.complete and n.answer is not None], [n for n in nodes if n.complete], nodes):
        if pool:
            return min(pool, key=rank_key)
    raise ValueError("no nodes to choose from")
