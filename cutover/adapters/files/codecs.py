"""Field codecs as COBOL writes them: zoned overpunch and packed decimal (COMP-3), one value.

These are the reference definitions, pure and small, that the vectorised column code in
``columns`` must agree with (tests check both against the same known encodings). Packed fields
are decoded here one value at a time: they only occur in binary record files, which are rare.
"""

from __future__ import annotations

from typing import Final

from cutover.errors import BadRecord

#: Last character of a signed zoned number: index 0-9 is +0..+9, 10-19 is -0..-9.
OVERPUNCH: Final = "{ABCDEFGHI}JKLMNOPQR"
_OVERPUNCH_INDEX: Final = {c: i for i, c in enumerate(OVERPUNCH)}
_PACKED_POSITIVE: Final = (0xC, 0xF, 0xA, 0xE)
_PACKED_NEGATIVE: Final = (0xD, 0xB)


def zoned_decode(text: str) -> int:
    """Decode a signed zoned number: ``"1234{"`` is +12340, ``"1234}"`` is -12340."""
    if not text:
        raise BadRecord("empty zoned number")
    body, last = text[:-1], text[-1]
    if body and not body.isdigit() or not body.isascii():
        raise BadRecord(f"bad digits {text!r} in zoned number")
    if last.isdigit() and last.isascii():
        return int(text)
    index = _OVERPUNCH_INDEX.get(last)
    if index is None:
        raise BadRecord(f"bad overpunch character {last!r} in zoned number {text!r}")
    magnitude = int(body or "0") * 10 + index % 10
    return -magnitude if index >= 10 else magnitude


def zoned_encode(value: int, width: int) -> str:
    """Encode ``value`` as a ``width``-character signed zoned number (sign always punched)."""
    digits = str(abs(value)).rjust(width, "0")
    if len(digits) > width:
        raise BadRecord(f"{value} does not fit in {width} zoned digits")
    return digits[:-1] + OVERPUNCH[int(digits[-1]) + (10 if value < 0 else 0)]


def packed_decode(data: bytes) -> int:
    """Decode COMP-3: two digits per byte, the last nibble the sign (C/F +, D -)."""
    if not data:
        raise BadRecord("empty packed number")
    nibbles = [n for byte in data for n in (byte >> 4, byte & 0xF)]
    digits, sign = nibbles[:-1], nibbles[-1]
    if any(d > 9 for d in digits) or sign not in _PACKED_POSITIVE + _PACKED_NEGATIVE:
        raise BadRecord(f"bad packed decimal bytes {data.hex()}")
    magnitude = int("".join(map(str, digits)))
    return -magnitude if sign in _PACKED_NEGATIVE else magnitude


def packed_encode(value: int, width_bytes: int) -> bytes:
    """Encode ``value`` as COMP-3 in ``width_bytes`` bytes (sign C for +, D for -)."""
    digit_count = width_bytes * 2 - 1
    digits = str(abs(value)).rjust(digit_count, "0")
    if len(digits) > digit_count:
        raise BadRecord(f"{value} does not fit in {width_bytes} packed bytes")
    nibbles = [int(d) for d in digits] + [0xD if value < 0 else 0xC]
    return bytes(nibbles[i] << 4 | nibbles[i + 1] for i in range(0, len(nibbles), 2))
