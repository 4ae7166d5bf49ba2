"""The prm scorer against a local server speaking vLLM's pooling API and a plain reward endpoint.

The server (conftest.py) stands in for a real process reward model because none can run on these
machines; it speaks the real protocols, and only its scores are made up (it checks the arithmetic
each step claims). Generation in the sweep tests is the real embedded model.
"""

from __future__ import annotations

import math

import pytest

from oomlab.backends.base import Generation
from oomlab.errors import BackendError, ConfigError
from oomlab.ledger import prompt_flops
from oomlab.problem import Problem
from oomlab.scorers import Candidate, create_scorer
from oomlab.scorers.prm import PRMScorer, aggregate, split_steps
from oomlab.tasks.arithmetic import ArithmeticTask

FACTS = {"n_params": 7.6e9, "n_params_non_embedding": 6.5e9, "n_layer": 28, "d_model": 3584}  # Qwen2.5-7B's shape
PROBLEM = Problem("p", {"question": "What is 2 + 2 and then 3 + 3?"}, "6")
TASK = ArithmeticTask()


def candidate(text: str) -> Candidate:
    return Candidate(Generation(text, 10, 5, 0.0, 0), None, "prompt")


def scorer(url: str, **options) -> PRMScorer:
    return PRMScorer(base_url=url, backoff=0.01, timeout=10, **{**FACTS, **options})


def test_pooling_protocol_scores_each_step(prm) -> None:
    s = scorer(prm.url, model="Qwen/Qwen2.5-Math-PRM-7B")
    try:
        good, bad = s.score_many([candidate("2 + 2 = 4\n\n3 + 3 = 6"), candidate("2 + 2 = 4\n\n3 + 3 = 7")], PROBLEM, TASK)
        assert good == pytest.approx(0.95) and bad == pytest.approx(0.05)  # aggregation "last"
        body = prm.requests[0]["body"]
        assert prm.requests[0]["path"] == "/pooling" and body["model"] == "Qwen/Qwen2.5-Math-PRM-7B"
        system, user, assistant = body["messages"]
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        assert user["content"] == PROBLEM.inputs["question"]  # the question, not the few-shot prompt
        assert assistant["content"] in ("2 + 2 = 4<extra_0>3 + 3 = 6<extra_0>", "2 + 2 = 4<extra_0>3 + 3 = 7<extra_0>")
    finally:
        s.close()


def test_aggregations_and_step_splitting(prm) -> None:
    text = "2 + 2 = 4\n\nso we add\n\n3 + 3 = 7"  # step scores 0.95, 0.5, 0.05
    expected = {"last": 0.05, "min": 0.05, "prod": 0.95 * 0.5 * 0.05}
    for how, value in expected.items():
        s = scorer(prm.url, aggregation=how)
        try:
            assert s.score(candidate(text), PROBLEM, TASK) == pytest.approx(value)
        finally:
            s.close()
    assert aggregate([0.9, 0.2, 0.7], "min") == 0.2 and aggregate([], "last") == -math.inf
    assert split_steps("a\n\n\n\nb\n\n  \n\nc", "\n\n") == ["a", "b", "c"]
    one_line = scorer(prm.url, separator="\\n")  # as written on a command line
    try:
        assert one_line.separator == "\n"
        assert one_line.score(candidate("2 + 2 = 4\n3 + 3 = 7"), PROBLEM, TASK) == pytest.approx(0.05)
    finally:
        one_line.close()


def test_plain_reward_endpoint(prm) -> None:
    s = scorer(prm.url, api="reward")
    try:
        assert s.score(candidate("2 + 2 = 4\n\n3 + 3 = 6"), PROBLEM, TASK) == pytest.approx(0.95)
        assert prm.requests[0]["path"] == "/reward"
        assert prm.requests[0]["body"] == {"question": PROBLEM.inputs["question"], "steps": ["2 + 2 = 4", "3 + 3 = 6"]}
    finally:
        s.close()


def test_a_500_is_retried(prm) -> None:
    prm.fail_next = 2
    s = scorer(prm.url)
    try:
        assert s.score(candidate("2 + 2 = 4"), PROBLEM, TASK) == pytest.approx(0.95)
        assert len(prm.requests) == 3  # two failures, then the answer
        assert s.totals["requests"] == 1 and s.totals["prompt_tokens"] == prm.tokens_reported
    finally:
        s.close()


