-- m001_init: runs, problems, samples (the cache), attempts.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    config_hash TEXT NOT NULL,
    config_json TEXT NOT NULL,
    oomlab_version TEXT NOT NULL,
    backend TEXT NOT NULL,
    model_id TEXT NOT NULL,
    facts_json TEXT NOT NULL,
    task TEXT NOT NULL,
    energy_method TEXT NOT NULL,
    pricing_json TEXT NOT NULL,
    samples_drawn INTEGER NOT NULL DEFAULT 0,
    samples_reused INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_config_hash ON runs(config_hash);

CREATE TABLE problems (
    run_id TEXT NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    problem_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    reference TEXT NOT NULL,
    inputs_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);

-- One row per sample ever drawn; cache_key = sha256(model id, prompt, sampling params, seed).
CREATE TABLE samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cache_key TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    params_json TEXT NOT NULL,
    seed INTEGER NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    group_size INTEGER NOT NULL,
    seconds REAL NOT NULL,
    joules REAL NOT NULL,
    energy_measured INTEGER NOT NULL,
    energy_method TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    token_logprobs_json TEXT,
    drawn_by_run TEXT,
    created_at TEXT NOT NULL
);

-- A strategy's result on one problem at one budget. Draw strategies store their whole draw
-- (answers, correctness, scores) at budget N; every rung k <= N is estimated from it.
CREATE TABLE attempts (
    run_id TEXT NOT NULL REFERENCES runs(id),
    strategy TEXT NOT NULL,
    problem_idx INTEGER NOT NULL,
    budget INTEGER NOT NULL,
    answer TEXT,
    correct INTEGER NOT NULL,
    sample_ids_json TEXT NOT NULL,
    trace_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, strategy, problem_idx, budget)
);
