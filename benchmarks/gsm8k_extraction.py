"""How often oomlab's GSM8K extraction agrees with the GSM8K paper's own grading.

example_model_solutions.jsonl holds, for each test problem (same line order
as test.jsonl), solutions from four GPT-3 models with the authors' verdict
`is_correct`. We extract each solution's answer with GSM8KTask.extract,
check it against the test.jsonl reference, and count agreements.

    python benchmarks/gsm8k_extraction.py [DATA_DIR] [--show N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from oomlab.tasks.gsm8k import GSM8KTask

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k"


def disagreements(data_dir: Path) -> tuple[int, list[dict[str, object]]]:
    """(solutions compared, the ones where our verdict differs from is_correct)."""
    task = GSM8KTask(path=data_dir / "test.jsonl")
    problems = task.all_problems()
    total, differ = 0, []
    with (data_dir / "example_model_solutions.jsonl").open(encoding="utf-8") as lines:
        for problem, line in zip(problems, lines, strict=True):
            record = json.loads(line)
            if record["question"] != problem.inputs["question"]:
                raise SystemExit(f"line order differs at {problem.id}")
            for model, sample in record.items():
                if not isinstance(sample, dict):
                    continue
                total += 1
                answer = task.extract(sample["solution"])
                if task.check(answer, problem) != sample["is_correct"]:
                    differ.append(
                        {"id": problem.id, "model": model, "reference": problem.reference,
                         "extracted": answer, "is_correct": sample["is_correct"],
                         "tail": sample["solution"][-120:]}
                    )
    return total, differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--show", type=int, default=10, help="disagreements to print")
    args = parser.parse_args()
    total, differ = disagreements(args.data_dir)
    for row in differ[: args.show]:
        print(json.dumps(row, ensure_ascii=False))
    print(f"solutions: {total}, disagreements: {len(differ)}")
    print(f"agreement: {100 * (total - len(differ)) / total:.2f}%")


if __name__ == "__main__":
    main()
