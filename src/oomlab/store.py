"""The Store: one SQLite file holding runs, problems, samples (the cache) and attempts.

Samples are keyed by (model id, prompt, sampling parameters, seed), so a sample is never paid
for twice; every batch of samples is committed as soon as it is drawn, so a killed sweep
loses nothing it had finished. The schema lives in numbered, append-only migrations.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from oomlab.backends.base import Generation, ModelFacts, SamplingParams
from oomlab.errors import OomlabError, RunNotFoundError
from oomlab.ledger import LedgerEntry, LedgerTotals, Pricing, charge

DEFAULT_DB = "oomlab.db"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cache_key(model_id: str, prompt: str, params: SamplingParams, seed: int) -> str:
    """The identity of a sample: same model, prompt, sampling parameters and seed -> same sample."""
    if params.greedy:
        seed = 0  # greedy ignores the seed; every greedy request of a prompt is the same sample
    blob = json.dumps([model_id, prompt, params.as_dict(), seed], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class SampleRow:
    id: int
    generation: Generation
    joules: float
    energy_measured: bool
    energy_method: str
    prompt: str = ""


@dataclass(frozen=True)
class RunInfo:
    id: str
    created_at: str
    finished_at: str | None
    status: str
    config: dict[str, Any]
    backend: str
    model_id: str
    facts: ModelFacts
    task: str
    energy_method: str
    pricing: Pricing
    samples_drawn: int
    samples_reused: int


@dataclass(frozen=True)
class AttemptRow:
    strategy: str
    problem_idx: int
    budget: int
    answer: str | None
    correct: bool
    sample_ids: list[int]
    trace: dict[str, Any]


class Store:
    def __init__(self, path: str | Path = DEFAULT_DB):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise OomlabError(f"database folder does not exist: {self.path.parent}")
        self.db = sqlite3.connect(str(self.path), timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r[0] for r in self.db.execute("SELECT name FROM _migrations")}
        files = sorted(f for f in resources.files("oomlab.migrations").iterdir() if f.name.endswith(".sql"))
        for f in files:
            name = f.name.removesuffix(".sql")
            if name not in done:
                with self.db:
                    self.db.executescript(f.read_text())
                    self.db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now()))

    # -- runs -----------------------------------------------------------------------------
    def create_run(
        self,
        config: dict[str, Any],
        *,
        backend: str,
        model_id: str,
        facts: ModelFacts,
        task: str,
        energy_method: str,
        pricing: Pricing,
        version: str,
    ) -> str:
        run_id = uuid.uuid4().hex[:8]
        blob = json.dumps(config, sort_keys=True)
        facts_json = json.dumps(facts.__dict__, sort_keys=True, default=str)
        with self.db:
            self.db.execute(
                "INSERT INTO runs (id, created_at, config_hash, config_json, oomlab_version, backend, model_id,"
                " facts_json, task, energy_method, pricing_json) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, now(), config_hash(config), blob, version, backend, model_id, facts_json, task,
                 energy_method, json.dumps(pricing.__dict__)),
            )
        return run_id

    def resumable_run(self, config: dict[str, Any]) -> str | None:
        """The newest unfinished run with exactly this configuration, if any."""
        row = self.db.execute(
            "SELECT id FROM runs WHERE config_hash = ? AND status = 'running' ORDER BY created_at DESC LIMIT 1",
            (config_hash(config),),
        ).fetchone()
        return row["id"] if row else None

    def update_config(self, run_id: str, config: dict[str, Any]) -> None:
        """Record what a run learned while starting (a compute ladder's calibrated knobs); the resume hash stays."""
        with self.db:
            self.db.execute("UPDATE runs SET config_json = ? WHERE id = ?", (json.dumps(config, sort_keys=True), run_id))

    def finish_run(self, run_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET status = 'done', finished_at = ? WHERE id = ?", (now(), run_id))

    def count_samples(self, run_id: str, drawn: int, reused: int) -> None:
        with self.db:
            self.db.execute(
                "UPDATE runs SET samples_drawn = samples_drawn + ?, samples_reused = samples_reused + ? WHERE id = ?",
                (drawn, reused, run_id),
            )

    def run(self, run_id: str) -> RunInfo:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r["id"] for r in self.db.execute("SELECT id FROM runs ORDER BY created_at DESC LIMIT 5")]
            hint = f"; recent runs: {', '.join(known)}" if known else "; the database has no runs"
            raise RunNotFoundError(f"no run '{run_id}' in {self.path}{hint}")
        return _run_info(row)

    def runs(self) -> list[RunInfo]:
        return [_run_info(r) for r in self.db.execute("SELECT * FROM runs ORDER BY created_at, rowid")]

    # -- problems -------------------------------------------------------------------------
    def add_problems(self, run_id: str, rows: list[tuple[int, str, str, str, dict, dict]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO problems VALUES (?,?,?,?,?,?,?)",
                [(run_id, i, pid, prompt, ref, json.dumps(inp, default=str), json.dumps(meta, default=str))
                 for i, pid, prompt, ref, inp, meta in rows],
            )

    def problems(self, run_id: str) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM problems WHERE run_id = ? ORDER BY idx", (run_id,)))

    # -- samples --------------------------------------------------------------------------
    def cached(self, keys: list[str]) -> dict[str, SampleRow]:
        out: dict[str, SampleRow] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            q = f"SELECT * FROM samples WHERE cache_key IN ({','.join('?' * len(chunk))})"
            for r in self.db.execute(q, chunk):
                out[r["cache_key"]] = _sample_row(r)
        return out

    def add_samples(
        self, rows: list[tuple[str, str, str, SamplingParams, Generation, float, bool, str]], run_id: str | None
    ) -> list[int]:
        """Insert (key, model_id, prompt, params, generation, joules, measured, method) rows; commit at once."""
        ids = []
        with self.db:
            for key, model_id, prompt, params, g, joules, measured, method in rows:
                cur = self.db.execute(
                    "INSERT OR REPLACE INTO samples (cache_key, model_id, prompt, params_json, seed, text, prompt_tokens,"
                    " completion_tokens, group_size, seconds, joules, energy_measured, energy_method, finish_reason,"
                    " token_logprobs_json, drawn_by_run, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (key, model_id, prompt, json.dumps(params.as_dict()), g.seed, g.text, g.prompt_tokens,
                     g.completion_tokens, g.group_size, g.seconds, joules, int(measured), method, g.finish_reason,
                     None if g.token_logprobs is None else json.dumps(g.token_logprobs), run_id, now()),
                )
                ids.append(int(cur.lastrowid))
        return ids

    def samples(self, ids: list[int]) -> dict[int, SampleRow]:
        out: dict[int, SampleRow] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in self.db.execute(f"SELECT * FROM samples WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                out[int(r["id"])] = _sample_row(r)
        return out

    def sample_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    # -- attempts -------------------------------------------------------------------------
    def has_attempt(self, run_id: str, strategy: str, problem_idx: int, budget: int) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM attempts WHERE run_id=? AND strategy=? AND problem_idx=? AND budget=?",
                (run_id, strategy, problem_idx, budget),
            ).fetchone()
            is not None
        )

    def add_attempt(self, run_id: str, a: AttemptRow) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO attempts VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, a.strategy, a.problem_idx, a.budget, a.answer, int(a.correct), json.dumps(a.sample_ids),
                 json.dumps(a.trace, default=str), now()),
            )

    def attempts(self, run_id: str) -> list[AttemptRow]:
        rows = self.db.execute(
            "SELECT * FROM attempts WHERE run_id = ? ORDER BY strategy, problem_idx, budget", (run_id,)
        )
        return [
            AttemptRow(r["strategy"], r["problem_idx"], r["budget"], r["answer"], bool(r["correct"]),
                       json.loads(r["sample_ids_json"]), json.loads(r["trace_json"]))
            for r in rows
        ]

    # -- the books --------------------------------------------------------------------------
    def ledger(self, run_id: str, sample_ids: list[int] | None = None) -> list[LedgerEntry]:
        """Ledger entries for a run's samples (each distinct sample once)."""
        info = self.run(run_id)
        if sample_ids is None:
            sample_ids = sorted({i for a in self.attempts(run_id) for i in a.sample_ids})
        rows = self.samples(sample_ids)
        return [charge(r.generation, info.facts, r.joules, r.energy_measured, info.pricing) for r in rows.values()]

    def run_totals(self, run_id: str) -> LedgerTotals:
        """Everything a run's samples cost, each sample counted once."""
        info = self.run(run_id)
        return LedgerTotals.of(self.ledger(run_id), model_id=info.model_id)


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _run_info(r: sqlite3.Row) -> RunInfo:
    return RunInfo(
        id=r["id"],
        created_at=r["created_at"],
        finished_at=r["finished_at"],
        status=r["status"],
        config=json.loads(r["config_json"]),
        backend=r["backend"],
        model_id=r["model_id"],
        facts=ModelFacts(**json.loads(r["facts_json"])),
        task=r["task"],
        energy_method=r["energy_method"],
        pricing=Pricing(**json.loads(r["pricing_json"])),
        samples_drawn=r["samples_drawn"],
        samples_reused=r["samples_reused"],
    )


def _sample_row(r: sqlite3.Row) -> SampleRow:
    lp = r["token_logprobs_json"]
    g = Generation(
        text=r["text"],
        prompt_tokens=r["prompt_tokens"],
        completion_tokens=r["completion_tokens"],
        seconds=r["seconds"],
        seed=r["seed"],
        finish_reason=r["finish_reason"],
        token_logprobs=None if lp is None else tuple(json.loads(lp)),
        group_size=r["group_size"],
    )
    return SampleRow(int(r["id"]), g, r["joules"], bool(r["energy_measured"]), r["energy_method"], r["prompt"])
