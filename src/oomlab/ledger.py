"""The books: tokens, FLOPs, seconds, joules, dollars and human time for every sample.

FLOPs follow Kaplan et al. 2020 (arXiv 2001.08361, §2.1): a forward pass costs
2N + 2·n_layer·n_ctx·d_attn per token, N the non-embedding parameters and n_ctx the
tokens the new token attends to. We sum that exactly over positions: prompt token t
(1-based) attends to t tokens, completion token i attends to P + i. A prompt shared by a
group of n samples is counted once (Brown et al. 2024, arXiv 2407.21787, §2.3), so each
sample is charged 1/n of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from oomlab.backends.base import Generation, ModelFacts

# Human-time equivalent at the project's one human pace (oomlab.forecast.pace.DEFAULT_PACE:
# ~100 tokens/minute, Aschenbrenner 2024, "Situational Awareness", ch. I).
from oomlab.forecast.pace import HUMAN_TOKENS_PER_MINUTE  # noqa: E402


def prompt_flops(facts: ModelFacts, prompt_tokens: int) -> float:
    """Forward FLOPs of evaluating a P-token prompt: 2NP + 2·L·d_attn·Σ_{t=1..P} t."""
    P = prompt_tokens
    return 2.0 * facts.n_params_non_embedding * P + facts.n_layer * facts.d_attn * P * (P + 1)


def completion_flops(facts: ModelFacts, prompt_tokens: int, completion_tokens: int) -> float:
    """Forward FLOPs of C decoded tokens after a P-token prompt: 2NC + 2·L·d_attn·Σ_{i=1..C} (P+i)."""
    P, C = prompt_tokens, completion_tokens
    return 2.0 * facts.n_params_non_embedding * C + 2.0 * facts.n_layer * facts.d_attn * (C * P + C * (C + 1) / 2)


def flops_known(facts: ModelFacts) -> bool:
    return facts.n_params_non_embedding > 0 and facts.n_layer > 0


@dataclass(frozen=True)
class Pricing:
    """Dollars per sample: by device time ($/hour) or by tokens ($/M tokens). A user setting, not a fact."""

    usd_per_hour: float | None = None
    usd_per_m_prompt: float | None = None
    usd_per_m_completion: float | None = None

    def dollars(self, seconds: float, prompt_tokens: float, completion_tokens: float) -> float:
        if self.usd_per_m_prompt is not None or self.usd_per_m_completion is not None:
            return (prompt_tokens * (self.usd_per_m_prompt or 0.0) + completion_tokens * (self.usd_per_m_completion or 0.0)) / 1e6
        return seconds / 3600.0 * (self.usd_per_hour or 0.0)

    def describe(self) -> str:
        if self.usd_per_m_prompt is not None or self.usd_per_m_completion is not None:
            return f"${self.usd_per_m_prompt or 0:g}/M prompt, ${self.usd_per_m_completion or 0:g}/M completion tokens"
        return f"${self.usd_per_hour or 0:g}/hour of device time"


@dataclass(frozen=True)
class Cost:
    """What some work cost: tokens, FLOPs, seconds, joules, dollars (and human time from its tokens).

    Addable and scalable, so a rung's cost is `prompt + k * per_sample`; NaN (unknown FLOPs or
    joules) stays NaN through both. Every cost in oomlab comes from `sample_cost`, `attempt_cost`
    or `draw_cost` below.
    """

    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    flops: float = 0.0  # the verifier's included
    seconds: float = 0.0
    joules: float = 0.0
    dollars: float = 0.0
    verifier_tokens: float = 0.0  # a verifier's (a PRM's) own column: tokens it read
    verifier_flops: float = 0.0  # of `flops`, the verifier's

    @property
    def tokens(self) -> float:
        """Every token the work cost: the generator's prompt and completion, and the verifier's."""
        return self.prompt_tokens + self.completion_tokens + self.verifier_tokens

    @property
    def human_minutes(self) -> float:
        return self.completion_tokens / HUMAN_TOKENS_PER_MINUTE

    def __add__(self, other: Cost) -> Cost:
        return Cost(*(a + b for a, b in zip(self.values(), other.values())))

    def __mul__(self, factor: float) -> Cost:
        return Cost(*(a * factor for a in self.values()))

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Cost:
        return self * (1.0 / divisor)

    def values(self) -> tuple[float, ...]:
        return (self.prompt_tokens, self.completion_tokens, self.flops, self.seconds, self.joules, self.dollars,
                self.verifier_tokens, self.verifier_flops)

    @staticmethod
    def of_verifier(usage: dict[str, float] | None) -> Cost:
        """A verifier's usage as an attempt's trace records it (requests, prompt_tokens, flops, seconds)."""
        if not usage:
            return Cost()
        tokens, flops = float(usage.get("prompt_tokens", 0.0)), float(usage.get("flops", 0.0))
        return Cost(flops=flops, seconds=float(usage.get("seconds", 0.0)), verifier_tokens=tokens, verifier_flops=flops)

    @staticmethod
    def total(costs: Iterable[Cost]) -> Cost:
        out = Cost()
        for c in costs:
            out = out + c
        return out


@dataclass(frozen=True)
class LedgerEntry:
    """One sample's charge on the books."""

    prompt_tokens: float  # already divided by the group that shared the prompt
    completion_tokens: int
    flops: float
    seconds: float
    joules: float  # NaN: unknown (a remote server without a power figure)
    energy_measured: bool
    dollars: float
    billed_prompt_tokens: float = 0.0  # what a hosted API bills: each request's prompt, less cached tokens
    wait_seconds: float = 0.0  # waiting that is not device time (backoff, queueing): shown, never charged

    @property
    def human_minutes(self) -> float:
        return self.completion_tokens / HUMAN_TOKENS_PER_MINUTE

    @property
    def cost(self) -> Cost:
        return Cost(self.prompt_tokens, self.completion_tokens, self.flops, self.seconds, self.joules, self.dollars)


