"""Who goes to the candidate: a sticky, salted, monotonic split that a router can reproduce.

A transaction's sticky key (merchant or customer id) is hashed with the plan's salt into a
bucket in [0, BUCKETS). A phase sends a transaction to the candidate iff it is inside the
phase's allow-lists and its bucket is below ``percent * 100``. Because the bucket never depends
on the phase, a key inside 5% is inside 25% too (monotonic), and the same key always lands the
same way (sticky). SHA-256 is used, not Python's ``hash``, so any language can compute it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

BUCKETS: Final = 10_000
HASH_ALGORITHM: Final = "sha256"
#: Bytes of the digest read as a big-endian unsigned integer before the modulo; 8 bytes make
#: the modulo bias (2**64 mod 10000 / 2**64) negligible.
DIGEST_BYTES: Final = 8
STICKY_KEYS: Final = ("merchant_id", "customer_id")
LEGACY: Final = "legacy"
CANDIDATE: Final = "candidate"


def bucket_of(salt: str, key: str) -> int:
    """Bucket of ``key``: sha256(utf8(salt + ":" + key)), first 8 bytes big-endian, mod 10000."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:DIGEST_BYTES], "big") % BUCKETS


@dataclass(frozen=True)
class Cohort:
    """The slice of traffic a phase sends to the candidate."""

    percent: float
    merchants: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    @property
    def threshold(self) -> int:
        """Buckets below this number go to the candidate (percent 5 -> 500)."""
        return round(self.percent * BUCKETS / 100)


def explain(cohort: Cohort, salt: str, sticky_key: str, txn: dict[str, Any]) -> tuple[str, str]:
    """Decide legacy or candidate for one transaction, and say why in one sentence."""
    checks = (("merchant_id", cohort.merchants, "merchant"),
              ("merchant_country", cohort.countries, "country"),
              ("channel", cohort.channels, "channel"))
    for column, allowed, label in checks:
        if allowed and txn.get(column) not in allowed:
            return LEGACY, f"{label} {txn.get(column)!r} is not in the phase's allow-list"
    key = txn.get(sticky_key)
    if key is None:
        return LEGACY, f"no {sticky_key} to hash; unknown keys stay on legacy"
    bucket = bucket_of(salt, str(key))
    if bucket < cohort.threshold:
        return CANDIDATE, f"bucket {bucket} of {sticky_key} {key!r} < threshold {cohort.threshold}"
    return LEGACY, f"bucket {bucket} of {sticky_key} {key!r} >= threshold {cohort.threshold}"


def assign_batch(cohort: Cohort, salt: str, sticky_key: str, batch: Any) -> Any:
    """Vectorised ``explain``: a pyarrow string array of legacy/candidate, one per row.

    Hashes each distinct key once (batches repeat merchants heavily), then combines bucket
    membership with the allow-lists as Arrow boolean kernels.
    """
    keys = batch.column(sticky_key).cast(pa.string())
    uniques = pc.unique(keys)
    inside = pa.array([k is not None and bucket_of(salt, k) < cohort.threshold
                       for k in uniques.to_pylist()], pa.bool_())
    chosen = pc.fill_null(pc.take(inside, pc.index_in(keys, value_set=uniques)), False)
    for column, allowed in (("merchant_id", cohort.merchants),
                            ("merchant_country", cohort.countries),
                            ("channel", cohort.channels)):
        if allowed:
            member = pc.is_in(batch.column(column), value_set=pa.array(sorted(allowed)))
            chosen = pc.and_(chosen, pc.fill_null(member, False))
    return pc.if_else(chosen, CANDIDATE, LEGACY)
