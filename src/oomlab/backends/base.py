"""The Backend interface: requests in, generations (with token counts and timing) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from oomlab.registry import Registry


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    max_tokens: int = 64
    top_k: int = 40  # first in llama.cpp's sampler chain: Gemma's 262k vocab makes a full draw slow
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "stop": list(self.stop),
        }


@dataclass(frozen=True)
class GenRequest:
    """n samples of one prompt; sample i is drawn with seeds[i].

    A backend should evaluate the prompt once and share it across the n samples.
    """

    prompt: str
    params: SamplingParams
    seeds: tuple[int, ...] = (0,)
    logprobs: bool = False  # per-token log-probabilities of the sampled tokens (temperature-1 softmax)
    chat: bool = False  # send as a chat message (HTTP backends); embedded backends use the raw prompt

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class Generation:
    """One sample as the backend reported it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the request apportioned to this sample (group wall / group_size)
    seed: int
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    token_logprobs: tuple[float, ...] | None = None
    group_size: int = 1  # samples that shared this prompt's evaluation (prompt cost is split among them)

    @property
    def mean_logprob(self) -> float | None:
        if not self.token_logprobs:
            return None
        return sum(self.token_logprobs) / len(self.token_logprobs)


@dataclass(frozen=True)
class ModelFacts:
    """What the FLOPs accounting needs to know about a model (Kaplan et al. 2020, §2.1)."""

    model_id: str
    n_params: int  # total, embeddings included
    n_params_non_embedding: int  # N in C_fwd = 2N + 2 n_layer n_ctx d_attn
    n_layer: int
    d_model: int
    d_attn: int  # heads x head dim; differs from d_model in e.g. Gemma 3
    n_ctx_train: int
    source: str = ""  # where these facts came from ("GGUF metadata", "flags", ...)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    name: ClassVar[str]
    model_id: str
    facts: ModelFacts

    def generate(self, request: GenRequest) -> list[Generation]:
        """Draw request.n samples; one Generation per seed, in order."""
        ...

    def close(self) -> None: ...


BACKENDS: Registry[type] = Registry("backend", "oomlab.backends")


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate a registered backend by name; options are its constructor's keywords."""
    cls = BACKENDS.get(name)
    return cls(**options)
