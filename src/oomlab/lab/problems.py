"""What every lab task shares: a character vocabulary, formats, and a hash-partitioned problem space.

A lab task is a generator of problems. Its problem space is split once and for all by a hash of
each problem's canonical text: a problem whose hash falls in the held-out slice (10%) can be an
evaluation problem and is never a training example; every other problem can be a training
example and is never an evaluation problem. The split is a property of the problem, not of a
seed or of the order of drawing, so no training stream of any length can reach an evaluation
problem (tests/lab checks it over the stream a ladder actually drew).

Pure Python (no torch): the task registry imports every task module.
"""

from __future__ import annotations

import hashlib
import random
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from oomlab.backends.base import SamplingParams
from oomlab.errors import ConfigError
from oomlab.problem import Problem
from oomlab.tasks.base import Task

FORMATS = ("direct", "cot")
SPLITS = ("eval", "train")  # which slice `problems()` draws from; "train" measures the generalisation gap
HELD_OUT_PERCENT = 10  # of the problem space, by hash
EOS = "\n"  # ends every answer; also pads a training row's tail


@dataclass(frozen=True)
class Example:
    """One problem as text: the prompt the model sees and the answer it must write (EOS included)."""

    key: str  # canonical identity of the problem; the hash partition is taken on it
    prompt: str
    answer: str
    level: int
    reference: str  # the final answer alone


def held_out(task_name: str, key: str) -> bool:
    """True for problems reserved for evaluation: a fixed 10% slice of the space by BLAKE2b hash."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=task_name.encode()[:16]).digest()
    return int.from_bytes(digest, "big") % 100 < HELD_OUT_PERCENT


class LabTask(Task):
    """A generated task in a `direct` or `cot` (scratchpad) format with an unlimited training stream."""

    vocab: ClassVar[str]  # every character a prompt or answer can hold; token id = index
    levels: tuple[int, ...] = ()
    chance: float = 0.0  # accuracy of a uniform guess over the possible answers

    def __init__(self, format: str = "cot", split: str = "eval") -> None:
        if format not in FORMATS:
            raise ConfigError(f"unknown lab format '{format}'; valid formats: {', '.join(FORMATS)}")
        if split not in SPLITS:
            raise ConfigError(f"unknown lab split '{split}'; valid splits: {', '.join(SPLITS)}")
        self.format, self.split = format, split

    # -- the problem space ----------------------------------------------------------------------
    @abstractmethod
    def draw(self, rng: random.Random, level: int) -> Example:
        """One problem of `level`, uniformly from the whole space of that level (both slices)."""

    def draw_split(self, rng: random.Random, level: int, evaluation: bool) -> Example:
        """One problem of `level` from the evaluation slice (evaluation=True) or the training slice."""
        for _ in range(100_000):
            ex = self.draw(rng, level)
            if held_out(self.name, ex.key) == evaluation:
                return ex
        raise ConfigError(f"{self.name}: level {level} has no {'evaluation' if evaluation else 'training'} problems")

    # -- Task -----------------------------------------------------------------------------------
    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        """n distinct held-out problems cycling through the levels; the same for every format.

        With split="train", n distinct problems of the training slice instead (the slice every training
        stream draws from): a model's accuracy there against held-out accuracy is its generalisation gap.
        """
        evaluation = self.split == "eval"
        rng = random.Random(f"{self.name}:eval:{seed}" if evaluation else f"{self.name}:train-sample:{seed}")
        tag = "" if evaluation else "train-"
        seen: set[str] = set()
        out: list[Problem] = []
        for i in range(n):
            level = self.levels[i % len(self.levels)]
            for _ in range(1000):
                ex = self.draw_split(rng, level, evaluation=evaluation)
                if ex.key not in seen:
                    break
            else:
                slice_ = "held-out" if evaluation else "training"
                raise ConfigError(f"{self.name}: level {level} has too few {slice_} problems for {n} problems")
            seen.add(ex.key)
            out.append(Problem(id=f"{self.name}-{tag}{seed}-{i}", inputs={"key": ex.key, "prompt": ex.prompt},
                               reference=ex.reference, metadata={"difficulty": level, "level": level}))
        return out

    def prompt(self, problem: Problem) -> str:
        """The bare problem: a lab model is trained on this format, so it needs no examples."""
        return problem.inputs["prompt"]

    def final_text(self, text: str) -> str | None:
        """The answer's text: direct, the line; chain of thought, what follows the line's last ';' (None: no ';')."""
        line = text.split(EOS, 1)[0]
        if self.format == "cot":
            if ";" not in line:
                return None
            line = line.rsplit(";", 1)[1]
        return line

    def extract(self, text: str) -> str | None:
        """Direct: the whole completion as an integer. Chain of thought: the integer after the last ';'."""
        line = self.final_text(text)
        return str(int(line)) if line is not None and line.isdigit() else None

    def sampling(self) -> SamplingParams:
        """Stop at the end of the answer; room for the longest answer of any level."""
        return SamplingParams(max_tokens=self.max_answer_tokens(), top_k=0, stop=(EOS,))

    @abstractmethod
    def max_answer_tokens(self, level: int | None = None) -> int:
        """The longest answer (EOS included) of `level` (None: of any level), in this format."""

    @abstractmethod
    def max_prompt_tokens(self, level: int | None = None) -> int:
        """The longest prompt of `level` (None: of any level)."""

    def config(self) -> dict[str, Any]:
        split = {"split": self.split} if self.split != "eval" else {}  # runs before the option keep their identity
        return {"name": self.name, "format": self.format, **split}

    # -- tokens ---------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids = self.__dict__.get("_ids") or self.__dict__.setdefault("_ids", {ch: i for i, ch in enumerate(self.vocab)})
        try:
            return [ids[ch] for ch in text]
        except KeyError as e:
            raise ConfigError(f"{self.name}: character {e.args[0]!r} is not in the vocabulary {self.vocab!r}") from None
