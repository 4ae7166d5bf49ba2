"""Hard caps on tokens, dollars, FLOPs and joules, kept by the runner rather than by any one front end.

`CappedBackend` wraps a metered backend (`oomlab.sweep.MeteredBackend`): before each request it
projects the request's worst case (every sample running to `max_tokens`) onto the `Books` of the
work so far, and refuses with `CapReached` if a cap would be exceeded; after it, it adds what the
samples really cost. The same wrapper caps one served request (`oomlab serve`) and a whole sweep.

The books count every sample the work uses, served from the cache or drawn now, each once, and
each distinct prompt's evaluation once (as `ledger.attempt_cost` does): a cap then bounds what
the answer costs, so the same seeded request under the same cap gives the same answer whether
or not its samples were cached, and a resumed sweep's cap counts what the run had already used.

How hard each cap is:
- tokens, FLOPs, and dollars priced per token: exact worst-case bounds, never exceeded. A prompt's
  tokens come from the engine's tokenizer, or from an earlier sample of the same prompt; an
  upstream server's prompt seen for the first time is bounded by its UTF-8 bytes plus 8 special
  and up to 64 chat-template tokens, so a small cap can refuse a first request that would have fit;
- dollars priced per hour of device time, and joules: projected from the cost per token seen so
  far (this unit's, else `Rates` shared across units, e.g. a server's earlier requests), so they
  can be exceeded by that projection's error; with nothing seen yet the first request is allowed,
  and the overshoot, if any, is reported;
- a verifier's requests (a PRM's, booked through `book_verifier`) are counted when they are
  booked but not projected before they run, so they can take work past a cap by one scoring batch
  (the next generation is then refused).
Concurrent requests reserve their worst case first, so threads sharing one cap cannot together
run past it.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from oomlab.backends.base import GenRequest, Generation, ModelFacts, SampleCallback, TokenCallback
from oomlab.energy import energy_known
from oomlab.errors import ConfigError, OomlabError
from oomlab.ledger import HUMAN_TOKENS_PER_MINUTE, Pricing, charge, charged_prompt_tokens, completion_flops, flops_known, prompt_flops
from oomlab.numbers import amount
from oomlab.store import SampleRow, cache_key, logprobs_key

if TYPE_CHECKING:
    from oomlab.store import Store

CAP_NAMES = ("tokens", "usd", "flops", "joules")
CAP_UNITS = {"tokens": "tokens", "usd": "$", "flops": "FLOPs", "joules": "J"}
CHAT_TEMPLATE_TOKENS = 64  # what a server's chat template may add to a prompt, at most (for the worst case)


@dataclass(frozen=True)
class Caps:
    """Upper bounds on one unit of work; None: no bound."""

    tokens: float | None = None
    usd: float | None = None
    flops: float | None = None
    joules: float | None = None

    def __post_init__(self) -> None:
        for name in CAP_NAMES:
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0):
                raise ConfigError(f"cap '{name}' must be a positive number, got {v!r}")

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None, where: str = "caps") -> Caps:
        """Caps from a mapping such as {"tokens": 500, "usd": 0.01}; unknown keys are refused by name."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be an object with any of {', '.join(CAP_NAMES)}")
        aliases = {"max_tokens": "tokens", "max_usd": "usd", "dollars": "usd", "max_flops": "flops", "max_joules": "joules"}
        values: dict[str, float] = {}
        for key, v in data.items():
            name = aliases.get(key, key)
            if name not in CAP_NAMES:
                raise ConfigError(f"unknown cap '{key}' in {where}; valid caps: {', '.join(CAP_NAMES)}")
            if v is None:
                continue
            if isinstance(v, bool):
                raise ConfigError(f"cap '{key}' in {where} must be a number, got {v!r}")
            try:
                values[name] = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"cap '{key}' in {where} must be a number, got {v!r}") from None
        return cls(**values)

    def tighter(self, other: Caps) -> Caps:
        """Each bound the smaller of the two: a request may lower the server's default caps, never raise them."""
        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        return Caps(**{n: low(getattr(self, n), getattr(other, n)) for n in CAP_NAMES})

    def items(self) -> list[tuple[str, float]]:
        return [(n, getattr(self, n)) for n in CAP_NAMES if getattr(self, n) is not None]

    def __bool__(self) -> bool:
        return bool(self.items())

    def as_dict(self) -> dict[str, float | None]:
        return {n: getattr(self, n) for n in CAP_NAMES}


