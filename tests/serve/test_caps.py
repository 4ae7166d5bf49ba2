"""Caps, books and the pieces of serve that need no model: real Store and MeteredBackend, a scripted backend."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from oomlab.backends.base import GenRequest, SamplingParams
from oomlab.caps import Books, CappedBackend, CapReached, Caps, Rates, capped_sweep_backend
from oomlab.energy import EnergyMeter
from oomlab.errors import ConfigError
from oomlab.ledger import Pricing
from oomlab.serve.names import parse_model_name, variant_key
from oomlab.serve.streaming import StreamText, TokenRoute
from oomlab.serve.task import ServedTask, read_answer
from oomlab.store import Store
from oomlab.strategies.base import create_strategy
from oomlab.sweep import MeteredBackend, Sweep, SweepConfig
from oomlab.testing import ScriptedBackend
from oomlab.problem import Problem

PARAMS = SamplingParams(temperature=0.8, max_tokens=5)
PROMPT = "two words"  # the scripted backend counts whitespace tokens: P = 2


class Counted(ScriptedBackend):
    """The scripted backend with a tokenizer that agrees with its token counts (whitespace words)."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def metered(tmp_path: Path) -> MeteredBackend:
    return MeteredBackend(Counted(), Store(tmp_path / "caps.db"), EnergyMeter(counter="off"))


def test_caps_parse_and_tighten() -> None:
    assert Caps.parse({"tokens": 100, "max_usd": "0.5"}) == Caps(tokens=100, usd=0.5)
    for bad in ({"tokenz": 1}, {"tokens": -1}, {"tokens": True}, {"usd": "lots"}):
        with pytest.raises(ConfigError):
            Caps.parse(bad)
    server, asked = Caps(tokens=100, flops=1e12), Caps(tokens=10**9, usd=0.1)
    assert server.tighter(asked) == Caps(tokens=100, usd=0.1, flops=1e12)  # a request can lower, never raise
    assert not Caps() and Caps(joules=1)


def test_a_request_whose_worst_case_does_not_fit_is_refused_before_it_runs(tmp_path: Path) -> None:
    inner = metered(tmp_path)
    capped = CappedBackend(inner, Caps(tokens=2 + 3 * 5), Books(inner.facts, Pricing()))
    four = GenRequest(PROMPT, PARAMS, (0, 1, 2, 3))
    assert capped.affordable(four) == 3  # the prompt once + 3 samples x max_tokens 5 fit; 4 do not
    with pytest.raises(CapReached) as e:
        capped.generate(four)
    assert e.value.cap == "tokens" and e.value.finish_reason == "cap_tokens"
    assert inner.backend.requests == []  # refused before anything was drawn
    capped.generate(GenRequest(PROMPT, PARAMS, (0, 1, 2)))
    spend = capped.books.spend()
    assert spend.tokens == 2 + 3 and spend.samples == 3  # 1-token samples: far under their worst case
    assert capped.affordable(GenRequest(PROMPT, PARAMS, tuple(range(3, 13)))) == 2  # what is left: 12 tokens


def test_books_count_cached_samples_and_each_prompt_once(tmp_path: Path) -> None:
    inner = metered(tmp_path)
    first = CappedBackend(inner, books=Books(inner.facts, Pricing(usd_per_m_completion=1e6)))
    first.generate(GenRequest(PROMPT, PARAMS, (0, 1)))
    first.generate(GenRequest(PROMPT, PARAMS, (0, 1)))  # the same samples again: not charged twice
    assert first.books.spend().tokens == 2 + 2 and first.books.spend().usd == pytest.approx(2.0)
    assert first.drawn_now == {r.id for r in first.served}
    again = CappedBackend(inner, books=Books(inner.facts, Pricing()))
    again.generate(GenRequest(PROMPT, PARAMS, (0, 1)))  # served from the cache: the same bill, nothing drawn
    assert again.books.spend().tokens == 4 and again.drawn_now == set() and len(inner.backend.requests) == 1


def test_threads_sharing_a_cap_reserve_their_worst_case(tmp_path: Path) -> None:
    inner = metered(tmp_path)
    capped = CappedBackend(inner, Caps(tokens=40), Books(inner.facts, Pricing()))
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def one(i: int) -> None:
        barrier.wait()
        try:
            capped.generate(GenRequest(f"prompt {i}", PARAMS, (i,)))  # worst case 2 + 5 = 7 tokens each
            outcomes.append("ok")
        except CapReached:
            outcomes.append("capped")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert capped.books.spend().tokens <= 40
    # a refusal needs at least 5 others reserved or done (7 x 5 > 40 - 7), so at least 5 ran, whatever the order
    assert outcomes.count("ok") >= 5 and len(outcomes) == 8


