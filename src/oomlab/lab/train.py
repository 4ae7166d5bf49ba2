"""Train one lab model to its budget, checkpointing as it goes, so a killed lab resumes where it stopped.

Checkpoints are content-addressed files beside the database (`<lab dir>/checkpoints/<sha256>.pt`);
`<lab dir>/models/<spec key>.json` records, for each training spec, the latest resumable
checkpoint, the loss curve so far and, once done, the final weights. A resumed run restores the
weights, the optimiser's moments and the step; the data of every step is a function of
(seed, step) and the learning rate a function of the step, so it reaches the same final weights
as a run that was never interrupted (tests/lab kills one with SIGKILL to check).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from oomlab.lab.data import row_tokens_for, step_level, step_rows
from oomlab.lab.model import GPT, GPTConfig, learning_rate, make_optimizer, train_step, training_flops
from oomlab.tasks.base import create_task


@dataclass(frozen=True)
class TrainSpec:
    """Everything that determines a trained model: same spec, same weights."""

    task: str
    task_options: dict[str, Any]
    config: GPTConfig
    steps: int
    rows: int  # sequences per step
    lr: float
    seed: int
    warmup: float = 0.05
    weight_decay: float = 0.1

    def step_tokens(self) -> list[int]:
        """Row length of every step (each step trains on one level), a function of the seed alone."""
        return _step_tokens(self.task, json.dumps(self.task_options, sort_keys=True), self.seed, self.steps)

    @property
    def tokens(self) -> int:
        """Tokens processed in training: every position of every row (any padding included: it is computed)."""
        return self.rows * sum(self.step_tokens())

    @property
    def flops(self) -> float:
        """Training FLOPs of the whole run, counted from the tokens each step processes."""
        return sum(self.flops_through(self.steps))

    def flops_through(self, steps: int) -> list[float]:
        """Training FLOPs of each of the first `steps` steps."""
        return [training_flops(self.config, self.rows, T) for T in self.step_tokens()[:steps]]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = self.config.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSpec:
        return cls(**{**d, "config": GPTConfig(**d["config"])})

    @property
    def key(self) -> str:
        """Content key of the spec (what a resumed run must match)."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def _step_tokens(task_name: str, options_json: str, seed: int, steps: int) -> list[int]:
    task = create_task(task_name, **json.loads(options_json))
    lengths = {lv: row_tokens_for(task, lv) for lv in task.levels}
    return [lengths[step_level(task, seed, s)] for s in range(steps)]


@dataclass
class TrainProgress:
    step: int
    steps: int
    tokens: int
    flops: float
    loss: float
    tokens_per_second: float


@dataclass
class TrainedModel:
    """A finished training run as the lab directory records it."""

    spec: TrainSpec
    checkpoint: Path  # the final weights (content-addressed)
    sha256: str
    losses: list[list[float]] = field(default_factory=list)  # [step, tokens, flops, loss]
    seconds: float = 0.0
    resumed_from: int = 0  # the step it resumed at (0: trained from scratch this time)

    @property
    def flops(self) -> float:
        return self.spec.flops

    @property
    def final_loss(self) -> float:
        return self.losses[-1][3] if self.losses else float("nan")


