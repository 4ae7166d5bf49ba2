"""One served request: a strategy run through the sweep's metered backend, under caps, onto the books.

A server session is one run in the Store: each request is a problem of it (its prompt, and the
client's reference answer when one is sent), each answer an attempt filed under the variant's
name (`majority-16`, `best-of-n-8[scorer=logprob]`, `greedy-1`), so `oomlab show` and `oomlab
report` read what the server did as they read a sweep. Samples go through `MeteredBackend`, so an
identical seeded request is served from the cache and nothing is paid for twice.

Draw strategies (greedy, sample, majority, best-of-n, ...) are run here rather than through
`solve`, to draw in pieces when a cap binds (the largest prefix of the seeds whose worst case
fits, again and again, until the budget is spent or nothing more fits) and to answer with the
chosen sample's whole text. Other strategies run their own `solve`; if a cap stops one, the best
answer so far is the plurality of the answers its finished samples gave (the latest on a tie).
"""

from __future__ import annotations

import inspect
import itertools
import re
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from oomlab import __version__
from oomlab.attempts import AttemptRunner
from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams, create_backend
from oomlab.caps import Books, CappedBackend, CapReached, Caps, Rates
from oomlab.energy import DEFAULT_TDP_WATTS, meter_for
from oomlab.errors import ConfigError
from oomlab.ledger import Pricing, format_human_time
from oomlab.serve.names import check_budget, variant_key
from oomlab.serve.streaming import StreamText, TokenRoute
from oomlab.serve.task import ServedTask
from oomlab.store import AttemptRow, ProblemRow, SampleRow, Store
from oomlab.strategies.base import STRATEGIES, Draw, DrawStrategy, Strategy, create_strategy, draw_seeds
from oomlab.sweep import MeteredBackend


class RequestError(ConfigError):
    """A request the server will not run (HTTP 400), with the OpenAI error object's `param` and `code`."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400):
        super().__init__(message)
        self.param, self.code, self.status = param, code, status


@dataclass(frozen=True)
class ServeSettings:
    """Everything `oomlab serve` is started with."""

    db: Path = Path("oomlab.db")
    backend: str = "llamacpp"
    backend_options: dict[str, Any] = field(default_factory=dict)
    served_name: str | None = None
    pricing: Pricing = field(default_factory=lambda: Pricing(usd_per_hour=2.0))
    tdp_watts: float = DEFAULT_TDP_WATTS
    energy_counter: str = "auto"
    caps: Caps = field(default_factory=Caps)  # the default (and ceiling) of every request's caps
    default_budget: int = 4
    max_budget: int = 64
    default_max_tokens: int = 256
    max_completion_tokens: int = 4096
    chat_format: str = "auto"  # auto | plain | gemma | chat (upstream chat messages)
    max_body_bytes: int = 1_000_000
    max_pending: int = 256
    keepalive_s: float = 5.0
    api_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000


@dataclass
class ServedRequest:
    """A parsed request: what to run and on what, before anything is spent."""

    endpoint: str  # "chat" | "completion"
    model: str  # the name the client asked for (echoed back)
    prompt: str  # the text the model completes (chat messages rendered)
    params: SamplingParams  # the request's sampling settings (a strategy sets its own temperature)
    chat: bool = False  # send as a chat message upstream (an OpenAI-compatible backend)
    strategy: str | None = None  # None: a plain model name, passed through as one sample
    budget: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    temperature: float | None = None  # as the client gave it (None: not given)
    seed: int | None = None
    caps: Caps = field(default_factory=Caps)
    answer: str = "text"
    reference: str | None = None
    stream: bool = False
    include_usage: bool = False
    inputs: dict[str, Any] = field(default_factory=dict)  # the messages or prompt as sent, kept with the problem
    flattened: bool = False  # several chat messages sent upstream as one rendered message
    base: str = ""  # the base model the name asks for (must be one this server serves)


@dataclass
class Prepared:
    """A request checked and ready: its strategy object, task, caps, seed and variant name."""

    request: ServedRequest
    name: str
    options: dict[str, Any]
    budget: int
    strategy: Strategy
    task: ServedTask
    caps: Caps
    seed: int
    idx: int
    trace_id: str

    @property
    def streams_tokens(self) -> bool:
        """Greedy and sample stream their one sample's tokens (where the backend can); other strategies
        answer at the end."""
        return isinstance(self.strategy, DrawStrategy) and self.n == 1

    @property
    def n(self) -> int:
        if isinstance(self.strategy, DrawStrategy):
            return max(self.strategy.budgets([self.budget]))
        return self.budget


@dataclass
class ServedResult:
    text: str
    finish_reason: str
    usage: dict[str, int]
    books: dict[str, Any]
    streamed: bool = False  # the text went out through `on_text` already


@dataclass
class _Outcome:
    text: str
    answer: str | None
    correct: bool
    finish: str
    cap: CapReached | None
    key: str | None  # None: nothing drawn, no attempt
    budget: int
    sample_ids: list[int]
    trace: dict[str, Any]
    draw_k: int | None = None  # samples in the draw (draw strategies)
    how: str | None = None


def served_names(backend: Backend) -> list[str]:
    """Names a client may use for the backend's model: a short one first (gemma-3-270m), then the exact ids."""
    model_id = backend.model_id
    if model_id.startswith("openai:"):
        served = str(getattr(backend, "model", model_id.removeprefix("openai:")))
        return list(dict.fromkeys([served, model_id.removeprefix("openai:"), model_id]))
    stem = model_id.split("@")[0]
    short = re.sub(r"[-_.](?:i?q\d|f16|f32|bf16).*$", "", stem, flags=re.IGNORECASE)
    return list(dict.fromkeys([short, stem, model_id]))


