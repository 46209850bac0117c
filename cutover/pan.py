"""The one card-number detector, in front of every writer: plain or formatted, Luhn-checked.

A card number reaches cutover written many ways: ``4111111111111111``, ``4111 1111 1111 1111``,
``4111-1111-1111-1111``, ``4111.1111.1111.1111``. Every writer (cassettes, the traffic store,
quarantine files, rejects, reports, logs, the ledger) asks this module, so a form one writer
knows cannot slip past another. It sits low in the layers, beside ``digest``, because every
layer above writes something.

What counts as a card number: 13 to 19 digits in groups separated by at most
``SEPARATOR_CHARS_MAX`` of space, dash or dot, not touching another digit, whose digits pass
the Luhn check; written in groups, each group holds 3-6 digits (the last may be shorter), as
card numbers are printed. A run of groups longer than 19 digits is searched for a card number
inside it at group boundaries, so ``4111 1111 1111 1111 2026`` is still caught.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

PAN_DIGITS_MIN: Final = 13
PAN_DIGITS_MAX: Final = 19
#: Separator characters allowed between two digit groups ("4111 - 1111" has three: refused
#: as a separator, so a list of numbers in prose is not read as one long card number).
SEPARATOR_CHARS_MAX: Final = 2
#: Digits per group of a card number written in groups (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3);
#: only the last group may be shorter. Ids like ``T20260921-0000180`` (groups of 8 and 7) or
#: dates (``2026-09-28``) are therefore never read as card numbers, whatever their Luhn sum.
GROUP_DIGITS: Final = range(3, 7)
#: An RE2/Python pattern that matches wherever a card number could be: used by Arrow as a
#: cheap vectorised pre-filter, so only the rows it matches get the Luhn check in Python.
#: Grouped, 13+ digits in groups of at most 6 take at least three groups, the first two of
#: 3-6 digits; ids such as ``T20260921-0000180`` (two groups) do not match.
CANDIDATE_PATTERN: Final = r"\d{13}|\d{3,6}[ .\-]{1,2}\d{3,6}[ .\-]{1,2}\d"
#: Groups looked at in one run of digits and separators; a run with more is searched in
#: windows, so a pathological input costs time linear in its length.
GROUPS_PER_RUN_MAX: Final = 10_000

_CANDIDATE: Final = re.compile(CANDIDATE_PATTERN)
_RUN: Final = re.compile(r"(?<!\d)\d+(?:[ .\-]{1,2}\d+)*(?!\d)")
_GROUP: Final = re.compile(r"\d+")
_SEPARATORS: Final = re.compile(r"[ .\-]")


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` (only digits) passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def digits_only(text: str) -> str:
    """``text`` without the separators a card number may be written with."""
    return _SEPARATORS.sub("", text)


def _window_ok(lengths: list[int], i: int, j: int) -> bool:
    """May groups i..j be one card number as written? One group of 13-19 digits, or groups
    of ``GROUP_DIGITS`` with a last group of 1 to ``GROUP_DIGITS.stop - 1`` digits."""
    total = sum(lengths[i:j + 1])
    if not PAN_DIGITS_MIN <= total <= PAN_DIGITS_MAX:
        return False
    if i == j:
        return True
    return all(n in GROUP_DIGITS for n in lengths[i:j]) and 1 <= lengths[j] < GROUP_DIGITS.stop


def _spans_in_run(groups: list[re.Match[str]]) -> list[tuple[int, int, str]]:
    """(start, end, digits) of each card number in one run of digit groups, left to right.

    From each group, the longest Luhn-valid stretch of whole groups wins; the search then
    goes on after it, so spans never overlap.
    """
    found: list[tuple[int, int, str]] = []
    lengths = [g.end() - g.start() for g in groups]
    i = 0
    while i < len(groups):
        # A card number has at most PAN_DIGITS_MAX groups, so the window is bounded.
        ends = [j for j in range(i, min(len(groups), i + PAN_DIGITS_MAX))
                if _window_ok(lengths, i, j)]
        last = next((j for j in reversed(ends)
                     if luhn_ok("".join(g.group() for g in groups[i:j + 1]))), None)
        if last is None:
            i += 1
            continue
        digits = "".join(g.group() for g in groups[i:last + 1])
        found.append((groups[i].start(), groups[last].end(), digits))
        i = last + 1
    return found


def find_pan_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) of every card number in ``text``, in order, not overlapping."""
    if not text or _CANDIDATE.search(text) is None:
        return []
    spans: list[tuple[int, int, str]] = []
    for run in _RUN.finditer(text):
        if run.end() - run.start() < PAN_DIGITS_MIN:
            continue
        groups = list(_GROUP.finditer(text, run.start(), run.end()))
        for offset in range(0, len(groups), GROUPS_PER_RUN_MAX):
            spans += _spans_in_run(groups[offset:offset + GROUPS_PER_RUN_MAX])
    return spans


def find_pans(text: str) -> list[str]:
    """The digits of every card number in ``text``."""
    return [digits for _, _, digits in find_pan_spans(text)]


def has_pan(text: str) -> bool:
    """True when ``text`` holds a card number in any of the forms this module knows."""
    return bool(find_pan_spans(text))


def replace_pans(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with each card number (as written) replaced by ``replace(its digits)``."""
    spans = find_pan_spans(text)
    if not spans:
        return text
    pieces, last = [], 0
    for start, end, digits in spans:
        pieces += [text[last:start], replace(digits)]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def mask_digits(digits: str) -> str:
    """A card number's BIN, asterisks and last four: enough to find it, not to use it."""
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_pans(text: str) -> str:
    """``text`` with every card number masked (BIN, asterisks, last four)."""
    return replace_pans(text, mask_digits)


def mask_value(value: object) -> object:
    """A JSON-like value (dict, list, text, number) with every card number in its text masked."""
    if isinstance(value, str):
        return mask_pans(value)
    if isinstance(value, dict):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and has_pan(str(value)):
        return mask_pans(str(value))
    return value
