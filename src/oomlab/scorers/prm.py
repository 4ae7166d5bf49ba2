"""The prm scorer: a process reward model served over HTTP scores each step of a solution.

A PRM (Lightman et al. 2023, "Let's Verify Step by Step", arXiv 2305.20050) gives every step of
a solution the probability that it is correct. The solution is split into steps at `separator`
(default a blank line, what Qwen2.5-Math-PRM's card asks for) and the step scores are aggregated
as search-and-learn does (Beeching et al. 2024, `agg_strategy`): `last` (the default: the PRM's
score of the latest step, which conditions on all before it), `min`, or `prod`. Scores are
probabilities, so particle filtering turns them into weights with a logit (as its_hub does).

Two wire protocols, chosen by `api`:

- `api=pooling` (default): vLLM's pooling API, `POST {base_url}/pooling`, the way vLLM serves
  token-classification reward models such as Qwen/Qwen2.5-Math-PRM-7B
  (`vllm serve Qwen/Qwen2.5-Math-PRM-7B --runner pooling`; older vLLM: `--task reward`). The
  request is a chat, `{"model", "messages": [system, user: question, assistant: steps each followed
  by step_tag]}`, with `step_tag` the token the model was trained to score after each step
  (`<extra_0>` for Qwen2.5-Math-PRM; vLLM's STEP pooler keeps only the positions of that token).
  The answer is `{"data": [{"index": 0, "data": [[p_wrong, p_right], ...one row per step]}],
  "usage": {"prompt_tokens": N, ...}}`; column `positive_index` (default the last) is the score.
- `api=reward`: a plain reward endpoint, `POST {base_url}/{path}` with
  `{"model", "question", "steps": [...]}` answered by `{"scores": [one per step],
  "usage": {"prompt_tokens": N}}`, for a PRM behind any server of your own.

Every request's tokens go on the books in the verifier's own column (`verifier_usage` in the
store, through the sweep's metered backend: `MeteredBackend.book_verifier`), with FLOPs from the
PRM's model facts given like any HTTP model's (`n_params=`, `n_layer=`, ... or `facts_file=`): a
PRM reads its input once, so a request costs the forward FLOPs of its prompt tokens
(`ledger.prompt_flops`). Token counts come from the server's `usage`; a server that reports none
is an error, never a guess. Retries, backoff, timeouts and the messages of a failing server are
the HTTP base class's (`backends/http.py`), as for the openai backend; an answer of the wrong
shape is a BackendError that quotes it. A PRM is deterministic, so a scored solution is cached
(in memory, and in the store when the sweep's backend is bound) and never paid for twice.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import json
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from oomlab.backends.base import Backend
from oomlab.backends.http import Exchange, HTTPBackend
from oomlab.backends.openai import make_facts, read_facts_file
from oomlab.errors import BackendError, ConfigError
from oomlab.ledger import flops_known, prompt_flops
from oomlab.problem import Problem
from oomlab.scorers.base import SCORERS, Candidate, Scorer

if TYPE_CHECKING:
    from oomlab.tasks.base import Task

AGGREGATIONS = ("last", "min", "prod")
APIS = ("pooling", "reward")
# Qwen2.5-Math-PRM's system prompt and step tag (its model card, "Quick Start").
DEFAULT_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
DEFAULT_STEP_TAG = "<extra_0>"
CACHE_SIZE = 100_000


def aggregate(step_scores: list[float], how: str) -> float:
    """One score for a solution from its steps' scores: the last, the minimum or the product."""
    if not step_scores:
        return -math.inf
    if how == "last":
        return step_scores[-1]
    if how == "min":
        return min(step_scores)
    return math.prod(step_scores)


def split_steps(text: str, separator: str) -> list[str]:
    """The non-blank steps of a solution, in order."""
    return [s.strip() for s in text.split(separator) if s.strip()]


def question_of(problem: Problem, candidate: Candidate) -> str:
    """The question a PRM is shown: the problem text itself, not the few-shot prompt around it."""
    for key in ("problem", "question"):
        value = problem.inputs.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return candidate.prompt


