"""The step-level search strategies (beam, tot, mcts), their step scorer, their trees and `oomlab trace`.

Model tests run the real embedded llama.cpp backend through a counting proxy: whatever a strategy
reports in Attempt.generations must be exactly what the backend produced (nothing off the books).
Pure tests check UCT, the tree's serialisation and the completion rules without a model.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oomlab.backends.base import GenRequest, Generation
from oomlab.problem import Problem
from oomlab.scorers import SCORERS, Candidate, create_scorer
from oomlab.strategies import STRATEGIES, create_strategy
from oomlab.strategies.mcts import MCTS, MinMax, most_visited_leaf, select_child, uct_score
from oomlab.strategies.tot import parse_rating, question_of
from oomlab.strategies.search_tree import SearchTree, StepSampler, sample_seed
from oomlab.tasks.arithmetic import ArithmeticTask
from oomlab.tasks.game24 import Game24Task
from oomlab.testing import RecordingBackend as CountingBackend

ARITHMETIC = ArithmeticTask(difficulty=2)
GAME24 = Game24Task(style="steps")  # multi-step: `a + b = c (left: ...)` lines, then `Answer:`
SMALL = {"max_step_tokens": 24, "max_rollout_tokens": 24}

# (strategy, options, task, problems, budget): small enough for 2 shared cores
CASES = {
    "beam-arithmetic": ("beam", {}, ARITHMETIC, 2, 2),
    "tot-arithmetic": ("tot", {"proposals": 2, "value_samples": 2}, ARITHMETIC, 2, 1),
    "mcts-arithmetic": ("mcts", {}, ARITHMETIC, 2, 3),
    "beam-game24": ("beam", {"depth": 2, "max_step_tokens": 24}, GAME24, 1, 1),
    "tot-game24": ("tot", {"proposals": 2, "value_samples": 1, "depth": 1, **SMALL}, GAME24, 1, 1),
    "mcts-game24": ("mcts", {"depth": 2, **SMALL}, GAME24, 1, 2),
}


def tokens(gens) -> int:
    return sum(g.prompt_tokens + g.completion_tokens for g in gens)




@pytest.fixture(scope="module")
def backend():
    from oomlab.backends.llamacpp import LlamaCppBackend

    # one thread: on a shared 2-core machine llama.cpp's spinning workers collapse when oversubscribed
    b = LlamaCppBackend(n_ctx=2048, max_parallel=8, n_threads=1)
    yield b
    b.close()


@pytest.fixture(scope="module")
def solved(backend):
    """case -> [(attempt, what the proxy saw)] per problem; each case is run once per module."""
    done: dict[str, list] = {}

    def run(case: str, seed: int = 0):
        if (case, seed) not in done:
            name, options, task, n, budget = CASES[case]
            out = []
            for problem in task.problems(n, seed=0):
                proxy = CountingBackend(backend)
                attempt = create_strategy(name, **options).solve(problem, task, proxy, budget, seed=seed)
                out.append((attempt, proxy.seen))
            done[(case, seed)] = out
        return done[(case, seed)]

    return run


# ---------------------------------------------------------------- with the model


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_token_is_on_the_books(solved, case):
    for attempt, seen in solved(case):
        assert seen, "a search must ask the model something"
        assert list(attempt.generations) == seen
        assert tokens(attempt.generations) == tokens(seen)
        books = attempt.trace["tokens"]  # as the ledger charges them: a shared prompt split over its group
        charged = sum(g.prompt_tokens / g.group_size + g.completion_tokens for g in seen)
        assert books["prompt"] + books["completion"] == pytest.approx(charged) and books["samples"] == len(seen)
        assert attempt.answer is None or isinstance(attempt.answer, str)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_tree_is_valid_json_with_scores_and_visits(solved, case):
    name, _, _, _, budget = CASES[case]
    for attempt, _ in solved(case):
        tree = json.loads(json.dumps(attempt.trace["tree"], allow_nan=False))
        nodes = {n["id"]: n for n in tree["nodes"]}
        assert len(nodes) > 1 and nodes[0]["parent"] is None
        for n in tree["nodes"][1:]:
            parent = nodes[n["parent"]]
            assert n["id"] in parent["children"] and n["depth"] == parent["depth"] + 1
            assert isinstance(n["text"], str) and n["visits"] >= (0 if name == "mcts" else 1)
            assert n["score"] is None or isinstance(n["score"], float)
        assert any(n["score"] is not None for n in tree["nodes"][1:])
        chosen = [nodes[i] for i in tree["chosen"]]
        assert chosen[0]["id"] == 0 and all(b["parent"] == a["id"] for a, b in zip(chosen, chosen[1:]))
        if name == "mcts":
            assert nodes[0]["visits"] == budget
            for n in tree["nodes"]:  # a node's visits: the iterations that passed through it
                assert n["visits"] >= sum(nodes[c]["visits"] for c in n["children"])
            assert sum(nodes[c]["visits"] for c in nodes[0]["children"]) == budget
        else:
            assert all(n["visits"] == 1 for n in tree["nodes"])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["beam-arithmetic", "tot-arithmetic", "mcts-arithmetic", "beam-game24"])
def test_same_seed_same_answer_and_tree(solved, backend, case):
    name, options, task, _, budget = CASES[case]
    problem = task.problems(1, seed=0)[0]
    first, _ = solved(case)[0]
    again = create_strategy(name, **options).solve(problem, task, CountingBackend(backend), budget, seed=0)
    assert again.answer == first.answer
    assert again.trace["tree"] == first.trace["tree"]


@pytest.mark.slow
def test_a_sweep_keeps_the_books_and_trace_exports_a_tree(backend, tmp_path):
    from oomlab.ledger import charge
    from oomlab.store import Store
    from oomlab.sweep import Sweep, SweepConfig

    db = tmp_path / "search.db"
    store = Store(db)
    config = SweepConfig(task="arithmetic", strategies=["beam", "mcts", "tot"], n=2, problems=2, ladder=[1, 2])
    result = Sweep(config, store, backend=backend).run()
    attempts, info = store.attempts(result.run_id), store.run(result.run_id)
    assert {(a.strategy, a.budget) for a in attempts} == {(s, b) for s in ("beam", "mcts", "tot") for b in (1, 2)}
    for key in ("beam", "mcts", "tot"):
        mine = [a for a in attempts if a.strategy == key]
        assert len(mine) == 4
        rows = store.samples(sorted({i for a in mine for i in a.sample_ids}))
        entries = [charge(rows[i].generation, info.facts, rows[i].joules, rows[i].energy_measured, info.pricing)
                   for a in mine for i in a.sample_ids]  # every sample an attempt used, as often as it used it
        ledger = sum(e.prompt_tokens + e.completion_tokens for e in entries)
        reported = sum(a.trace["tokens"]["prompt"] + a.trace["tokens"]["completion"] for a in mine)
        assert ledger == pytest.approx(reported) and ledger > 0
        assert all(len(a.sample_ids) == a.trace["tokens"]["samples"] for a in mine)
    store.close()

    out = tmp_path / "tree.json"
    if importlib.util.find_spec("oomlab.cli.__main__"):
        cli = [sys.executable, "-m", "oomlab.cli"]
    else:  # no `python -m oomlab.cli`: the console script installed beside this interpreter
        cli = [shutil.which("oomlab", path=str(Path(sys.executable).parent)) or shutil.which("oomlab") or "oomlab"]
    args = ["trace", result.run_id, "--problem", "1", "--strategy", "mcts", "-o", str(out), "--db", str(db)]
    proc = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    exported = json.loads(out.read_text())
    assert exported["strategy"] == "mcts" and exported["problem"] == 1 and exported["budget"] == 2
    assert exported["nodes"][0]["visits"] == 2 and exported["chosen"][0] == 0

    bad = subprocess.run([*cli, "trace", result.run_id, "-p", "0", "-s", "nope", "--db", str(db)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "beam, mcts, tot" in bad.stderr


# ---------------------------------------------------------------- without the model


def test_the_search_strategies_and_the_step_scorer_are_registered():
    assert {"beam", "tot", "mcts"} <= set(STRATEGIES.names())
    assert "step-logprob" in SCORERS.names()
    for name, knob in (("beam", "width"), ("tot", "b"), ("mcts", "iterations")):
        s = create_strategy(name)
        assert s.knob == knob and s.knob_help and s.description and not s.oracle and s.label() == name
    oracle = create_strategy("mcts", scorer="oracle")
    assert oracle.oracle and oracle.label() == "mcts[oracle] (oracle)"
    assert create_strategy("beam", scorer="oracle").label() == "beam[oracle] (oracle)"


def test_step_logprob_scores_partial_solutions():
    scorer = create_scorer("step-logprob")
    assert scorer.needs_logprobs and not scorer.oracle
    partial = Candidate(Generation("4 + 8 = 12", 0, 3, 0.0, 0, token_logprobs=(-1.0, -2.0, -3.0)), None)
    assert scorer.score(partial, Problem("p", {}, "x"), GAME24) == -2.0  # no answer yet: not penalised
    bare = Candidate(Generation("7", 0, 1, 0.0, 0), "7")
    assert scorer.score(bare, Problem("p", {}, "7"), ARITHMETIC) == -math.inf


def test_uct_score_is_ucb1_on_trees():
    assert uct_score(0.5, 0, 10, 1.0) == math.inf  # unvisited first
    assert uct_score(0.25, 4, 16, 0.0) == 0.25  # c = 0: pure exploitation
    assert uct_score(0.5, 2, 8, 2.0) == pytest.approx(0.5 + 2.0 * math.sqrt(math.log(8) / 2))
    assert uct_score(0.5, 1, 8, 1.0) > uct_score(0.5, 4, 8, 1.0)  # fewer visits, bigger bonus


def _toy_tree(values: list[tuple[int, float]]) -> SearchTree:
    """A root with one child per (visits, mean value)."""
    tree = SearchTree("Q:", "\n", root_visits=sum(v for v, _ in values))
    for i, (visits, mean) in enumerate(values):
        child = tree.add(tree.root, f"step {i}", visits=visits)
        child.value_sum = mean * visits
    return tree


def test_select_child_exploits_explores_and_tries_unvisited_first():
    bounds = MinMax()
    for v in (-3.0, -1.0):
        bounds.update(v)
    assert bounds.normalise(-1.0) == 1.0 and bounds.normalise(-3.0) == 0.0 and bounds.normalise(-2.0) == 0.5
    tree = _toy_tree([(5, -1.0), (5, -3.0)])
    assert select_child(tree, tree.root, 0.0, bounds).text == "step 0"  # better mean
    tree = _toy_tree([(50, -1.0), (1, -3.0)])
    assert select_child(tree, tree.root, 0.0, bounds).text == "step 0"
    assert select_child(tree, tree.root, 2.0, bounds).text == "step 1"  # rarely tried: exploration wins
    tree = _toy_tree([(3, -1.0), (0, 0.0)])
    assert select_child(tree, tree.root, 0.0, bounds).text == "step 1"
    tree = _toy_tree([(2, -1.0), (2, -1.0)])
    assert select_child(tree, tree.root, 1.0, bounds).text == "step 0"  # ties: the older child
    assert MinMax().normalise(5.0) == 0.0
    assert most_visited_leaf(_toy_tree([(1, -0.1), (3, -2.0)])).text == "step 1"


def test_tree_paths_contexts_and_json():
    tree = SearchTree("PROMPT\n", "\n")
    a = tree.add(tree.root, "4 + 8 = 12", logprobs=(-0.5, -0.25))
    b = tree.add(a, "6 - 4 = 2", logprobs=(-1.0,))
    a.score, b.score = -math.inf, float("nan")
    b.extra["value"] = -math.inf
    assert tree.solution(b) == "4 + 8 = 12\n6 - 4 = 2"
    assert tree.context(tree.root) == "PROMPT\n" and tree.context(b) == "PROMPT\n4 + 8 = 12\n6 - 4 = 2\n"
    assert tree.path_logprobs(b) == (-0.5, -0.25, -1.0)
    tree.choose(b)
    data = json.loads(json.dumps(tree.to_json(), allow_nan=False))  # strict JSON: no -Infinity / NaN
    assert data["chosen"] == [0, 1, 2]
    assert [n["parent"] for n in data["nodes"]] == [None, 0, 1] and data["nodes"][0]["children"] == [1]
    assert data["nodes"][1]["score"] is None and data["nodes"][2]["extra"] == {"value": None}
    assert {"id", "parent", "text", "score", "visits", "depth", "chosen"} <= set(data["nodes"][2])


def _closed(task, steps: list[str]):
    problem = task.problems(1, seed=0)[0]
    sampler = StepSampler(task, problem, None, None, 0)  # close() never calls the model
    node = sampler.tree.root
    for step in steps:
        node = sampler.tree.add(node, step)
        sampler.close(node)
    return node


def test_completion_rules():
    assert _closed(ARITHMETIC, [" 13"]).complete  # arithmetic stops at "\n": one step is the answer
    assert _closed(ARITHMETIC, [" 13"]).answer == "13"
    step = _closed(GAME24, ["4 + 8 = 12 (left: 4 6 12)"])
    assert not step.complete
    done = _closed(GAME24, ["4 + 8 = 12 (left: 4 6 12)", "Answer: (6 - 4) * (4 + 8) = 24"])
    assert done.complete and done.answer == "(6 - 4) * (4 + 8)"
    assert _closed(GAME24, ["4 + 8 = 12 (left: 4 6 12)", ""]).complete  # a blank line ends the solution


def test_value_prompt_parsing_and_question():
    assert parse_rating(" sure") == "sure" and parse_rating("Likely.") == "likely"
    assert parse_rating(" impossible\n") == "impossible" and parse_rating(" maybe") is None
    assert question_of("1 + 1 = 2\n3 + 4 =") == "3 + 4 ="
    assert question_of("Intro\n\nInput: 1 2\nAnswer: 3\n\nInput: 4 4 6 8\nSteps:\n") == "Input: 4 4 6 8\nSteps:"
    assert sample_seed(0, "step", "ctx", 0) == sample_seed(0, "step", "ctx", 0)
    assert len({sample_seed(0, "step", "ctx", i) for i in range(100)}) == 100


class ScriptedBackend:
    """A deterministic stand-in for a model: step j from a context is `s{j}`, ending at depth 3."""

    name, model_id, facts = "scripted", "scripted", None

    def __init__(self):
        self.seen: list[Generation] = []

    def generate(self, request: GenRequest) -> list[Generation]:
        depth = request.prompt.count("\n") - 1
        out = []
        for seed in request.seeds:
            text = f"Answer: {seed % 7}" if depth >= 3 or request.params.max_tokens > 100 else f"s{seed % 5}"
            out.append(Generation(text, len(request.prompt), 2, 0.0, seed, token_logprobs=(-(seed % 3) / 3, -0.1)))
        self.seen.extend(out)
        return out


class ScriptedTask(ArithmeticTask):
    name = "scripted"

    def prompt(self, problem):
        return "Q\n"

    def sampling(self):
        from oomlab.backends.base import SamplingParams

        return SamplingParams(max_tokens=200, stop=("\n\n",))


def test_mcts_visits_add_up_over_many_iterations():
    task, fake = ScriptedTask(), ScriptedBackend()
    problem = task.problems(1)[0]
    attempt = MCTS(children=2, depth=3).solve(problem, task, fake, 25, seed=3)
    nodes = attempt.trace["tree"]["nodes"]
    assert nodes[0]["visits"] == 25 and sum(nodes[c]["visits"] for c in nodes[0]["children"]) == 25
    for n in nodes:
        assert n["visits"] >= sum(nodes[c]["visits"] for c in n["children"])
        assert len(n["children"]) <= 2 and n["depth"] <= 3
    assert list(attempt.generations) == fake.seen and attempt.answer is not None
    again = MCTS(children=2, depth=3).solve(problem, task, ScriptedBackend(), 25, seed=3)
    assert again.trace == attempt.trace
