"""Fixtures for task tests: the shared GSM8K data, found beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest


def find_gsm8k_dir() -> Path | None:
    """The shared GSM8K folder: `shared/` beside the repository root (or any folder above the tests)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "gsm8k"
        if (candidate / "test.jsonl").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def gsm8k_dir() -> Path:
    found = find_gsm8k_dir()
    if found is None:
        pytest.skip("shared GSM8K data not found: expected shared/data/gsm8k/test.jsonl beside the repository")
    return found