def charged_prompt_tokens(generation: Generation) -> float:
    """A sample's share of its prompt: a prompt shared by a group of n samples is split n ways."""
    return generation.prompt_tokens / max(generation.group_size, 1)


def charge(generation: Generation, facts: ModelFacts, joules: float, energy_measured: bool, pricing: Pricing) -> LedgerEntry:
    """What one generation costs; the prompt is split across the group that shared it."""
    share = 1.0 / max(generation.group_size, 1)
    P, C = generation.prompt_tokens, generation.completion_tokens
    flops = prompt_flops(facts, P) * share + completion_flops(facts, P, C) if flops_known(facts) else float("nan")
    prompt_charged = charged_prompt_tokens(generation)
    # A server that bills per request charges each request's prompt (less its cached tokens), even
    # when its prefix cache computed the prompt once; an embedded engine's shared prompt is paid once.
    billed = prompt_charged if generation.billed_prompt_tokens is None else float(generation.billed_prompt_tokens)
    return LedgerEntry(
        prompt_tokens=prompt_charged,
        completion_tokens=C,
        flops=flops,
        seconds=generation.seconds,
        joules=joules,
        energy_measured=energy_measured,
        dollars=pricing.dollars(generation.seconds, billed, C),
        billed_prompt_tokens=billed,
        wait_seconds=generation.wait_seconds,
    )


def sample_cost(generation: Generation, facts: ModelFacts, joules: float, pricing: Pricing) -> Cost:
    """One sample's charge as a Cost (its share of a shared prompt, as `charge` books it)."""
    return charge(generation, facts, joules, False, pricing).cost


def attempt_cost(samples: Iterable[tuple[str, Generation, float]], facts: ModelFacts,
                 pricing: Pricing | None = None) -> Cost:
    """What one attempt run on its own with a prompt cache costs: samples as (prompt, generation, joules).

    Each distinct prompt is paid once in full, however its samples were batched in the sweep:
    a strategy served from another's shared draw must not inherit that draw's prompt split.
    Seconds, joules and dollars are each sample's as apportioned when it was drawn.
    """
    known = flops_known(facts)
    prompts: dict[str, int] = {}
    total = Cost()
    for prompt, g, joules in samples:
        prompts[prompt] = g.prompt_tokens
        dollars = charge(g, facts, joules, False, pricing).dollars if pricing is not None else 0.0
        flops = completion_flops(facts, g.prompt_tokens, g.completion_tokens) if known else float("nan")
        total = total + Cost(0.0, g.completion_tokens, flops, g.seconds, joules, dollars)
    prompt_flops_total = sum(prompt_flops(facts, P) for P in prompts.values()) if known else float("nan")
    return total + Cost(float(sum(prompts.values())), 0.0, prompt_flops_total)


def draw_cost(samples: Iterable[tuple[Generation, float]], facts: ModelFacts, pricing: Pricing, k: int) -> Cost:
    """Rung k of a draw strategy: what a deployment at budget k pays, from a draw of n >= k samples.

    The prompt once, plus k times the mean completion of the draw (FLOPs: prompt_flops(P) + k · mean
    completion FLOPs); seconds, joules and dollars are k × the mean per-sample share of the draw's.
    """
    rows = list(samples)
    P = rows[0][0].prompt_tokens
    known = flops_known(facts)
    per = Cost.total(
        Cost(0.0, g.completion_tokens, completion_flops(facts, P, g.completion_tokens) if known else float("nan"),
             g.seconds, joules, charge(g, facts, joules, False, pricing).dollars)
        for g, joules in rows) / len(rows)
    return Cost(float(P), 0.0, prompt_flops(facts, P) if known else float("nan")) + k * per


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over a set of samples (a run, a rung, a strategy)."""

    samples: int
    prompt_tokens: float  # a prompt shared by n samples counted once
    completion_tokens: float
    flops: float
    seconds: float
    joules: float
    energy_measured: bool  # False: joules are (at least partly) an estimate from a configured device power
    dollars: float
    human_minutes: float  # completion tokens at 100 tokens/minute
    model_id: str = ""
    billed_prompt_tokens: float = 0.0
    wait_seconds: float = 0.0

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of(cls, entries: Iterable[LedgerEntry], model_id: str = "") -> LedgerTotals:
        es = list(entries)
        return cls(
            samples=len(es),
            prompt_tokens=sum(e.prompt_tokens for e in es),
            completion_tokens=float(sum(e.completion_tokens for e in es)),
            flops=sum(e.flops for e in es),
            seconds=sum(e.seconds for e in es),
            joules=sum(e.joules for e in es),
            energy_measured=bool(es) and all(e.energy_measured for e in es),
            dollars=sum(e.dollars for e in es),
            human_minutes=sum(e.human_minutes for e in es),
            model_id=model_id,
            billed_prompt_tokens=sum(e.billed_prompt_tokens for e in es),
            wait_seconds=sum(e.wait_seconds for e in es),
        )


# one formatter for every output: oomlab.numbers (kept here under its old name for callers and users)
from oomlab.numbers import human_time as format_human_time  # noqa: E402
