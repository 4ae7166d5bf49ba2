"""Any OpenAI-compatible server: vLLM, SGLang, llama.cpp's server, llama-cpp-python's server, hosted APIs.

n samples of one prompt are n concurrent requests, one per seed (a server with prefix caching
evaluates the shared prompt once).

Many endpoints. `base_url` may be a list of URLs (or '@FILE', one per line): N servers of one model,
e.g. the ranks of a vLLM data-parallel deployment or several SGLang servers. `concurrency` is per
endpoint; each try goes to the least-loaded live one (a prompt's samples stay on one endpoint
while it is not much busier, for its prefix cache: `prefix_affinity`); one that keeps failing is
set aside and its requests go to the others (`oomlab.backends.endpoints`); `dead_endpoints` lists
those set aside. At start every endpoint is asked GET /models and must serve the same model: the
first id of each (or `model`, when given) must agree, else the backend refuses, naming the odd
endpoint, unless `model_identity` says they are one model (then each is sent the name it serves).
A request's payload does not depend on where it goes (but for that served name), so a seed draws
the same sample on any endpoint of a deterministic server. `server_watts` is one endpoint's power:
each sample's seconds are its share of the busy time of the server that drew it.

Streaming. With `on_token`, each sample is one request with `stream: true` and
`stream_options.include_usage`; the server-sent events are read line by line as they arrive, each
delta is handed to `on_token` as it arrives, and the Generation is the one the plain request would
give: tokens from the final usage chunk. A try is retried (as `request_json` retries) only until its
first piece is handed on; after that a failure fails the sample, since the client has seen text a retry
might not draw again. A server that sends no usage in a stream (llama-cpp-python's) is counted as
`stream_usage_fallback` says. Samples with logprobs are not streamed.

Token counts come from the server's `usage`, never from a guess. The server does not tell us
the model's size, so FLOPs need model facts from a facts file or keywords; without them the facts are zeros with source "unknown (...)", and the ledger
shows FLOPs as unknown while tokens, seconds and dollars are still counted.

Identity. The sample cache is keyed on `model_id = "openai:NAME"`, where NAME is the served model
name (`model`, or the first id of GET /models) or, when given, `model_identity`: so `localhost`,
`127.0.0.1` and a proxy in front of one server share cached samples, and `-B model_identity=X` says
that two endpoints or two served names are one model. How the server was reached is kept apart, in
`endpoint`. The identity does not use /v1/models' other fields (vLLM's `root`, the weights' path
on the server): most servers do not report one, a path names a place rather than weights (the same
path can hold retrained weights, the same weights many paths), and asking for it would add a round
trip when `model` is given. A name reused for different weights is the user's to tell apart, by
giving `model_identity` (e.g. with a version).

Books, per sample (see `oomlab.backends.http` for how time is split):
- `seconds`: the generation time the server reports (llama.cpp's `timings`: prompt_ms +
  predicted_ms), else the request's share of the time the server was busy with our requests;
  `wait_seconds`: queueing, backoff and failed tries, which are not device time.
- `billed_prompt_tokens`: `usage.prompt_tokens` less `usage.prompt_tokens_details.cached_tokens`
  where reported: each request's prompt is billed, while FLOPs count a shared prefix once.
- Waste (`take_waste()`): every try that the server answered or may have answered without giving a
  sample: 5xx answers, timeouts after sending, dropped connections, unusable answers, and siblings
  cancelled in flight when one sample of a group failed. All are `estimated`. Their tokens are the
  same request's successful usage when it was retried to success (same prompt, same seed: the same
  work on a deterministic server); otherwise the prompt tokens a sibling of the same prompt reported
  and completion 0 (reason ends "completion tokens unknown"); with no usage at all, 0 and 0 (reason
  ends "tokens unknown").
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import yaml

from oomlab.backends import wire
from oomlab.backends.base import BACKENDS, GenRequest, Generation, ModelFacts, SampleCallback, TokenCallback, Waste
from oomlab.backends.endpoints import Endpoint
from oomlab.backends.http import Exchange, FailedTry, HTTPBackend
from oomlab.errors import BackendError, ConfigError

UNKNOWN_FACTS_SOURCE = "unknown (pass --params/--facts)"
FACT_KEYS = ("n_params", "n_params_non_embedding", "n_layer", "d_model", "d_attn", "n_ctx_train")


def _as_int(key: str, value: Any, where: str) -> int:
    # YAML 1.1 reads `7e9` as a string, so numbers in scientific notation are accepted as text too
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}") from None
    if number < 0 or not math.isfinite(number):
        raise ConfigError(f"{where}: {key} must be 0 or more, got {value!r}")
    return int(number)


def read_facts_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model facts in a JSON or YAML file (keys: n_params, n_params_non_embedding, n_layer, ...)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read facts file {p}: {e.strerror or e}") from e
    is_json = p.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"facts file {p} is not valid {'JSON' if is_json else 'YAML'}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"facts file {p} must hold a mapping of {', '.join(FACT_KEYS)}")
    unknown = sorted(set(data) - set(FACT_KEYS) - {"source", "notes"})
    if unknown:
        raise ConfigError(f"facts file {p}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(FACT_KEYS)}")
    return data


def make_facts(model_id: str, values: dict[str, Any], source: str) -> ModelFacts:
    """ModelFacts from partial values; with no values at all, facts marked unknown.

    Only n_params given: N_non_embedding is taken as n_params and the attention term of
    C_fwd = 2N + 2 n_layer n_ctx d_attn (Kaplan et al. 2020, §2.1) is zero unless n_layer and
    d_model/d_attn are given too.
    """
    given = {k: v for k, v in values.items() if k in FACT_KEYS and v is not None}
    if not given:
        return ModelFacts(model_id, 0, 0, 0, 0, 0, 0, source=UNKNOWN_FACTS_SOURCE)
    n = {k: _as_int(k, v, source) for k, v in given.items()}
    if "n_params" not in n and "n_params_non_embedding" not in n:
        raise ConfigError(f"{source}: model facts need at least n_params (or n_params_non_embedding)")
    n_params = n.get("n_params", n.get("n_params_non_embedding", 0))
    d_model = n.get("d_model", 0)
    return ModelFacts(
        model_id=model_id,
        n_params=n_params,
        n_params_non_embedding=n.get("n_params_non_embedding", n_params),
        n_layer=n.get("n_layer", 0),
        d_model=d_model,
        d_attn=n.get("d_attn", d_model),
        n_ctx_train=n.get("n_ctx_train", 0),
        source=str(values.get("source") or source),
    )


@BACKENDS.register("openai")
class OpenAIBackend(HTTPBackend):
    """OpenAI-compatible servers at `base_url` (e.g. http://127.0.0.1:8000/v1, or a list of such URLs)."""

    name: ClassVar[str]
    streams_tokens: ClassVar[bool] = True  # on_token: the upstream is asked for a stream

    def __init__(
        self,
        base_url: str | Sequence[str] = "http://127.0.0.1:8000/v1",
        model: str | None = None,
        api_key: str | None = None,
        chat: bool = False,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        send_top_k: bool = True,
        model_identity: str | None = None,
        probe_timeout: float = 5.0,
        probe_retries: int = 1,
        status_interval: float = 10.0,
        on_status: Callable[[str], None] | None = None,
        server_watts: float | None = None,
        endpoint_failures: int = 3,
        prefix_affinity: bool = True,
        facts_file: str | os.PathLike[str] | None = None,
        n_params: float | None = None,
        n_params_non_embedding: float | None = None,
        n_layer: int | None = None,
        d_model: int | None = None,
        d_attn: int | None = None,
        n_ctx_train: int | None = None,
    ):
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "none")
        super().__init__(
            base_url,
            headers={"Authorization": f"Bearer {key}"},
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            probe_timeout=probe_timeout,
            probe_retries=probe_retries,
            status_interval=status_interval,
            on_status=on_status,
            server_watts=server_watts,
            endpoint_failures=endpoint_failures,
            prefix_affinity=prefix_affinity,
        )
        self.chat = chat
        self._stream_prompt_tokens: dict[tuple[bool, str], int] = {}  # see stream_usage_fallback
        self.send_top_k = send_top_k  # top_k is an extension (vLLM, SGLang, llama.cpp); hosted OpenAI rejects it
        if model_identity is not None and not str(model_identity).strip():
            self.close()
            raise ConfigError("model_identity must be a non-empty name")
        try:
            self.model = self._served_models(model, model_identity is not None)
        except BaseException:
            self.close()
            raise
        # the cache key's model: what is served, never where from (see the module docstring)
        self.model_identity = str(model_identity).strip() if model_identity is not None else self.model
        self.model_id = f"openai:{self.model_identity}"

        values: dict[str, Any] = {}
        source = "flags"
        if facts_file is not None:
            values.update(read_facts_file(facts_file))
            source = f"facts file {Path(facts_file).name}"
        flags = dict(n_params=n_params, n_params_non_embedding=n_params_non_embedding, n_layer=n_layer,
                     d_model=d_model, d_attn=d_attn, n_ctx_train=n_ctx_train)  # fmt: skip
        overrides = {k: v for k, v in flags.items() if v is not None}
        if overrides and facts_file is not None:
            source += " + flags"
        values.update(overrides)
        self.facts = make_facts(self.model_id, values, source)

    def _served_models(self, model: str | None, same_by_identity: bool) -> str:
        """The model name to send, after checking that every endpoint serves one model; sets each endpoint's name.

        One endpoint and `model` given: no probe (nothing to compare). Otherwise each endpoint's
        GET /models is asked at once, with the short probe timeout, so a silent server fails in seconds.
        """
        endpoints = self.pool.endpoints
        if model is not None and (len(endpoints) == 1 or same_by_identity):
            for ep in endpoints:
                ep.model = model
            return model
        served = dict(zip((ep.url for ep in endpoints), self.run(self._probe_all()), strict=True))
        if model is not None:
            for url, ids in served.items():
                if model not in ids:
                    raise ConfigError(f"endpoint {url} does not serve {model!r} (it serves {', '.join(map(repr, ids))})")
            names = {url: model for url in served}
        else:
            names = {url: ids[0] for url, ids in served.items()}
            counts = collections.Counter(names.values())
            if len(counts) > 1 and not same_by_identity:
                usual = max(counts, key=lambda name: (counts[name], name == names[endpoints[0].url]))
                url, odd = next((u, n) for u, n in names.items() if n != usual)
                raise ConfigError(
                    f"endpoint {url} serves {odd!r} while {counts[usual]} other{'s' if counts[usual] != 1 else ''} "
                    f"serve {usual!r}: one sweep needs one model (if they are the same weights, say so with "
                    f"-B model_identity=NAME)")
        for ep in endpoints:
            ep.model = names[ep.url]
        return names[endpoints[0].url]

    async def _probe_all(self) -> list[list[str]]:
        return list(await asyncio.gather(*(self._probe(ep) for ep in self.pool.endpoints)))

    async def _probe(self, ep: Endpoint) -> list[str]:
        """The model ids `ep` serves (at least one)."""
        try:
            body = await self.request_json("GET", "models", timeout=self.probe_timeout, retries=self.probe_retries,
                                           endpoint=ep)
        except BackendError as e:
            raise BackendError(f"startup probe failed: {e}; is an OpenAI-compatible server at {ep.url}? "
                               f"(or pass --model NAME to skip the probe)") from e
        ids = [str(m.get("id")) for m in body.get("data") or [] if isinstance(m, dict) and m.get("id")]
        if not ids:
            raise BackendError(f"{self.url('models', ep)} lists no models; pass --model NAME")
        return ids

    # -- one sample ---------------------------------------------------------------------------
    def _payload(self, request: GenRequest, seed: int, chat: bool, model: str | None = None) -> dict[str, Any]:
        """The request body for one sample: the same wherever it is sent, but for the served `model` name."""
        p = request.params
        body: dict[str, Any] = {
            "model": model or self.model,
            "max_tokens": p.max_tokens,
            "temperature": max(p.temperature, 0.0),
            "top_p": p.top_p,
            "seed": seed,
        }
        if self.send_top_k and p.top_k > 0:
            body["top_k"] = p.top_k
        if p.stop:
            body["stop"] = list(p.stop)
        if chat:
            body["messages"] = [{"role": "user", "content": request.prompt}]
            if request.logprobs:
                # llama-cpp-python's server returns no logprobs unless top_logprobs is set too
                body["logprobs"], body["top_logprobs"] = True, 0
        else:
            body["prompt"] = request.prompt
            if request.logprobs:
                body["logprobs"] = 1
        return body

    async def _sample(self, request: GenRequest, seed: int, chat: bool, exchange: Exchange) -> dict[str, Any]:
        path = "chat/completions" if chat else "completions"
        body = await self.request_json("POST", path, lambda ep: self._payload(request, seed, chat, ep.model),
                                       exchange=exchange, affinity=(chat, request.prompt))
        return self._result(body, request, chat, exchange)

    def _result(self, body: dict[str, Any], request: GenRequest, chat: bool, exchange: Exchange) -> dict[str, Any]:
        """Generation fields from a whole (non-streamed) answer."""
        url = exchange.url  # the endpoint that answered
        choices = body.get("choices")
        if not choices or not isinstance(choices[0], dict):
            raise BackendError(f"{url} answered without choices: {json.dumps(body)[:300]}")
        choice = choices[0]
        usage = body.get("usage") or {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
            raise no_usage(url)
        if chat:
            text = (choice.get("message") or {}).get("content") or ""
            content = (choice.get("logprobs") or {}).get("content")
            logprobs = None if content is None else tuple(float(t["logprob"]) for t in content)
        else:
            text = choice.get("text") or ""
            token_logprobs = (choice.get("logprobs") or {}).get("token_logprobs")
            logprobs = None if token_logprobs is None else tuple(float(x) for x in token_logprobs if x is not None)
        if request.logprobs and logprobs is None:
            raise BackendError(f"logprobs were requested but the server at {url} returned none")
        reported = server_seconds(body)
        return {
            "text": text,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "finish_reason": choice.get("finish_reason") or "unknown",
            "token_logprobs": logprobs if request.logprobs else None,
            "billed_prompt_tokens": billed_prompt_tokens(usage),
            "seconds": exchange.seconds if reported is None else reported,
            "wait_seconds": exchange.wait_seconds,
        }

    # -- one sample, streamed -------------------------------------------------------------------
    async def _stream_sample(self, request: GenRequest, seed: int, chat: bool, exchange: Exchange,
                             on_piece: Callable[[str], None]) -> dict[str, Any]:
        """One sample as server-sent events, each delta handed to `on_piece` as it arrives; the same fields
        as `_sample`. Retried as any request (connect errors, timeouts, dropped connections, 408, 429,
        5xx, with backoff) only while nothing has been handed on."""
        path = "chat/completions" if chat else "completions"
        latest: list[StreamEvents] = []

        def payload(ep: Endpoint) -> dict[str, Any]:
            return {**self._payload(request, seed, chat, ep.model), "stream": True,
                    "stream_options": {"include_usage": True}}

        async def consume(response: wire.Response) -> StreamEvents | dict[str, Any]:
            events = StreamEvents(chat, on_piece)
            latest[:] = [events]
            if "text/event-stream" not in response.headers.get("content-type", ""):
                return json.loads(await response.read())  # a server that ignored `stream` and answered JSON
            async for line in response.lines():
                events.line(line)
            events.line("")
            if not events.done and events.finish_reason is None and events.error is None:
                raise wire.ConnectionDropped("the stream ended before its last chunk")
            return events

        answer = await self.request("POST", path, payload, exchange=exchange, affinity=(chat, request.prompt),
                                    consume=consume, handed_on=lambda: latest[0].pieces if latest else 0)
        if isinstance(answer, StreamEvents):
            return await self._stream_result(answer, request, seed, chat, exchange)
        if not isinstance(answer, dict):
            raise BackendError(f"{exchange.url} answered with JSON that is not an object: {json.dumps(answer)[:200]}")
        result = self._result(answer, request, chat, exchange)
        if result["text"]:
            on_piece(result["text"])
        return result

    async def _stream_result(self, events: StreamEvents, request: GenRequest, seed: int, chat: bool,
                             exchange: Exchange) -> dict[str, Any]:
        """The Generation fields of a finished stream: what `_result` gives for the same sample unstreamed."""
        url = exchange.url
        if events.error is not None:
            raise BackendError(f"{url} sent an error in the stream: {json.dumps(events.error)[:300]}")
        usage = events.usage
        if usage is not None:
            prompt_tokens, completion_tokens = usage["prompt_tokens"], usage["completion_tokens"]
            billed = billed_prompt_tokens(usage)
        else:
            prompt_tokens = await self.stream_usage_fallback(request, seed, chat)
            completion_tokens, billed = events.tokens, prompt_tokens
        return {
            "text": events.text,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "finish_reason": events.finish_reason or "unknown",
            "token_logprobs": None,
            "billed_prompt_tokens": billed,
            "seconds": exchange.seconds if events.seconds is None else events.seconds,
            "wait_seconds": exchange.wait_seconds,
        }

    async def stream_usage_fallback(self, request: GenRequest, seed: int, chat: bool) -> int:
        """The prompt tokens of a stream that came without usage, as the server counts them.

        Some servers (llama-cpp-python's) send no usage in a stream even when asked. The non-streamed path
        takes its counts from the server and refuses to guess them; so does this one, as far as a stream
        allows: the prompt's tokens come from the server's own usage for a one-token, non-streamed request
        of the same prompt (asked once per prompt, its work booked as waste, exactly), and the completion's
        tokens are the stream's chunks that carried a token (such servers send one chunk per token, and
        the count then equals the usage of the same sample unstreamed). A server that reports usage in
        neither way is the same error as on the non-streamed path.
        """
        key = (chat, request.prompt)
        known = self._stream_prompt_tokens.get(key)
        if known is not None:
            return known
        path = "chat/completions" if chat else "completions"
        ex = Exchange(self.url(path))
        usage: dict[str, Any] = {}
        try:
            body = await self.request_json("POST", path, lambda ep: {**self._payload(request, seed, chat, ep.model),
                                                                     "max_tokens": 1}, exchange=ex, affinity=key)
            usage = body.get("usage") or {}
            prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
                usage = {}
                raise no_usage(ex.url)
        finally:  # its failed tries are waste too: the same request's usage when it got one (module docstring)
            p, c = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
            self.book_waste([Waste(p, c, t.seconds, t.reason if usage else f"{t.reason}; tokens unknown",
                                   t.url or ex.url) for t in ex.failed])
        self.book_waste([Waste(prompt_tokens, completion_tokens, ex.seconds,
                               "prompt count for a stream sent without usage", ex.url, estimated=False)])
        if len(self._stream_prompt_tokens) >= 4096:  # a long serve session: forget the oldest prompt
            self._stream_prompt_tokens.pop(next(iter(self._stream_prompt_tokens)))
        self._stream_prompt_tokens[key] = prompt_tokens
        return prompt_tokens

    async def _group(self, request: GenRequest, chat: bool, emit: Callable[[tuple[str, int, Any]], None],
                     stream: bool = False) -> list[Generation]:
        """All samples at once; each is emitted as it finishes (and, streamed, each piece as it arrives). One
        failure fails the group, and the books get every try the server may have computed, the cancelled
        siblings' included."""
        n = len(request.seeds)
        path = "chat/completions" if chat else "completions"
        exchanges = [Exchange(self.url(path)) for _ in request.seeds]
        done: list[Generation | None] = [None] * n

        async def one(i: int) -> None:
            seed = request.seeds[i]
            if stream:
                result = await self._stream_sample(request, seed, chat, exchanges[i], lambda t: emit(("token", i, t)))
            else:
                result = await self._sample(request, seed, chat, exchanges[i])
            done[i] = Generation(seed=seed, group_size=n, **result)
            emit(("sample", i, done[i]))

        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        try:
            await asyncio.gather(*tasks)
        finally:  # one failed sample fails the group: do not leave its siblings running
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.book_waste(group_waste(exchanges, done))
        return [g for g in done if g is not None]

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        """Draw request.n samples, one concurrent request per seed; Generations in seed order.

        Each sample is handed to `on_sample(i, generation)` on this thread as soon as it arrives; with
        `on_token` the requests are streamed and each piece of text goes to `on_token(i, piece)` on this
        thread as it arrives (not for logprobs requests, which are answered whole).
        """
        if not request.seeds:
            return []
        chat = request.chat or self.chat
        stream = on_token is not None and not request.logprobs

        def deliver(item: tuple[str, int, Any]) -> None:
            kind, i, value = item
            if kind == "token":
                if on_token is not None:
                    on_token(i, value)
            elif on_sample is not None:
                on_sample(i, value)

        return self.run_delivering(lambda emit: self._group(request, chat, emit, stream), deliver)


class StreamEvents:
    """Server-sent events of one streamed completion, read line by line (the WHATWG `text/event-stream` format).

    Keeps the text, the finish reason, the usage of the final chunk (`stream_options.include_usage`), the
    server's own timings when sent, and `tokens`: chunks that carried a token, for a server that sends
    no usage (see `OpenAIBackend.stream_usage_fallback`).
    """

    def __init__(self, chat: bool, on_piece: Callable[[str], None]):
        self.chat, self.on_piece = chat, on_piece
        self.text = ""
        self.pieces = 0  # pieces handed on
        self.tokens = 0
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.seconds: float | None = None
        self.error: Any = None
        self.done = False
        self._data: list[str] = []

    def line(self, line: str) -> None:
        """One line of the stream; an empty line ends an event."""
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            if self._data:
                data, self._data = "\n".join(self._data), []
                self._event(data)
            return
        if line.startswith(":"):  # a comment (keep-alive)
            return
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)

    def _event(self, data: str) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        event = json.loads(data)
        if not isinstance(event, dict):
            return
        if event.get("error") is not None:
            self.error = event["error"]
            return
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int) \
                and isinstance(usage.get("completion_tokens"), int):
            self.usage = usage
        reported = server_seconds(event)
        if reported is not None:
            self.seconds = reported
        choices = event.get("choices")
        if not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        if self.chat:
            delta = choice.get("delta") or {}
            piece, carried = delta.get("content"), "content" in delta and delta.get("content") is not None
        else:
            piece, carried = choice.get("text"), choice.get("text") is not None
        finish = choice.get("finish_reason")
        if finish:
            self.finish_reason = finish
        if carried and (piece or not finish):  # a final chunk with only the finish reason carries no token
            self.tokens += 1
        if piece:
            self.text += piece
            self.pieces += 1
            self.on_piece(piece)


