"""The torch backend: batched KV-cache sampling with per-sample seeds, logprobs, exact facts, hand-over per sample."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from oomlab.backends.base import BACKENDS, GenRequest, SamplingParams, create_backend  # noqa: E402
from oomlab.errors import BackendError, ModelNotFoundError  # noqa: E402


@pytest.fixture(scope="module")
def backend(tiny_checkpoint):
    b = create_backend("torch", checkpoint=str(tiny_checkpoint), threads=1)
    yield b
    b.close()


PARAMS = SamplingParams(temperature=1.0, max_tokens=10, top_k=0, stop=("\n",))


def test_registered_and_facts_are_exact(backend):
    assert "torch" in BACKENDS.names()
    f = backend.facts
    assert f.n_params == sum(p.numel() for p in backend.model.parameters())
    emb = backend.model.tok.weight.numel() + backend.model.pos.weight.numel()
    assert f.n_params_non_embedding == f.n_params - emb
    assert (f.n_layer, f.d_model, f.d_attn) == (1, 16, 16)
    assert f.extra["training_flops"] > 0
    assert backend.model_id.startswith("fixture-cot@") and backend.sha256.startswith(backend.model_id.split("@")[1])


def test_samples_follow_their_seeds_not_their_batch(backend):
    seeds = tuple(range(100, 108))
    together = backend.generate(GenRequest("3+4*2=", PARAMS, seeds))
    assert [g.seed for g in together] == list(seeds)
    alone = [backend.generate(GenRequest("3+4*2=", PARAMS, (s,)))[0].text for s in seeds]
    assert [g.text for g in together] == alone
    assert len({g.text for g in together}) > 1
    backend.batched = False
    try:
        assert [g.text for g in backend.generate(GenRequest("3+4*2=", PARAMS, seeds))] == alone
    finally:
        backend.batched = True


def test_generations_carry_tokens_logprobs_and_stops(backend):
    gens = backend.generate(GenRequest("1-5+6=", PARAMS, tuple(range(16)), logprobs=True))
    room = min(10, backend.model.config.n_ctx - 6)  # max_tokens, or what the context leaves
    for g in gens:
        assert g.prompt_tokens == 6 and g.group_size == 16 and g.seconds > 0
        assert len(g.token_logprobs) == g.completion_tokens
        assert all(lp <= 0 and math.isfinite(lp) for lp in g.token_logprobs)
        assert "\n" not in g.text
        if g.finish_reason == "stop":
            assert g.completion_tokens == len(g.text) + 1  # the EOS is counted, not shown
        else:
            assert g.finish_reason == "length" and g.completion_tokens == room == len(g.text)
    greedy = SamplingParams(temperature=0.0, max_tokens=10, top_k=0, stop=("\n",))
    a, b = (backend.generate(GenRequest("1-5+6=", greedy, (s,)))[0].text for s in (1, 2))
    assert a == b


def test_each_sample_is_handed_over_as_it_finishes(backend):
    seen = []
    out = backend.generate(GenRequest("2*3=", PARAMS, tuple(range(12))), on_sample=lambda i, g: seen.append((i, g)))
    assert sorted(i for i, _ in seen) == list(range(12))
    assert all(out[i] is g for i, g in seen)
    # handed over in the order they stopped: completion lengths never decrease along the hand-over
    lengths = [g.completion_tokens for _, g in seen]
    assert lengths == sorted(lengths)


def test_chunks_beyond_max_parallel(tiny_checkpoint):
    b = create_backend("torch", checkpoint=str(tiny_checkpoint), max_parallel=3, threads=1)
    gens = b.generate(GenRequest("4+4=", PARAMS, tuple(range(7))))
    assert [g.seed for g in gens] == list(range(7)) and {g.group_size for g in gens} == {3, 1}


def test_errors_say_what_to_do(tmp_path, tiny_checkpoint, backend):
    with pytest.raises(ModelNotFoundError, match="oomlab lab run"):
        create_backend("torch", checkpoint=str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotFoundError, match="not a lab checkpoint"):
        create_backend("torch", checkpoint=str(bad))
    with pytest.raises(BackendError, match="vocabulary"):
        backend.generate(GenRequest("what is 2+2?", PARAMS, (0,)))
