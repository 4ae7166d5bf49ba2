"""A Sweep: strategies × budget ladder × task × backend, run to completion, resumably.

Every generation goes through `MeteredBackend`, which serves cached samples from the Store,
draws only the missing ones, measures their energy, and commits them before returning — so
nothing is paid for twice, nothing is spent off the books, and a killed sweep loses nothing.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from typing import Any

from oomlab import __version__
from oomlab.attempts import AttemptRunner
from oomlab.backends.base import (BACKENDS, Backend, GenRequest, Generation, SampleCallback, SamplingParams, Waste,
                                  create_backend)
from oomlab.energy import DEFAULT_TDP_WATTS, EnergyMeter, ServerPower, meter_for
from oomlab.errors import ConfigError, RunBusyError, UnknownNameError
from oomlab.ledger import Pricing
from oomlab.registry import check_options, coerce, constructor_options, show
from oomlab.scorers.base import SCORERS
from oomlab.caps import Caps, CapReached, capped_sweep_backend
from oomlab.compute_ladder import calibrate
from oomlab.store import NewSample, ProblemRow, RunBusy, SampleRow, Store, cache_key, logprobs_key
from oomlab.strategies.base import SCORER_PREFIX, STRATEGIES, DrawStrategy, Strategy, create_strategy, draw_seeds
from oomlab.tasks.base import TASKS, Task, create_task


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'best-of-n:scorer=logprob,temperature=0.7' -> ('best-of-n', {'scorer': 'logprob', 'temperature': 0.7})."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"bad option '{part}' in '{spec}': write key=value, e.g. best-of-n:scorer=logprob")
        options[key.strip().replace("-", "_")] = _parse_value(value.strip())
    return name.strip(), options


def _parse_value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def spec_key(name: str, options: dict[str, Any]) -> str:
    """A canonical key for a strategy configuration, stable across runs."""
    if not options:
        return name
    return name + ":" + ",".join(f"{k}={options[k]}" for k in sorted(options))


def default_ladder(n: int) -> list[int]:
    """1, 2, 4, ..., n (n itself always included)."""
    ladder, k = [], 1
    while k < n:
        ladder.append(k)
        k *= 2
    return ladder + [n]


def parse_ladder(text: str, what: str = "--ladder") -> list[float]:
    """'1,2,4' -> [1, 2, 4]; '1e10,3e10' -> [1e10, 3e10]. Finite numbers only (whole ones as ints)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ConfigError(f"{what} is empty; give budgets separated by commas, e.g. 1,2,4,8")
    for part in parts:
        try:
            float(part)
        except ValueError:
            raise ConfigError(f"{what} takes numbers separated by commas, got {part!r}") from None
    return [_rung(p, what) for p in parts]