def no_usage(url: str) -> BackendError:
    """The error for an answer without usage: oomlab takes token counts from the server, never a guess."""
    return BackendError(
        f"the server at {url} did not report usage (prompt_tokens, completion_tokens); oomlab counts "
        f"compute from the server's own token counts and will not guess them. Use a server that "
        f"returns `usage` (vLLM, SGLang, llama.cpp and the OpenAI API all do)."
    )


def billed_prompt_tokens(usage: dict[str, Any]) -> int:
    """Prompt tokens a hosted API bills for one request: all of them, less those it served from its cache."""
    prompt = int(usage["prompt_tokens"])
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if isinstance(cached, int) and not isinstance(cached, bool) and 0 <= cached <= prompt:
        return prompt - cached
    return prompt


def server_seconds(body: dict[str, Any]) -> float | None:
    """The generation time the server reports (llama.cpp: `timings`), or None when it reports none."""
    timings = body.get("timings")
    if not isinstance(timings, dict):
        return None
    ms = [timings.get("prompt_ms"), timings.get("predicted_ms")]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in ms):
        return None
    return (ms[0] + ms[1]) / 1000.0


def group_waste(exchanges: list[Exchange], done: list[Generation | None]) -> list[Waste]:
    """Waste of one group's requests (token rules in the module docstring)."""
    known_prompt = next((g.prompt_tokens for g in done if g is not None), None)
    waste: list[Waste] = []
    for ex, g in zip(exchanges, done, strict=True):
        tries = list(ex.failed)
        if g is None and ex.answered:  # it came back, but could not be used (no usage, no choices, ...)
            tries.append(FailedTry("unusable answer", ex.seconds, ex.url))
        for t in tries:
            url = t.url or ex.url  # the endpoint that did (or may have done) the work
            if g is not None:
                waste.append(Waste(g.prompt_tokens, g.completion_tokens, t.seconds, t.reason, url))
            elif known_prompt is not None:
                waste.append(Waste(known_prompt, 0, t.seconds, f"{t.reason}; completion tokens unknown", url))
            else:
                waste.append(Waste(0, 0, t.seconds, f"{t.reason}; tokens unknown", url))
    return waste
