"""The shared number extraction: real model text in, one canonical spelling out."""

from __future__ import annotations

import pytest

from oomlab.tasks.numeric import canonical_number, extract_number, numbers_in


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18", "18"),
        ("18.00", "18"),
        ("18.0", "18"),
        ("0.50", "0.5"),
        ("1,000", "1000"),
        ("$1,234.50", "1234.5"),
        ("-3", "-3"),
        ("$-3", "-3"),
        ("-0", "0"),
        (" 42. ", "42"),
        ("50%", "50"),
        ("007", "7"),
        ("eighteen", None),
        ("", None),
        ("nan", None),
        ("18 dollars", None),
    ],
)
def test_canonical_number(text: str, expected: str | None) -> None:
    assert canonical_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 18.", "18"),
        ("So she makes $18.00 a day. The answer is $18.00.", "18"),
        ("9 * 2 = 18\nA: 18", "18"),
        ("The total is 1,000 apples.\n#### 1,000", "1000"),
        ("#### 18", "18"),
        ("He is left with -5 dollars. The answer is -5.", "-5"),
        ("The answer is 0.50 dollars.", "0.5"),
        ("The final answer is 7 cats", "7"),
        # a marker wins over numbers written after it (the model keeps talking)
        ("The answer is 12.\nQuestion: Tom has 3 apples and 4 pears", "12"),
        # no marker: the last number, where a chain of thought ends
        ("She has 16 - 3 - 4 = 9 eggs and makes 9 * 2 = 18 dollars", "18"),
        ("16-3=13", "13"),
        # calculator annotations are bookkeeping, not statements
        ("She makes 9 * 2 = $<<9*2=18>>18 every day", "18"),
        # a marker with no number on its line falls through to the next one
        ("The answer is below.\nA: 4", "4"),
        ("Step A: count the 3 apples. There are 3.", "3"),
        ("I do not know", None),
        ("", None),
    ],
)
def test_extract_number(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


def test_subtraction_is_not_a_negative_number() -> None:
    assert numbers_in("16 - 3 = 13") == ["16", "3", "13"]
    assert numbers_in("16-3=13") == ["16", "3", "13"]
    assert numbers_in("x = -3") == ["-3"]


def test_separators_only_in_groups_of_three() -> None:
    assert numbers_in("3,4 and 5") == ["3", "4", "5"]
    assert numbers_in("1,234,567") == ["1234567"]
