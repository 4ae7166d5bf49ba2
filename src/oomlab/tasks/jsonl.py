"""Any question/answer JSONL file as a Task: fields, patterns and template are options.

One record a line, e.g. `{"question": "...", "answer": "42"}`. The reference
is the answer field (or the group of `answer_pattern` in it; by default the
text after `####` when there is one, as in GSM8K). Model text is read with
the numeric extraction of `oomlab.tasks.numeric` unless `extract_pattern`
says otherwise. A malformed line is a DatasetError naming file and line,
and a file without records is one too: a dataset is data a person must fix,
not a traceback to read (nor an empty run).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from oomlab.backends.base import SamplingParams
from oomlab.errors import ConfigError, DatasetError
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS, Task
from oomlab.tasks.numeric import canonical_number, extract_number

DEFAULT_TEMPLATE = "Question: {question}\nAnswer:"
FINAL_ANSWER = r"####\s*(.+)"  # GSM8K's convention for the final line of a solution


def require_file(path: str | Path | None, task: str) -> Path:
    """The dataset path, checked now so that a typo fails before any compute is spent."""
    if path is None or str(path) == "":
        raise ConfigError(
            f"task '{task}' reads a local JSONL file and needs its path: "
            f"create_task('{task}', path='data/test.jsonl') or --task-option path=..."
        )
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise ConfigError(f"task '{task}': dataset file not found: {resolved}")
    return resolved.resolve()


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # a JSON escape in U+D800..U+DFFF


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, record) for each non-blank line; DatasetError naming file and line on a
    malformed one: not UTF-8, not JSON, not an object, or text with a lone surrogate escape (valid
    JSON, but no Unicode text: it could be neither stored nor sent to a model)."""
    try:
        with path.open("rb") as lines:
            for line_no, raw in enumerate(lines, start=1):
                try:
                    line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DatasetError(f"{path}: line {line_no}: not UTF-8 text ({exc.reason} at byte "
                                       f"{exc.start + 1} of the line)") from None
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}: line {line_no}: not valid JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise DatasetError(
                        f"{path}: line {line_no}: expected a JSON object, got {type(record).__name__}"
                    )
                if _SURROGATE.search(line):
                    _check_unicode(record, path, line_no)
                yield line_no, record
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from exc


def _check_unicode(record: dict[str, Any], path: Path, line_no: int) -> None:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        code = ", ".join(f"\\u{ord(c):04x}" for c in bad)
        raise DatasetError(f"{path}: line {line_no}: a lone surrogate {code} in the text (half of a UTF-16 "
                           "pair): not valid Unicode") from None


