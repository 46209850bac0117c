"""Tokens are stable per key, differ across keys, and never look like a card number."""

from __future__ import annotations

import random
import re

from cutover.adapters.tokenize import find_pans, luhn_ok, mask_pans, tokenize_pan

KEY = b"unit-test-key"


def _pan(rng: random.Random) -> str:
    body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def test_token_is_stable_keyed_and_letters_only() -> None:
    pan = _pan(random.Random(1))
    token = tokenize_pan(pan, KEY)
    assert token == tokenize_pan(pan, KEY)
    assert token != tokenize_pan(pan, b"other-key")
    assert re.fullmatch(r"tok_[a-p]{32}", token)


def test_ten_thousand_tokens_hold_no_pan_like_run() -> None:
    rng = random.Random(2)
    tokens = " ".join(tokenize_pan(_pan(rng), KEY) for _ in range(10_000))
    assert find_pans(tokens) == []


def test_mask_keeps_bin_and_last_four_of_luhn_runs_only() -> None:
    pan = _pan(random.Random(3))
    assert mask_pans(f"card {pan} ref 1234567890123") == f"card {pan[:6]}******{pan[-4:]} ref 1234567890123"
