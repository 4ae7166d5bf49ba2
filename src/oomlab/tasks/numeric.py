"""Finding the final number in model text, and writing numbers one canonical way.

Shared by the file tasks (gsm8k, jsonl): a completion is right when its
canonical number equals the reference's, so "$1,000.00" and "1000" agree.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# A number as people and models write it: optional sign and currency sign,
# thousands separators only in groups of three (so "3,4" is two numbers),
# an optional decimal part. A minus glued to a preceding word or digit is
# an operator ("16-3"), not a sign.
NUMBER = re.compile(
    r"(?:(?<![\w)\]])-\$?|\$\s?-?)?"
    r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
    r"|(?<![\w.])-?\.\d+"
)

# Markers after which a model states its final answer, in the forms few-shot
# prompts teach ("The answer is 18.", "#### 18") and the GSM8K paper's
# solutions use ("A: 18" on a line of its own).
ANSWER_MARKER = re.compile(
    r"####|\bthe (?:final )?answer is\b|^[ \t]*(?:A|Answer|Final answer)[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)

# GSM8K calculator annotations, "<<16-3=13>>": machine bookkeeping whose
# numbers are not the model's statement of anything.
CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]*>>")


def canonical_number(text: str) -> str | None:
    """One spelling per value: '18.00' -> '18', '1,000' -> '1000', '0.50' -> '0.5', '$-3' -> '-3'.

    None when `text` is not a number. Currency signs, thousands separators,
    a trailing period or percent sign and surrounding whitespace are
    tolerated, since references are written by people.
    """
    s = text.strip().rstrip(".").replace(",", "").replace("$", "").replace(" ", "")
    s = s.rstrip("%")
    try:
        value = Decimal(s)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))  # no exponent, no "-0"
    return format(value.normalize(), "f")


def numbers_in(text: str) -> list[str]:
    """Every number in `text`, canonical, in order of appearance."""
    found = (canonical_number(m.group()) for m in NUMBER.finditer(text))
    return [n for n in found if n is not None]


def extract_number(text: str) -> str | None:
    """The final answer in a model's text, canonical; None when there is no number.

    An explicit marker wins ("The answer is", "####", a line starting "A:"):
    the first number after the first marker that has one on its line. Models
    keep writing after they answer, so the first stated answer is the one
    meant. Without a marker, the last number in the text: a chain of thought
    ends at its result.
    """
    text = CALCULATOR_ANNOTATION.sub("", text)
    for marker in ANSWER_MARKER.finditer(text):
        line_end = text.find("\n", marker.end())
        rest = text[marker.end() : line_end if line_end >= 0 else len(text)]
        found = numbers_in(rest)
        if found:
            return found[0]
    found = numbers_in(text)
    return found[-1] if found else None
