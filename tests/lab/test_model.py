"""The lab transformer: exact parameter counts, exact training FLOPs, and KV-cache decoding that matches a full pass."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from oomlab.lab.model import GPT, GPTConfig, decode, filter_logits, pick_tokens, training_flops  # noqa: E402

TINY = GPTConfig(vocab_size=8, n_ctx=4, n_layer=1, n_head=1, d_model=4)


def test_parameter_counts_match_torch():
    for c in (TINY, GPTConfig(17, 35, 3, 4, 64), GPTConfig(16, 20, 2, 2, 48, mlp_ratio=2)):
        emb, non_emb = GPT(c).count_parameters()
        assert (emb, non_emb) == (c.n_params_embedding, c.n_params_non_embedding)
        assert c.n_params == sum(p.numel() for p in GPT(c).parameters())


def test_training_step_flops_against_a_hand_count():
    # d=4, one layer: attention 4·d² = 64, MLP 2·d·4d = 128, two LayerNorm gains 2d = 8, final LN d = 4.
    assert TINY.n_params_non_embedding == 64 + 128 + 8 + 4 == 204
    assert TINY.n_params_embedding == (8 + 4) * 4 == 48
    # One row of T=4 tokens, forward: 2·N·T = 1632, attention 2·L·d·(1+2+3+4) = 80 → 1712; training is 3×,
    # and a step of 2 rows is 2 × 3 × 1712.
    assert training_flops(TINY, rows=2, row_tokens=4) == 2 * 3 * (2 * 204 * 4 + 2 * 1 * 4 * (1 + 2 + 3 + 4)) == 10272


def test_six_n_per_token_is_what_torch_multiplies():
    """FlopCounterMode sees 6 × (the blocks' weight matrices) × tokens in the blocks' matmuls, fwd + bwd."""
    c = GPTConfig(vocab_size=11, n_ctx=6, n_layer=2, n_head=2, d_model=8)
    model = GPT(c)
    x = torch.randint(0, 11, (3, 6))
    counter = FlopCounterMode(display=False)
    with counter:
        model.loss(x, x).backward()
    counts = counter.get_flop_counts()
    blocks = sum(sum(counts[f"GPT.blocks.{i}"].values()) for i in range(c.n_layer))
    gains = 2 * c.d_model * c.n_layer + c.d_model  # LayerNorm gains: in N, but no matmul
    assert blocks == 6 * (c.n_params_non_embedding - gains) * x.numel()


def test_kv_cache_decoding_matches_full_forward_passes():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=12, n_ctx=16, n_layer=2, n_head=2, d_model=32), seed=3).eval()
    prompt = [1, 5, 7, 2]
    (_, done), *_ = [(live, fin) for live, fin in decode(model, prompt, [0], max_new=8, temperature=0.0) if fin]
    tokens = done[0].tokens
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(8):
            seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    assert tokens == seq[len(prompt):]


def test_a_sample_does_not_depend_on_its_batch():
    model = GPT(GPTConfig(vocab_size=12, n_ctx=24, n_layer=1, n_head=2, d_model=16), seed=1).eval()

    def texts(seeds):
        out = {}
        for _, fin in decode(model, [3, 4], seeds, max_new=12, temperature=1.0, stop=frozenset({0})):
            for d in fin:
                out[seeds[d.index]] = d.tokens
        return out

    together = texts([11, 12, 13, 14])
    alone = {s: texts([s])[s] for s in (11, 12, 13, 14)}
    assert together == alone
    assert len({tuple(t) for t in together.values()}) > 1  # the seeds do differ


def test_top_k_and_top_p_keep_the_right_mass():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.allclose(filter_logits(logits, 1.0, 2, 1.0), torch.tensor([[0.625, 0.375, 0.0, 0.0]], dtype=torch.float64))
    p = filter_logits(logits, 1.0, 0, 0.75)  # 0.5 + 0.3 reach 0.75: the rest is cut
    assert torch.allclose(p, torch.tensor([[0.625, 0.375, 0.0, 0.0]], dtype=torch.float64))
    draws = pick_tokens(torch.tensor([[0.25, 0.25, 0.5]], dtype=torch.float64).expand(3, 3), torch.tensor([0.1, 0.4, 0.9]))
    assert draws.tolist() == [0, 1, 2]