def _rung(value: Any, what: str) -> float:
    """One budget: a finite number (text is read as one, whole ones as ints); a number stays as given."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{what} takes numbers, got {value!r}") from None
        value = int(number) if number.is_integer() else number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} takes numbers, got {show(value)}")
    if not math.isfinite(value):
        raise ConfigError(f"{what}: a budget must be a finite number, got {value}")
    return value


def check_fields(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """SweepConfig settings with values of their declared types (the dataclass's own annotations,
    checked by pydantic): a ConfigError naming the key (after `where`, e.g. the config file) otherwise.

    An unknown key names the valid ones and the nearest; a lone strategy is a list of one; a ladder
    may be written '1,2,4' as on the command line.
    """
    hints = typing.get_type_hints(SweepConfig)
    valid = [f.name for f in fields(SweepConfig)]
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            nearest = f" (did you mean '{near[0]}'?)" if near else ""
            raise ConfigError(f"{where}unknown key '{key}'{nearest}; valid keys: {', '.join(sorted(valid))}")
        if key == "strategies" and isinstance(value, str):
            value = [value]
        if key == "ladder" and value is not None:
            if isinstance(value, str):
                value = parse_ladder(value, f"{where}ladder")
            elif isinstance(value, (list, tuple)):
                value = [_rung(v, f"{where}ladder") for v in value]
        out[key] = coerce(hints[key], value, f"{where}{key}")
    return out



@dataclass
class SweepConfig:
    task: str = "arithmetic"
    task_options: dict[str, Any] = field(default_factory=dict)
    backend: str = "llamacpp"
    backend_options: dict[str, Any] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=lambda: ["greedy", "majority", "best-of-n"])
    n: int = 16
    ladder: list[float] | None = None  # rungs in `budget_unit`
    budget_unit: str = "samples"  # "samples" | "tokens" | "flops" (per problem; see compute_ladder.py)
    problems: int = 30
    seed: int = 0
    usd_per_hour: float | None = 2.0  # a user setting: FACTS.md quotes $1.5-$4 per GPU-hour (2026, secondary)
    usd_per_m_prompt: float | None = None
    usd_per_m_completion: float | None = None
    tdp_watts: float = DEFAULT_TDP_WATTS
    energy_counter: str = "auto"

    def validate(self) -> None:
        """Every setting of its declared type and in range, and every task, strategy and backend option
        one that its class takes: all of it checked before anything is loaded."""
        for key, value in check_fields({f.name: getattr(self, f.name) for f in fields(self)}).items():
            setattr(self, key, value)
        if self.n < 1:
            raise ConfigError(f"--n must be at least 1 (got {self.n})")
        if self.problems < 1:
            raise ConfigError(f"--problems must be at least 1 (got {self.problems})")
        if not self.strategies:
            raise ConfigError("give at least one --strategy")
        for name in ("usd_per_hour", "usd_per_m_prompt", "usd_per_m_completion"):
            price = getattr(self, name)
            if price is not None and not (math.isfinite(price) and price >= 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be a price of zero or more, got {price:g}")
        if not (math.isfinite(self.tdp_watts) and self.tdp_watts > 0):
            raise ConfigError(f"--tdp-watts must be a positive power in watts, got {self.tdp_watts:g}")
        if self.budget_unit not in ("samples", "tokens", "flops"):
            raise ConfigError(f"unknown budget unit '{self.budget_unit}'; valid budget units: flops, samples, tokens")
        if self.budget_unit != "samples":
            if not self.ladder or any(b <= 0 for b in self.ladder):
                raise ConfigError(f"--budget-unit {self.budget_unit} needs a --ladder of positive budgets, e.g. 1e10,3e10,1e11")
        else:
            for k in self.ladder or []:
                if k < 1 or k > self.n or k != int(k):
                    raise ConfigError(f"ladder rung {k:g} is not a whole number of samples in 1..{self.n} (--n)")
        self.check_options()

    def check_options(self) -> None:
        """Task, strategy and backend options checked against the constructors they go to: a typo
        names the valid options and the nearest one, a value of the wrong type says what it takes."""
        self.task_options = check_options("task", self.task, TASKS.get(self.task), self.task_options)
        self.strategies = [check_strategy(s) for s in self.strategies]
        for spec in self.strategies:  # a scorer that cannot score this task says so before anything is drawn
            scorer = parse_spec(spec)[1].get("scorer")
            if isinstance(scorer, str) and scorer in SCORERS.names():
                SCORERS.get(scorer).check_task(TASKS.get(self.task))
        try:
            backend = BACKENDS.get(self.backend)
        except UnknownNameError:  # creating it says so; a backend handed over as an object needs no name
            return
        self.backend_options = check_options("backend", self.backend, backend, self.backend_options)

    def rungs(self) -> list[int]:
        """Sample-count rungs (budget unit 'samples'); compute ladders are mapped per strategy at run time."""
        if self.budget_unit != "samples":
            return default_ladder(self.n)
        return sorted({int(k) for k in self.ladder}) if self.ladder else default_ladder(self.n)

    def pricing(self) -> Pricing:
        return Pricing(self.usd_per_hour, self.usd_per_m_prompt, self.usd_per_m_completion)

    def identity(self, model_id: str) -> dict[str, Any]:
        """What makes two sweeps the same sweep (for resuming): everything but where output goes."""
        return {
            "task": self.task, "task_options": self.task_options, "backend": self.backend, "model_id": model_id,
            "strategies": [spec_key(*parse_spec(s)) for s in self.strategies], "n": self.n, "ladder": self.rungs(),
            "problems": self.problems, "seed": self.seed, "budget_unit": self.budget_unit,
            "budgets": self.ladder if self.budget_unit != "samples" else None,
        }



def check_strategy(spec: str) -> str:
    """A strategy spec whose options its class (and its scorer's `scorer_*` settings, the scorer's
    class) takes; returned as given, or canonical when a value was coerced ('depth=2.0' -> 'depth=2')."""
    name, options = parse_spec(spec)
    cls = STRATEGIES.get(name)
    named, _, _ = constructor_options(cls)
    # a strategy with a scorer passes its **options to the scorer (make_scorer): only scorer_* ones
    checked = check_options("strategy", name, cls, options, passthrough=SCORER_PREFIX if "scorer" in named else None)
    if "scorer" in named:
        scorer = checked.get("scorer", named["scorer"].default)
        if isinstance(scorer, str):
            settings = {k.removeprefix(SCORER_PREFIX): v for k, v in checked.items()
                        if k not in named and k.startswith(SCORER_PREFIX)}
            check_options("scorer", scorer, SCORERS.get(scorer), settings, prefix=SCORER_PREFIX)
    if any(type(checked[k]) is not type(options[k]) for k in options):
        canonical = spec_key(name, checked)
        if parse_spec(canonical) == (name, checked):
            return canonical
    return spec

MAX_PROBLEMS_IN_FLIGHT = 1024  # threads; each waits on the backend's own concurrency bound

IDENTITY_FIELDS = ("task", "task_options", "backend", "model_id", "strategies", "n", "ladder", "problems", "seed",
                   "budget_unit", "budgets", "model_sha256")


def config_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """'n: run 8, this sweep 16' for each identity field on which two sweep records differ."""
    return [f"{k}: run {stored.get(k)!r}, this sweep {wanted.get(k)!r}"
            for k in IDENTITY_FIELDS if json.dumps(stored.get(k), sort_keys=True) != json.dumps(wanted.get(k), sort_keys=True)]


class MeteredBackend:
    """A backend seen through the Store: cached samples served, new ones measured and committed one by one.

    Each sample is committed the moment the backend hands it over, so a kill or a failed sibling
    loses only what was in flight. Work that produced no kept sample (a server's retried requests,
    a sample another process committed first, a re-draw made only to add logprobs) is booked as
    waste on the run, never dropped.
    """

    def __init__(self, backend: Backend, store: Store, meter: EnergyMeter | ServerPower, run_id: str | None = None):
        self.backend, self.store, self.meter, self.run_id = backend, store, meter, run_id
        self.model_id, self.facts = backend.model_id, backend.facts
        self.name = getattr(backend, "name", "backend")
        self.drawn_ids: set[int] = set()
        self.served_ids: set[int] = set()
        self._local = threading.local()  # what the attempt running on this thread has spent
        self._count_lock = threading.Lock()
        try:
            self._streams = "on_sample" in inspect.signature(backend.generate).parameters
        except (TypeError, ValueError):
            self._streams = False

    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None,
                 on_token: Callable[[int, str], None] | None = None) -> list[Generation]:
        p = request.params
        keys = [cache_key(self.model_id, request.prompt, p, s) for s in request.seeds]
        rows, stale = self._lookup(keys, request.logprobs)
        missing = [i for i, k in enumerate(keys) if k not in rows]
        if missing:
            todo = missing[:1] if p.greedy else missing  # greedy requests differ only in seed: one draw serves all
            if not p.greedy:
                todo = self._resume_whole_batch(request, keys, rows, missing)
            sub = GenRequest(request.prompt, p, tuple(request.seeds[i] for i in todo), request.logprobs, request.chat)
            span = self.meter.span()
            committed: set[int] = set()

            def commit(j: int, g: Generation) -> None:
                if j in committed:
                    return
                committed.add(j)
                key = keys[todo[j]]
                if key in rows:  # re-drawn only to give its batch-mates their uninterrupted batch
                    self._waste(Waste(g.prompt_tokens // max(g.group_size, 1), g.completion_tokens, g.seconds,
                                      "re-drawn with its interrupted batch", estimated=False), span.joules(g.seconds))
                    return
                rows[key] = self._commit(key, request, g, span, stale)

            # on_token (the backend's TokenCallback) is passed on only when given, so a backend without it still works
            extra = {} if on_token is None else {"on_token": lambda j, piece: on_token(todo[j], piece)}
            try:
                if self._streams:
                    gens = self.backend.generate(sub, on_sample=commit, **extra)
                else:
                    gens = self.backend.generate(sub, **extra)
                for j, g in enumerate(gens):
                    commit(j, g)
            finally:
                self._book_waste(span)
            if p.greedy:
                rows.update({k: rows[keys[todo[0]]] for k in keys})
        out = [rows[k] for k in keys]
        self._spent().extend(r.id for r in out)
        with self._count_lock:
            self.served_ids.update(r.id for r in out)
        if on_sample is not None:
            for i, r in enumerate(out):
                on_sample(i, r.generation)
        return [r.generation for r in out]

    def _resume_whole_batch(self, request: GenRequest, keys: list[str], rows: dict[str, SampleRow],
                            missing: list[int]) -> list[int]:
        """Which seeds to draw: the missing ones, or, when this run was killed in the middle of one of the
        backend's batches, that whole batch again from its start.

        An engine's samples depend on their batch-mates (llama.cpp's batched numerics: re-drawing a
        subset of a batch changes about one text in eight), so only the whole batch reproduces what
        the uninterrupted run would have drawn; its already-committed samples stay as they are and the
        re-draw is booked as waste. A backend whose samples are independent requests says
        `batch_invariant = True` and gets only the missing seeds.
        """
        first = missing[0]
        if first == 0 or getattr(self.backend, "batch_invariant", False):
            return missing
        start_of = getattr(self.backend, "batch_start", None)
        start = start_of(request, first) if start_of is not None else 0
        before = [rows.get(k) for k in keys[start:first]]
        if start >= first or any(r is None for r in before):
            return missing
        size = {r.generation.group_size for r in before if r is not None}
        # interrupted: its committed samples were decoded in a batch larger than what was committed of it
        # (a ladder that grows, 4 then 8 samples, finds batches of exactly 4 and draws only the rest)
        if len(size) != 1 or not first - start < size.pop() <= len(keys) - start:
            return missing
        return list(range(start, len(keys)))

    def _lookup(self, keys: list[str], logprobs: bool) -> tuple[dict[str, SampleRow], dict[str, SampleRow]]:
        """(usable cached rows, rows that exist but lack the logprobs this request needs)."""
        wanted = keys + [logprobs_key(k) for k in keys] if logprobs else keys
        hits = self.store.cached(wanted)
        usable: dict[str, SampleRow] = {}
        stale: dict[str, SampleRow] = {}
        for k in keys:
            row = hits.get(k)
            if row is not None and (not logprobs or row.generation.token_logprobs is not None):
                usable[k] = row
            elif logprobs and logprobs_key(k) in hits:
                usable[k] = hits[logprobs_key(k)]
            elif row is not None:
                stale[k] = row
        return usable, stale

    def _commit(self, key: str, request: GenRequest, g: Generation, span: Any, stale: dict[str, SampleRow]) -> SampleRow:
        joules = span.joules(g.seconds)
        old = stale.get(key)
        if old is not None:
            same = old.generation.text == g.text and old.generation.completion_tokens == g.completion_tokens
            if same and g.token_logprobs is not None and self.store.add_logprobs(old.id, g.token_logprobs):
                self._waste(Waste(g.prompt_tokens, g.completion_tokens, g.seconds, "re-drawn to add logprobs",
                                  estimated=False), joules)
                return self.store.samples([old.id])[old.id]
            key = logprobs_key(key)  # a different text: a new sample under a new key, the old one untouched
        row, inserted = self.store.add_sample(
            NewSample(key, self.model_id, request.prompt, request.params, g, joules, self.meter.measured,
                      self.meter.method), self.run_id)
        if inserted:
            with self._count_lock:
                self.drawn_ids.add(row.id)
        else:
            self._waste(Waste(g.prompt_tokens, g.completion_tokens, g.seconds,
                              "drawn twice (another process committed this sample first)", estimated=False), joules)
        return row

    def _book_waste(self, span: Any) -> None:
        take = getattr(self.backend, "take_waste", None)
        for w in take() if take is not None else ():
            self._waste(w, span.joules(w.seconds))

    def _waste(self, w: Waste, joules: float) -> None:
        self.store.add_waste(self.run_id, self.model_id, w, joules)

    @property
    def drawn(self) -> int:
        return len(self.drawn_ids)

    @property
    def reused(self) -> int:
        """Samples served from the cache that this sweep did not draw."""
        return len(self.served_ids - self.drawn_ids)

    def _spent(self) -> list[int]:
        if not hasattr(self._local, "used"):
            self._local.used = []
        return self._local.used

    def take_used(self) -> list[int]:
        """Sample ids served to this thread since its last call: what the current attempt spent."""
        used, self._local.used = self._spent(), []
        return used

    def close(self) -> None:
        self.backend.close()

    def book_verifier(self, **usage: Any) -> None:
        """Put a verifier request (a PRM's tokens, FLOPs, seconds, scores) on this run's books, in its own column."""
        self.store.add_verifier_usage(self.run_id, **usage)

    def verifier_scores(self, cache_key: str) -> list[float] | None:
        """Scores an identical verifier request already returned (so it is not paid for twice), or None."""
        return self.store.verifier_scores(cache_key)


@dataclass
class SweepResult:
    run_id: str
    resumed: bool
    drawn: int
    reused: int
    stopped_by: str | None = None  # the cap that stopped the sweep (the run stays resumable), if one did


ProgressFn = Callable[[int, int, str], None]


class Sweep:
    def __init__(self, config: SweepConfig, store: Store, backend: Backend | None = None, caps: Caps | None = None):
        """`caps` bound the whole run's books (tokens, dollars, FLOPs, joules; a resumed run's earlier
        samples count): the sweep stops drawing at the first request that could pass one, and the run
        stays resumable with a higher cap."""
        config.validate()
        self.config = config
        self.caps = caps if caps else None
        self.store = store
        self.task: Task = create_task(config.task, **config.task_options)
        self.specs = [parse_spec(s) for s in config.strategies]
        self.strategies: dict[str, Strategy] = {spec_key(n, o): create_strategy(n, **o) for n, o in self.specs}
        self._local_strategies = threading.local()
        self.metered: MeteredBackend | None = None  # the live books of the run in progress (progress bars read it)
        self.runner: AttemptRunner | None = None  # runs and records the attempts of the run in progress
        self.backend = backend or create_backend(config.backend, **config.backend_options)
        self.meter = meter_for(self.backend, config.tdp_watts, config.energy_counter)

    def run(self, resume: str | None = None, progress: ProgressFn | None = None, *, wait: bool = True,
            on_wait: Callable[[RunBusy], None] | None = None, poll_s: float = 1.0) -> SweepResult:
        """Run (or resume) the sweep to completion; samples are committed as they arrive.

        Another live process writing the same run: wait for it (`wait`, telling `on_wait` once), or
        raise RunBusyError naming its pid. A dead writer's run is taken over and resumed.
        """
        identity = self.config_record()
        told = False
        while True:
            claim = self._claim(identity, resume)
            if not isinstance(claim, RunBusy):
                break
            if not wait:
                raise RunBusyError(f"{claim.describe()}; wait for it to finish, or run again to resume it if it dies")
            if on_wait is not None and not told:
                on_wait(claim)
                told = True
            time.sleep(poll_s)
        run_id, resumed = claim
        finished = False
        stopped_by = None
        try:
            with self.store.heartbeat(run_id):
                try:
                    self._run_claimed(run_id, identity, progress)
                except CapReached as e:
                    stopped_by = f"stopped: {e}; the run is resumable (--resume {run_id} with a higher cap)"
            if stopped_by is None:
                self.store.finish_run(run_id)
                finished = True
        finally:
            if not finished:
                self.store.release(run_id)
        assert self.metered is not None
        return SweepResult(run_id, resumed, self.metered.drawn, self.metered.reused, stopped_by)

    def _claim(self, identity: dict[str, Any], resume: str | None) -> tuple[str, bool] | RunBusy:
        if resume is None:
            cfg = self.config
            return self.store.open_run(
                identity, backend=cfg.backend, model_id=self.backend.model_id, facts=self.backend.facts,
                task=cfg.task, energy_method=self.meter.method, pricing=cfg.pricing(), version=__version__,
            )
        info = self.store.run(resume)  # raises for an unknown id
        if info.finished:
            raise ConfigError(f"run {resume} is finished ({info.finished_at}); nothing to resume "
                              f"(`oomlab show {resume}` shows it)")
        differ = config_differences(info.config, identity)
        if differ:
            raise ConfigError(f"--resume {resume}: the run was made with a different configuration: {'; '.join(differ)}")
        busy = self.store.claim(resume)
        return busy if busy is not None else (resume, True)

    def _run_claimed(self, run_id: str, identity: dict[str, Any], progress: ProgressFn | None) -> None:
        cfg = self.config
        metered = self.metered = MeteredBackend(self.backend, self.store, self.meter, run_id)
        work: Any = metered if self.caps is None else capped_sweep_backend(metered, self.caps, cfg.pricing(), run_id)
        runner = self.runner = AttemptRunner(self.task, work, self.store, run_id, cfg.n, cfg.seed)
        problems = self.task.problems(cfg.problems, cfg.seed)
        self.store.add_problems(run_id, [ProblemRow(i, p.id, self.task.prompt(p), p.reference, p.inputs, p.metadata)
                                         for i, p in enumerate(problems)])
        rungs = cfg.rungs()
        per_strategy = {key: s.budgets(rungs) for key, s in self.strategies.items()}
        if cfg.budget_unit != "samples":
            per_strategy = calibrate(runner, self.strategies, problems[0], [float(b) for b in cfg.ladder or []],
                                     cfg.budget_unit)
            self.store.update_config(run_id, {**identity, "rungs_by_strategy": per_strategy})
        total = len(problems) * len(self.strategies)
        done = [0]
        done_lock = threading.Lock()

        def solve(i: int, problem: Any) -> None:
            strategies = self._thread_strategies()
            self._prefetch(problem, runner)
            for key, strategy in strategies.items():
                runner.run(key, strategy, i, problem, per_strategy[key])
                with done_lock:
                    done[0] += 1
                    n_done = done[0]
                if progress:
                    progress(n_done, total, key)
            runner.backend.take_used()

        workers = self.problems_in_flight(len(problems))
        if workers <= 1:
            for i, problem in enumerate(problems):
                solve(i, problem)
        else:  # problems in flight: the backend's own concurrency bound is the only limit on requests
            with ThreadPoolExecutor(workers, thread_name_prefix="oomlab-problem") as pool:
                futures = [pool.submit(solve, i, problem) for i, problem in enumerate(problems)]
                try:
                    for f in as_completed(futures):
                        f.result()
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise

    def problems_in_flight(self, n_problems: int) -> int:
        """How many problems to work on at once: one per request the backend may have in flight.

        An embedded engine (no `concurrency`) decodes one batch at a time, so it gets one problem;
        an HTTP pool or a Ray executor gets as many as it can serve, each problem adding at least
        one request, so the servers' continuous batching stays full.
        """
        concurrency = getattr(self.backend, "concurrency", None)
        if not isinstance(concurrency, int) or concurrency <= 1:
            return 1
        return max(1, min(n_problems, concurrency, MAX_PROBLEMS_IN_FLIGHT))

    def _thread_strategies(self) -> dict[str, Strategy]:
        """Strategy objects of this thread's own: a strategy may keep state while it solves."""
        if threading.current_thread() is threading.main_thread():
            return self.strategies
        local = self._local_strategies
        if not hasattr(local, "strategies"):
            local.strategies = {spec_key(n, o): create_strategy(n, **o) for n, o in self.specs}
        return local.strategies

    def config_record(self) -> dict[str, Any]:
        record = self.config.identity(self.backend.model_id)
        record["task_config"] = self.task.config()
        record["model_sha256"] = getattr(self.backend, "sha256", None)  # the exact weights, for reproduction
        record["pricing"] = self.config.pricing().__dict__
        record["strategy_options"] = {spec_key(n, o): {"name": n, **o} for n, o in self.specs}
        # what analysis reads of each strategy (label, oracle, kind, estimator, sampling): no object rebuilt
        record["strategy_records"] = {key: s.record() for key, s in self.strategies.items()}
        record["endpoint"] = getattr(self.backend, "endpoint", None)  # how it was reached: books, not identity
        return record

    def _prefetch(self, problem: Any, runner: AttemptRunner) -> None:
        """Draw once per sampling setting the largest N any draw strategy needs, with logprobs if any needs them."""
        wants: dict[SamplingParams, tuple[int, bool]] = {}
        for s in self.strategies.values():
            if isinstance(s, DrawStrategy):
                params = s.sampling(self.task)
                n = runner.draw_size(params)
                old_n, old_lp = wants.get(params, (0, False))
                wants[params] = (max(old_n, n), old_lp or s.needs_logprobs())
        prompt = self.task.prompt(problem)
        for params, (n, lp) in wants.items():
            runner.backend.generate(GenRequest(prompt, params, draw_seeds(self.config.seed, n), logprobs=lp))
