"""The Store: one SQLite file holding runs, problems, samples (the cache) and attempts.

Samples are keyed by (model id, prompt, sampling parameters, seed), so a sample is never paid
for twice, and each is committed the moment it comes back, so a killed sweep loses at most what
was still in flight. A committed sample is immutable (triggers refuse any rewrite or delete), and
an attempt can only name samples that exist (a foreign key), so no later sweep can make an
earlier run unreadable. Many processes may share one file: every write is a short `BEGIN
IMMEDIATE` transaction under WAL, migrations run under the same lock, and a run is written by one
live process at a time (a lease: the owner's pid, host and heartbeat). The schema lives in
numbered, append-only migrations.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from oomlab.backends.base import Generation, ModelFacts, SamplingParams, Waste
from oomlab.energy import energy_known
from oomlab.errors import OomlabError, RunNotFoundError
from oomlab.ledger import LedgerEntry, LedgerTotals, Pricing, charge

DEFAULT_DB = "oomlab.db"
HOST = socket.gethostname()
LEASE_TTL_S = 30.0  # a lease whose heartbeat is older than this is dead, whoever holds it
HEARTBEAT_S = 5.0
BUSY_TIMEOUT_S = 120.0  # how long a writer waits for another process's transaction


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cache_key(model_id: str, prompt: str, params: SamplingParams, seed: int) -> str:
    """The identity of a sample: same model, prompt, sampling parameters and seed -> same sample."""
    if params.greedy:
        seed = 0  # greedy ignores the seed; every greedy request of a prompt is the same sample
    blob = json.dumps([model_id, prompt, params.as_dict(), seed], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def logprobs_key(key: str) -> str:
    """Where a sample re-drawn with logprobs goes when the re-draw's text differs from the cached one."""
    return key + "+logprobs"


@dataclass(frozen=True)
class SampleRow:
    id: int
    generation: Generation
    joules: float  # NaN when the energy is unknown (a remote server without a power figure)
    energy_measured: bool
    energy_method: str
    prompt: str = ""
    drawn_by_run: str | None = None


@dataclass(frozen=True)
class NewSample:
    """A sample to commit: where it came from and what it cost."""

    key: str
    model_id: str
    prompt: str
    params: SamplingParams
    generation: Generation
    joules: float
    energy_measured: bool
    energy_method: str


@dataclass(frozen=True)
class RunInfo:
    id: str
    created_at: str
    finished_at: str | None
    status: str  # "done", "running" (a live process holds it) or "interrupted"
    config: dict[str, Any]
    backend: str
    model_id: str
    facts: ModelFacts
    task: str
    energy_method: str
    pricing: Pricing
    samples_drawn: int  # samples this run drew (over all its resumes)
    samples_reused: int  # samples its attempts used that another run drew
    owner_pid: int | None = None
    owner_host: str | None = None

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def spec(self) -> RunConfig:
        """`config`, typed (the dict is the JSON edge)."""
        return RunConfig.from_record(self.config)


@dataclass(frozen=True)
class ProblemRow:
    """One problem of a run, as the sweep stored it (its prompt exactly as the model saw it)."""

    idx: int
    problem_id: str
    prompt: str
    reference: str | None
    inputs: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class RunConfig:
    """A run's configuration record, typed: what the sweep wrote at its start (`Sweep.config_record`).

    `strategy_records` holds, per strategy key, what analysis needs without rebuilding the strategy:
    its label, oracle flag, kind ("draw" or "rerun"), estimator and sampling settings. Runs written
    before it existed have none (see `oomlab.strategies.records.legacy_record`).
    """

    task: str
    strategies: list[str]
    n: int
    ladder: list[int]
    problems: int
    seed: int = 0
    task_options: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    model_id: str = ""
    budget_unit: str = "samples"
    budgets: list[float] | None = None
    rungs_by_strategy: dict[str, list[int]] = field(default_factory=dict)
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    strategy_records: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_config: dict[str, Any] = field(default_factory=dict)
    model_sha256: str | None = None
    endpoint: Any = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known and v is not None}
        values.setdefault("task", record.get("task", ""))
        values.setdefault("strategies", [])
        values.setdefault("n", 0)
        values.setdefault("ladder", [])
        values.setdefault("problems", 0)
        return cls(**values)

    def options_of(self, key: str) -> dict[str, Any]:
        """The strategy's name and options ({'name': 'majority', 'temperature': 0.8})."""
        return dict(self.strategy_options.get(key) or {"name": key.split(":")[0]})