def save_blob(obj: Any, directory: Path) -> tuple[Path, str]:
    """torch.save `obj` into `directory/<sha256>.pt`, atomically; returns (path, sha256)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    path = directory / f"{sha}.pt"
    if not path.exists():
        _atomic_write(path, data)
    return path, sha


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_record(path: Path, record: dict[str, Any]) -> None:
    _atomic_write(path, json.dumps(record, indent=1, sort_keys=True).encode())


def read_record(lab_dir: Path, spec: TrainSpec) -> dict[str, Any] | None:
    path = lab_dir / "models" / f"{spec.key}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def load_weights(path: str | Path, device: str = "cpu") -> tuple[GPT, dict[str, Any]]:
    """A final checkpoint as a ready model (eval mode) and its metadata (spec, vocab)."""
    blob = torch.load(path, map_location=device, weights_only=True)
    model = GPT(GPTConfig(**blob["config"]))
    model.load_state_dict(blob["weights"])
    return model.to(device).eval(), blob["meta"]


ProgressFn = Callable[[TrainProgress], None]


def train(spec: TrainSpec, lab_dir: str | Path, *, device: str = "cpu", threads: int | None = None,
          checkpoint_every_s: float = 30.0, checkpoint_every_steps: int | None = None, log_every: int = 10,
          progress: ProgressFn | None = None, meta: dict[str, Any] | None = None,
          observe: Callable[[int, list], None] | None = None) -> TrainedModel:
    """Train `spec` to completion (or finish it from its last checkpoint); return the final model.

    `observe(step, rows)` sees every batch exactly as it is fed to the model (the tests use it to
    check the stream against the held-out problems).
    """
    lab_dir = Path(lab_dir)
    ckpt_dir, rec_path = lab_dir / "checkpoints", lab_dir / "models" / f"{spec.key}.json"
    record = read_record(lab_dir, spec)
    if record and record.get("final"):
        return _trained(spec, lab_dir, record)
    if threads:
        torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 storage, TF32 tensor-core matmuls
    task = create_task(spec.task, **spec.task_options)
    model = GPT(spec.config, seed=spec.seed).to(device)
    optimizer = make_optimizer(model, spec.weight_decay)
    start, losses, seconds = 0, [], 0.0
    if record and record.get("resume"):
        state = torch.load(ckpt_dir / f"{record['resume']}.pt", map_location=device, weights_only=True)
        model.load_state_dict(state["weights"])
        optimizer.load_state_dict(state["optimizer"])
        start, losses, seconds = state["step"], state["losses"], state["seconds"]
    step_flops = spec.flops_through(spec.steps)
    step_tokens = spec.step_tokens()
    flops_done = sum(step_flops[:start])
    tokens_done = spec.rows * sum(step_tokens[:start])
    resumed_from = start
    t0 = mark = time.perf_counter()
    last_ckpt, window_tokens, window_loss, window_n = t0, 0, 0.0, 0
    tps = 0.0
    model.train()
    for step in range(start, spec.steps):
        rows = step_rows(task, spec.seed, step, spec.rows)
        if observe is not None:
            observe(step, rows)
        x = torch.tensor([r.inputs for r in rows], device=device)
        y = torch.tensor([r.targets for r in rows], device=device)
        loss = train_step(model, optimizer, x, y, learning_rate(step, spec.steps, spec.lr, spec.warmup))
        tokens_done += x.numel()
        flops_done += step_flops[step]
        window_tokens += x.numel()
        window_loss, window_n = window_loss + loss, window_n + 1
        done = step + 1
        if done % log_every == 0 or done == spec.steps:
            now = time.perf_counter()
            tps = window_tokens / max(now - mark, 1e-9)
            losses.append([done, tokens_done, flops_done, window_loss / window_n])
            mark, window_tokens, window_loss, window_n = now, 0, 0.0, 0
        if progress is not None:
            progress(TrainProgress(done, spec.steps, tokens_done, flops_done, loss, tps))
        due = (checkpoint_every_steps is not None and done % checkpoint_every_steps == 0) or (
            checkpoint_every_steps is None and time.perf_counter() - last_ckpt >= checkpoint_every_s)
        if due and done < spec.steps:
            elapsed = seconds + time.perf_counter() - t0
            _, sha = save_blob({"weights": model.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
                                "losses": losses, "seconds": elapsed}, ckpt_dir)
            old = (record or {}).get("resume")
            record = {"spec": spec.as_dict(), "resume": sha, "step": done, "losses": losses, "final": None}
            write_record(rec_path, record)
            if old and old != sha:
                (ckpt_dir / f"{old}.pt").unlink(missing_ok=True)
            last_ckpt = time.perf_counter()
    seconds += time.perf_counter() - t0
    vocab = getattr(task, "vocab", "")
    blob_meta = {"spec": spec.as_dict(), "vocab": vocab, "flops": spec.flops, "tokens": spec.tokens,
                 "final_loss": losses[-1][3] if losses else None, **(meta or {})}
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _, sha = save_blob({"config": spec.config.as_dict(), "weights": weights, "meta": blob_meta}, ckpt_dir)
    old = (record or {}).get("resume")
    record = {"spec": spec.as_dict(), "resume": None, "step": spec.steps, "losses": losses, "final": sha,
              "seconds": seconds, "resumed_from": resumed_from}
    write_record(rec_path, record)
    if old:
        (ckpt_dir / f"{old}.pt").unlink(missing_ok=True)
    return _trained(spec, lab_dir, record)


def _trained(spec: TrainSpec, lab_dir: Path, record: dict[str, Any]) -> TrainedModel:
    return TrainedModel(spec, lab_dir / "checkpoints" / f"{record['final']}.pt", record["final"], record["losses"],
                        record.get("seconds", 0.0), record.get("resumed_from", 0))