@dataclass(frozen=True)
class Spend:
    """What a unit of work cost, in the quantities caps bound (NaN: unknown)."""

    prompt_tokens: float = 0.0  # billed: each request's prompt for a server, a shared prompt once for an engine
    completion_tokens: float = 0.0
    flops: float = 0.0
    usd: float = 0.0
    joules: float = 0.0
    seconds: float = 0.0
    wait_seconds: float = 0.0
    samples: int = 0
    verifier_requests: int = 0
    verifier_tokens: float = 0.0
    energy_measured: bool = False

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens

    @property
    def human_minutes(self) -> float:
        return self.completion_tokens / HUMAN_TOKENS_PER_MINUTE

    def value(self, cap: str) -> float:
        return self.tokens if cap == "tokens" else float(getattr(self, cap))

    def plus(self, other: Spend) -> Spend:
        return Spend(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Spend)
                        if f.name != "energy_measured"}, energy_measured=self.energy_measured and other.energy_measured)


class CapReached(OomlabError):
    """The next request would take a unit of work past one of its caps (or it is already past)."""

    def __init__(self, cap: str, limit: float, spent: float, projected: float):
        self.cap, self.limit, self.spent, self.projected = cap, limit, spent, projected
        unit = CAP_UNITS[cap]
        super().__init__(f"the {cap} cap ({amount(limit)} {unit}) is reached: {amount(spent)} {unit} spent, and the next "
                         f"request could cost up to {amount(projected)} more")

    @property
    def finish_reason(self) -> str:
        """What a served response says stopped it: cap_tokens, cap_usd, cap_flops or cap_joules."""
        return f"cap_{self.cap}"

    def as_dict(self) -> dict[str, Any]:
        return {"cap": self.cap, "limit": self.limit, "spent": self.spent, "next_request_up_to": self.projected}


class Rates:
    """Cost per token seen so far, shared across units of work (a server's requests): projects time and energy."""

    PROMPTS_KEPT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = self.joules = self.tokens = 0.0
        self.joules_known = True
        self._prompts: OrderedDict[str, int] = OrderedDict()  # prompt -> tokens, as a server counted them

    def learn_prompt(self, prompt: str, tokens: int) -> None:
        """Remember a prompt's token count (a server's own count), so its next worst case is exact, not a bound."""
        with self._lock:
            self._prompts[prompt] = tokens
            self._prompts.move_to_end(prompt)
            while len(self._prompts) > self.PROMPTS_KEPT:
                self._prompts.popitem(last=False)

    def prompt_tokens(self, prompt: str) -> int | None:
        with self._lock:
            return self._prompts.get(prompt)

    def observe(self, spend: Spend, computed_tokens: float) -> None:
        with self._lock:
            self.seconds += spend.seconds
            self.tokens += computed_tokens
            if math.isfinite(spend.joules):
                self.joules += spend.joules
            else:
                self.joules_known = False

    def seconds_per_token(self) -> float | None:
        with self._lock:
            return self.seconds / self.tokens if self.tokens > 0 and self.seconds > 0 else None

    def joules_per_second(self) -> float | None:
        with self._lock:
            return self.joules / self.seconds if self.seconds > 0 and self.joules_known else None


