"""Shared helpers for the files-area tests: small TRAFFIC tables and ACH file locations."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cutover.domain import TRAFFIC

REPO = Path(__file__).resolve().parents[1]
#: Where the team's shared real ACH files may be: $CUTOVER_ACH_DIR, beside this checkout (the
#: usual work layout), or the workplace's fixed shared folder (a clone elsewhere, as CI makes).
ACH_CANDIDATES = tuple(Path(p) for p in (os.environ.get("CUTOVER_ACH_DIR", ""),
                                          REPO.parent / "shared" / "data" / "ach",
                                          "/work/shared/data/ach") if p)
ACH_DIR = next((p for p in ACH_CANDIDATES if p.is_dir()), ACH_CANDIDATES[-1])
ROUTES = ("gw_alpha", "gw_beta", None)
CURRENCIES = ("USD", "EUR", "JPY")
DECISIONS = ("approve", "approve", "decline", "review")


def ach_dir() -> Path:
    """The shared real ACH files; skip the test with a clear message when absent."""
    if not ACH_DIR.is_dir():
        pytest.skip(f"real ACH files not found in {', '.join(map(str, ACH_CANDIDATES))} "
                    "(shared data not mounted; set CUTOVER_ACH_DIR)")
    return ACH_DIR


def traffic_table(rows: int, seed: int = 7, days: int = 2) -> pa.Table:
    """A TRAFFIC table of ``rows`` plausible transactions over ``days`` UTC days."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    ts = [start + dt.timedelta(seconds=int(s), microseconds=int(u))
          for s, u in zip(rng.integers(0, 86_400 * days, rows), rng.integers(0, 10**6, rows),
                          strict=True)]
    pick = lambda options: [options[i] for i in rng.integers(0, len(options), rows)]  # noqa: E731
    decisions = pick(DECISIONS)
    return pa.Table.from_pydict({
        "txn_id": [f"txn_{seed}_{i:08d}" for i in range(rows)],
        "ts": ts,
        "merchant_id": [f"M{i:05d}" for i in rng.integers(0, 5, rows)],
        "mcc": pick(("5411", "5999", "7995")),
        "customer_id": [f"C{i:06d}" for i in rng.integers(0, 50, rows)],
        "card_token": [f"tok_{i:032x}" for i in rng.integers(0, 2**62, rows)],
        "card_bin": [str(i) for i in rng.integers(400000, 499999, rows)],
        "card_country": pick(("US", "GB", "DE")),
        "amount_minor": rng.integers(-5_000, 500_000, rows).tolist(),
        "currency": pick(CURRENCIES),
        "merchant_country": pick(("US", "FR")),
        "channel": pick(("ecom", "pos", "moto", "recurring")),
        "device_hash": [None if i % 3 == 0 else f"{i:064x}" for i in range(rows)],
        "ip_hash": [None if i % 4 == 0 else f"{i * 7:064x}" for i in range(rows)],
        "legacy_decision": decisions,
        "legacy_code": ["00" if d == "approve" else "05" for d in decisions],
        "legacy_reason": ["approved" if d == "approve" else "do_not_honor" for d in decisions],
        "legacy_route": pick(ROUTES),
        "legacy_fee_minor": rng.integers(0, 300, rows).tolist(),
        "legacy_latency_ms": rng.integers(1, 900, rows).tolist(),
        "is_fraud": [None] * rows, "chargeback": [None] * rows, "label_ts": [None] * rows,
        "gateway_ok": [None] * rows,
    }, schema=TRAFFIC)