class PRMClient(HTTPBackend):
    """The HTTP side of the prm scorer: one request per solution, retried as any HTTP backend's."""

    def __init__(self, base_url: str, api: str, path: str, model: str | None, step_tag: str, system: str,
                 positive_index: int, **http: Any):
        super().__init__(base_url, **http)
        self.api, self.path, self.model = api, path, model
        self.step_tag, self.system, self.positive_index = step_tag, system, positive_index

    def payload(self, question: str, steps: list[str]) -> dict[str, Any]:
        """The request body for one solution, in the protocol chosen."""
        body: dict[str, Any] = {} if self.model is None else {"model": self.model}
        if self.api == "reward":
            return {**body, "question": question, "steps": steps}
        tagged = "".join(f"{s}{self.step_tag}" for s in steps)
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": question}, {"role": "assistant", "content": tagged}]
        return {**body, "messages": messages}

    async def score_steps(self, question: str, steps: list[str]) -> tuple[list[float], int, Exchange]:
        """(one score per step, prompt tokens the server counted, the request's history)."""
        path = "pooling" if self.api == "pooling" else self.path
        exchange = Exchange(self.url(path))
        body = await self.request_json("POST", path, self.payload(question, steps), exchange=exchange)
        url = self.url(path)
        scores = self._pooled(body, len(steps), url) if self.api == "pooling" else self._rewards(body, len(steps), url)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        tokens = usage.get("prompt_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise BackendError(f"the PRM at {url} did not report usage.prompt_tokens; oomlab books the verifier's "
                               f"compute from the server's own token counts and will not guess them")
        return scores, tokens, exchange

    def _pooled(self, body: dict[str, Any], n_steps: int, url: str) -> list[float]:
        data = body.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict) or "data" not in data[0]:
            raise BackendError(f"{url} answered without pooling data (expected vLLM's "
                               f"{{\"data\": [{{\"data\": [[...], ...]}}]}}): {json.dumps(body)[:300]}")
        rows = data[0]["data"]
        if not isinstance(rows, list) or len(rows) != n_steps:
            got = len(rows) if isinstance(rows, list) else type(rows).__name__
            raise BackendError(
                f"{url} returned {got} pooled rows for {n_steps} steps: serve a process reward model with step "
                f"pooling at its step tag {self.step_tag!r} (vLLM: a STEP pooler; its step_tag_id must be that "
                f"token), or set step_tag= to the token the model scores")
        scores = []
        for row in rows:
            value = row[self.positive_index] if isinstance(row, list) and row else row
            scores.append(_finite(value, url))
        return scores

    def _rewards(self, body: dict[str, Any], n_steps: int, url: str) -> list[float]:
        scores = body.get("scores")
        if not isinstance(scores, list) or len(scores) != n_steps:
            raise BackendError(f"{url} answered without one score per step ({n_steps} steps; expected "
                               f"{{\"scores\": [...], \"usage\": {{\"prompt_tokens\": N}}}}): {json.dumps(body)[:300]}")
        return [_finite(s, url) for s in scores]


