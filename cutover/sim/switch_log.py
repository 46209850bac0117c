"""A card switch's ISO 8583 log written from simulated traffic, for tests and the bench.

The traffic store holds tokens, never card numbers, so the log's PANs are drawn from the card
networks' published test numbers (never a real card). Each transaction becomes a request and
its response (0100/0110), each message after a 2-byte big-endian length, encoded with
``pyiso8583`` under the switch spec, exactly as ``cutover.adapters.iso8583`` reads it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import iso8583

from cutover.adapters.iso8583 import SwitchSpec, currency_by_numeric

#: Documented test card numbers (Visa, Mastercard, Amex, Discover test PANs).
TEST_PANS: Final = ("4111111111111111", "4012888888881881", "5555555555554444",
                    "5105105105105100", "378282246310005", "6011111111111117")


def messages_for(switch: SwitchSpec, txn: dict[str, Any], n: int) -> tuple[dict, dict]:
    """The 0100 request and 0110 response of one transaction (pure)."""
    m = switch.mapping
    numeric = {alpha: code for code, alpha in currency_by_numeric().items()}
    ts = txn["ts"]
    request = {"t": "0100", m.pan: TEST_PANS[n % len(TEST_PANS)],
               m.amount: f"{abs(int(txn['amount_minor'])):012d}",
               m.transmitted: f"{ts:%m%d%H%M%S}", m.stan: f"{n % 1_000_000:06d}",
               m.mcc: txn["mcc"][:4].rjust(4, "0"), m.entry_mode: "051",
               m.rrn: f"{n:012d}", m.terminal: f"T{n % 10_000_000:07d}",
               m.merchant: str(txn["merchant_id"])[:15].ljust(15),
               m.acceptor_location: f"{'SIMULATED MERCHANT':<38}{txn['merchant_country'][:2]}",
               m.currency: numeric[txn["currency"]]}
    response = {**{k: v for k, v in request.items() if k != m.pan}, "t": "0110",
                m.response: "00" if txn["legacy_decision"] == "approve" else "05"}
    return request, response


def frames(switch: SwitchSpec, txns: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """Length-prefixed encoded messages, request then response, for each transaction."""
    spec = switch.pyiso8583()
    for n, txn in enumerate(txns):
        for message in messages_for(switch, txn, n):
            body, _ = iso8583.encode(message, spec)
            yield struct.pack(">H", len(body)) + bytes(body)


def write_switch_log(path: str | Path, switch: SwitchSpec, txns: Iterable[dict[str, Any]]) -> int:
    """Write the log; return the number of messages."""
    count = 0
    with open(path, "wb") as out:
        for frame in frames(switch, txns):
            out.write(frame)
            count += 1
    return count
