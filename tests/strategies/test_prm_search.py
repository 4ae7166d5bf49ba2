"""dvts, particle-filter and deepconf: one file each, registered by name; budgets spent exactly;
the same seed gives the same search; deepconf's one-draw ladder checked against hand counts and
against majority's exact estimator.

Model tests run the real embedded llama.cpp backend through a counting proxy, on Game of 24's
step format; with `step-logprob` as the step scorer (the prm scorer is tested against its server
in tests/scorers/test_prm.py).
"""

from __future__ import annotations

import math

import pytest

from oomlab.backends.base import Generation
from oomlab.estimators import majority_at_k
from oomlab.scorers import create_scorer
from oomlab.strategies import STRATEGIES, Draw, create_strategy
from oomlab.strategies.deepconf import DeepConf, group_confidences, trace_confidence
from oomlab.strategies.dvts import subtree_widths
from oomlab.strategies.particle_filter import log_weight, resampling_weights
from oomlab.tasks.game24 import Game24Task
from oomlab.testing import RecordingBackend as CountingBackend

GAME24 = Game24Task(style="steps")




@pytest.fixture(scope="module")
def backend():
    from oomlab.backends.llamacpp import LlamaCppBackend

    # one thread: on a shared 2-core machine llama.cpp's spinning workers collapse when oversubscribed
    b = LlamaCppBackend(n_ctx=2048, max_parallel=8, n_threads=1)
    yield b
    b.close()


# ---------------------------------------------------------------- registration


def test_each_is_one_file_registered_by_name() -> None:
    for name, module, knob in (("dvts", "dvts", "n"), ("particle-filter", "particle_filter", "particles"),
                               ("deepconf", "deepconf", "n")):
        cls = STRATEGIES.get(name)
        assert cls.__module__ == f"oomlab.strategies.{module}"
        s = create_strategy(name)
        assert s.knob == knob and s.knob_help and s.description and not s.oracle and s.label() == name
        assert s.config()["name"] == name
    assert create_strategy("dvts", scorer="oracle").label() == "dvts[oracle] (oracle)"
    assert create_strategy("particle-filter", scorer="prm", scorer_base_url="http://x").label() == "particle-filter[prm]"


def test_bad_settings_are_config_errors() -> None:
    from oomlab.errors import ConfigError

    for name, options in (("dvts", {"beam_width": 0}), ("particle-filter", {"weight_temperature": 0}),
                          ("deepconf", {"keep": 0}), ("deepconf", {"measure": "vibes"}), ("dvts", {"widht": 2})):
        with pytest.raises(ConfigError):
            create_strategy(name, **options)


# ---------------------------------------------------------------- pure parts


def test_subtrees_split_the_budget_exactly() -> None:
    assert subtree_widths(16, 4) == [4, 4, 4, 4] and subtree_widths(10, 4) == [4, 3, 3]
    assert subtree_widths(2, 4) == [2] and subtree_widths(1, 4) == [1] and subtree_widths(5, 1) == [1] * 5
    for n in range(1, 40):
        for m in range(1, 9):
            widths = subtree_widths(n, m)
            assert sum(widths) == n and max(widths) <= m and max(widths) - min(widths) <= 1


def test_particle_weights() -> None:
    prm, lp = create_scorer("prm", base_url="http://x"), create_scorer("step-logprob")
    assert log_weight(0.5, prm) == pytest.approx(0.0) and log_weight(0.9, prm) == pytest.approx(math.log(9))
    assert log_weight(math.log(0.9), lp) == pytest.approx(math.log(9))  # exp first: the geometric-mean probability
    assert log_weight(0.9, prm, temperature=0.5) == pytest.approx(2 * math.log(9))
    assert log_weight(-math.inf, lp) == -math.inf and log_weight(None, prm) == -math.inf
    assert log_weight(1.0, prm) == pytest.approx(math.log((1 - 1e-7) / 1e-7))  # clipped, as its_hub does
    w = resampling_weights([math.log(3), 0.0, -math.inf])
    assert w == pytest.approx([0.75, 0.25, 0.0])
    assert resampling_weights([-math.inf, -math.inf]) == [0.5, 0.5]