@dataclass(frozen=True)
class AttemptRow:
    strategy: str
    problem_idx: int
    budget: int
    answer: str | None
    correct: bool
    sample_ids: list[int]
    trace: dict[str, Any]


@dataclass(frozen=True)
class WasteTotals:
    """Work on the books that produced no sample a run kept."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    joules: float
    estimated: bool  # some figures are inferred (e.g. from the retry that succeeded)
    reasons: dict[str, int]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class RunBusy:
    """The run a sweep wanted is being written by another live process."""

    run_id: str
    pid: int
    host: str

    def describe(self) -> str:
        where = "" if self.host == HOST else f" on {self.host}"
        return f"run {self.run_id} is being written by pid {self.pid}{where}"


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists here and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def lease_alive(pid: int | None, host: str | None, heartbeat_at: float | None, at: float | None = None) -> bool:
    if pid is None or heartbeat_at is None:
        return False
    if (at if at is not None else time.time()) - heartbeat_at > LEASE_TTL_S:
        return False
    return pid_alive(pid) if host == HOST else True


_held_here: set[tuple[str, str]] = set()  # (database, run id) leases held by this process
_held_lock = threading.Lock()


class Store:
    def __init__(self, path: str | Path = DEFAULT_DB):
        self.path = Path(path)
        _check_path(self.path)
        try:
            # one connection shared by a sweep's problem threads: SQLite serialises it, `_write` orders writers
            self.db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                      check_same_thread=False)
            self._lock = threading.RLock()
            self.db.row_factory = sqlite3.Row
            self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA recursive_triggers = ON")  # so INSERT OR REPLACE meets the delete trigger
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            what = "is not an SQLite database" if "not a database" in str(e) else "is not a usable oomlab database"
            raise OomlabError(f"--db {self.path} {what} ({e})") from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taking the write lock up front (no deadlock on upgrade)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        """Rows of one read, fetched whole under the writers' lock (the connection is shared by threads)."""
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        files = sorted(f for f in resources.files("oomlab.migrations").iterdir() if f.name.endswith(".sql"))
        wanted = [f.name.removesuffix(".sql") for f in files]
        if set(wanted) <= self._applied():
            return
        with self._write():  # one process migrates; the others wait here, then find nothing left to do
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "_migrations" not in tables and tables - {"sqlite_sequence"}:
                raise OomlabError(f"{self.path} is an SQLite database of another program (tables: "
                                  f"{', '.join(sorted(tables)[:5])}); pass --db with a new or an oomlab file")
            self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = self._applied()
            for f, name in zip(files, wanted):
                if name not in done:
                    for statement in _statements(f.read_text()):
                        self.db.execute(statement)
                    self.db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now()))

    def _applied(self) -> set[str]:
        try:
            return {r[0] for r in self.db.execute("SELECT name FROM _migrations")}
        except sqlite3.OperationalError:
            return set()

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
        owned: bool = False,
    ) -> str:
        run_id = uuid.uuid4().hex[:8]
        with self._write():
            self._insert_run(run_id, config, backend, model_id, facts, task, energy_method, pricing, version, owned)
        return run_id

    def _insert_run(self, run_id: str, config: dict[str, Any], backend: str, model_id: str, facts: ModelFacts,
                    task: str, energy_method: str, pricing: Pricing, version: str, owned: bool) -> None:
        self.db.execute(
            "INSERT INTO runs (id, created_at, config_hash, config_json, oomlab_version, backend, model_id,"
            " facts_json, task, energy_method, pricing_json, owner_pid, owner_host, heartbeat_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, now(), config_hash(config), json.dumps(config, sort_keys=True), version, backend, model_id,
             json.dumps(facts.__dict__, sort_keys=True, default=str), task, energy_method,
             json.dumps(pricing.__dict__), *((os.getpid(), HOST, time.time()) if owned else (None, None, None))),
        )
        if owned:
            self._hold(run_id)

    def open_run(self, config: dict[str, Any], **create: Any) -> tuple[str, bool] | RunBusy:
        """Take the newest unfinished run of this configuration, or create one: (run id, resumed).

        Atomic across processes: two sweeps of one configuration started together never both
        create it; the second gets RunBusy while the first is alive, and takes the run over once
        that process is dead.
        """
        with self._write():
            row = self.db.execute(
                "SELECT id, owner_pid, owner_host, heartbeat_at FROM runs WHERE config_hash = ? AND status = 'running'"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1", (config_hash(config),),
            ).fetchone()
            if row is None:
                run_id = uuid.uuid4().hex[:8]
                self._insert_run(run_id, config, owned=True, **create)
                return run_id, False
            busy = self._take(row)
            return busy if busy is not None else (row["id"], True)

    def claim(self, run_id: str) -> RunBusy | None:
        """Become the writer of `run_id` (for --resume); RunBusy if a live process writes it."""
        with self._write():
            row = self.db.execute("SELECT id, owner_pid, owner_host, heartbeat_at FROM runs WHERE id = ?",
                                  (run_id,)).fetchone()
            if row is None:
                raise self._not_found(run_id)
            return self._take(row)

    def _take(self, row: sqlite3.Row) -> RunBusy | None:
        run_id, pid, host = row["id"], row["owner_pid"], row["owner_host"]
        mine = pid == os.getpid() and host == HOST
        if mine and self._held(run_id):
            return RunBusy(run_id, pid, host)  # another Store of this very process writes it
        if not mine and lease_alive(pid, host, row["heartbeat_at"]):
            return RunBusy(run_id, pid, host)
        self.db.execute("UPDATE runs SET owner_pid = ?, owner_host = ?, heartbeat_at = ? WHERE id = ?",
                        (os.getpid(), HOST, time.time(), run_id))
        self._hold(run_id)
        return None

    def _hold(self, run_id: str) -> None:
        with _held_lock:
            _held_here.add((str(self.path.resolve()), run_id))

    def _held(self, run_id: str) -> bool:
        with _held_lock:
            return (str(self.path.resolve()), run_id) in _held_here

    def release(self, run_id: str) -> None:
        """Give up writing a run (it shows as interrupted until someone resumes it)."""
        with _held_lock:
            _held_here.discard((str(self.path.resolve()), run_id))
        with self._write():
            self.db.execute("UPDATE runs SET owner_pid = NULL, owner_host = NULL, heartbeat_at = NULL"
                            " WHERE id = ? AND owner_pid = ? AND owner_host = ?", (run_id, os.getpid(), HOST))

    def heartbeat(self, run_id: str) -> Heartbeat:
        return Heartbeat(self.path, run_id)

    def update_config(self, run_id: str, config: dict[str, Any]) -> None:
        """Record what a run learned while starting (a compute ladder's calibrated knobs); the resume hash stays."""
        with self._write():
            self.db.execute("UPDATE runs SET config_json = ? WHERE id = ?", (json.dumps(config, sort_keys=True), run_id))

    def finish_run(self, run_id: str) -> None:
        with self._write():
            self.db.execute("UPDATE runs SET status = 'done', finished_at = ?, owner_pid = NULL, owner_host = NULL,"
                            " heartbeat_at = NULL WHERE id = ?", (now(), run_id))
        with _held_lock:
            _held_here.discard((str(self.path.resolve()), run_id))

    _RUN_SELECT = (
        "SELECT r.*, (SELECT COUNT(*) FROM samples s WHERE s.drawn_by_run = r.id) AS n_drawn,"
        " (SELECT COUNT(DISTINCT x.sample_id) FROM attempt_samples x JOIN samples s ON s.id = x.sample_id"
        "  WHERE x.run_id = r.id AND s.drawn_by_run IS NOT r.id) AS n_reused FROM runs r"
    )

    def run(self, run_id: str) -> RunInfo:
        row = self.db.execute(f"{self._RUN_SELECT} WHERE r.id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._not_found(run_id)
        return _run_info(row)

    def _not_found(self, run_id: str) -> RunNotFoundError:
        known = [r["id"] for r in self.db.execute("SELECT id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 5")]
        hint = f"; recent runs: {', '.join(known)}" if known else "; the database has no runs"
        return RunNotFoundError(f"no run '{run_id}' in {self.path}{hint}")

    def runs(self) -> list[RunInfo]:
        return [_run_info(r) for r in self.db.execute(f"{self._RUN_SELECT} ORDER BY r.created_at, r.rowid")]

    # -- problems -------------------------------------------------------------------------
    def add_problems(self, run_id: str, rows: list[ProblemRow]) -> None:
        with self._write():
            self.db.executemany(
                "INSERT OR IGNORE INTO problems VALUES (?,?,?,?,?,?,?)",
                [(run_id, p.idx, p.problem_id, p.prompt, p.reference, json.dumps(p.inputs, default=str),
                  json.dumps(p.metadata, default=str)) for p in rows],
            )

    def problems(self, run_id: str) -> list[ProblemRow]:
        return [ProblemRow(r["idx"], r["problem_id"], r["prompt"], r["reference"], json.loads(r["inputs_json"]),
                           json.loads(r["metadata_json"]))
                for r in self.db.execute("SELECT * FROM problems WHERE run_id = ? ORDER BY idx", (run_id,))]

    def coverage(self, run_id: str) -> tuple[int, int]:
        """(problems every strategy has finished, problems in the run): what an unfinished run covers."""
        info = self.run(run_id)
        n_strategies = len(info.config.get("strategies") or [])
        total = int(self.db.execute("SELECT COUNT(*) FROM problems WHERE run_id = ?", (run_id,)).fetchone()[0])
        done = self.db.execute(
            "SELECT COUNT(*) FROM (SELECT problem_idx FROM attempts WHERE run_id = ? GROUP BY problem_idx"
            " HAVING COUNT(DISTINCT strategy) >= ?)", (run_id, n_strategies),
        ).fetchone()[0]
        return int(done), total

    # -- samples --------------------------------------------------------------------------
    def cached(self, keys: list[str]) -> dict[str, SampleRow]:
        out: dict[str, SampleRow] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            q = f"SELECT * FROM samples WHERE cache_key IN ({','.join('?' * len(chunk))})"
            for r in self._query(q, chunk):
                out[r["cache_key"]] = _sample_row(r)
        return out

    def add_sample(self, s: NewSample, run_id: str | None) -> tuple[SampleRow, bool]:
        """Commit one sample at once: (its row, True) — or, if another process committed this key
        first, (that row, False). An existing row is never replaced."""
        g = s.generation
        joules = s.joules if math.isfinite(s.joules) else 0.0  # an unknown energy is read back as NaN
        with self._write():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO samples (cache_key, model_id, prompt, params_json, seed, text, prompt_tokens,"
                " completion_tokens, group_size, seconds, joules, energy_measured, energy_method, finish_reason,"
                " token_logprobs_json, drawn_by_run, created_at, billed_prompt_tokens, wait_seconds)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (s.key, s.model_id, s.prompt, json.dumps(s.params.as_dict()), g.seed, g.text, g.prompt_tokens,
                 g.completion_tokens, g.group_size, g.seconds, joules, int(s.energy_measured), s.energy_method,
                 g.finish_reason, None if g.token_logprobs is None else json.dumps(g.token_logprobs), run_id, now(),
                 g.billed_prompt_tokens, g.wait_seconds),
            )
            inserted = cur.rowcount == 1
            row = self.db.execute("SELECT * FROM samples WHERE cache_key = ?", (s.key,)).fetchone()
        return _sample_row(row), inserted

    def add_logprobs(self, sample_id: int, logprobs: tuple[float, ...]) -> bool:
        """Give a sample drawn without logprobs the logprobs of its identical re-draw (same id, same text)."""
        with self._write():
            cur = self.db.execute("UPDATE samples SET token_logprobs_json = ? WHERE id = ? AND token_logprobs_json IS NULL",
                                  (json.dumps(list(logprobs)), sample_id))
        return cur.rowcount == 1

    def samples(self, ids: list[int]) -> dict[int, SampleRow]:
        out: dict[int, SampleRow] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in self._query(f"SELECT * FROM samples WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                out[int(r["id"])] = _sample_row(r)
        return out

    def sample_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    # -- attempts -------------------------------------------------------------------------
    def attempt(self, run_id: str, strategy: str, problem_idx: int, budget: int) -> AttemptRow | None:
        rows = self._query("SELECT * FROM attempts WHERE run_id=? AND strategy=? AND problem_idx=? AND budget=?",
                           (run_id, strategy, problem_idx, budget))
        return _attempt_row(rows[0]) if rows else None

    def has_attempt(self, run_id: str, strategy: str, problem_idx: int, budget: int) -> bool:
        return bool(self._query("SELECT 1 FROM attempts WHERE run_id=? AND strategy=? AND problem_idx=? AND budget=?",
                                (run_id, strategy, problem_idx, budget)))

    def add_attempt(self, run_id: str, a: AttemptRow) -> None:
        """Record an attempt and, under a foreign key, every sample it used; a recorded attempt stays as it is."""
        with self._write():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO attempts VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, a.strategy, a.problem_idx, a.budget, a.answer, int(a.correct), json.dumps(a.sample_ids),
                 json.dumps(a.trace, default=str), now()),
            )
            if cur.rowcount == 1:
                self.db.executemany(
                    "INSERT INTO attempt_samples VALUES (?,?,?,?,?,?)",
                    [(run_id, a.strategy, a.problem_idx, a.budget, pos, sid) for pos, sid in enumerate(a.sample_ids)],
                )

    def attempts(self, run_id: str) -> list[AttemptRow]:
        rows = self.db.execute(
            "SELECT * FROM attempts WHERE run_id = ? ORDER BY strategy, problem_idx, budget", (run_id,)
        )
        return [_attempt_row(r) for r in rows]

    def dangling(self) -> int:
        """References from attempts to samples that do not exist (0 in any database this Store wrote)."""
        n = 0
        for r in self.db.execute("SELECT sample_ids_json FROM attempts"):
            ids = json.loads(r[0])
            if ids:
                q = f"SELECT COUNT(*) FROM samples WHERE id IN ({','.join('?' * len(set(ids)))})"
                n += len(set(ids)) - int(self.db.execute(q, sorted(set(ids))).fetchone()[0])
        return n + len(self.db.execute("PRAGMA foreign_key_check").fetchall())

    # -- waste ------------------------------------------------------------------------------
    def add_waste(self, run_id: str | None, model_id: str, w: Waste, joules: float) -> None:
        with self._write():
            self.db.execute(
                "INSERT INTO waste (run_id, model_id, prompt_tokens, completion_tokens, seconds, joules, reason, url,"
                " estimated, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (run_id, model_id, w.prompt_tokens, w.completion_tokens, w.seconds,
                 joules if math.isfinite(joules) else 0.0, w.reason, w.url, int(w.estimated), now()),
            )

    def waste(self, run_id: str) -> WasteTotals:
        rows = list(self.db.execute("SELECT * FROM waste WHERE run_id = ?", (run_id,)))
        reasons: dict[str, int] = {}
        for r in rows:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        return WasteTotals(
            requests=len(rows),
            prompt_tokens=sum(r["prompt_tokens"] for r in rows),
            completion_tokens=sum(r["completion_tokens"] for r in rows),
            seconds=sum(r["seconds"] for r in rows),
            joules=sum(r["joules"] for r in rows),
            estimated=any(r["estimated"] for r in rows),
            reasons=reasons,
        )

    # -- the books --------------------------------------------------------------------------
    def ledger(self, run_id: str, sample_ids: list[int] | None = None) -> list[LedgerEntry]:
        """Ledger entries for a run's samples (each distinct sample once), or for `sample_ids`."""
        if sample_ids is None:
            return load_run(self, run_id).ledger()
        info = self.run(run_id)
        rows = self.samples(sample_ids)
        return [charge(r.generation, info.facts, r.joules, r.energy_measured, info.pricing) for r in rows.values()]

    def run_totals(self, run_id: str) -> LedgerTotals:
        """Everything a run's samples cost, each sample counted once."""
        return load_run(self, run_id).totals()

    # -- the verifier's column (m003) -------------------------------------------------------
    def add_verifier_usage(self, run_id: str | None, *, scorer: str, model_id: str, prompt_tokens: int, flops: float,
                           seconds: float, wait_seconds: float = 0.0, failed_tries: int = 0,
                           cache_key: str | None = None, scores: list[float] | None = None) -> None:
        """Book one verifier request (a PRM's): its tokens, FLOPs (NaN: unknown), time and the scores it gave."""
        with self._write():
            self.db.execute(
                "INSERT INTO verifier_usage (run_id, scorer, model_id, cache_key, prompt_tokens, flops, seconds,"
                " wait_seconds, failed_tries, scores_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, scorer, model_id, cache_key, prompt_tokens, flops if math.isfinite(flops) else None, seconds,
                 wait_seconds, failed_tries, None if scores is None else json.dumps(scores), now()),
            )

    def verifier_scores(self, cache_key: str) -> list[float] | None:
        """The scores an identical verifier request returned before (any run), or None."""
        rows = self._query("SELECT scores_json FROM verifier_usage WHERE cache_key = ? AND scores_json IS NOT NULL"
                           " LIMIT 1", (cache_key,))
        return [float(x) for x in json.loads(rows[0][0])] if rows else None

    def verifier_totals(self, run_id: str) -> LedgerTotals:
        """What a run's verifier requests cost, apart from the generator's samples (`samples` counts requests).

        Joules are unknown (NaN): the verifier is a remote server oomlab has no power figure for; dollars
        use the run's pricing on the verifier's seconds and prompt tokens.
        """
        info = self.run(run_id)
        rows = self._query("SELECT model_id, prompt_tokens, flops, seconds, wait_seconds FROM verifier_usage"
                           " WHERE run_id = ?", (run_id,))
        prompt = float(sum(r["prompt_tokens"] for r in rows))
        seconds = sum(r["seconds"] for r in rows)
        return LedgerTotals(
            samples=len(rows), prompt_tokens=prompt, completion_tokens=0.0,
            flops=sum(r["flops"] if r["flops"] is not None else float("nan") for r in rows),
            seconds=seconds, joules=float("nan") if rows else 0.0, energy_measured=False,
            dollars=info.pricing.dollars(seconds, prompt, 0.0), human_minutes=0.0,
            model_id=", ".join(sorted({r["model_id"] for r in rows})), billed_prompt_tokens=prompt,
            wait_seconds=sum(r["wait_seconds"] for r in rows),
        )

    def resolve_run(self, ref: str | None = None) -> str:
        """The run id that `ref` names: an id, a unique prefix of one, or 'latest' (also when `ref` is None).

        The latest run is the one created last. A prefix that several runs share is refused with the
        candidates listed in one line; one that no run has is a RunNotFoundError naming recent runs.
        """
        from oomlab.errors import AmbiguousRunError

        ref = (ref or "").strip()
        if ref and self._query("SELECT 1 FROM runs WHERE id = ?", (ref,)):
            return ref
        if not ref or ref.lower() == "latest":
            rows = self._query("SELECT id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1")
            if not rows:
                raise RunNotFoundError(f"no runs in {self.path} yet: run a sweep first, or pass --db")
            return rows[0]["id"]
        matches = [r["id"] for r in self._query(
            "SELECT id FROM runs WHERE substr(id, 1, length(?)) = ? ORDER BY created_at DESC, rowid DESC", (ref, ref))]
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(matches[:10]) + (f" and {len(matches) - 10} more" if len(matches) > 10 else "")
            raise AmbiguousRunError(f"run prefix '{ref}' matches {len(matches)} runs in {self.path}: {shown}; "
                                    "give more of the id")
        raise self._not_found(ref)