def test_flops_cap_needs_facts_and_time_caps_project_from_rates(tmp_path: Path) -> None:
    inner = metered(tmp_path)
    rates = Rates()
    capped = CappedBackend(inner, Caps(usd=1.0), Books(inner.facts, Pricing(usd_per_hour=3600.0)), rates)
    assert capped.refusal(GenRequest(PROMPT, PARAMS, (0,))) is None  # nothing seen yet: cannot project, allowed
    capped.generate(GenRequest(PROMPT, PARAMS, (0,)))  # 0.001 s per sample at $1/s: $0.001
    rates.observe(capped.books.spend(), capped.books.computed_tokens())
    fresh = CappedBackend(inner, Caps(usd=0.001), Books(inner.facts, Pricing(usd_per_hour=3600.0)), rates)
    assert fresh.refusal(GenRequest(PROMPT, PARAMS, tuple(range(1, 30)))) is not None  # projected from the rate


def test_a_cap_stops_a_search_strategy_through_the_backend_it_is_given(tmp_path: Path) -> None:
    inner = metered(tmp_path)
    task = ServedTask("1 + 1 =", SamplingParams(max_tokens=4), answer="number")
    capped = CappedBackend(inner, Caps(tokens=12), Books(inner.facts, Pricing()))
    with pytest.raises(CapReached):
        create_strategy("revise").solve(task.problem, task, capped, 3, seed=0)
    assert 1 <= len(capped.served) and capped.books.spend().tokens <= 12


def test_capped_sweep_backend_counts_the_whole_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "sweep.db")
    sweep = Sweep(SweepConfig(strategies=["majority"], n=4, problems=3), store, backend=ScriptedBackend())
    result = sweep.run()
    guard = capped_sweep_backend(sweep.metered, Caps(tokens=10**6), Pricing(), result.run_id)
    assert guard.books.spend().tokens == pytest.approx(store.run_totals(result.run_id).tokens)
    assert guard.books.spend().samples == store.run_totals(result.run_id).samples
    # it stands where the sweep's metered backend stood: what the sweep asks of that is there
    assert guard.take_used() == [] and guard.drawn == sweep.metered.drawn and guard.reused == sweep.metered.reused


def test_model_names() -> None:
    known = {"majority", "best-of-n", "adaptive-majority"}
    m = parse_model_name("best-of-n-8[scorer=logprob,temperature=0.7]:gemma-3-270m", known)
    assert (m.base, m.strategy, m.budget, m.options) == ("gemma-3-270m", "best-of-n", 8,
                                                         {"scorer": "logprob", "temperature": 0.7})
    assert parse_model_name("adaptive-majority-16:x", known).strategy == "adaptive-majority"
    assert parse_model_name("majority:x", known).budget is None
    assert parse_model_name("llama3:8b", known) == parse_model_name("llama3:8b", set())  # passed through
    assert parse_model_name("llama3:8b", known).base == "llama3:8b"
    assert variant_key("best-of-n", 8, {"scorer": "logprob"}) == "best-of-n-8[scorer=logprob]"


def test_stream_text_never_sends_past_a_stop_or_half_a_character() -> None:
    sent: list[str] = []
    s = StreamText(("\nUser:",), sent.append)
    for piece in (b" caf", b"\xc3", b"\xa9 ok", b"\nUs", b"er: more"):
        s.feed(piece)
    assert "".join(sent) == " café ok" and s.stopped
    s.finish(" café ok")
    assert "".join(sent) == " café ok"
    cached: list[str] = []
    StreamText((), cached.append).finish("all at once")  # a cached sample: nothing decoded, sent whole
    assert cached == ["all at once"]


class Streaming(Counted):
    """The scripted backend, handing each sample's text to on_token a character at a time."""

    streams_tokens = True

    def generate(self, request: GenRequest, on_sample: Any = None, on_token: Any = None) -> list[Any]:
        gens = super().generate(request, on_sample)
        for i, g in enumerate(gens):
            for ch in g.text:
                if on_token is not None:
                    on_token(i, ch)
        return gens


def test_tokens_reach_the_client_through_caps_and_the_cache(tmp_path: Path) -> None:
    inner = MeteredBackend(Streaming(script=lambda p, s: f" s{s}"), Store(tmp_path / "t.db"), EnergyMeter(counter="off"))
    route = TokenRoute(inner)
    capped = CappedBackend(route, Caps(tokens=100), Books(inner.facts, Pricing()))
    capped.generate(GenRequest(PROMPT, PARAMS, (7,)))  # not streamed: seed 7 is now in the cache
    seen: list[tuple[int, str]] = []
    with route.to(lambda i, t: seen.append((i, t))):
        gens = capped.generate(GenRequest(PROMPT, PARAMS, (7, 8)))
    assert [g.text for g in gens] == [" s7", " s8"]
    assert seen == [(1, " "), (1, "s"), (1, "8")]  # only the drawn sample streams, under its index in the request
    capped.generate(GenRequest(PROMPT, PARAMS, (9,)))  # outside `to`: no tokens go anywhere
    assert len(seen) == 3


def test_answer_rules_and_reference() -> None:
    assert read_answer("  The answer is 18.00 apples\n", "number") == "18"
    assert read_answer("\n first line \nsecond", "line") == "first line"
    task = ServedTask("q", SamplingParams(), answer="number", reference="18")
    assert task.check("18", task.problem) and not task.check("17", task.problem)
    assert not ServedTask("q", SamplingParams()).check("anything", Problem("p", {}, ""))