def test_a_server_that_keeps_failing_is_a_clear_error(prm) -> None:
    prm.fail_next = 10
    s = scorer(prm.url, max_retries=1)
    try:
        with pytest.raises(BackendError, match=r"server kept failing at .*/pooling after 2 attempts: HTTP 500"):
            s.score(candidate("2 + 2 = 4"), PROBLEM, TASK)
    finally:
        s.close()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("no-data", "answered without pooling data"),
        ("rows", "returned 41 pooled rows for 1 steps: serve a process reward model with step pooling"),
        ("nan", "not a finite number"),
        ("no-usage", "did not report usage.prompt_tokens"),
    ],
)
def test_a_malformed_answer_is_a_clear_error(prm, bad: str, message: str) -> None:
    prm.bad = bad
    s = scorer(prm.url)
    try:
        with pytest.raises(BackendError, match=message):
            s.score(candidate("2 + 2 = 4"), PROBLEM, TASK)
        assert s.totals["requests"] == 0  # nothing booked for an unusable answer
    finally:
        s.close()


def test_an_unreachable_server_names_its_url() -> None:
    s = PRMScorer(base_url="http://127.0.0.1:9", max_retries=1, backoff=0.01, timeout=2)
    try:
        with pytest.raises(BackendError, match=r"cannot reach http://127.0.0.1:9/pooling"):
            s.score(candidate("2 + 2 = 4"), PROBLEM, TASK)
    finally:
        s.close()


def test_settings_are_checked_before_any_request() -> None:
    with pytest.raises(ConfigError, match="scorer_base_url"):
        create_scorer("prm")
    with pytest.raises(ConfigError, match="aggregation"):
        PRMScorer(base_url="http://x", aggregation="mean")
    with pytest.raises(ConfigError, match="api"):
        PRMScorer(base_url="http://x", api="grpc")
    assert PRMScorer(base_url="http://h:8000/v1").base_url == "http://h:8000"  # /pooling lives at the root


def test_no_steps_no_request_and_scores_are_cached(prm) -> None:
    s = scorer(prm.url)
    try:
        assert s.score(candidate("   \n\n "), PROBLEM, TASK) == -math.inf and prm.requests == []
        first = s.score(candidate("2 + 2 = 4"), PROBLEM, TASK)
        again = s.score_many([candidate("2 + 2 = 4"), candidate("2 + 2 = 4")], PROBLEM, TASK)
        assert again == [first, first] and len(prm.requests) == 1
        assert s.take_usage() == {"requests": 1, "cached": 2, "prompt_tokens": prm.tokens_reported,
                                  "flops": pytest.approx(prompt_flops(s.facts, prm.tokens_reported)), "seconds": pytest.approx(
                                      s.totals["seconds"])}
        assert s.take_usage() is None
    finally:
        s.close()


@pytest.fixture(scope="module")
def backend():
    from oomlab.backends.llamacpp import LlamaCppBackend

    # one thread: on a shared 2-core machine llama.cpp's spinning workers collapse when oversubscribed
    b = LlamaCppBackend(n_ctx=2048, max_parallel=8, n_threads=1)
    yield b
    b.close()


def prm_spec(url: str, name: str = "best-of-n", extra: str = "") -> str:
    facts = ",".join(f"scorer_{k}={v:g}" for k, v in FACTS.items())
    return f"{name}:scorer=prm,scorer_base_url={url},scorer_backoff=0.01,{facts}{extra}"


