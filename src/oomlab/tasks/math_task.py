"""MATH-style problems (MATH-500, AIME-style integer sets, your own) from a local JSONL file.

Each line holds a problem and its answer, as in MATH (Hendrycks et al. 2021, arXiv 2103.03874)
and the MATH-500 split of Lightman et al. 2023 ("Let's Verify Step by Step", arXiv 2305.20050;
openai/prm800k): `{"problem": ..., "solution": ..., "answer": ..., "subject": ..., "level": 3}`.
When a file has no answer field, the reference is the last `\\boxed{}` of its solution, which is
how MATH marks answers. `level` and `subject` go into the problem's metadata, `level` also as its
difficulty, so difficulty bins are the dataset's own levels.

The model's answer is the content of its last `\\boxed{...}` or `\\fbox{...}` (braces nested to
any depth); without a box, what follows "the final answer is" / "the answer is" / "Answer:", or a
completion that is nothing but a short answer ("14/3"). It is compared with the reference by
symbolic equivalence (Math-Verify, in `math_grading.py`), not by string. The extracted text is
only lightly tidied (spaces, `$`, a final period, `\\left`/`\\right`, `\\dfrac`), so that votes of
one spelling count together; grading never depends on that tidying.

Prompts, in the field's two standard forms:
- `style=fewshot` (default, for base models): worked examples, "Problem:" / "Solution:", each
  solution one step per line and ending "The final answer is $\\boxed{...}$." (the layout of
  Lewkowycz et al. 2022, Minerva, Appendix D.2, with the boxed answer of MATH's own solutions).
  The four examples are written for oomlab, not taken from MATH. One step per line lets the step
  searches (beam, dvts, particle-filter) split a solution at newlines.
- `style=chat` (for instruction models; run the backend with `chat=true`): the problem followed
  by "Please reason step by step, and put your final answer within \\boxed{}.", the instruction
  of Qwen2.5-Math's chain-of-thought evaluation (Yang et al. 2024, arXiv 2409.12122) and the one
  DeepSeek-R1's model card recommends for mathematics.

Grading needs Math-Verify: `pip install 'oomlab[math]'`. Without it the task refuses to start,
with that command in the message, before any compute is spent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from oomlab.backends.base import SamplingParams
from oomlab.errors import ConfigError, DatasetError
from oomlab.problem import Problem
from oomlab.tasks.base import TASKS
from oomlab.tasks.jsonl import JsonlTask
from oomlab.tasks.math_grading import DEFAULT_TIMEOUT_S, MathGrader, default_grader, require_math_verify

CHAT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

EXEMPLARS: tuple[tuple[str, str, str], ...] = (
    (
        "What is the value of $\\frac{2}{3} + \\frac{3}{4}$?",
        "Over the common denominator 12, $\\frac{2}{3} = \\frac{8}{12}$ and $\\frac{3}{4} = \\frac{9}{12}$.\n"
        "Their sum is $\\frac{8 + 9}{12} = \\frac{17}{12}$.",
        "\\frac{17}{12}",
    ),
    (
        "Solve for $x$: $3x - 7 = 11$.",
        "Adding 7 to both sides gives $3x = 18$.\nDividing both sides by 3 gives $x = 6$.",
        "6",
    ),
    (
        "Simplify $\\sqrt{50} + \\sqrt{8}$.",
        "$\\sqrt{50} = \\sqrt{25 \\cdot 2} = 5\\sqrt{2}$.\n$\\sqrt{8} = \\sqrt{4 \\cdot 2} = 2\\sqrt{2}$.\n"
        "So the sum is $5\\sqrt{2} + 2\\sqrt{2} = 7\\sqrt{2}$.",
        "7\\sqrt{2}",
    ),
    (
        "For which real numbers $x$ is $x^2 - 5x + 6 < 0$? Give your answer in interval notation.",
        "Factoring gives $x^2 - 5x + 6 = (x - 2)(x - 3)$.\n"
        "The product is negative exactly when $x$ lies strictly between the roots 2 and 3.",
        "(2, 3)",
    ),
)

_BOX = re.compile(r"\\(?:boxed|fbox)\b")
_MARKER = re.compile(r"(?:final answer is|the answer is|^\s*(?:final )?answer\s*:)", re.IGNORECASE | re.MULTILINE)
_HOPE = re.compile(r"\.?\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![a-zA-Z])")
_LEVEL = re.compile(r"(\d+)")
SHORT_ANSWER = 40  # characters: a completion this short with no box or marker is taken as the answer


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` / `\\fbox{...}` (nested braces), or of `\\boxed 5`; None if none.

    An unclosed box (a completion cut off by its token limit) is no answer.
    """
    for match in reversed(list(_BOX.finditer(text))):
        rest = text[match.end() :]
        stripped = rest.lstrip()
        if stripped.startswith("{"):
            start = len(rest) - len(stripped)
            depth, i = 0, start
            while i < len(rest):
                ch = rest[i]
                if ch == "\\":  # a backslash escapes the next character: \{ and \} are not the box's braces
                    i += 2
                    continue
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return rest[start + 1 : i]
                i += 1
            continue  # unclosed: try an earlier box
        if rest[:1] == " ":  # "\boxed 5": the next token
            token = stripped.split(None, 1)[0] if stripped else ""
            token = token.rstrip("$.,")
            if token:
                return token
    return None


def tidy(answer: str) -> str | None:
    """An answer's text in one spelling for voting: spaces, `$`, a final period, \\left/\\right, \\dfrac."""
    s = _HOPE.sub("", answer.strip())
    s = s.strip().strip("$").strip()
    s = s.rstrip(".").strip()
    s = _LEFT_RIGHT.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SPACES.sub(" ", s).strip()
    return s or None