class Heartbeat:
    """Keeps a run's lease fresh from a thread of its own (its own connection), until stopped."""

    def __init__(self, path: Path, run_id: str):
        self.path, self.run_id = path, run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"oomlab-lease {run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=BUSY_TIMEOUT_S)

    def _beat(self) -> None:
        db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND owner_pid = ? AND owner_host = ?",
                               (time.time(), self.run_id, os.getpid(), HOST))
                except sqlite3.OperationalError:
                    pass  # busy past the timeout: the next beat tries again
        finally:
            db.close()


def _check_path(path: Path) -> None:
    """Refuse, in one line, what cannot be an oomlab database, before SQLite makes a mess of it."""
    if path.is_dir():
        raise OomlabError(f"--db {path} is a directory; give a database file, e.g. {path / DEFAULT_DB}")
    if path.parent and not path.parent.exists():
        raise OomlabError(f"database folder does not exist: {path.parent}")
    # The header is left to SQLite: opening and closing the file here would drop every POSIX lock
    # this process's connections hold on it (sqlite.org/howtocorrupt.html, §2.2).


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration, one at a time (triggers' bodies kept whole)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            stmt = "\n".join(ln for ln in buf.splitlines() if not ln.strip().startswith("--")).strip()
            if stmt.rstrip(";").strip():
                yield stmt
            buf = ""
    if buf.strip() and any(not ln.strip().startswith("--") and ln.strip() for ln in buf.splitlines()):
        raise OomlabError(f"incomplete SQL statement in a migration: {buf[:80]!r}")


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _attempt_row(r: sqlite3.Row) -> AttemptRow:
    return AttemptRow(r["strategy"], r["problem_idx"], r["budget"], r["answer"], bool(r["correct"]),
                      json.loads(r["sample_ids_json"]), json.loads(r["trace_json"]))


@dataclass(frozen=True)
class RunData:
    """Everything stored of one run, read once: what analysis and reports take instead of a Store."""

    info: RunInfo
    problems: list[ProblemRow]
    attempts: list[AttemptRow]
    samples: dict[int, SampleRow]

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def spec(self) -> RunConfig:
        return self.info.spec

    def attempts_of(self, strategy: str) -> list[AttemptRow]:
        return [a for a in self.attempts if a.strategy == strategy]

    def rows(self, attempt: AttemptRow) -> list[SampleRow]:
        return [self.samples[i] for i in attempt.sample_ids]

    def ledger(self, sample_ids: list[int] | None = None) -> list[LedgerEntry]:
        """One entry per sample the run's attempts used (each once), or per sample in `sample_ids`."""
        ids = sorted(self.samples) if sample_ids is None else sample_ids
        info = self.info
        return [charge(self.samples[i].generation, info.facts, self.samples[i].joules, self.samples[i].energy_measured,
                       info.pricing) for i in ids]

    def totals(self) -> LedgerTotals:
        """Everything the run's samples cost, each sample counted once."""
        return LedgerTotals.of(self.ledger(), model_id=self.info.model_id)


def load_run(store: Store, run_id: str) -> RunData:
    """A run with its problems, attempts and every sample they used, in four queries."""
    info = store.run(run_id)
    attempts = store.attempts(info.id)
    samples = store.samples(sorted({i for a in attempts for i in a.sample_ids}))
    return RunData(info, store.problems(info.id), attempts, samples)


def _run_info(r: sqlite3.Row) -> RunInfo:
    return RunInfo(
        id=r["id"],
        created_at=r["created_at"],
        finished_at=r["finished_at"],
        status=_status(r),
        config=json.loads(r["config_json"]),
        backend=r["backend"],
        model_id=r["model_id"],
        facts=ModelFacts(**json.loads(r["facts_json"])),
        task=r["task"],
        energy_method=r["energy_method"],
        pricing=Pricing(**json.loads(r["pricing_json"])),
        samples_drawn=r["n_drawn"],
        samples_reused=r["n_reused"],
        owner_pid=r["owner_pid"],
        owner_host=r["owner_host"],
    )


def _status(r: sqlite3.Row) -> str:
    if r["status"] == "done":
        return "done"
    return "running" if lease_alive(r["owner_pid"], r["owner_host"], r["heartbeat_at"]) else "interrupted"


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
        wait_seconds=r["wait_seconds"],
        billed_prompt_tokens=r["billed_prompt_tokens"],
    )
    joules = r["joules"] if energy_known(r["energy_method"]) else float("nan")
    return SampleRow(int(r["id"]), g, joules, bool(r["energy_measured"]), r["energy_method"], r["prompt"],
                     r["drawn_by_run"])
