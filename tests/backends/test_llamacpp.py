"""The embedded backend on real llama.cpp with the embedded Gemma 3 270M."""

from __future__ import annotations

import pytest

from oomlab.backends.base import GenRequest, SamplingParams
from oomlab.errors import ModelNotFoundError

pytestmark = pytest.mark.slow

PROMPT = "2 + 3 = 5\n7 + 1 = 8\n4 + 4 = 8\n6 + 3 = "


def test_facts_from_gguf_metadata(embedded_backend) -> None:
    f = embedded_backend.facts
    assert f.n_layer == 18 and f.d_model == 640 and f.d_attn == 4 * 256
    # Gemma 3 270M: ~268M parameters of which ~168M are the 262k x 640 embedding
    assert 2.6e8 < f.n_params < 2.8e8
    assert f.n_params - f.n_params_non_embedding == 262144 * 640
    assert embedded_backend.model_id.startswith("gemma-3-270m")


def test_batched_samples_share_one_prompt(embedded_backend) -> None:
    req = GenRequest(PROMPT, SamplingParams(temperature=1.0, max_tokens=6, stop=("\n",)), tuple(range(8)), logprobs=True)
    gens = embedded_backend.generate(req)
    assert [g.seed for g in gens] == list(range(8))
    assert all(g.group_size == 8 and g.prompt_tokens == gens[0].prompt_tokens > 10 for g in gens)
    assert all(1 <= g.completion_tokens <= 6 for g in gens)
    assert all(len(g.token_logprobs) == g.completion_tokens for g in gens)
    assert all(lp <= 0 for g in gens for lp in g.token_logprobs)
    assert all("\n" not in g.text for g in gens)
    assert len({g.text for g in gens}) > 1, "temperature 1 over 8 seeds should not give one text"
    again = embedded_backend.generate(req)
    assert [g.text for g in again] == [g.text for g in gens], "same seeds, same batch -> same samples"


def test_greedy_is_deterministic_and_max_tokens_caps(embedded_backend) -> None:
    req = GenRequest("Once upon a time", SamplingParams(temperature=0.0, max_tokens=5), (0,))
    a, b = embedded_backend.generate(req)[0], embedded_backend.generate(req)[0]
    assert a.text == b.text and a.completion_tokens == 5 and a.finish_reason == "length"


def test_sequential_baseline_gives_valid_samples(embedded_backend) -> None:
    embedded_backend.batched = False
    try:
        gens = embedded_backend.generate(GenRequest(PROMPT, SamplingParams(temperature=0.8, max_tokens=4, stop=("\n",)), (0, 1, 2)))
    finally:
        embedded_backend.batched = True
    assert len(gens) == 3 and all(1 <= g.completion_tokens <= 4 for g in gens)


def test_missing_model_file() -> None:
    from oomlab.backends.llamacpp import LlamaCppBackend

    with pytest.raises(ModelNotFoundError, match="model file not found: /no/such.gguf"):
        LlamaCppBackend(model="/no/such.gguf")


def test_each_sample_is_handed_over_when_it_stops(embedded_backend) -> None:
    import threading
    import time

    req = GenRequest(PROMPT, SamplingParams(temperature=1.0, max_tokens=24), tuple(range(12)), logprobs=True)
    seen: list[tuple[int, int, float]] = []
    t0 = time.perf_counter()
    gens = embedded_backend.generate(req, on_sample=lambda i, g: seen.append((i, g.completion_tokens, time.perf_counter())))
    wall = time.perf_counter() - t0
    assert sorted(i for i, _, _ in seen) == list(range(12)), "every sample handed over exactly once"
    assert threading.current_thread() is threading.main_thread()
    # handed over in the order they stopped: shorter samples first
    lengths = [c for _, c, _ in seen]
    assert lengths == sorted(lengths)
    assert {(i, gens[i].completion_tokens) for i, _, _ in seen} == {(i, c) for i, c, _ in seen}
    # each step's time split among the samples live in it: the shares add up to the batch's wall time
    total = sum(g.seconds for g in gens)
    assert 0.8 * wall <= total <= wall
    longest = max(range(12), key=lambda i: gens[i].completion_tokens)
    shortest = min(range(12), key=lambda i: gens[i].completion_tokens)
    assert gens[longest].seconds >= gens[shortest].seconds


def test_on_token_hands_over_each_sample_as_decoded(embedded_backend) -> None:
    req = GenRequest("Le café est", SamplingParams(temperature=0.9, max_tokens=12), seeds=(1, 2, 3))
    pieces: dict[int, list[str]] = {i: [] for i in range(3)}
    gens = embedded_backend.generate(req, on_token=lambda i, t: pieces[i].append(t))
    plain = embedded_backend.generate(req)  # the hook changes nothing about what is drawn
    for i, g in enumerate(gens):
        assert len(pieces[i]) > 1 and "".join(pieces[i]) == g.text == plain[i].text
    stopped = GenRequest(PROMPT, SamplingParams(temperature=0.0, max_tokens=8, stop=("\n",)), (0,))
    seen: list[str] = []
    [g] = embedded_backend.generate(stopped, on_token=lambda i, t: seen.append(t))
    assert "".join(seen).startswith(g.text) and "\n" not in g.text  # the pieces may run past the stop string


def test_pieces_are_whole_characters() -> None:
    from oomlab.backends.llamacpp import _State

    seen: list[tuple[int, str]] = []
    st = _State(2, False, (0, 1), 3, SamplingParams(), None, lambda i, t: seen.append((i, t)))
    for i, piece in ((0, b" caf"), (0, b"\xc3"), (1, b"\xe2\x82"), (0, b"\xa9!"), (1, b"\xac")):
        st.add(i, piece)
    assert seen == [(0, " caf"), (0, "é!"), (1, "€")]  # a character split across tokens waits for its last byte
    st.add(0, b"\xc3")
    st.done(0)  # a sample that stops inside a character ends with U+FFFD, as its text does
    assert seen[-1] == (0, "\ufffd") and st.generation(0).text == " café!\ufffd"
