"""The Backend interface: requests in, generations (with token counts and timing) out."""

from __future__ import annotations

from collections.abc import Callable
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
    seconds: float  # device time of this sample: its share of the batch (embedded) or the server's time on it
    seed: int
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    token_logprobs: tuple[float, ...] | None = None
    group_size: int = 1  # samples that shared this prompt's evaluation (prompt cost is split among them)
    # Time spent waiting for this sample that is not device time (backoff, queueing, timed-out tries).
    wait_seconds: float = 0.0
    # Prompt tokens the server bills for this request (less `usage.prompt_tokens_details.cached_tokens`);
    # None: the backend shares one prompt evaluation across the group (embedded engines).
    billed_prompt_tokens: int | None = None

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


@dataclass(frozen=True)
class Waste:
    """Work a server did (or may have done) that produced no sample: a retried or abandoned request.

    It is on the books beside the useful work, never dropped. `estimated` is True when the server did
    not report the request's usage and the figures are inferred (e.g. from the retry that succeeded).
    """

    prompt_tokens: int
    completion_tokens: int
    seconds: float  # the server's time on it, as far as the client can tell
    reason: str  # "HTTP 500", "ReadTimeout", "dropped connection", "cancelled", ...
    url: str = ""
    estimated: bool = True


# Called once per finished sample, on the caller's thread, as soon as the sample is complete
# (its index in request.seeds, the sample), so the Store can commit it before its siblings end.
SampleCallback = Callable[[int, Generation], None]

# Called with each piece of text as it is decoded (the sample's index in request.seeds, the piece), on the
# caller's thread. Pieces are whole characters (a character split across tokens waits for its last byte);
# they are what the model sampled, so the last may run past a stop string that the Generation's text is cut at.
TokenCallback = Callable[[int, str], None]


@runtime_checkable
class Backend(Protocol):
    name: ClassVar[str]
    model_id: str
    facts: ModelFacts

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        """Draw request.n samples; one Generation per seed, in order.

        `on_sample(i, generation)` is called on the caller's thread as each sample finishes (any order);
        if the request then fails, the samples already handed to it are not lost. `on_token(i, piece)`,
        where the backend can stream (it says so with `streams_tokens = True`), gets sample i's text
        as it is decoded; a backend that cannot simply ignores it (a caller that wants tokens reads
        `streams_tokens` to know whether any will come). Optional extras a
        backend may have: `take_waste() -> list[Waste]` (work done that produced no sample, since the
        last call), `remote: bool` (the compute happens elsewhere, so local energy counters do not apply)
        and `server_watts: float | None` (the remote device's power, for an estimate).
        """
        ...

    def close(self) -> None: ...


BACKENDS: Registry[type] = Registry("backend", "oomlab.backends")


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate a registered backend by name; options are its constructor's keywords."""
    cls = BACKENDS.get(name)
    return cls(**options)