class Books:
    """The bill of one unit of work: each distinct sample once, each distinct prompt's evaluation once.

    `prompt_tokens` is what was billed: a server bills every request's prompt (less its cached
    tokens); an embedded engine evaluates a prompt shared by a batch once, so it is paid once.
    """

    def __init__(self, facts: ModelFacts, pricing: Pricing, per_request_prompts: bool = False):
        """`per_request_prompts`: charge prompts as the run's ledger does (each request's prompt, shared
        among its batch: `ledger.charge`) rather than each distinct prompt once — a sweep's cap then
        bounds exactly what `oomlab show` reports for the run."""
        self.facts, self.pricing = facts, pricing
        self.per_request_prompts = per_request_prompts
        self._charged_prompt = self._charged_prompt_flops = 0.0
        self._lock = threading.Lock()
        self.rows: dict[int, SampleRow] = {}
        self._prompts: dict[str, int] = {}  # prompt -> its tokens, for every prompt some sample of ours used
        self._engine_prompts: set[str] = set()  # prompts evaluated by an engine (paid once, not per request)
        self._billed = 0.0
        self._completion = 0.0
        self._completion_flops = 0.0
        self._seconds = self._wait = self._joules = 0.0
        self._measured = True
        self._verifier = {"requests": 0, "prompt_tokens": 0.0, "flops": 0.0, "seconds": 0.0, "wait_seconds": 0.0}

    def add(self, rows: Iterable[SampleRow]) -> list[SampleRow]:
        """Put samples on the books (a sample already on them is not charged again); returns the new ones."""
        new = []
        with self._lock:
            for r in rows:
                if r.id in self.rows:
                    continue
                self.rows[r.id] = r
                new.append(r)
                g = r.generation
                self._prompts.setdefault(r.prompt, g.prompt_tokens)
                if self.per_request_prompts:
                    e = charge(g, self.facts, r.joules, r.energy_measured, self.pricing)
                    self._charged_prompt += e.billed_prompt_tokens
                    share = charged_prompt_tokens(g) / g.prompt_tokens if g.prompt_tokens else 0.0
                    self._charged_prompt_flops += prompt_flops(self.facts, g.prompt_tokens) * share
                if g.billed_prompt_tokens is None:
                    self._engine_prompts.add(r.prompt)
                else:
                    self._billed += g.billed_prompt_tokens
                self._completion += g.completion_tokens
                self._completion_flops += completion_flops(self.facts, g.prompt_tokens, g.completion_tokens)
                self._seconds += g.seconds
                self._wait += g.wait_seconds
                self._joules += r.joules if energy_known(r.energy_method) else float("nan")
                self._measured = self._measured and r.energy_measured
        return new

    def add_verifier(self, prompt_tokens: float, flops: float, seconds: float, wait_seconds: float = 0.0) -> None:
        """A verifier's request (a PRM's): its prompt tokens, FLOPs and time; its energy is unknown."""
        with self._lock:
            v = self._verifier
            v["requests"] += 1
            v["prompt_tokens"] += prompt_tokens
            v["flops"] += flops
            v["seconds"] += seconds
            v["wait_seconds"] += wait_seconds

    def knows_prompt(self, prompt: str) -> int | None:
        """The prompt's tokens if a sample of ours already used it."""
        with self._lock:
            return self._prompts.get(prompt)

    def prompt_paid(self, prompt: str) -> bool:
        """Whether a new request of `prompt` is already paid for (never, when each request pays its own)."""
        with self._lock:
            return not self.per_request_prompts and prompt in self._engine_prompts

    def computed_tokens(self) -> float:
        """Tokens the model evaluated: each distinct prompt once, plus every completion (for time projections)."""
        with self._lock:
            return float(sum(self._prompts.values())) + self._completion

    def spend(self) -> Spend:
        with self._lock:
            v = self._verifier
            known = flops_known(self.facts)
            if self.per_request_prompts:
                prompt = self._charged_prompt + v["prompt_tokens"]
                flops = self._charged_prompt_flops + self._completion_flops if known else float("nan")
            else:
                engine_prompt = float(sum(self._prompts[p] for p in self._engine_prompts))
                prompt = self._billed + engine_prompt + v["prompt_tokens"]
                flops = (sum(prompt_flops(self.facts, P) for P in self._prompts.values()) + self._completion_flops
                         if known else float("nan"))
            if v["requests"]:
                flops += v["flops"]
            seconds = self._seconds + v["seconds"]
            verifier_joules = float("nan") if v["requests"] else 0.0  # a verifier server's power is not known
            return Spend(
                prompt_tokens=prompt, completion_tokens=self._completion, flops=flops,
                usd=self.pricing.dollars(seconds, prompt, self._completion),
                joules=self._joules + verifier_joules, seconds=seconds, wait_seconds=self._wait + v["wait_seconds"],
                samples=len(self.rows), verifier_requests=int(v["requests"]), verifier_tokens=v["prompt_tokens"],
                energy_measured=bool(self.rows) and self._measured and not v["requests"],
            )


