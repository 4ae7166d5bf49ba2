"""A small GPT in one file: config, exact parameter counts, training FLOPs, forward, KV-cache sampling.

nanoGPT's shape (Radford et al. 2019; Karpathy's nanoGPT): learned token and position embeddings,
pre-LayerNorm blocks of causal self-attention and a 4x GELU MLP, a final LayerNorm, and an output
head tied to the token embedding. GELU takes GPT-2's tanh form, the form the README's lab models
were trained with (it is not the cheaper one: on one thread 28 vs 22 ms forward and backward at
4352×1024 against the exact erf; it came in together with the fused AdamW, and the two took
benchmarks/lab_training.py from 0.58 to 0.61). No biases and no dropout, so the
parameter count is a formula and a training run is a deterministic function of its seed, its data
order and its torch thread count (two threads add in another order than one).

Counting follows Kaplan et al. 2020 (arXiv 2001.08361, §2.1, Table 1): N is the non-embedding
parameters, a forward pass costs 2N + 2·n_layer·n_ctx·d_attn per token (n_ctx: the tokens it
attends to), and training costs three forward passes (forward + backward = 1 + 2). The ledger
holds that rule once (`oomlab.ledger.prompt_flops`); `training_flops` only multiplies by three.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from oomlab.backends.base import ModelFacts
from oomlab.ledger import prompt_flops


@dataclass(frozen=True)
class GPTConfig:
    """Everything that fixes the architecture; plain values, stored in every checkpoint."""

    vocab_size: int
    n_ctx: int  # the longest sequence (training row length, and the sampling limit)
    n_layer: int
    n_head: int
    d_model: int
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_head {self.n_head}")

    @property
    def d_ff(self) -> int:
        return self.mlp_ratio * self.d_model

    @property
    def n_params_embedding(self) -> int:
        """Token and position embeddings (the output head is tied to the token embedding)."""
        return (self.vocab_size + self.n_ctx) * self.d_model

    @property
    def n_params_non_embedding(self) -> int:
        """Kaplan's N: per block 4d² (q, k, v, out) + 2·d·d_ff (MLP) + 2d (two LayerNorm gains); + d (final LN)."""
        d = self.d_model
        return self.n_layer * (4 * d * d + 2 * d * self.d_ff + 2 * d) + d

    @property
    def n_params(self) -> int:
        return self.n_params_embedding + self.n_params_non_embedding

    def facts(self, model_id: str, source: str = "lab model config", **extra: Any) -> ModelFacts:
        """The exact facts the ledger needs to count this model's FLOPs."""
        return ModelFacts(model_id=model_id, n_params=self.n_params, n_params_non_embedding=self.n_params_non_embedding,
                          n_layer=self.n_layer, d_model=self.d_model, d_attn=self.d_model, n_ctx_train=self.n_ctx,
                          source=source, extra=dict(extra))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def training_flops(config: GPTConfig, rows: int, row_tokens: int) -> float:
    """FLOPs of one optimiser step on `rows` sequences of `row_tokens` tokens: 3 × their forward FLOPs.

    Per row the forward pass is 2N·T + n_layer·d_attn·T(T+1) (token t attends to t tokens), i.e.
    6N per token plus the attention term once multiplied by three.
    """
    return 3.0 * rows * prompt_flops(config.facts("count"), row_tokens)


