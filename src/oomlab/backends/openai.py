"""Any OpenAI-compatible server: vLLM, SGLang, llama.cpp's server, llama-cpp-python's server, hosted APIs.

n samples of one prompt are n concurrent requests, one per seed (a server with prefix caching
evaluates the shared prompt once). Token counts come from the server's `usage`, never from a
guess. The server does not tell us the model's size, so FLOPs need model facts from a facts
file or keywords; without them the facts are zeros with source "unknown (...)", and the ledger
shows FLOPs as unknown while tokens, seconds and dollars are still counted.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import yaml

from oomlab.backends.base import BACKENDS, GenRequest, Generation, ModelFacts
from oomlab.backends.http import HTTPBackend
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
    """An OpenAI-compatible server at `base_url` (e.g. http://127.0.0.1:8000/v1)."""

    name: ClassVar[str]

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str | None = None,
        api_key: str | None = None,
        chat: bool = False,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        send_top_k: bool = True,
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
        )
        self.chat = chat
        self.send_top_k = send_top_k  # top_k is an extension (vLLM, SGLang, llama.cpp); hosted OpenAI rejects it
        try:
            self.model = model or self._first_model()
        except BaseException:
            self.close()
            raise
        self.model_id = f"openai:{self.model}@{self.base_url}"

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

    def _first_model(self) -> str:
        body = self.run(self.request_json("GET", "models"))
        ids = [m.get("id") for m in body.get("data") or [] if isinstance(m, dict) and m.get("id")]
        if not ids:
            raise BackendError(f"{self.url('models')} lists no models; pass --model NAME")
        return str(ids[0])

    # -- one sample ---------------------------------------------------------------------------
    def _payload(self, request: GenRequest, seed: int, chat: bool) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
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

    async def _sample(self, request: GenRequest, seed: int, chat: bool) -> dict[str, Any]:
        path = "chat/completions" if chat else "completions"
        body = await self.request_json("POST", path, self._payload(request, seed, chat))
        url = self.url(path)
        choices = body.get("choices")
        if not choices or not isinstance(choices[0], dict):
            raise BackendError(f"{url} answered without choices: {json.dumps(body)[:300]}")
        choice = choices[0]
        usage = body.get("usage") or {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
            raise BackendError(
                f"the server at {url} did not report usage (prompt_tokens, completion_tokens); oomlab counts "
                f"compute from the server's own token counts and will not guess them. Use a server that "
                f"returns `usage` (vLLM, SGLang, llama.cpp and the OpenAI API all do)."
            )
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
        return {
            "text": text,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "finish_reason": choice.get("finish_reason") or "unknown",
            "token_logprobs": logprobs if request.logprobs else None,
        }

    async def _group(self, request: GenRequest, chat: bool) -> list[dict[str, Any]]:
        tasks = [asyncio.ensure_future(self._sample(request, seed, chat)) for seed in request.seeds]
        try:
            return list(await asyncio.gather(*tasks))
        finally:  # one failed sample fails the group: do not leave its siblings running
            for task in tasks:
                task.cancel()

    def generate(self, request: GenRequest) -> list[Generation]:
        """Draw request.n samples, one concurrent request per seed; Generations in seed order."""
        if not request.seeds:
            return []
        chat = request.chat or self.chat
        start = time.perf_counter()
        results = self.run(self._group(request, chat))
        share = (time.perf_counter() - start) / len(results)
        return [
            Generation(seconds=share, seed=seed, group_size=len(results), **result)
            for seed, result in zip(request.seeds, results, strict=True)
        ]