def test_confidence_measures() -> None:
    lp = [-0.1, -0.1, -2.0, -0.1, -0.1, -0.1]
    assert group_confidences(lp, 3) == pytest.approx([-0.7333333, -0.7333333, -0.7333333, -0.1])
    assert trace_confidence(lp, "mean", 3) == pytest.approx(-2.5 / 6)
    assert trace_confidence(lp, "lowest", 3) == pytest.approx(-2.2 / 3)
    assert trace_confidence(lp, "bottom10", 3) == pytest.approx(-2.2 / 3)  # the lowest 10% of 4 groups: one
    assert trace_confidence(lp, "tail", 2) == pytest.approx(-0.1)
    assert trace_confidence(lp, "mean", 100) == trace_confidence(lp, "lowest", 100)  # one group when short
    assert trace_confidence(None, "mean", 3) == -math.inf and trace_confidence((), "tail", 3) == -math.inf


def draw_of(answers, correct, confidences) -> Draw:
    gens = tuple(Generation(a or "", 3, 1, 0.0, i) for i, a in enumerate(answers))
    return Draw(gens, tuple(answers), tuple(correct), tuple(confidences))


def test_confidence_outweighs_a_count() -> None:
    """One confident right trace beats two unsure wrong ones: e^-0.1 > 2 e^-2 (majority would say b)."""
    draw = draw_of(["a", "b", "b"], [True, False, False], [-0.1, -2.0, -2.0])
    dc = DeepConf(keep=1.0)
    assert dc.select(draw) == 0
    assert dc.estimate(draw, 3) == 1.0 and majority_at_k(draw.answers, draw.correct, 3) == 0.0
    assert dc.estimate(draw, 2) == pytest.approx(2 / 3)  # {a,b}: a wins; {a,b'}: a; {b,b'}: b
    assert dc.estimate(draw, 1) == pytest.approx(1 / 3)


def test_filtering_the_least_confident_flips_the_vote() -> None:
    draw = draw_of(["a", "b", "b"], [False, True, True], [-0.1, -0.3, -0.3])
    assert DeepConf(keep=1.0).select(draw) == 1  # 2 e^-0.3 = 1.48 > e^-0.1 = 0.90
    assert DeepConf(keep=0.5).select(draw) == 0  # ceil(0.5 * 3) = 2 kept: a and the first b; 0.90 > 0.74
    assert DeepConf(keep=0.5).estimate(draw, 3) == 0.0 and DeepConf(keep=1.0).estimate(draw, 3) == 1.0


def test_equal_confidences_give_majority_exactly() -> None:
    """With every trace equally confident the weighted vote is the plurality vote: maj@k, exactly."""
    answers = ["3", "4", None, "3", "5", "4", "3", None, "4", "4", "6", "3"]
    correct = [a == "3" for a in answers]
    draw = draw_of(answers, correct, [-0.5] * len(answers))
    for k in range(1, len(answers) + 1):
        assert DeepConf(keep=1.0).estimate(draw, k) == pytest.approx(majority_at_k(answers, correct, k), abs=1e-12)
    no_logprobs = draw_of(answers, correct, [-math.inf] * len(answers))  # weight 0 everywhere: a plain count
    assert DeepConf(keep=1.0).estimate(no_logprobs, 5) == pytest.approx(majority_at_k(answers, correct, 5))


def test_sampled_subsets_when_there_are_too_many_to_count() -> None:
    answers = [str(i % 3) for i in range(24)]  # C(24, 12) = 2.7 million subsets: estimated from 20,000
    correct = [a == "0" for a in answers]
    draw = draw_of(answers, correct, [-0.5] * 24)
    assert DeepConf(keep=1.0).estimate(draw, 12) == pytest.approx(majority_at_k(answers, correct, 12), abs=0.02)
    assert DeepConf(keep=1.0).estimate(draw, 12) == DeepConf(keep=1.0).estimate(draw, 12)  # seeded


def test_k1_is_the_fraction_correct_and_kn_is_the_selection() -> None:
    answers = ["7", "8", None, "7", "9"]
    correct = [a == "7" for a in answers]
    draw = draw_of(answers, correct, [-0.2, -0.1, -0.3, -0.9, -0.05])
    dc = DeepConf(keep=0.9)
    assert dc.estimate(draw, 1) == pytest.approx(2 / 5)
    pick = dc.select(draw)
    assert dc.estimate(draw, 5) == float(draw.correct[pick])


# ---------------------------------------------------------------- with the model


SMALL = {"depth": 2, "max_step_tokens": 20}
CASES = {"dvts": ({**SMALL, "beam_width": 2}, 3), "particle-filter": (SMALL, 3)}  # (options, budget)


