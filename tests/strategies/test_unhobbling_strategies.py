"""The re-run strategies (revise, scaffold, tool, budget, adaptive-majority) and the judge scorer.

Model tests run the real embedded model through a counting proxy that records every Generation
the backend produced: a strategy's Attempt must list exactly those, so nothing is off the books.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oomlab.backends.base import GenRequest, Generation
from oomlab.errors import ConfigError
from oomlab.scorers import SCORERS, Candidate, create_scorer
from oomlab.scorers.judge import parse_grade, parse_verdict
from oomlab.strategies import STRATEGIES, Attempt, Strategy, create_strategy
from oomlab.strategies.adaptive_majority import AdaptiveMajority, leader_probability, p_answer_holds, should_stop
from oomlab.strategies.revise import split_question
from oomlab.strategies.scaffold import parse_choice
from oomlab.strategies.tool import Tool, open_question
from oomlab.tasks.base import create_task
from oomlab.testing import RecordingBackend as CountingBackend

NEW = ["revise", "scaffold", "tool", "budget", "adaptive-majority"]
TASK = create_task("arithmetic", difficulty=2)
PROBLEMS = TASK.problems(2, seed=0)




def tokens(gens) -> int:
    return sum(g.prompt_tokens + g.completion_tokens for g in gens)


@pytest.fixture(scope="module")
def real_backend() -> Iterator:
    from oomlab.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(n_ctx=2048, max_parallel=8)
    yield backend
    backend.close()


@pytest.fixture
def counting(real_backend) -> CountingBackend:
    return CountingBackend(real_backend)


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize("name", NEW)
def test_registered_with_defaults_and_documented(name):
    strategy = create_strategy(name)
    assert isinstance(strategy, Strategy) and strategy.name == name
    assert strategy.description and strategy.knob and strategy.knob_help
    assert not strategy.oracle and strategy.label() == name
    assert type(strategy).__doc__ or sys.modules[type(strategy).__module__].__doc__
    assert "arXiv" in sys.modules[type(strategy).__module__].__doc__  # the citation


def test_judge_is_a_registered_non_oracle_scorer():
    judge = create_scorer("judge")
    assert "judge" in SCORERS.names() and not judge.oracle
    with pytest.raises(ConfigError):
        create_scorer("judge", mode="stars")


def test_split_question_takes_the_open_question():
    assert split_question("1 + 1 = 2\n3 + 4 =") == ("1 + 1 = 2\n", "3 + 4 =")
    assert split_question("Q: a\nA: 1\n\nQuestion: b\nAnswer:") == ("Q: a\nA: 1\n\n", "Question: b\nAnswer:")
    assert split_question("7 * 6 =") == ("", "7 * 6 =")
    assert open_question("Q: a\nA: 1\n\nQuestion: How many eggs?\nAnswer:") == "How many eggs?"
    assert open_question("1 + 1 = 2\n3 + 4 =") == "3 + 4 ="


# ---------------------------------------------------------------- every token on the books (real model)

CASES = [
    ("revise", {"critique_tokens": 12}, 1),
    ("scaffold", {"plan_tokens": 12, "critique_tokens": 12}, 2),
    ("tool", {"max_tokens": 24}, 2),
    ("tool", {"mode": "calculator"}, 2),
    ("budget", {"unit": 6, "wait": 1}, 1),
    ("budget", {"unit": 6, "end_marker": "\n", "wait": 1}, 2),  # a marker the base model does emit: "Wait" path
    ("adaptive-majority", {}, 3),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "options", "budget"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_attempt_lists_every_generation_it_caused(counting, name, options, budget):
    strategy = create_strategy(name, **options)
    attempt = strategy.solve(PROBLEMS[0], TASK, counting, budget, seed=0)
    assert isinstance(attempt, Attempt)
    assert attempt.correct == TASK.check(attempt.answer, PROBLEMS[0])
    assert len(attempt.generations) == len(counting.records) > 0
    assert tokens(attempt.generations) == tokens(counting.records)
    json.dumps(attempt.trace)  # the store writes it as JSON
    if name == "revise":
        assert len(attempt.trace["answers"]) == budget + 1 and attempt.answer == attempt.trace["answers"][-1]
        assert len(attempt.generations) == 1 + 2 * budget
    if name == "scaffold":
        assert len(attempt.generations) == budget + 3 and len(attempt.trace["candidates"]) == budget
    if name == "tool":
        assert len(attempt.trace["runs"]) == budget
    if name == "budget":
        assert attempt.trace["thinking_tokens"] <= budget * options["unit"]
        assert attempt.trace["waits"] <= options["wait"]
    if name == "adaptive-majority":
        assert attempt.trace["n"] == len(attempt.generations) <= budget


@pytest.mark.slow
def test_tool_is_seeded(counting):
    a = create_strategy("tool", max_tokens=24).solve(PROBLEMS[1], TASK, counting, 2, seed=3)
    b = create_strategy("tool", max_tokens=24).solve(PROBLEMS[1], TASK, counting, 2, seed=3)
    same = lambda t: (t["answers"], [r["source"] for r in t["runs"]])  # noqa: E731 (wall seconds differ)
    assert same(a.trace) == same(b.trace) and a.answer == b.answer


@pytest.mark.slow
def test_judge_scores_through_the_bound_backend(counting):
    prompt = TASK.prompt(PROBLEMS[0])
    (g,) = counting.generate(GenRequest(prompt, TASK.sampling(), (0,)))
    counting.records.clear()
    judge = create_scorer("judge")
    with pytest.raises(ConfigError, match="bind"):
        judge.score(Candidate(g, "1", prompt), PROBLEMS[0], TASK)
    taken = []
    for mode in ("yesno", "grade"):
        judge = create_scorer("judge", mode=mode).bind(counting)
        score = judge.score(Candidate(g, TASK.extract(g.text) or "0", prompt), PROBLEMS[0], TASK)
        assert score == -math.inf or 0.0 <= score <= 1.0
        taken += judge.take_generations()
        assert judge.take_generations() == []
    assert len(taken) == len(counting.records) == 2 and tokens(taken) == tokens(counting.records)
    assert judge.score(Candidate(g, None, prompt), PROBLEMS[0], TASK) == -math.inf  # no answer: no tokens
    assert len(counting.records) == 2


@pytest.mark.slow
def test_tool_through_a_sweep_finishes(real_backend, tmp_path):
    from oomlab.store import Store
    from oomlab.sweep import Sweep, SweepConfig

    store = Store(tmp_path / "oomlab.db")
    config = SweepConfig(task="arithmetic", strategies=["tool"], n=2, problems=2, ladder=[1, 2])
    result = Sweep(config, store, backend=real_backend).run()
    attempts = store.attempts(result.run_id)
    assert sorted((a.problem_idx, a.budget) for a in attempts) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert all(len(a.sample_ids) == a.budget and len(a.trace["runs"]) == a.budget for a in attempts)


# ---------------------------------------------------------------- the tool's program runner


HOSTILE = [
    ("while True: pass", "timed out"),
    ("x = bytearray(10 * 1024**3)", "memory limit"),
    ("import socket; socket.create_connection(('127.0.0.1', 9))", "network access blocked"),
    ("open('/tmp/oomlab-tool-escape.txt', 'w').write('escaped')", "write outside the sandbox's temp dir blocked"),
]


@pytest.mark.parametrize(("code", "expected"), HOSTILE, ids=["loop", "10GB", "socket", "write-outside"])
def test_hostile_program_error_is_recorded_and_the_call_returns(code, expected):
    tool = Tool(timeout_s=1.0)
    run = tool.run_program(code)
    assert run.error is not None and expected in run.error
    assert run.as_dict()["error"] == run.error and run.source == code
    assert not os.path.exists("/tmp/oomlab-tool-escape.txt")
    assert tool.run_program("print(6 * 7)").output == "42\n"  # and the next program runs


def test_calculator_mode_refuses_without_raising():
    tool = Tool(mode="calculator")
    assert tool.run_expression("23 + 19 * 2").output == "61"
    assert tool.run_expression("7 / 7").output == "1"
    for hostile in ("__import__('os').system('true')", "9 ** 9 ** 9", "1 / 0", "print(1)"):
        run = tool.run_expression(hostile)
        assert run.error and run.output == ""


# ---------------------------------------------------------------- the Beta stopping rule


class ScriptedBackend:
    """Answers seed i with texts[i % len(texts)]: a stand-in for the model in stopping-rule unit tests."""

    name, model_id, facts = "scripted", "scripted", None

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.requests = texts, 0

    def generate(self, request: GenRequest) -> list[Generation]:
        self.requests += 1
        # with seed 0, draw seed i is sample i
        return [Generation(self.texts[s % len(self.texts)], 5, 2, 0.0, s) for s in request.seeds]


def test_beta_criterion_values():
    # unanimous: P = 1 - 2^-(v+1); 0.95 needs v >= 4 (Aggarwal et al. 2023, Beta criterion)
    assert leader_probability(Counter({"a": 3})) == pytest.approx(1 - 2**-4)
    assert not should_stop(Counter({"a": 3}), 0.95) and should_stop(Counter({"a": 4}), 0.95)
    assert not should_stop(Counter({"a": 5, "b": 5}), 0.95)
    assert not should_stop(Counter(), 0.95)
    assert leader_probability(Counter({"a": 10, "b": 1, "c": 1})) == leader_probability(Counter({"a": 10, "b": 1}))


def test_stops_early_on_a_unanimous_vote():
    # the Beta rule alone: unanimous stops at 4 (1 - 2^-5 >= 0.95)
    backend = ScriptedBackend([" 7"])
    attempt = AdaptiveMajority(hold=0).solve(PROBLEMS[0], TASK, backend, 16, seed=0)
    assert attempt.answer == "7" and attempt.trace["n"] == 4 and attempt.trace["stop"] == "settled"
    assert len(attempt.generations) == 4 == backend.requests  # one sample per request (batch=1)
    # with the hold rule, three agreeing samples already predict the cap's answer w.p. > 0.9
    attempt = AdaptiveMajority().solve(PROBLEMS[0], TASK, ScriptedBackend([" 7"]), 16, seed=0)
    assert attempt.answer == "7" and attempt.trace["n"] == 3 and attempt.trace["stop"] == "holds"


def test_does_not_stop_on_a_split_vote():
    attempt = AdaptiveMajority().solve(PROBLEMS[0], TASK, ScriptedBackend([" 7", " 8"]), 16, seed=0)
    assert attempt.trace["n"] == 16 and not attempt.trace["settled"] and attempt.trace["stop"] == "cap"
    assert attempt.answer in ("7", "8")


def test_gives_up_when_no_answer_repeats():
    attempt = AdaptiveMajority().solve(PROBLEMS[0], TASK, ScriptedBackend([" 1", " 2", " 3", " 4", " 5"]), 16, seed=0)
    assert attempt.trace["stop"] == "no-repeat" and attempt.trace["n"] == 4 and not attempt.trace["settled"]
    assert AdaptiveMajority(min_n=6).solve(PROBLEMS[0], TASK, ScriptedBackend([" 1", " 2", " 3", " 4", " 5", " 6"]),
                                           16, seed=0).trace["n"] == 6
    off = AdaptiveMajority(min_n=0, hold=0).solve(PROBLEMS[0], TASK, ScriptedBackend([" 1", " 2", " 3", " 4"]), 16)
    assert off.trace["stop"] == "cap"


def test_a_plurality_that_the_cap_cannot_overturn_stops():
    # 7 leads 8 by 6 to 4 with one sample left: the Beta rule (a majority of the top two) is not
    # sure, but no twelfth sample can overturn the plurality, so the hold rule stops one early
    texts = [" 7", " 8"] * 4 + [" 7", " 9", " 7", " 8"]
    votes = Counter(TASK.extract(t) for t in texts[:11])
    assert not should_stop(votes, 0.95) and p_answer_holds([6, 4, 1], 0, 0, 1) == 1.0
    attempt = AdaptiveMajority(min_n=0).solve(PROBLEMS[0], TASK, ScriptedBackend(texts), 12, seed=0)
    assert attempt.trace["stop"] == "holds" and attempt.answer == "7" and attempt.trace["n"] == 11


def exact_holds(counts: tuple[int, ...], leader: int, abstained: int, remaining: int, alpha: float) -> float:
    """Brute force: every path of the Polya urn, weighted by its probability."""
    if remaining == 0:
        top = max(counts)
        tied = [i for i, c in enumerate(counts) if c == top]
        return (leader in tied) / len(tied)
    total = sum(counts) + abstained + alpha
    p = abstained / total * exact_holds(counts, leader, abstained + 1, remaining - 1, alpha) if abstained else 0.0
    for i, c in enumerate(counts):
        bumped = counts[:i] + (c + 1,) + counts[i + 1 :]
        p += c / total * exact_holds(bumped, leader, abstained, remaining - 1, alpha)
    return p + alpha / total * exact_holds(counts + (1,), leader, abstained, remaining - 1, alpha)


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(1, 4), min_size=1, max_size=3), abstained=st.integers(0, 2),
       remaining=st.integers(0, 5), alpha=st.sampled_from([0.5, 1.0, 2.0]), data=st.data())
def test_hold_probability_matches_brute_force(counts, abstained, remaining, alpha, data):
    leader = data.draw(st.integers(0, len(counts) - 1))
    exact = exact_holds(tuple(counts), leader, abstained, remaining, alpha)
    estimate = p_answer_holds(counts, leader, abstained, remaining, alpha=alpha, sims=20000, seed=1)
    assert estimate == pytest.approx(exact, abs=0.015)  # 20000 paths: standard error <= 0.0036


def test_abstentions_do_not_count_as_votes():
    attempt = AdaptiveMajority(hold=0, min_n=0).solve(PROBLEMS[0], TASK, ScriptedBackend([" 7", " ?", " ?"]), 9,
                                                      seed=0)
    assert attempt.trace["n"] == 9 and attempt.trace["answers"].count("7") == 3 and not attempt.trace["settled"]


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.sampled_from([" 1", " 2", " 3", " x"]), min_size=1, max_size=6),
       cap=st.integers(1, 20), batch=st.integers(1, 5), threshold=st.floats(0.6, 0.99))
def test_never_exceeds_the_cap(texts, cap, batch, threshold):
    attempt = AdaptiveMajority(threshold=threshold, batch=batch).solve(PROBLEMS[0], TASK, ScriptedBackend(texts), cap)
    assert 1 <= attempt.trace["n"] == len(attempt.generations) <= cap
    assert len({g.seed for g in attempt.generations}) == attempt.trace["n"]  # no sample drawn twice
    if attempt.trace["n"] < cap:
        assert attempt.trace["stop"] in ("settled", "holds", "no-repeat")


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(("text", "verdict"), [
    (" Yes", True), ("yes, it is", True), (" **Yes**", True), ("Correct.", True), (" True", True),
    (" No", False), ("no.", False), (" Incorrect", False), (" wrong", False),
    (" Not sure", None), (" maybe", None), ("", None), (" 42", None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize(("text", "grade"), [
    (" 7", 7.0), ("7/10", 7.0), (" 8.5 out of 10", 8.5), ("Grade: 10", 10.0), (" 1", 1.0),
    (" 11", None), (" 0", None), (" ten", None), ("", None),
])
def test_parse_grade(text, grade):
    assert parse_grade(text) == grade


def test_parse_choice():
    assert parse_choice("2) because", 3) == 1
    assert parse_choice("1", 1) == 0
    assert parse_choice("4", 3) is None and parse_choice("0", 3) is None and parse_choice("none", 3) is None


# ---------------------------------------------------------------- the CLI


def oomlab_command() -> str:
    found = shutil.which("oomlab") or shutil.which("oomlab", path=os.path.dirname(sys.executable))
    assert found, "the oomlab console script is not installed"
    return found


def test_cli_lists_every_strategy_and_scorer():
    env = dict(os.environ, COLUMNS="200")
    out = subprocess.run([oomlab_command(), "strategies", "--json"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [s["name"] for s in listed["strategies"]] == STRATEGIES.names()
    by_name = {s["name"]: s for s in listed["strategies"]}
    assert by_name["majority"]["ladder"] == "one draw" and by_name["revise"]["ladder"] == "re-run per rung"
    assert by_name["adaptive-majority"]["knob"] == "max_n"
    assert {s["name"]: s["oracle"] for s in listed["scorers"]}["oracle"] is True
    table = subprocess.run([oomlab_command(), "strategies"], capture_output=True, text=True, env=env, timeout=120)
    assert table.returncode == 0, table.stderr
    for name in STRATEGIES.names() + SCORERS.names():
        assert name in table.stdout
    assert "oracle" in table.stdout and "re-run per rung" in table.stdout
