"""Replace card numbers by keyed HMAC tokens at the edge, so no PAN ever reaches disk.

The key comes from ``CUTOVER_TOKEN_KEY``; the same key gives the same token for the same PAN,
so one card joins across sources without anyone holding its number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

from cutover.errors import ConfigError
from cutover.pan import digits_only, find_pans, luhn_ok, mask_pans, replace_pans

TOKEN_KEY_ENV: Final = "CUTOVER_TOKEN_KEY"  # noqa: S105 (a variable name, not a secret)
#: Used only by the simulated world and the demo; real runs must set CUTOVER_TOKEN_KEY.
DEMO_TOKEN_KEY: Final = "cutover-demo-key-not-secret"  # noqa: S105


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
    """Return the token of ``pan`` (separators ignored): ``tok_`` and 32 letters (a-p) of its
    HMAC-SHA256, so ``4111 1111 1111 1111`` and ``4111111111111111`` give one token."""
    digits = digits_only(pan)
    digest = hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()[:32]
    return "tok_" + digest.translate(_NO_DIGITS)


# The detector lives in cutover.pan (every writer needs it); these names stay importable here.
__all__ = ["DEMO_TOKEN_KEY", "TOKEN_KEY_ENV", "find_pans", "luhn_ok", "mask_pans", "token_key",
           "tokenize_pan", "tokenize_text"]


def tokenize_text(text: str, key: bytes) -> str:
    """``text`` with every card number in it, however written, replaced by its token."""
    return replace_pans(text, lambda digits: tokenize_pan(digits, key))