@pytest.fixture(scope="module")
def solved(backend):
    """(strategy, seed) -> (attempt, the proxy that saw its requests); each solved once per module."""
    done: dict[tuple[str, int], tuple] = {}

    def run(name: str, seed: int = 0, fresh: bool = False):
        """`fresh`: solve again (the same seed must give the same search), not from this cache."""
        if fresh or (name, seed) not in done:
            options, budget = CASES[name]
            problem = GAME24.problems(1, seed=0)[0]
            proxy = CountingBackend(backend)
            attempt = create_strategy(name, **options).solve(problem, GAME24, proxy, budget, seed=seed)
            if fresh:
                return attempt, proxy
            done[(name, seed)] = (attempt, proxy)
        return done[(name, seed)]

    return run


@pytest.mark.slow
def test_dvts_spends_exactly_its_budget_per_iteration(solved) -> None:
    attempt, proxy = solved("dvts")
    widths = attempt.trace["subtrees"]
    assert widths == [2, 1]  # 3 beams, beam_width 2
    sampled = attempt.trace["sampled_per_iteration"]
    assert sampled[0] == 3 and proxy.requests[0].n == 3  # all subtrees start from the root: one request of N
    assert all(s <= 3 for s in sampled) and len(sampled) <= SMALL["depth"]
    assert sum(r.n for r in proxy.requests) == sum(sampled) == len(attempt.generations)
    assert all(r.n in widths for r in proxy.requests[1:])  # later: one request per open subtree, of its width
    assert list(attempt.generations) == proxy.seen  # everything on the books
    nodes = attempt.trace["tree"]["nodes"]
    assert sum(1 for n in nodes if n["depth"] == 1) == 3


@pytest.mark.slow
def test_particle_filter_samples_one_step_per_open_particle(solved) -> None:
    attempt, proxy = solved("particle-filter")
    sampled = attempt.trace["sampled_per_iteration"]
    assert sampled[0] == 3 and proxy.requests[0].n == 3
    assert all(s <= 3 for s in sampled) and len(sampled) <= SMALL["depth"]
    assert sum(r.n for r in proxy.requests) == sum(sampled) == len(attempt.generations)
    assert list(attempt.generations) == proxy.seen
    kept = [n for n in attempt.trace["tree"]["nodes"] if "extra" in n and "particles" in n["extra"]]
    assert sum(n["extra"]["particles"] for n in kept) == 3  # the final particles, by the state they hold


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dvts", "particle-filter"])
def test_same_seed_same_search(solved, name: str) -> None:
    first, _ = solved(name)
    again, _ = solved(name, fresh=True)
    assert again.answer == first.answer and again.trace["tree"] == first.trace["tree"]
    assert [g.text for g in again.generations] == [g.text for g in first.generations]


@pytest.mark.slow
def test_deepconf_in_a_sweep_draws_n_once_and_its_ladder_is_estimated(backend, tmp_path) -> None:
    from oomlab.analysis.curves import run_curves
    from oomlab.store import Store
    from oomlab.sweep import Sweep, SweepConfig

    store = Store(tmp_path / "deepconf.db")
    config = SweepConfig(task="arithmetic", strategies=["deepconf", "majority"], n=4, problems=4, seed=0)
    result = Sweep(config, store, backend=backend).run()
    attempts = [a for a in store.attempts(result.run_id) if a.strategy == "deepconf"]
    assert len(attempts) == 4 and all(a.budget == 4 and len(a.sample_ids) == 4 for a in attempts)
    majority = {a.problem_idx: a for a in store.attempts(result.run_id) if a.strategy == "majority"}
    for a in attempts:
        rows = store.samples(a.sample_ids)
        assert a.sample_ids == majority[a.problem_idx].sample_ids  # one shared draw, drawn once
        assert a.trace["scores"] == [trace_confidence(rows[i].generation.token_logprobs, "bottom10", 32)
                                     for i in a.sample_ids]
    assert result.drawn == 16
    curves = {c.key: c for c in run_curves(store, result.run_id, n_boot=200)}
    assert [r.k for r in curves["deepconf"].rungs] == [1, 2, 4]
    # k = 1 is one sample's correctness, whatever the weights: deepconf and majority agree there
    assert curves["deepconf"].rungs[0].accuracy == pytest.approx(curves["majority"].rungs[0].accuracy)
    store.close()