class SelfAttention(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.n_head = c.n_head
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model, bias=False)
        self.out = nn.Linear(c.d_model, c.d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Causal attention; with `cache` ([k, v] of earlier positions) new keys and values are appended."""
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            if cache:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
            # decoding one token attends to everything before it; a prefill of T tokens is causal
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
        return self.out(y.transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.d_model, bias=False)
        self.attn = SelfAttention(c)
        self.ln2 = nn.LayerNorm(c.d_model, bias=False)
        self.up = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.down = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    """The model; `forward` gives logits, `loss` the masked next-token loss, `sample` decodes with a KV cache."""

    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.n_ctx, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, bias=False)
        g = torch.Generator().manual_seed(seed)  # the initial weights depend on the seed alone
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1:
                    p.fill_(1.0)  # LayerNorm gains
                else:  # GPT-2's init; residual projections scaled by 1/sqrt(2·n_layer)
                    std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith(("out.weight", "down.weight")) else 0.02
                    p.copy_(torch.randn(p.shape, generator=g) * std)

    def count_parameters(self) -> tuple[int, int]:
        """(embedding, non-embedding) parameters as torch holds them: a check on the config's formula."""
        emb = self.tok.weight.numel() + self.pos.weight.numel()
        return emb, sum(p.numel() for p in self.parameters()) - emb

    def forward(self, idx: torch.Tensor, caches: list[list[torch.Tensor]] | None = None, start: int = 0) -> torch.Tensor:
        T = idx.shape[1]
        if start + T > self.config.n_ctx:
            raise ValueError(f"sequence of {start + T} tokens exceeds the model's context of {self.config.n_ctx}")
        x = self.tok(idx) + self.pos(torch.arange(start, start + T, device=idx.device))
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.ln_f(x) @ self.tok.weight.T

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the positions whose target is not -1 (the answer tokens)."""
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)

    @torch.no_grad()
    def prefill(self, prompt: torch.Tensor, n: int) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """Evaluate one prompt once; return its last logits and a KV cache expanded to n sequences."""
        caches: list[list[torch.Tensor]] = [[] for _ in self.blocks]
        logits = self(prompt[None, :], caches)[:, -1]
        for c in caches:
            c[:] = [t.expand(n, -1, -1, -1).contiguous() for t in c]
        return logits.expand(n, -1), caches

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, caches: list[list[torch.Tensor]], position: int) -> torch.Tensor:
        """Decode one token for each sequence (all at the same position); logits of the next token."""
        return self(tokens[:, None], caches, start=position)[:, -1]


def keep_rows(caches: list[list[torch.Tensor]], rows: torch.Tensor) -> None:
    """Drop finished sequences from a KV cache so later steps only compute the live ones."""
    for c in caches:
        c[:] = [t.index_select(0, rows) for t in c]


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Probabilities after temperature, top-k and top-p (nucleus; Holtzman et al. 2020), per row."""
    x = logits.double() / temperature
    if 0 < top_k < x.shape[-1]:
        kth = torch.topk(x, top_k, dim=-1).values[:, -1:]
        x = x.masked_fill(x < kth, -math.inf)
    probs = torch.softmax(x, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= top_p  # keep the smallest prefix whose mass reaches top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def pick_tokens(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw: row i takes the first token whose cumulative probability exceeds uniforms[i].

    Each sample brings its own uniform (from its own seed), so a sample's tokens do not depend on
    which other samples share its batch.
    """
    cdf = probs.cumsum(-1)
    cdf[:, -1] = 1.0 + 1e-9
    u = uniforms.to(device=cdf.device, dtype=cdf.dtype)[:, None]
    return torch.searchsorted(cdf, u).squeeze(1).clamp_(max=probs.shape[-1] - 1)


# ----------------------------------------------------------------------------------- training
def make_optimizer(model: GPT, weight_decay: float = 0.1) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter 2019) with decay on matrices only, as nanoGPT does; torch's fused kernel
    (one pass over all parameters instead of a loop of small ops per tensor)."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    gains = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": matrices, "weight_decay": weight_decay}, {"params": gains, "weight_decay": 0.0}],
                             lr=0.0, betas=(0.9, 0.99), eps=1e-8, fused=True)


def learning_rate(step: int, total: int, peak: float, warmup: float = 0.05, floor: float = 0.1) -> float:
    """Linear warm-up over the first `warmup` of the steps, then cosine decay to floor·peak."""
    w = max(1, int(warmup * total))
    if step < w:
        return peak * (step + 1) / w
    progress = (step - w) / max(1, total - w)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_step(model: GPT, optimizer: torch.optim.Optimizer, inputs: torch.Tensor, targets: torch.Tensor, lr: float,
               clip: float = 1.0) -> float:
    """One optimiser step on a batch; returns the loss before the step."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = model.loss(inputs, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return float(loss.detach())


# ----------------------------------------------------------------------------------- sampling
@dataclass
class Decoded:
    """One finished sample: its tokens (stop token included), their logprobs, why it stopped."""

    index: int
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"


@torch.no_grad()
def decode(model: GPT, prompt: list[int], seeds: list[int], *, max_new: int, temperature: float, top_k: int = 0,
           top_p: float = 1.0, stop: frozenset[int] = frozenset(), logprobs: bool = False,
           is_stop: Callable[[list[int]], bool] | None = None) -> Iterator[tuple[list[int], list[Decoded]]]:
    """Decode len(seeds) samples of one prompt together with a shared KV cache.

    The prompt is evaluated once, its cache expanded to every sample; each step decodes one token
    for every live sample in one forward pass, and a finished sample leaves the batch. Yields,
    per step, (the samples live in it, the samples that finished in it). Sample i draws its tokens
    from random.Random(seeds[i]) alone; temperature 0 is argmax. A sample stops at a token in
    `stop`, when `is_stop(its tokens)` says so (a multi-token stop string), or after max_new tokens.
    """
    device = next(model.parameters()).device
    max_new = min(max_new, model.config.n_ctx - len(prompt))
    if max_new < 1:
        raise ValueError(f"a prompt of {len(prompt)} tokens leaves no room in a context of {model.config.n_ctx}")
    n = len(seeds)
    logits, caches = model.prefill(torch.tensor(prompt, device=device), n)
    rngs = [random.Random(s) for s in seeds]
    out = [Decoded(i) for i in range(n)]
    live = list(range(n))
    for t in range(max_new):
        if temperature <= 0:
            toks = logits.argmax(-1)
        else:
            probs = filter_logits(logits, temperature, top_k, top_p)
            toks = pick_tokens(probs, torch.tensor([rngs[i].random() for i in live], dtype=torch.float64)).to(device)
        lp = torch.log_softmax(logits.double(), -1).gather(1, toks[:, None]).squeeze(1).tolist() if logprobs else None
        finished, keep = [], []
        for j, (i, tok) in enumerate(zip(live, toks.tolist())):
            out[i].tokens.append(tok)
            if lp is not None:
                out[i].logprobs.append(lp[j])
            if tok in stop or (is_stop is not None and is_stop(out[i].tokens)):
                out[i].finish_reason = "stop"
                finished.append(out[i])
            elif t == max_new - 1:
                finished.append(out[i])
            else:
                keep.append(j)
        yielded_live = live
        live = [live[j] for j in keep]
        yield yielded_live, finished
        if not live:
            return
        if len(keep) < len(yielded_live):
            rows = torch.tensor(keep, device=device)
            keep_rows(caches, rows)
            toks = toks.index_select(0, rows)
        logits = model.step(toks, caches, len(prompt) + t)
