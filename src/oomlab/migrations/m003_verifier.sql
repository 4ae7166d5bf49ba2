-- m003_verifier: a verifier's own column on the books (a process reward model served beside the generator).
-- One row per request the verifier server answered: its tokens (as the server counted them), the forward
-- FLOPs of reading them (from the verifier's model facts; NULL when unknown), the server's time on it, and
-- the step scores it returned, so an identical request (same model, protocol and input) is never paid twice.
CREATE TABLE verifier_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT REFERENCES runs(id),
    scorer TEXT NOT NULL,
    model_id TEXT NOT NULL,
    cache_key TEXT,
    prompt_tokens INTEGER NOT NULL,
    flops REAL,
    seconds REAL NOT NULL,
    wait_seconds REAL NOT NULL DEFAULT 0,
    failed_tries INTEGER NOT NULL DEFAULT 0,
    scores_json TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX verifier_usage_run ON verifier_usage(run_id);
CREATE INDEX verifier_usage_key ON verifier_usage(cache_key);
