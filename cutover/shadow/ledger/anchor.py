"""Pin the ledger's chain head outside the database, and check the ledger against that pin.

A hash chain proves nothing to someone who can rewrite every row and recompute every hash
with cutover's own code. An anchor is the head (seq and hash) exported to a file that lives
elsewhere (a ticket, a signed commit, an auditor's mailbox): a ledger rewritten after the
export no longer holds that hash at that seq, so ``verify --anchor FILE`` says so. Entries
appended after the anchor are fine: the chain links them to the anchored head.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, func, select

from cutover.errors import ChainBroken, InputError
from cutover.shadow.ledger.chain import GENESIS_HASH, ledger_key
from cutover.shadow.ledger.schema import entries

ANCHOR_VERSION: Final = 1
_HEX_CHARS: Final = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Anchor:
    """The chain head at export time."""

    version: int
    head_seq: int
    head_hash: str
    keyed: bool
    exported_at: str


def current_anchor(engine: Engine) -> Anchor:
    """The anchor of the ledger as it stands (seq 0 and the genesis hash when empty)."""
    with engine.connect() as conn:
        head_seq = conn.execute(select(func.max(entries.c.seq))).scalar()
        head_hash = GENESIS_HASH if head_seq is None else conn.execute(
            select(entries.c.hash).where(entries.c.seq == head_seq)).scalar_one()
    return Anchor(ANCHOR_VERSION, int(head_seq or 0), str(head_hash), ledger_key() is not None,
                  datetime.now(UTC).isoformat(timespec="seconds"))


def write_anchor(anchor: Anchor, path: Path) -> None:
    """Write the anchor as one JSON object."""
    try:
        path.write_text(json.dumps(asdict(anchor), indent=2, sort_keys=True) + "\n",
                        encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {path}: cannot write the anchor: {exc.strerror}") from exc


def read_anchor(path: Path) -> Anchor:
    """Read and check an anchor file; ``InputError`` naming the file and the field."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--anchor {path}: cannot read an anchor: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != ANCHOR_VERSION:
        raise InputError(f"--anchor {path}: not an anchor of version {ANCHOR_VERSION}"
                         " (written by `cutover shadow anchor`)")
    seq, digest = doc.get("head_seq"), doc.get("head_hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InputError(f"--anchor {path}: head_seq must be a whole number >= 0, got {seq!r}")
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX_CHARS:
        raise InputError(f"--anchor {path}: head_hash must be 64 lowercase hex digits")
    return Anchor(ANCHOR_VERSION, seq, digest, bool(doc.get("keyed")),
                  str(doc.get("exported_at", "")))


def check_anchor(engine: Engine, anchor: Anchor, source: Path) -> None:
    """Raise ``ChainBroken`` unless the ledger still holds the anchored hash at its seq."""
    if anchor.head_seq == 0:
        return
    with engine.connect() as conn:
        stored = conn.execute(select(entries.c.hash)
                              .where(entries.c.seq == anchor.head_seq)).scalar()
    if stored is None:
        raise ChainBroken(f"anchor {source}: entry seq={anchor.head_seq} is gone (the ledger"
                          f" was truncated or rebuilt after {anchor.exported_at})")
    if stored != anchor.head_hash:
        raise ChainBroken(f"anchor {source}: entry seq={anchor.head_seq} has hash"
                          f" {stored[:16]}…, the anchor says {anchor.head_hash[:16]}… (the"
                          f" ledger was rewritten after {anchor.exported_at})")
