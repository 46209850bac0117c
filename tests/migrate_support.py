"""Shared helpers for the plan and gate tests: crafted report.json dicts and a fake clock.

The replay engine writes real reports; these builders make small, exact ones so each gate rule
is tested on numbers chosen to sit just inside or just outside a threshold.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cutover.domain import CATEGORIES, REPORT_VERSION

PG_ENV = "CUTOVER_TEST_PG_URL"
PG_HOWTO = (f"set {PG_ENV} to run PostgreSQL tests, e.g. "
            f"{PG_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[1]
DEMO_PLAN = REPO / "cutover" / "fixtures" / "plans" / "demo.toml"


def make_report(n: int = 100_000, mismatches: dict[str, int] | None = None,
                **overrides: Any) -> dict[str, Any]:
    """A conserving report of ``n`` transactions: ``mismatches`` by category, the rest match."""
    by_category = dict.fromkeys(CATEGORIES, 0)
    by_category.update(mismatches or {})
    by_category["match"] = n - sum(v for k, v in by_category.items() if k != "match")
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "run": {"run_id": "test"},
        "counts": {"in": n, "by_category": by_category, "expected_by_category": {},
                   "conservation_ok": True},
        "rates": {},
        "money": {"by_currency": {"USD": {"false_decline_minor": 0, "fraud_let_through_minor": 0,
                                          "false_decline_count": 0,
                                          "fraud_let_through_count": 0}}},
        "latency_ms": {"legacy": {"p50": 5, "p95": 9, "p99": 12},
                       "candidate": {"p50": 0.2, "p95": 0.5, "p99": 1.1}},
        "errors": {"candidate_error": by_category["candidate_error"],
                   "legacy_error": by_category["legacy_error"],
                   "quarantined": by_category["quarantined"]},
        "segments": [],
        "timeline": [],
        "drift": {"features": [{"name": "amount_minor", "psi": 0.01, "status": "ok"}],
                  "new_values": {}, "null_spikes": []},
        "feed_health": {"version": 1, "findings": []},
    }
    for key, value in overrides.items():
        report[key] = value
    return report


def write_report(path: Path, report: dict[str, Any]) -> Path:
    """Write ``report`` as JSON and return the path."""
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def write_plan(path: Path, body: str) -> Path:
    """Write a plan TOML body and return the path."""
    path.write_text(body, encoding="utf-8")
    return path


class FakeClock:
    """A clock tests move by hand, so bake times need no sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward by a timedelta's keyword arguments."""
        self.now += timedelta(**delta)


def pg_url() -> str | None:
    """The PostgreSQL URL for integration tests, or None when unset."""
    return os.environ.get(PG_ENV)


#: A small plan with no money rules so state tests control the gate with rates alone.
SMALL_PLAN = """
name = "small"
salt = "s1"
sticky_key = "merchant_id"

[[phases]]
name = "shadow"
percent = 0

[[phases]]
name = "canary-1"
percent = 1
approvals = 2
bake = "24h"
gate = { min_sample = 1000, max_rate = { approve_to_decline = 0.05 } }

[[phases]]
name = "canary-5"
percent = 5
approvals = 1
bake = "1h"
gate = { min_sample = 1000, max_rate = { approve_to_decline = 0.05 } }

[[phases]]
name = "full"
percent = 100
approvals = 1
bake = "1h"
gate = { min_sample = 1000, max_candidate_error_rate = 0.5 }
"""
