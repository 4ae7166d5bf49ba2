"""Monte Carlo tree search over reasoning steps, with UCT selection (Kocsis & Szepesvári 2006,
"Bandit based Monte-Carlo Planning"; over LLM reasoning steps e.g. Hao et al. 2023, arXiv 2305.14992).

    for i = 1 .. iterations:
        s <- root                                                  # the task's few-shot prompt
        while s is not a leaf and has `children` children:         # selection (UCT)
            s <- argmax_c  Q̄(c) + C · sqrt(ln N(s) / N(c))
        if s can grow:                                             # expansion: ONE sampled step
            s <- s + z,  z ~ G(s)
            v <- scorer(s) if s is complete else scorer(s + rollout ~ G(s, to the end))   # simulation
        else: v <- the value s had when it was created             # a complete or depth-limit leaf
        for u on root .. s:  N(u) += 1 ; W(u) += v                 # backpropagation
    answer: descend from the root by most visits; the leaf's solution if complete, else its rollout's

Q̄ is the mean value W/N min-max normalised over the tree (as MuZero does, Schrittwieser et al.
2020, arXiv 1911.08265, App. B), so any scorer's scale works with one C. The default scorer is
the mean token log-probability of the whole solution (`step-logprob`, no reference); with
`scorer=oracle` the search reads the reference and is labelled "(oracle)"; `scorer=prm` (settings as
`scorer_*` options) values nodes with a process reward model. Each iteration costs
at most two samples (a step and a rollout); the root's visit count equals the iterations run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.strategies.base import STRATEGIES, Attempt, with_verifier_usage
from oomlab.strategies.search_tree import Node, SearchTree, StepSampler
from oomlab.strategies.step_search import StepSearch

if TYPE_CHECKING:
    from oomlab.tasks.base import Task


def uct_score(q: float, visits: int, parent_visits: int, c: float) -> float:
    """UCB1 applied to trees (Kocsis & Szepesvári 2006, eq. 1 with UCB1's bonus): q + c·sqrt(ln N / n).

    `q` is the child's mean value in [0, 1]; an unvisited child scores +inf (it is tried first).
    """
    if visits == 0:
        return math.inf
    return q + c * math.sqrt(math.log(max(parent_visits, 1)) / visits)


class MinMax:
    """Running bounds of the values seen; normalises a mean value into [0, 1] (0 until two values differ)."""

    def __init__(self) -> None:
        self.lo, self.hi = math.inf, -math.inf

    def update(self, value: float) -> None:
        self.lo, self.hi = min(self.lo, value), max(self.hi, value)

    def normalise(self, value: float) -> float:
        return (value - self.lo) / (self.hi - self.lo) if self.hi > self.lo else 0.0


def select_child(tree: SearchTree, node: Node, c: float, bounds: MinMax) -> Node:
    """The child with the highest UCT score; ties go to the older child (deterministic)."""
    def key(child: Node) -> tuple[float, int]:
        q = bounds.normalise(child.value_sum / child.visits) if child.visits and child.value_sum is not None else 0.0
        return (uct_score(q, child.visits, node.visits, c), -child.id)

    return max((tree.nodes[i] for i in node.children), key=key)


def most_visited_leaf(tree: SearchTree) -> Node:
    """Descend from the root to the child with most visits (then higher mean value, then older)."""
    node = tree.root
    while node.children:
        kids = [tree.nodes[i] for i in node.children]
        node = max(kids, key=lambda n: (n.visits, (n.value_sum or 0.0) / max(n.visits, 1), -n.id))
    return node


# A floor for values: a scorer's -inf (e.g. no log-probabilities) must not poison the sums.
VALUE_FLOOR = -1e3


@STRATEGIES.register("mcts")
class MCTS(StepSearch):
    description: ClassVar[str] = "MCTS over steps: UCT selection, one-step expansion, rollout, backup (Kocsis & Szepesvári 2006)"
    knob: ClassVar[str] = "iterations"
    knob_help: ClassVar[str] = "select-expand-rollout-backup iterations (at most 2 samples each)"

    def __init__(self, c: float = 1.0, children: int = 3, depth: int = 4, delimiter: str = "\n",
                 scorer: str = "step-logprob", temperature: float = 0.8, max_step_tokens: int = 48,
                 max_rollout_tokens: int | None = None, **scorer_options: Any):
        if children < 1 or depth < 1 or c < 0:
            raise ConfigError(f"mcts: children and depth must be at least 1 and c >= 0 (got {children}, {depth}, {c})")
        self.c, self.children, self.depth, self.max_rollout_tokens = c, children, depth, max_rollout_tokens
        self.setup_search(delimiter, scorer, temperature, max_step_tokens, scorer_options)

    def solve(self, problem: Problem, task: Task, backend: Backend, budget: int, seed: int = 0) -> Attempt:
        search = self.sampler(problem, task, backend, seed, max_rollout_tokens=self.max_rollout_tokens)
        tree, bounds = search.tree, MinMax()
        tree.root.visits, tree.root.value_sum = 0, 0.0
        for _ in range(budget):
            node = tree.root
            while not self.is_leaf(node) and len(node.children) >= self.children:  # selection
                node = select_child(tree, node, self.c, bounds)
            if not self.is_leaf(node):  # expansion + simulation
                (node,) = search.expand(node, 1, first=len(node.children), visits=0)
                node.value_sum = 0.0
                node.score = self.evaluate(search, node)
            value = node.score if node.score is not None else VALUE_FLOOR
            bounds.update(value)
            for u in tree.path(node):  # backpropagation
                u.visits += 1
                u.value_sum = (u.value_sum or 0.0) + value
        leaf = most_visited_leaf(tree)
        tree.choose(leaf)
        answer = leaf.answer if leaf.complete else leaf.extra.get("rollout_answer")
        return Attempt(answer, task.check(answer, problem), tuple(search.spent),
                       with_verifier_usage(search.trace(iterations=budget, c=self.c), self.scorer))

    def is_leaf(self, node: Node) -> bool:
        """A node that cannot grow: a whole solution, or at the depth limit."""
        return node.complete or node.depth >= self.depth

    def evaluate(self, search: StepSampler, node: Node) -> float:
        """The value of a new node: its solution's score if complete, else a rollout's (kept on the node)."""
        if node.complete:
            value = search.score(node)
        else:
            text, logprobs, answer = search.rollout(node)
            node.extra.update(rollout=text[len(search.tree.solution(node)):], rollout_answer=answer)
            value = float(self.scorer.score(search.make_candidate(text, logprobs, answer), search.problem, search.task))
        return value if math.isfinite(value) else VALUE_FLOOR

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "c": self.c, "children": self.children, "depth": self.depth,
                **self.search_config(), "max_rollout_tokens": self.max_rollout_tokens, **self.scorer_options}