def _finite(value: Any, url: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BackendError(f"{url} returned a step score that is not a finite number: {value!r}")
    return float(value)


@SCORERS.register("prm")
class PRMScorer(Scorer):
    """A process reward model over HTTP (vLLM pooling or a plain reward endpoint); its tokens are booked."""

    description: ClassVar[str] = "a process reward model over HTTP scores each step (vLLM pooling or a reward endpoint)"
    oracle: ClassVar[bool] = False
    needs_logprobs: ClassVar[bool] = False
    probability: ClassVar[bool] = True
    steps: ClassVar[bool] = True

    def __init__(
        self,
        base_url: str | None = None,
        api: str = "pooling",
        model: str | None = None,
        aggregation: str = "last",
        separator: str = "\n\n",
        step_tag: str = DEFAULT_STEP_TAG,
        system: str = DEFAULT_SYSTEM,
        positive_index: int = -1,
        path: str = "reward",
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        facts_file: str | os.PathLike[str] | None = None,
        n_params: float | None = None,
        n_params_non_embedding: float | None = None,
        n_layer: int | None = None,
        d_model: int | None = None,
        d_attn: int | None = None,
        n_ctx_train: int | None = None,
    ):
        if not base_url:
            raise ConfigError("the prm scorer needs the PRM server: scorer_base_url=http://HOST:PORT "
                              "(a vLLM server's root for api=pooling, or your reward endpoint's server)")
        if api not in APIS:
            raise ConfigError(f"prm api must be one of {', '.join(APIS)}, got '{api}'")
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"prm aggregation must be one of {', '.join(AGGREGATIONS)}, got '{aggregation}'")
        separator = codecs.decode(separator, "unicode_escape") if "\\" in separator else separator  # "\\n" from a CLI
        if not separator:
            raise ConfigError("prm: the step separator must not be empty")
        base = base_url.rstrip("/")
        if api == "pooling" and base.endswith("/v1"):
            base = base[: -len("/v1")]  # vLLM serves /pooling at the root, beside /v1
        key = api_key if api_key is not None else os.environ.get("OOMLAB_PRM_API_KEY")
        self.base_url, self.api, self.model, self.aggregation = base, api, model, aggregation
        self.separator, self.step_tag, self.system, self.path = separator, step_tag, system, path
        self.positive_index = positive_index
        self.client = PRMClient(base, api, path, model, step_tag, system, positive_index,
                                headers={"Authorization": f"Bearer {key}"} if key else None,
                                concurrency=concurrency, timeout=timeout, max_retries=max_retries, backoff=backoff)
        self.model_id = f"prm:{model or base}"
        values: dict[str, Any] = {}
        source = "flags"
        if facts_file is not None:
            values.update(read_facts_file(facts_file))
            source = f"facts file {Path(facts_file).name}"
        values.update({k: v for k, v in dict(n_params=n_params, n_params_non_embedding=n_params_non_embedding,
                                              n_layer=n_layer, d_model=d_model, d_attn=d_attn,
                                              n_ctx_train=n_ctx_train).items() if v is not None})
        self.facts = make_facts(self.model_id, values, source)
        self.backend: Backend | None = None
        self._lock = threading.Lock()  # one scorer may serve several threads: its cache and tallies are shared
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._usage = {"requests": 0, "cached": 0, "prompt_tokens": 0, "flops": 0.0, "seconds": 0.0}
        self.totals = dict(self._usage)  # since construction, for callers outside a sweep

    def bind(self, backend: Backend) -> PRMScorer:
        """Book verifier usage through `backend` (the sweep's MeteredBackend) and use its score cache."""
        self.backend = backend
        return self

    def take_usage(self) -> dict[str, float] | None:
        """Verifier requests, tokens, FLOPs and seconds since the last call (None when there were none)."""
        with self._lock:
            usage, self._usage = self._usage, {k: type(v)() for k, v in self._usage.items()}
        return usage if usage["requests"] or usage["cached"] else None

    def cache_key(self, question: str, steps: list[str]) -> str:
        """The identity of a PRM call: model, protocol and input (never the URL it was reached at)."""
        blob = json.dumps([self.model or self.base_url, self.api, self.step_tag, self.system, question, steps])
        return hashlib.sha256(blob.encode()).hexdigest()

    def score(self, candidate: Candidate, problem: Problem, task: Task) -> float:
        return self.score_many([candidate], problem, task)[0]

    def score_many(self, candidates: list[Candidate], problem: Problem, task: Task) -> list[float]:
        """Aggregated step scores; the solutions not yet scored are sent concurrently."""
        step_scores = self.step_scores([(question_of(problem, c), split_steps(c.generation.text, self.separator))
                                        for c in candidates])
        return [aggregate(s, self.aggregation) for s in step_scores]

    def step_scores(self, solutions: list[tuple[str, list[str]]]) -> list[list[float]]:
        """The PRM's score of every step of each (question, steps); cached, missing ones asked at once."""
        out: list[list[float] | None] = [None] * len(solutions)
        todo: dict[str, list[int]] = {}
        lookup = getattr(self.backend, "verifier_scores", None)
        for i, (question, steps) in enumerate(solutions):
            if not steps:
                out[i] = []
                continue
            key = self.cache_key(question, steps)
            with self._lock:
                hit = self._cache.get(key)
            if hit is None and lookup is not None:
                hit = lookup(key)
            if hit is not None:
                self._remember(key, hit)
                with self._lock:
                    self._usage["cached"] += 1
                out[i] = hit
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            keys = list(todo)
            firsts = [solutions[todo[k][0]] for k in keys]

            async def ask_all() -> list[tuple[list[float], int, Exchange]]:
                return await asyncio.gather(*(self.client.score_steps(q, s) for q, s in firsts))

            for key, (scores, tokens, exchange) in zip(keys, self.client.run(ask_all())):
                self._book(key, scores, tokens, exchange)
                for i in todo[key]:
                    out[i] = scores
        return [s if s is not None else [] for s in out]

    def _remember(self, key: str, scores: list[float]) -> None:
        with self._lock:
            self._cache[key] = scores
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _book(self, key: str, scores: list[float], tokens: int, exchange: Exchange) -> None:
        """One request on the books: in the scorer's own tallies, and in the store when bound to a sweep."""
        flops = prompt_flops(self.facts, tokens) if flops_known(self.facts) else float("nan")
        self._remember(key, scores)
        with self._lock:
            for tally in (self._usage, self.totals):
                tally["requests"] += 1
                tally["prompt_tokens"] += tokens
                tally["flops"] += flops
                tally["seconds"] += exchange.seconds
        book = getattr(self.backend, "book_verifier", None)
        if book is not None:
            book(scorer=self.name, model_id=self.model_id, prompt_tokens=tokens, flops=flops,
                 seconds=exchange.seconds, wait_seconds=exchange.wait_seconds, failed_tries=len(exchange.failed),
                 cache_key=key, scores=scores)

    def close(self) -> None:
        self.client.close()

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "base_url": self.base_url, "api": self.api, "model": self.model,
                "aggregation": self.aggregation, "separator": self.separator, "step_tag": self.step_tag,
                "system": self.system, "positive_index": self.positive_index, "path": self.path}
