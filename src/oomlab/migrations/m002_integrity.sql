-- m002_integrity: immutable samples, attempts that cannot point at nothing, run leases, waste on the books.

-- A run is written by one live process at a time: its pid, host and last heartbeat (unix seconds).
ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
ALTER TABLE runs ADD COLUMN owner_host TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_at REAL;

-- What a hosted API bills for the request's prompt (NULL: one prompt evaluation shared by the group),
-- and time spent waiting that was not device time (backoff, queueing, timed-out tries).
ALTER TABLE samples ADD COLUMN billed_prompt_tokens INTEGER;
ALTER TABLE samples ADD COLUMN wait_seconds REAL NOT NULL DEFAULT 0;

-- A committed sample keeps its id and content for ever; the one change allowed is adding the
-- logprobs it was drawn without (the same text re-drawn with logprobs on).
CREATE TRIGGER samples_never_deleted BEFORE DELETE ON samples
BEGIN
    SELECT RAISE(ABORT, 'samples are immutable: a committed sample is never deleted');
END;

CREATE TRIGGER samples_never_rewritten BEFORE UPDATE OF
    id, cache_key, model_id, prompt, params_json, seed, text, prompt_tokens, completion_tokens, group_size,
    seconds, joules, energy_measured, energy_method, finish_reason, drawn_by_run, created_at,
    billed_prompt_tokens, wait_seconds ON samples
BEGIN
    SELECT RAISE(ABORT, 'samples are immutable: a committed sample is never rewritten');
END;

CREATE TRIGGER samples_logprobs_added_once BEFORE UPDATE OF token_logprobs_json ON samples
WHEN OLD.token_logprobs_json IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'samples are immutable: logprobs can be added to a sample once, never replaced');
END;

-- Every sample an attempt used, by id, under a foreign key: a dangling reference cannot be committed.
CREATE TABLE attempt_samples (
    run_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    problem_idx INTEGER NOT NULL,
    budget INTEGER NOT NULL,
    position INTEGER NOT NULL,
    sample_id INTEGER NOT NULL REFERENCES samples(id),
    PRIMARY KEY (run_id, strategy, problem_idx, budget, position),
    FOREIGN KEY (run_id, strategy, problem_idx, budget) REFERENCES attempts(run_id, strategy, problem_idx, budget)
);
CREATE INDEX attempt_samples_sample ON attempt_samples(sample_id);
INSERT INTO attempt_samples
    SELECT a.run_id, a.strategy, a.problem_idx, a.budget, CAST(j.key AS INTEGER), j.value
    FROM attempts a, json_each(a.sample_ids_json) j
    WHERE j.value IN (SELECT id FROM samples);

CREATE INDEX samples_drawn_by_run ON samples(drawn_by_run);

-- Work the hardware did that produced no sample a run kept: retried or abandoned requests, a
-- sample two processes drew at once, a re-draw made only to add logprobs. Shown beside useful work.
CREATE TABLE waste (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT REFERENCES runs(id),
    model_id TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    joules REAL NOT NULL,
    reason TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    estimated INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX waste_run ON waste(run_id);