@pytest.mark.slow
def test_verifier_tokens_and_flops_go_on_the_ledger_in_their_own_column(prm, backend, tmp_path) -> None:
    from oomlab.store import Store
    from oomlab.sweep import Sweep, SweepConfig

    store = Store(tmp_path / "prm.db")
    config = SweepConfig(task="arithmetic", strategies=[prm_spec(prm.url)], n=3, problems=2, seed=0)
    result = Sweep(config, store, backend=backend).run()
    verifier = store.verifier_totals(result.run_id)
    distinct = {(r["body"]["messages"][1]["content"], r["body"]["messages"][2]["content"]) for r in prm.requests}
    assert verifier.samples == len(prm.requests) == len(distinct) > 0  # one request per distinct solution
    assert verifier.prompt_tokens == prm.tokens_reported
    facts = PRMScorer(base_url=prm.url, **FACTS).facts
    rows = store.db.execute("SELECT prompt_tokens, flops, model_id, scorer FROM verifier_usage WHERE run_id = ?",
                            (result.run_id,)).fetchall()
    assert verifier.flops == pytest.approx(sum(prompt_flops(facts, r["prompt_tokens"]) for r in rows))
    assert {(r["model_id"], r["scorer"]) for r in rows} == {(f"prm:{prm.url}", "prm")}
    assert verifier.completion_tokens == 0 and math.isnan(verifier.joules)
    generator = store.run_totals(result.run_id)
    assert generator.samples == 6 and generator.model_id != verifier.model_id  # the generator's books apart
    for a in store.attempts(result.run_id):  # the draw was ranked by the PRM's scores
        assert all(0.0 <= s <= 1.0 or s == -math.inf for s in a.trace["scores"])

    # A new run of the same configuration: samples and PRM scores both come from the store, nothing is paid again.
    asked = len(prm.requests)
    again = Sweep(config, store, backend=backend).run()
    assert again.run_id != result.run_id and again.drawn == 0
    assert len(prm.requests) == asked and store.verifier_totals(again.run_id).samples == 0
    store.close()


@pytest.mark.slow
def test_curves_charge_each_rung_its_share_of_the_verifier(prm, backend, tmp_path) -> None:
    """best-of-n with a PRM: the draw is scored once; rung k pays k/N of that reading, in tokens and FLOPs."""
    from oomlab.analysis.curves import run_curves
    from oomlab.store import Store, load_run
    from oomlab.sweep import Sweep, SweepConfig

    store = Store(tmp_path / "prm-curves.db")
    config = SweepConfig(task="arithmetic", strategies=[prm_spec(prm.url), "majority"], n=4, problems=2, seed=0)
    result = Sweep(config, store, backend=backend).run()
    verifier = store.verifier_totals(result.run_id)
    bon, majority = run_curves(load_run(store, result.run_id))
    assert verifier.prompt_tokens > 0
    per_problem = verifier.prompt_tokens / 2
    assert [r.k for r in bon.rungs] == [1, 2, 4]
    for r, m in zip(bon.rungs, majority.rungs):
        assert r.verifier_tokens == pytest.approx(per_problem * r.k / 4)
        assert r.verifier_flops == pytest.approx(verifier.flops / 2 * r.k / 4)
        assert m.verifier_tokens == 0  # majority reads nothing: same draw, same generator cost
        assert r.flops == pytest.approx(m.flops + r.verifier_flops)
        assert r.tokens == pytest.approx(m.tokens + r.verifier_tokens)
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["beam", "dvts", "particle-filter", "mcts"])
def test_search_strategies_take_the_prm(prm, backend, name: str) -> None:
    """On Game of 24's steps (`a + b = c (left: ...)`) the stand-in PRM's arithmetic check means something."""
    from oomlab.strategies import create_strategy
    from oomlab.tasks.game24 import Game24Task

    task = Game24Task(style="steps")
    problem = task.problems(1, seed=0)[0]
    options = {"depth": 2, "max_step_tokens": 24, "scorer": "prm", "scorer_base_url": prm.url, "scorer_separator": "\\n",
               "scorer_backoff": 0.01, **{f"scorer_{k}": v for k, v in FACTS.items()}}
    if name == "mcts":
        options["max_rollout_tokens"] = 24
    strategy = create_strategy(name, **options)
    assert strategy.label() == f"{name}[prm]" and not strategy.oracle
    attempt = strategy.solve(problem, task, backend, 2, seed=0)
    usage = attempt.trace["verifier"]
    assert usage["requests"] == len(prm.requests) > 0 and usage["prompt_tokens"] == prm.tokens_reported
    nodes = attempt.trace["tree"]["nodes"]
    scored = [n for n in nodes[1:] if n["score"] is not None]
    assert scored and all(n["score"] in (0.05, 0.5, 0.95) for n in scored)  # the PRM's step scores, aggregated "last"