class CappedBackend:
    """A metered backend that never starts a request whose worst case would take its Books past the Caps.

    Everything it serves is put on `books` (so it is also the bill of the work); `served` lists the
    rows it handed out, in order, one per generation. Other attributes are the inner backend's, so
    it can stand wherever the metered backend stood (a sweep's strategies, a judge, a PRM).
    """

    def __init__(self, inner: Any, caps: Caps | None = None, books: Books | None = None, rates: Rates | None = None):
        self.inner = inner
        self.caps = caps or Caps()
        self.books = books or Books(inner.facts, Pricing())
        self.rates = rates
        self.store: Store = inner.store
        self.model_id: str = inner.model_id
        self.facts: ModelFacts = inner.facts
        raw = getattr(inner, "backend", inner)
        self.remote = bool(getattr(raw, "remote", False))
        self._tokenize = getattr(raw, "tokenize", None)
        self._prompt_tokens: dict[str, int] = {}
        self._lock = threading.RLock()  # the check and the reservation are one step
        self._reserved = Spend()
        self._local = threading.local()
        self.served: list[SampleRow] = []
        self.drawn_now: set[int] = set()  # ids of rows this wrapper's requests drew (not served from the cache)
        self.overshoot: CapReached | None = None  # a projected cap that the real cost went past
        self._check_known()

    def _check_known(self) -> None:
        if self.caps.flops is not None and not flops_known(self.facts):
            raise ConfigError("a FLOPs cap needs the model's facts (n_params, n_layer, ...); this backend has none "
                              f"({self.facts.source})")
        meter_unknown = getattr(getattr(self.inner, "meter", None), "method", "")
        if self.caps.joules is not None and meter_unknown and not energy_known(meter_unknown):
            raise ConfigError(f"a joules cap needs a known energy; this backend's energy is {meter_unknown}")

    def __getattr__(self, name: str) -> Any:  # take_used, drawn, reused, close, verifier_scores, ...
        return getattr(self.inner, name)

    # -- projection -----------------------------------------------------------------------------
    def prompt_tokens(self, prompt: str, chat: bool = False) -> int:
        """The prompt's tokens: known from an earlier sample, counted by the engine's tokenizer, or bounded.

        The bound, for a server whose tokenizer we do not have: every token of a byte-level tokenizer is at
        least one byte, plus the special tokens around it, plus (a chat request) up to CHAT_TEMPLATE_TOKENS
        of the server's chat template.
        """
        known = self.books.knows_prompt(prompt)
        if known is None and self.rates is not None:
            known = self.rates.prompt_tokens(prompt)
        if known is not None:
            return known
        if prompt not in self._prompt_tokens:
            if self._tokenize is not None:
                count = len(self._tokenize(prompt))
            else:
                count = len(prompt.encode("utf-8")) + 8 + (CHAT_TEMPLATE_TOKENS if chat else 0)
            self._prompt_tokens[prompt] = count
        return self._prompt_tokens[prompt]

    def worst_case(self, request: GenRequest, max_tokens: int | None = None) -> Spend:
        """The most `request` could cost: every sample runs to max_tokens; a greedy request is one sample."""
        P = self.prompt_tokens(request.prompt, request.chat)
        m = request.params.max_tokens if max_tokens is None else max_tokens
        n = 1 if request.params.greedy else request.n
        if self.remote:
            billed = float(n * P)
            first_prompt = P if self.books.per_request_prompts or self.books.knows_prompt(request.prompt) is None else 0
        else:
            billed = first_prompt = 0 if self.books.prompt_paid(request.prompt) else P
        completion = float(n * m)
        flops = (prompt_flops(self.facts, first_prompt) if first_prompt else 0.0) + n * completion_flops(self.facts, P, m) \
            if flops_known(self.facts) else float("nan")
        seconds = self._seconds_for(first_prompt + completion)
        pricing = self.books.pricing
        per_token = pricing.usd_per_m_prompt is not None or pricing.usd_per_m_completion is not None
        usd = pricing.dollars(seconds or 0.0, billed, completion) if per_token or seconds is not None else 0.0
        jps = self._joules_per_second()
        joules = jps * seconds if jps is not None and seconds is not None else 0.0
        return Spend(prompt_tokens=billed, completion_tokens=completion, flops=flops, usd=usd, joules=joules,
                     seconds=seconds or 0.0, samples=n)

    def _seconds_for(self, tokens: float) -> float | None:
        done = self.books.computed_tokens()
        spent = self.books.spend()
        if done > 0 and spent.seconds > 0:
            return spent.seconds / done * tokens
        rate = self.rates.seconds_per_token() if self.rates is not None else None
        return None if rate is None else rate * tokens

    def _joules_per_second(self) -> float | None:
        spent = self.books.spend()
        if spent.seconds > 0 and math.isfinite(spent.joules) and spent.samples:
            return spent.joules / spent.seconds
        return self.rates.joules_per_second() if self.rates is not None else None

    def refusal(self, request: GenRequest, max_tokens: int | None = None) -> CapReached | None:
        """The cap `request` would break (worst case, counting what is already spent or reserved), or None."""
        if not self.caps:
            return None
        with self._lock:
            have = self.books.spend().plus(self._reserved)
        extra = self.worst_case(request, max_tokens)
        for cap, limit in self.caps.items():
            spent, more = have.value(cap), extra.value(cap)
            if spent >= limit or spent + more > limit:
                return CapReached(cap, limit, spent, more)
        return None

    def affordable(self, request: GenRequest) -> int:
        """How many of the request's first samples fit under the caps (all of them when uncapped)."""
        if not self.caps:
            return request.n
        for k in range(request.n, 0, -1):
            if self.refusal(replace(request, seeds=request.seeds[:k])) is None:
                return k
        return 0

    def fit_max_tokens(self, request: GenRequest) -> int:
        """The largest max_tokens (up to the request's) at which the request fits under the caps; 0: none."""
        lo, hi = 0, request.params.max_tokens
        if self.refusal(request) is None:
            return hi
        while lo < hi:  # the worst case grows with max_tokens
            mid = (lo + hi + 1) // 2
            if self.refusal(request, mid) is None:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- the backend interface --------------------------------------------------------------------
    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        """Refuse (CapReached) if the worst case does not fit; else serve the request and book what it cost."""
        with self._lock:  # atomic: two threads cannot both pass the check on the same headroom
            refused = self.refusal(request)
            if refused is not None:
                raise refused
            reserve = self.worst_case(request) if self.caps else Spend()
            self._reserved = self._reserved.plus(reserve)
        keys = self._keys(request)
        try:
            before = set(self.store.cached(keys)) if keys else set()
            extra: dict[str, Any] = {}
            if on_sample is not None:
                extra["on_sample"] = on_sample
            if on_token is not None:  # only to backends that take it (a test double may not)
                extra["on_token"] = on_token
            gens = self.inner.generate(request, **extra)
            rows = self._rows(request, gens, keys, before)
            self.books.add(rows)
            if self.rates is not None and rows:
                self.rates.learn_prompt(request.prompt, rows[0].generation.prompt_tokens)
        finally:
            with self._lock:
                self._reserved = Spend(**{f.name: getattr(self._reserved, f.name) - getattr(reserve, f.name)
                                          for f in fields(Spend) if f.name != "energy_measured"})
        with self._lock:
            self.served.extend(rows)
        self._note_overshoot()
        return gens

    def _keys(self, request: GenRequest) -> list[str]:
        keys = [cache_key(self.model_id, request.prompt, request.params, s) for s in request.seeds]
        return keys + [logprobs_key(k) for k in keys] if request.logprobs else keys

    def _rows(self, request: GenRequest, gens: list[Generation], keys: list[str], before: set[str]) -> list[SampleRow]:
        """The stored row behind each generation the metered backend returned (the cache holds every one)."""
        hits = self.store.cached(keys)
        n = len(request.seeds)
        rows: list[SampleRow] = []
        for i, g in enumerate(gens):
            options = [(k, hits.get(k)) for k in ((keys[i], keys[n + i]) if request.logprobs else (keys[i],))]
            found = [(k, r) for k, r in options if r is not None and r.generation.text == g.text]
            if not found:  # a backend that does not commit (a test double): book the generation as it is
                continue
            key, row = next(((k, r) for k, r in found if r.generation.token_logprobs is not None), found[0]) \
                if request.logprobs else found[0]
            if key not in before:
                self.drawn_now.add(row.id)
            rows.append(row)
        return rows

    def _note_overshoot(self) -> None:
        spent = self.books.spend()
        for cap, limit in self.caps.items():
            v = spent.value(cap)
            if math.isfinite(v) and v > limit and self.overshoot is None:
                self.overshoot = CapReached(cap, limit, v, 0.0)

    def book_verifier(self, **usage: Any) -> None:
        """A verifier request (a PRM's) on this unit's books and on the run's."""
        flops = usage.get("flops", float("nan"))
        self.books.add_verifier(float(usage.get("prompt_tokens", 0)), flops if flops is not None else float("nan"),
                                float(usage.get("seconds", 0.0)), float(usage.get("wait_seconds", 0.0)))
        book = getattr(self.inner, "book_verifier", None)
        if book is not None:
            book(**usage)


def capped_sweep_backend(metered: Any, caps: Caps, pricing: Pricing, run_id: str | None = None) -> CappedBackend:
    """The sweep's metered backend under caps for the whole run; a resumed run's earlier samples count too.

    Use it wherever the sweep used `metered` (prefetch and attempts); a `CapReached` out of a
    problem then stops the sweep, leaving the run resumable with a higher cap.
    """
    books = Books(metered.facts, pricing, per_request_prompts=True)
    if run_id is not None:
        store = metered.store
        ids = sorted({i for a in store.attempts(run_id) for i in a.sample_ids})
        books.add(store.samples(ids).values())
    return CappedBackend(metered, caps, books)
