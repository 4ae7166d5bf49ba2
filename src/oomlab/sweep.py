"""A Sweep: strategies × budget ladder × task × backend, run to completion, resumably.

Every generation goes through `MeteredBackend`, which serves cached samples from the Store,
draws only the missing ones, measures their energy, and commits them before returning — so
nothing is paid for twice, nothing is spent off the books, and a killed sweep loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oomlab import __version__
from oomlab.backends.base import Backend, GenRequest, Generation, SamplingParams, create_backend
from oomlab.energy import DEFAULT_TDP_WATTS, EnergyMeter
from oomlab.errors import ConfigError
from oomlab.ledger import Pricing
from oomlab.store import AttemptRow, Store, cache_key
from oomlab.strategies.base import DrawStrategy, Strategy, create_strategy, draw_seeds
from oomlab.tasks.base import Task, create_task


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'best-of-n:scorer=logprob,temperature=0.7' -> ('best-of-n', {'scorer': 'logprob', 'temperature': 0.7})."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
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
        if self.n < 1:
            raise ConfigError(f"--n must be at least 1 (got {self.n})")
        if self.problems < 1:
            raise ConfigError(f"--problems must be at least 1 (got {self.problems})")
        if not self.strategies:
            raise ConfigError("give at least one --strategy")
        if self.budget_unit not in ("samples", "tokens", "flops"):
            raise ConfigError(f"unknown budget unit '{self.budget_unit}'; valid budget units: flops, samples, tokens")
        if self.budget_unit != "samples":
            if not self.ladder or any(b <= 0 for b in self.ladder):
                raise ConfigError(f"--budget-unit {self.budget_unit} needs a --ladder of positive budgets, e.g. 1e10,3e10,1e11")
            return
        for k in self.rungs():
            if k < 1 or k > self.n or k != int(k):
                raise ConfigError(f"ladder rung {k} is not a whole number in 1..{self.n} (--n)")

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


class MeteredBackend:
    """A backend seen through the Store: cached samples served, new ones measured and committed."""

    def __init__(self, backend: Backend, store: Store, meter: EnergyMeter, run_id: str | None = None):
        self.backend, self.store, self.meter, self.run_id = backend, store, meter, run_id
        self.model_id, self.facts = backend.model_id, backend.facts
        self.name = getattr(backend, "name", "backend")
        self.drawn_ids: set[int] = set()
        self.served_ids: set[int] = set()
        self._used: list[int] = []

    def generate(self, request: GenRequest) -> list[Generation]:
        p = request.params
        keys = [cache_key(self.model_id, request.prompt, p, s) for s in request.seeds]
        hits = self.store.cached(keys)
        ok = {k: r for k, r in hits.items() if not request.logprobs or r.generation.token_logprobs is not None}
        missing = [s for s, k in zip(request.seeds, keys) if k not in ok]
        if missing:
            # greedy requests differ only in seed: one draw serves them all
            todo = missing[:1] if p.greedy else missing
            sub = GenRequest(request.prompt, p, tuple(todo), request.logprobs, request.chat)
            with self.meter.window() as reading:
                gens = self.backend.generate(sub)
            share = reading.joules / max(len(gens), 1)
            rows = [
                (cache_key(self.model_id, request.prompt, p, g.seed), self.model_id, request.prompt, p, g, share,
                 reading.measured, reading.method)
                for g in gens
            ]
            self.drawn_ids.update(self.store.add_samples(rows, self.run_id))
            ok.update(self.store.cached([r[0] for r in rows]))
        out = [ok[k] for k in keys]
        self._used.extend(r.id for r in out)
        self.served_ids.update(r.id for r in out)
        return [r.generation for r in out]

    @property
    def drawn(self) -> int:
        return len(self.drawn_ids)

    @property
    def reused(self) -> int:
        """Samples served from the cache that this sweep did not draw."""
        return len(self.served_ids - self.drawn_ids)

    def take_used(self) -> list[int]:
        """Sample ids served since the last call: what the current attempt spent."""
        used, self._used = self._used, []
        return used

    def close(self) -> None:
        self.backend.close()


@dataclass
class SweepResult:
    run_id: str
    resumed: bool
    drawn: int
    reused: int


ProgressFn = Callable[[int, int, str], None]


class Sweep:
    def __init__(self, config: SweepConfig, store: Store, backend: Backend | None = None):
        config.validate()
        self.config = config
        self.store = store
        self.task: Task = create_task(config.task, **config.task_options)
        self.specs = [parse_spec(s) for s in config.strategies]
        self.strategies: dict[str, Strategy] = {spec_key(n, o): create_strategy(n, **o) for n, o in self.specs}
        self.backend = backend or create_backend(config.backend, **config.backend_options)
        self.meter = EnergyMeter(config.tdp_watts, config.energy_counter)

    def run(self, resume: str | None = None, progress: ProgressFn | None = None) -> SweepResult:
        cfg = self.config
        identity = self.config_record()
        run_id = resume or self.store.resumable_run(identity)
        resumed = run_id is not None
        if run_id is None:
            run_id = self.store.create_run(
                identity, backend=cfg.backend, model_id=self.backend.model_id, facts=self.backend.facts,
                task=cfg.task, energy_method=self.meter.method, pricing=cfg.pricing(), version=__version__,
            )
        else:
            self.store.run(run_id)  # raises for an unknown id
        metered = MeteredBackend(self.backend, self.store, self.meter, run_id)
        problems = self.task.problems(cfg.problems, cfg.seed)
        self.store.add_problems(
            run_id, [(i, p.id, self.task.prompt(p), p.reference, p.inputs, p.metadata) for i, p in enumerate(problems)]
        )
        rungs = cfg.rungs()
        per_strategy = {key: s.budgets(rungs) for key, s in self.strategies.items()}
        if cfg.budget_unit != "samples":
            from oomlab.compute_ladder import calibrate

            per_strategy = calibrate(self, run_id, problems[0], metered)
            self.store.update_config(run_id, {**identity, "rungs_by_strategy": per_strategy})
        total = len(problems) * len(self.strategies)
        done = 0
        for i, problem in enumerate(problems):
            before = (metered.drawn, metered.reused)
            self._prefetch(problem, metered, rungs)
            for key, strategy in self.strategies.items():
                self._attempt(run_id, i, problem, key, strategy, metered, per_strategy[key])
                done += 1
                if progress:
                    progress(done, total, key)
            metered.take_used()
            self.store.count_samples(run_id, metered.drawn - before[0], metered.reused - before[1])
        self.store.finish_run(run_id)
        return SweepResult(run_id, resumed, metered.drawn, metered.reused)

    def config_record(self) -> dict[str, Any]:
        record = self.config.identity(self.backend.model_id)
        record["task_config"] = self.task.config()
        record["model_sha256"] = getattr(self.backend, "sha256", None)  # the exact weights, for reproduction
        record["pricing"] = self.config.pricing().__dict__
        record["strategy_options"] = {spec_key(n, o): {"name": n, **o} for n, o in self.specs}
        return record

    def _prefetch(self, problem: Any, metered: MeteredBackend, rungs: list[int]) -> None:
        """Draw once per sampling setting the largest N any draw strategy needs, with logprobs if any needs them."""
        wants: dict[SamplingParams, tuple[int, bool]] = {}
        for s in self.strategies.values():
            if isinstance(s, DrawStrategy):
                params = s.sampling(self.task)
                n = self._draw_size(params)
                old_n, old_lp = wants.get(params, (0, False))
                wants[params] = (max(old_n, n), old_lp or s.needs_logprobs())
        prompt = self.task.prompt(problem)
        for params, (n, lp) in wants.items():
            metered.generate(GenRequest(prompt, params, draw_seeds(self.config.seed, n), logprobs=lp))

    def _draw_size(self, params: SamplingParams) -> int:
        """N samples per problem for every sampled draw (greedy needs one): all rungs are estimated from it."""
        return 1 if params.greedy else self.config.n

    def _attempt(self, run_id: str, i: int, problem: Any, key: str, strategy: Strategy, metered: MeteredBackend,
                 budgets: list[int]) -> None:
        if isinstance(strategy, DrawStrategy):
            params = strategy.sampling(self.task)
            n = self._draw_size(params)
            if self.store.has_attempt(run_id, key, i, n):
                return
            metered.take_used()
            strategy.bind(metered)
            req = GenRequest(self.task.prompt(problem), params, draw_seeds(self.config.seed, n),
                             logprobs=strategy.needs_logprobs())
            draw = strategy.make_draw(metered.generate(req), problem, self.task)  # a judge's samples follow the draw's
            strategy.extra_generations()
            pick = strategy.select(draw, self.config.seed)
            answer = None if pick is None else draw.answers[pick]
            trace = {"answers": list(draw.answers), "correct": list(draw.correct),
                     "scores": None if draw.scores is None else list(draw.scores)}
            self.store.add_attempt(run_id, AttemptRow(key, i, n, answer, self.task.check(answer, problem),
                                                      metered.take_used(), trace))
            return
        for b in budgets:
            if self.store.has_attempt(run_id, key, i, b):
                continue
            metered.take_used()
            attempt = strategy.solve(problem, self.task, metered, b, seed=self.config.seed)
            self.store.add_attempt(run_id, AttemptRow(key, i, b, attempt.answer, attempt.correct,
                                                      metered.take_used(), dict(attempt.trace)))