def make_backend(settings: ServeSettings) -> Backend:
    """The registered backend the settings name (the embedded engine by default)."""
    return create_backend(settings.backend, **settings.backend_options)


def _takes(cls: type, option: str) -> bool:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def best_so_far(rows: list[SampleRow], task: ServedTask) -> str | None:
    """The plurality answer of the samples that finished (of all of them if none did; the latest on a tie):
    what a stopped search had reached."""
    done = [r for r in rows if r.generation.finish_reason != "length"] or rows
    answers = [a for a in (task.extract(r.generation.text) for r in done) if a is not None]
    if not answers:
        return None
    votes = Counter(answers)
    top = max(votes.values())
    return next(a for a in reversed(answers) if votes[a] == top)


class ServeRunner:
    """The server session: one backend, one run in the Store, and the request-by-request books."""

    def __init__(self, settings: ServeSettings, backend: Backend | None = None):
        self.settings = settings
        self.backend = backend or make_backend(settings)
        try:
            self.meter = meter_for(self.backend, settings.tdp_watts, settings.energy_counter)
            self.store = Store(settings.db)
            self.names = served_names(self.backend)
            if settings.served_name:
                self.names.insert(0, settings.served_name)
            self.strategies = set(STRATEGIES.names())
            self.facts = self.backend.facts
            self.pricing = settings.pricing
            self._check_caps(settings.caps)
            self.config: dict[str, Any] = {
                "task": "served", "backend": getattr(self.backend, "name", settings.backend), "model_id": self.backend.model_id,
                "served_name": self.names[0], "strategies": [], "strategy_options": {}, "rungs_by_strategy": {},
                "ladder": [1], "n": 1, "problems": 0, "seed": None, "pricing": settings.pricing.__dict__,
                "caps": settings.caps.as_dict(), "endpoint": getattr(self.backend, "endpoint", None),
                "model_sha256": getattr(self.backend, "sha256", None),
                "serve": {"host": settings.host, "port": settings.port},
            }
            self.run_id = self.store.create_run(
                self.config, backend=self.config["backend"], model_id=self.backend.model_id, facts=self.facts,
                task="served", energy_method=self.meter.method, pricing=settings.pricing, version=__version__, owned=True)
        except BaseException:
            self.backend.close()
            raise
        self._heartbeat = self.store.heartbeat(self.run_id).__enter__()
        self.metered = MeteredBackend(self.backend, self.store, self.meter, self.run_id)
        self.rates = Rates()
        self._count = itertools.count()
        self._config_lock = threading.Lock()
        # a backend that streams takes `on_token`; for the others a stream is keep-alives, then the answer
        self.streams_tokens = bool(getattr(self.backend, "streams_tokens", False))
        self.remote = bool(getattr(self.backend, "remote", False))
        concurrency = getattr(self.backend, "concurrency", None)
        # an embedded engine decodes one batch at a time; an HTTP backend has `concurrency` requests per endpoint
        self.concurrency = concurrency if isinstance(concurrency, int) and concurrency > 1 else 1
        self._closed = False

    def _check_caps(self, caps: Caps) -> None:
        """A cap on something this backend cannot count is refused, not silently ignored."""
        if caps.flops is not None and not (self.facts.n_params_non_embedding > 0 and self.facts.n_layer > 0):
            raise ConfigError(f"a FLOPs cap needs the model's facts (pass -B n_params=... -B n_layer=...); "
                              f"this backend's facts are {self.facts.source}")
        if caps.joules is not None and self.meter.method.startswith("unknown"):
            raise ConfigError(f"a joules cap needs a known energy; this backend's energy is {self.meter.method}")

    # -- before anything is spent ----------------------------------------------------------------
    def prepare(self, req: ServedRequest) -> Prepared:
        """Check the request and build its strategy and task; raises RequestError (HTTP 400) when it cannot run."""
        s = self.settings
        if req.base not in self.names:
            raise RequestError(f"model {req.base!r} is not served here; this server serves {self.names[0]!r} "
                               f"(and its strategy variants, e.g. 'majority-8:{self.names[0]}'; see GET /v1/models)",
                               "model", "model_not_found", 404)
        if req.strategy is None:
            t = 1.0 if req.temperature is None else req.temperature  # the OpenAI API's default temperature
            name, options, budget = ("greedy", {}, 1) if t <= 0 else ("sample", {"temperature": t}, 1)
        else:
            name, options = req.strategy, dict(req.options)
            budget = req.budget if req.budget is not None else s.default_budget
            cls = STRATEGIES.get(name)
            if req.temperature is not None and "temperature" not in options and _takes(cls, "temperature"):
                options["temperature"] = req.temperature
        budget = check_budget(budget, "budget")
        if budget > s.max_budget:
            raise RequestError(f"budget {budget} is over this server's limit of {s.max_budget} (--max-budget)",
                               "budget", "budget_too_large")
        try:
            strategy = create_strategy(name, **options)
        except TypeError as e:
            raise RequestError(f"strategy '{name}' does not take these options ({', '.join(sorted(options))}): {e}",
                               "oomlab.options", "invalid_options") from None
        except ConfigError as e:
            raise RequestError(str(e), "oomlab.options", "invalid_options") from None
        caps = s.caps.tighter(req.caps)
        try:
            self._check_caps(caps)
        except ConfigError as e:
            raise RequestError(str(e), "oomlab.caps", "cap_not_countable") from None
        task = ServedTask(req.prompt, req.params, req.answer, req.reference)
        if strategy.oracle and task.reference is None:
            raise RequestError(f"{strategy.label()} reads the reference answer, and this request sends none: pass "
                               f"options such as {{\"scorer\": \"logprob\"}}, or oomlab.reference", "oomlab.options",
                               "oracle_without_reference")
        self._check_context(req)
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        idx = next(self._count)  # numbered when accepted, so a streamed response has its id from the first chunk
        trace_id = f"{self.run_id}-{idx}"
        task.problem = replace(task.problem, id=trace_id)
        return Prepared(req, name, options, budget, strategy, task, caps, seed, idx, trace_id)

    def _check_context(self, req: ServedRequest) -> None:
        tokenize, n_ctx = getattr(self.backend, "tokenize", None), getattr(self.backend, "n_ctx", None)
        if tokenize is None or not isinstance(n_ctx, int):
            return
        P = len(tokenize(req.prompt))
        if P + req.params.max_tokens > n_ctx:
            raise RequestError(f"this model's context is {n_ctx} tokens; the prompt has {P} and max_tokens asks for "
                               f"{req.params.max_tokens} more", "messages" if req.endpoint == "chat" else "prompt",
                               "context_length_exceeded")

    # -- the work (on a worker thread) -----------------------------------------------------------
    def handle(self, p: Prepared, on_text: Callable[[str], None] | None = None) -> ServedResult:
        """Run a prepared request to its answer; its samples are committed as they arrive, its attempt at the end.

        `on_text` (streaming) gets a one-sample request's text as it is decoded, the whole of it in
        pieces that always form a prefix of the final completion.
        """
        idx, trace_id, req = p.idx, p.trace_id, p.request
        self.store.add_problems(self.run_id, [ProblemRow(idx, trace_id, req.prompt, p.task.reference or "", req.inputs,
                                                         {"model": req.model, "endpoint": req.endpoint, "seed": p.seed})])
        route = TokenRoute(self.metered)  # the draw's tokens, when streamed, go down through it
        capped = CappedBackend(route, p.caps, Books(self.facts, self.pricing), self.rates)
        self.metered.take_used()  # this thread's ledger starts empty
        streamed = False
        try:
            if isinstance(p.strategy, DrawStrategy):
                streamer = StreamText(p.task.sampling().stop, on_text) if on_text is not None and p.n == 1 else None
                out = self._draw(p, capped, route, streamer)
                streamed = streamer is not None
            else:
                out = self._solve(p, capped)
        finally:
            self.metered.take_used()
        spend = capped.books.spend()
        self.rates.observe(spend, capped.books.computed_tokens())
        if out.key is not None:
            self.store.add_attempt(self.run_id, AttemptRow(out.key, idx, out.budget, out.answer, out.correct,
                                                           out.sample_ids, out.trace))
            self._file_variant(out.key, p, out.draw_k, idx)
        else:
            self._file_variant(None, p, None, idx)
        drawn = len(capped.drawn_now)
        usage = {"prompt_tokens": int(round(spend.prompt_tokens)), "completion_tokens": int(spend.completion_tokens)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

        def num(x: float) -> float | None:
            return x if x == x and x not in (float("inf"), float("-inf")) else None

        books = {
            "trace_id": trace_id, "run_id": self.run_id, "problem": idx,
            "strategy": p.name, "budget": p.budget, "options": p.options, "variant": out.key,
            "plain": req.strategy is None, "oracle": p.strategy.oracle, "seed": p.seed,
            "answer": out.answer, "correct": out.correct if p.task.reference is not None else None,
            "samples": {"total": spend.samples, "drawn": drawn, "cached": spend.samples - drawn},
            "tokens": {**usage, "verifier": int(spend.verifier_tokens)},
            "flops": num(spend.flops), "flops_source": self.facts.source,
            "joules": num(spend.joules), "energy": self.meter.method, "energy_measured": spend.energy_measured,
            "usd": spend.usd, "pricing": self.pricing.describe(),
            "seconds": spend.seconds, "wait_seconds": spend.wait_seconds,
            "human_minutes": spend.human_minutes, "human_time": format_human_time(spend.human_minutes),
            "verifier_requests": spend.verifier_requests,
            "caps": p.caps.as_dict(), "cap": None if out.cap is None else out.cap.as_dict(),
            "cap_overshoot": None if capped.overshoot is None else capped.overshoot.as_dict(),
            "best_so_far": out.how, "messages_flattened": req.flattened or None,
        }
        return ServedResult(out.text, out.finish, usage, books, streamed)

    def _draw(self, p: Prepared, capped: CappedBackend, route: TokenRoute, streamer: StreamText | None) -> _Outcome:
        strategy = p.strategy
        assert isinstance(strategy, DrawStrategy)
        task, problem, n = p.task, p.task.problem, p.n
        params = strategy.sampling(task)
        seeds = draw_seeds(p.seed, n)
        strategy.bind(capped)
        base = GenRequest(task.prompt(problem), params, seeds, logprobs=strategy.needs_logprobs(), chat=p.request.chat)
        cap: CapReached | None = None
        clipped: CapReached | None = None
        if n == 1 and p.caps:  # one sample: shorten it to fit rather than not draw it
            m = capped.fit_max_tokens(base)
            if m < params.max_tokens:
                clipped = capped.refusal(base)
                if m == 0:
                    cap = clipped
                else:
                    params = replace(params, max_tokens=m)
                    base = replace(base, params=params)
        gens: list[Generation] = []
        tap = (lambda i, piece: streamer.feed(piece)) if streamer is not None and self.streams_tokens else None
        while len(gens) < n and cap is None:
            rest = replace(base, seeds=seeds[len(gens):])
            k = capped.affordable(rest)
            if k == 0:
                cap = capped.refusal(rest)
                break
            with route.to(tap):
                gens += capped.generate(replace(rest, seeds=rest.seeds[:k]))
        draw_rows = list(capped.served)
        if not gens:
            return _Outcome("", None, False, cap.finish_reason if cap else "stop", cap, None, 0, [], {})
        how = None
        try:
            draw = strategy.make_draw(gens, problem, task)
            strategy.extra_generations()
            pick = strategy.select(draw, p.seed)
        except CapReached as e:  # a judge that would pass the cap: the draw stands without its scores
            cap = cap or e
            answers = tuple(task.extract(g.text) for g in gens)
            draw = Draw(tuple(gens), answers, tuple(task.check(a, problem) for a in answers))
            winner = best_so_far(draw_rows, task)
            pick = None if winner is None else answers.index(winner)
            how = f"plurality of the {len(gens)} samples: the scorer was stopped by the {e.cap} cap"
        if clipped is not None and cap is None and gens[0].finish_reason == "length":
            cap = clipped  # the sample ran to the max_tokens the cap left it
        chosen = gens[pick] if pick is not None else None
        text = chosen.text if chosen is not None else ""
        if streamer is not None:
            streamer.finish(text)
        finish = cap.finish_reason if cap is not None else (chosen.finish_reason if chosen is not None else "stop")
        answer = draw.answers[pick] if pick is not None else None
        k = len(gens)
        if len(draw_rows) < k:  # a backend that keeps no rows (a test double): nothing to file
            return _Outcome(text, answer, False, finish, cap, None, k, [], {}, k, how)
        ids = [r.id for r in draw_rows[:k]] + [r.id for r in capped.served[len(draw_rows):]]
        key = variant_key(p.name, k, p.options)
        trace = {"answers": list(draw.answers), "correct": list(draw.correct),
                 "scores": None if draw.scores is None else list(draw.scores),
                 "served": {"asked_budget": n, "finish_reason": finish, "cap": None if cap is None else cap.as_dict()}}
        return _Outcome(text, answer, bool(pick is not None and draw.correct[pick]), finish, cap, key, k, ids, trace,
                        k, how)

    def _solve(self, p: Prepared, capped: CappedBackend) -> _Outcome:
        task, problem = p.task, p.task.problem
        key = variant_key(p.name, p.budget, p.options)
        runner = AttemptRunner(task, self.metered, self.store, self.run_id, p.budget, p.seed)  # the sweep's runner
        try:
            attempt = runner.spend(p.strategy, problem, p.budget, backend=capped)
        except CapReached as e:
            answer = best_so_far(capped.served, task)
            how = f"plurality of the {len(capped.served)} samples drawn before the {e.cap} cap stopped {p.name}"
            trace = {"served": {"finish_reason": e.finish_reason, "cap": e.as_dict(), "best_so_far": how}}
            ids = [r.id for r in capped.served]
            return _Outcome(answer or "", answer, task.check(answer, problem), e.finish_reason, e,
                            f"{key} (capped)" if ids else None, p.budget, ids, trace, None, how)
        trace = dict(attempt.trace)
        trace["served"] = {"finish_reason": "stop"}
        ids = [r.id for r in capped.served]
        return _Outcome(attempt.answer or "", attempt.answer, attempt.correct, "stop", None, key if ids else None,
                        p.budget, ids, trace)

    def _file_variant(self, key: str | None, p: Prepared, draw_k: int | None, idx: int) -> None:
        """Keep the run's record current: every variant served (so it can be rebuilt) and the problem count."""
        with self._config_lock:
            cfg = self.config
            if key is not None and key not in cfg["strategy_options"]:
                cfg["strategies"].append(key)
                cfg["strategy_options"][key] = {"name": p.name, **p.options}
                cfg.setdefault("strategy_records", {})[key] = p.strategy.record()  # what analysis reads
                if draw_k is not None:
                    cfg["rungs_by_strategy"][key] = [draw_k]
            if draw_k is not None:
                cfg["n"] = max(cfg["n"], draw_k)
            cfg["problems"] = max(cfg["problems"], idx + 1)
            self.store.update_config(self.run_id, cfg)

    def close(self) -> None:
        """End the session: the run is finished (so `oomlab show` reads it as complete) and the backend closed."""
        if self._closed:
            return
        self._closed = True
        try:
            self._heartbeat.__exit__(None, None, None)
            self.store.finish_run(self.run_id)
        finally:
            self.backend.close()
