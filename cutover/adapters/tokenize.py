"""Replace card numbers by keyed HMAC tokens at the edge, so no PAN ever reaches disk.

The key comes from ``CUTOVER_TOKEN_KEY``; the same key gives the same token for the same PAN,
so one card joins across sources without anyone holding its number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Final

from cutover.errors import ConfigError

TOKEN_KEY_ENV: Final = "CUTOVER_TOKEN_KEY"  # noqa: S105 (a variable name, not a secret)
#: Used only by the simulated world and the demo; real runs must set CUTOVER_TOKEN_KEY.
DEMO_TOKEN_KEY: Final = "cutover-demo-key-not-secret"  # noqa: S105

_PAN_RUN: Final = re.compile(r"(?<!\d)(\d{13,19})(?!\d)")


def token_key(*, allow_demo: bool = False) -> bytes:
    """Return the tokenisation key from the environment; refuse to go on without one."""
    key = os.environ.get(TOKEN_KEY_ENV)
    if key:
        return key.encode()
    if allow_demo:
        return DEMO_TOKEN_KEY.encode()
    raise ConfigError(f"{TOKEN_KEY_ENV} is not set: refusing to handle card numbers without a key")


#: Hex digits 0-9 spelled as letters g-p: a token then holds no digit run, so the PAN scanner
#: (``find_pans``) never mistakes one for a card number (plain hex gave a Luhn-valid run in
#: about one token in two hundred).
_NO_DIGITS: Final = str.maketrans("0123456789", "ghijklmnop")


def tokenize_pan(pan: str, key: bytes) -> str:
    """Return the token of ``pan``: ``tok_`` and 32 letters (a-p) of its HMAC-SHA256."""
    digits = pan.replace(" ", "")
    digest = hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()[:32]
    return "tok_" + digest.translate(_NO_DIGITS)


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn check (what makes a digit run look like a PAN)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_pans(text: str) -> list[str]:
    """Return every 13-19 digit run in ``text`` that passes the Luhn check."""
    return [m.group(1) for m in _PAN_RUN.finditer(text) if luhn_ok(m.group(1))]


def mask_pans(text: str) -> str:
    """Replace each Luhn-valid digit run by its BIN, asterisks and last four digits."""

    def _mask(match: re.Match[str]) -> str:
        run = match.group(1)
        if not luhn_ok(run):
            return run
        return run[:6] + "*" * (len(run) - 10) + run[-4:]

    return _PAN_RUN.sub(_mask, text)