def compile_pattern(pattern: str | None, option: str) -> re.Pattern[str] | None:
    """A user's regex, compiled; at most one group, which then holds the answer."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{option} {pattern!r} is not a valid regular expression: {exc}") from exc
    if compiled.groups > 1:
        raise ConfigError(f"{option} {pattern!r} has {compiled.groups} groups; use one (the answer)")
    return compiled


def matched_text(match: re.Match[str]) -> str:
    """The answer a pattern matched: its group when it has one, else the whole match."""
    return match.group(1) if match.re.groups else match.group(0)


@TASKS.register("jsonl")
class JsonlTask(Task):
    """Questions and answers from a local JSONL file; fields, patterns and prompt configurable."""

    description: ClassVar[str] = "questions and answers from any local JSONL file (path=...)"
    answer_hint: ClassVar[str] = ""  # appended to the message when a reference does not match

    def __init__(
        self,
        path: str | Path | None = None,
        question_field: str = "question",
        answer_field: str = "answer",
        answer_pattern: str | None = None,
        extract_pattern: str | None = None,
        template: str = DEFAULT_TEMPLATE,
        numeric: bool = True,
        difficulty_field: str | None = None,
        shuffle: bool = False,
    ) -> None:
        self.path = require_file(path, self.name)
        self.question_field = question_field
        self.answer_field = answer_field
        self.answer_pattern = answer_pattern
        self.extract_pattern = extract_pattern
        self.template = template
        self.numeric = numeric
        self.difficulty_field = difficulty_field
        self.shuffle = shuffle
        self._answer_re = compile_pattern(answer_pattern, "answer_pattern")
        self._extract_re = compile_pattern(extract_pattern, "extract_pattern")
        self._problems: list[Problem] | None = None

    # -- reading the file -------------------------------------------------

    def all_problems(self) -> list[Problem]:
        """Every problem in the file, in file order; read once and kept."""
        if self._problems is None:
            problems = [
                self.problem_from(index, line_no, record)
                for index, (line_no, record) in enumerate(read_jsonl(self.path))
            ]
            if not problems:
                raise DatasetError(f"{self.path}: no problems in the file (it is empty, or only blank lines)")
            self._problems = problems
        return self._problems

    def field(self, record: dict[str, Any], name: str, line_no: int) -> str:
        """A text or number field of a record; DatasetError naming the line when it is missing."""
        value = record.get(name)
        if value is None:
            raise DatasetError(
                f"{self.path}: line {line_no}: no field '{name}' "
                f"(fields: {', '.join(sorted(record)) or 'none'})"
            )
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise DatasetError(
                f"{self.path}: line {line_no}: field '{name}' is {type(value).__name__}, not text"
            )
        return str(value)

    def reference_from(self, raw: str, line_no: int) -> str:
        """The canonical reference in an answer field (the pattern's group, or the whole field)."""
        pattern = self._answer_re
        if pattern is None and "####" in raw:
            pattern = re.compile(FINAL_ANSWER)
        answer = raw
        if pattern is not None:
            match = pattern.search(raw)
            if match is None:
                raise DatasetError(
                    f"{self.path}: line {line_no}: field '{self.answer_field}' has no match "
                    f"for {pattern.pattern!r}{self.answer_hint}"
                )
            answer = matched_text(match)
        if not self.numeric:
            return answer.strip()
        canonical = canonical_number(answer)
        if canonical is None:
            raise DatasetError(
                f"{self.path}: line {line_no}: answer {answer.strip()!r} is not a number "
                "(use numeric=False to compare answers as text)"
            )
        return canonical

    def problem_from(self, index: int, line_no: int, record: dict[str, Any]) -> Problem:
        """One record as a Problem; other scalar fields stay available to the template."""
        question = self.field(record, self.question_field, line_no)
        reference = self.reference_from(self.field(record, self.answer_field, line_no), line_no)
        inputs = {
            key: value
            for key, value in record.items()
            if key != self.answer_field and isinstance(value, (str, int, float))
        }
        inputs["question"] = question
        metadata: dict[str, Any] = {"line": line_no}
        if self.difficulty_field is not None:
            metadata["difficulty"] = record.get(self.difficulty_field)
        return Problem(id=f"{self.id_prefix()}-{index}", inputs=inputs, reference=reference, metadata=metadata)

    def id_prefix(self) -> str:
        """Problem ids name the file, so two datasets in one store do not collide."""
        return self.path.stem

    # -- the Task interface ---------------------------------------------

    def problems(self, n: int, seed: int = 0) -> list[Problem]:
        """The first n in file order, or with shuffle=True a seeded sample of n."""
        pool = self.all_problems()
        n = max(0, min(n, len(pool)))
        if self.shuffle:
            return random.Random(seed).sample(pool, n)
        return pool[:n]

    def prompt(self, problem: Problem) -> str:
        try:
            return self.template.format_map(problem.inputs)
        except KeyError as exc:
            raise ConfigError(
                f"template names field {exc.args[0]!r}, which problem {problem.id} does not have "
                f"(fields: {', '.join(sorted(problem.inputs))})"
            ) from exc
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"template {self.template!r} is not a valid format string: {exc}") from exc

    def extract(self, text: str) -> str | None:
        """With extract_pattern: its first match; else numeric extraction (or the first line, for text)."""
        if self._extract_re is not None:
            match = self._extract_re.search(text)
            if match is None:
                return None
            answer = matched_text(match)
            return canonical_number(answer) if self.numeric else answer.strip()
        if self.numeric:
            return extract_number(text)
        first_line = text.strip().split("\n", 1)[0].strip()
        return first_line or None

    def sampling(self) -> SamplingParams:
        return SamplingParams(max_tokens=256, stop=("\n\n", "\nQuestion:"))

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "question_field": self.question_field,
            "answer_field": self.answer_field,
            "answer_pattern": self.answer_pattern,
            "extract_pattern": self.extract_pattern,
            "template": self.template,
            "numeric": self.numeric,
            "difficulty_field": self.difficulty_field,
            "shuffle": self.shuffle,
        }