def extract_answer(text: str) -> str | None:
    """The final answer in a solution: last box; else after an answer marker; else a short bare answer."""
    boxed = last_boxed(text)
    if boxed is not None:
        return tidy(boxed)
    markers = list(_MARKER.finditer(text))
    if markers:
        rest = text[markers[-1].end() :].strip().split("\n", 1)[0]
        return tidy(rest.lstrip(":").strip())
    body = text.strip()
    if body and "\n" not in body and len(body) <= SHORT_ANSWER and not _BOX.search(body):
        return tidy(body)
    return None


def parse_level(value: Any) -> int | None:
    """MATH levels are 1..5, written 3 or "Level 3"; anything else ("Level ?") is no level."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    match = _LEVEL.search(str(value))
    return int(match.group(1)) if match else None


@TASKS.register("math")
class MathTask(JsonlTask):
    """MATH-style problems graded by symbolic equivalence (Math-Verify); levels as difficulty."""

    description: ClassVar[str] = "MATH-style JSONL (MATH-500, AIME, ...), \\boxed answers graded symbolically (path=...)"

    def __init__(
        self,
        path: str | Path | None = None,
        style: str = "fewshot",
        shots: int = 4,
        problem_field: str = "problem",
        answer_field: str = "answer",
        solution_field: str = "solution",
        level_field: str = "level",
        subject_field: str = "subject",
        shuffle: bool = False,
        max_tokens: int | None = None,
        grading_timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if style not in ("fewshot", "chat"):
            raise ConfigError(f"math style must be 'fewshot' or 'chat', got '{style}'")
        if not 0 <= shots <= len(EXEMPLARS):
            raise ConfigError(f"math shots must be between 0 and {len(EXEMPLARS)}, got {shots}")
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"math max_tokens must be at least 1, got {max_tokens}")
        require_math_verify()
        super().__init__(path=path, question_field=problem_field, answer_field=answer_field, numeric=False,
                         shuffle=shuffle)
        self.style, self.shots = style, shots
        self.problem_field, self.solution_field = problem_field, solution_field
        self.level_field, self.subject_field = level_field, subject_field
        self.max_tokens, self.grading_timeout = max_tokens, grading_timeout
        self._grader: MathGrader | None = None
        self._fewshot = "".join(
            f"Problem:\n{q}\n\nSolution:\n{steps}\nThe final answer is $\\boxed{{{a}}}$.\n\n"
            for q, steps, a in EXEMPLARS[:shots]
        )

    @property
    def grader(self) -> MathGrader:
        """The shared grader, or one of this task's own when its timeout differs from the default."""
        if self._grader is None:
            self._grader = default_grader() if self.grading_timeout == DEFAULT_TIMEOUT_S else MathGrader(
                timeout=self.grading_timeout)
        return self._grader

    def problem_from(self, index: int, line_no: int, record: dict[str, Any]) -> Problem:
        """One record: the problem text, the reference answer, level and subject as metadata."""
        problem = self.field(record, self.problem_field, line_no)
        if record.get(self.answer_field) is not None:
            reference = tidy(self.field(record, self.answer_field, line_no))
        elif record.get(self.solution_field) is not None:
            boxed = last_boxed(self.field(record, self.solution_field, line_no))
            reference = None if boxed is None else tidy(boxed)
        else:
            raise DatasetError(f"{self.path}: line {line_no}: no field '{self.answer_field}' or "
                               f"'{self.solution_field}' (fields: {', '.join(sorted(record)) or 'none'})")
        if reference is None:
            raise DatasetError(f"{self.path}: line {line_no}: no answer (an empty '{self.answer_field}', "
                               f"or a '{self.solution_field}' without \\boxed{{}})")
        level = parse_level(record.get(self.level_field))
        metadata: dict[str, Any] = {"line": line_no, "difficulty": level, "level": level,
                                    "subject": record.get(self.subject_field)}
        if "unique_id" in record:
            metadata["unique_id"] = record["unique_id"]
        inputs = {"problem": problem, "question": problem}
        return Problem(id=f"{self.id_prefix()}-{index}", inputs=inputs, reference=reference, metadata=metadata)

    def id_prefix(self) -> str:
        """Folder and file name ("math-math500-test"): many MATH-style sets call their file test.jsonl."""
        return f"math-{self.path.parent.name}-{self.path.stem}"

    def prompt(self, problem: Problem) -> str:
        text = problem.inputs["problem"]
        if self.style == "chat":
            return f"{text}\n{CHAT_INSTRUCTION}"
        return f"{self._fewshot}Problem:\n{text}\n\nSolution:\n"

    def extract(self, text: str) -> str | None:
        return extract_answer(text)

    def check(self, answer: str | None, problem: Problem) -> bool:
        """Symbolic equivalence with the reference (Math-Verify in a worker process, time-bounded)."""
        if answer is None:
            return False
        return self.grader.grade(answer, problem.reference)

    def sampling(self) -> SamplingParams:
        """Few-shot: a solution ends at a blank line, as the examples do; chat: at the model's end of turn."""
        if self.style == "chat":
            return SamplingParams(max_tokens=self.max_tokens or 1024, stop=())
        return SamplingParams(max_tokens=self.max_tokens or 512, stop=("\n\n", "\nProblem:"))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "style": self.style, "shots": self.shots,
                "problem_field": self.problem_field, "answer_field": self.answer_field,
                "solution_field": self.solution_field, "level_field": self.level_field,
                "subject_field": self.subject_field, "shuffle": self.shuffle, "max_tokens": self.max_tokens,
                "grading_timeout": self.grading_timeout}
