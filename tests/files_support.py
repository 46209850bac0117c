"""Shared helpers for the files-area tests: small TRAFFIC tables and ACH file locations."""

from __future__ import annotations

import datetime as dt
import functools
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


DATA_DIR = REPO / "tests" / "data"


@functools.cache
def _nacha_layout():
    from cutover.adapters.files import load_layout

    return load_layout("nacha")


def nacha_line(record_type: str, **values: object) -> str:
    """One 94-character NACHA line of ``record_type``: blanks and zeros unless given."""
    from cutover.adapters.files.writer import encode_lines

    layout = _nacha_layout()
    defaults: dict[str, object] = {}
    for spec in layout.record(record_type).data_fields:
        if spec.type in ("integer", "amount"):
            defaults[spec.name] = 0
        elif spec.type == "date":
            defaults[spec.name] = dt.date(2026, 10, 1)
        elif spec.type == "time":
            defaults[spec.name] = dt.time(12, 0)
        else:
            defaults[spec.name] = ""
    line = encode_lines(layout, record_type, {**defaults, **values})[0].as_py()
    return line.rstrip("\n")


def nacha_file(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` as a NACHA file (LF endings) and return its path."""
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")
    return path


def small_ppd_lines(entries: int = 2, sec: str = "PPD") -> list[str]:
    """A valid one-batch NACHA file: header, ``entries`` debits of 1.00, controls, filler."""
    routing = 23138010  # check digit 4
    lines = [nacha_line("file_header", priority_code="01", immediate_destination=" 231380104",
                        immediate_origin="0121042882", file_id_modifier="A"),
             nacha_line("batch_header", service_class_code=225, company_name="Name on Account",
                        company_identification="121042882", standard_entry_class_code=sec,
                        company_entry_description="REG.SALARY", effective_entry_date="261001",
                        originator_status_code="1", odfi_identification="12104288",
                        batch_number=1)]
    for i in range(entries):
        lines.append(nacha_line("entry", transaction_code=27, rdfi_routing=routing,
                                check_digit="4", dfi_account_number="12345678", amount=100,
                                individual_name="Receiver", addenda_record_indicator=0,
                                trace_number=f"{121042880000001 + i}"))
    lines.append(nacha_line("batch_control", service_class_code=225,
                            entry_addenda_count=entries, entry_hash=routing * entries,
                            total_debit_amount=100 * entries, total_credit_amount=0,
                            company_identification="121042882", odfi_identification="12104288",
                            batch_number=1))
    lines.append(nacha_line("file_control", batch_count=1, block_count=1,
                            entry_addenda_count=entries, entry_hash=routing * entries,
                            total_debit_amount=100 * entries, total_credit_amount=0))
    lines += ["9" * 94] * (-len(lines) % 10)
    return lines
