"""Shared helpers for the replay and diff tests: small traffic stores and test candidates.

The traffic is seeded and small; its legacy columns come from ``cutover.sim.legacy_rules.decide``
(the simulated core's own rules), so the recorded outcome is what the core would say. The
candidates are deterministic and keep rolling state across batches (a card's last hour and the
fraud labels seen per merchant), so resuming a replay is a real test of the warm-up.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import DECISION, TRAFFIC
from cutover.sim.legacy_rules import card_country_of, decide, load_core_config, velocity_1h
from cutover.store.filters import hash_fraction
from cutover.store.traffic import write_day_partitions

START = datetime(2026, 10, 1, tzinfo=UTC)
MERCHANTS = [(f"M{i:04d}", country, currency, mcc) for i, (country, currency, mcc) in enumerate(
    [("US", "USD", "5411"), ("GB", "GBP", "5812"), ("DE", "EUR", "5999"), ("JP", "JPY", "4829"),
     ("US", "USD", "7995"), ("FR", "EUR", "5411"), ("SG", "SGD", "5999"), ("BR", "BRL", "5812")]
    * 3)]
BINS = ["400123", "410555", "415001", "420777", "510010", "525500", "530001", "540123", "552100"]
CHANNELS = ["ecom", "pos", "moto", "recurring"]
HOUR_US = 3_600_000_000
_CFG = load_core_config()


def make_traffic(rows: int, seed: int = 1, start: datetime = START, hours: float = 72.0,
                 prefix: str = "T", cards: int = 400) -> pa.Table:
    """A TRAFFIC table sorted by time, legacy outcome from the simulated core's rules."""
    rng = np.random.default_rng(seed)
    start_us = int(start.timestamp() * 1_000_000)
    ts_us = np.sort(start_us + rng.integers(0, int(hours * HOUR_US), rows))
    merchant = rng.integers(0, len(MERCHANTS), rows)
    card = rng.integers(0, cards, rows)
    card_bin = np.array(BINS, dtype=object)[card % len(BINS)]
    m = [MERCHANTS[i] for i in merchant]
    amount = np.maximum(1, rng.lognormal(8.0, 1.2, rows).astype(np.int64))
    data = {
        "txn_id": [f"{prefix}{seed}-{i:07d}" for i in range(rows)],
        "ts": pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        "merchant_id": [x[0] for x in m], "mcc": [x[3] for x in m],
        "customer_id": [f"C{c:05d}" for c in card], "card_token": [f"tok_{c:06d}" for c in card],
        "card_bin": card_bin.tolist(),
        "card_country": card_country_of(card_bin, _CFG).tolist(),
        "amount_minor": amount, "currency": [x[2] for x in m],
        "merchant_country": [x[1] for x in m],
        "channel": np.array(CHANNELS, dtype=object)[rng.integers(0, 4, rows)].tolist(),
        "device_hash": [None if x < 0.1 else f"d{int(x * 1e6)}" for x in rng.random(rows)],
        "ip_hash": [f"ip{int(x * 1e4)}" for x in rng.random(rows)],
    }
    fraud = rng.random(rows) < 0.03
    data.update(_legacy(data, ts_us, rng))
    data.update({"is_fraud": fraud, "chargeback": fraud & (rng.random(rows) < 0.7),
                 "label_ts": pa.array(np.where(fraud, ts_us + 6 * HOUR_US, 0),
                                      pa.timestamp("us", tz="UTC"),
                                      mask=~fraud),
                 "gateway_ok": rng.random(rows) < 0.95})
    table = pa.table(data)
    return table.select(TRAFFIC.names).cast(TRAFFIC)


def _legacy(data: dict, ts_us: np.ndarray, rng: np.random.Generator) -> dict:
    cols = {k: np.asarray(data[k], dtype=object) for k in
            ("currency", "mcc", "card_bin", "card_country", "merchant_country", "channel")}
    cols["amount_minor"] = np.asarray(data["amount_minor"], dtype=np.int64)
    out = decide(cols, velocity_1h(np.asarray(data["card_token"], dtype=object), ts_us), _CFG)
    out["legacy_latency_ms"] = rng.integers(20, 400, len(ts_us)).astype(np.int32)
    return out


def write_store(root: Path, table: pa.Table, part: str = "part-00000") -> Path:
    """Write a TRAFFIC table as a traffic store; return its root."""
    write_day_partitions(table, root, part)
    return root


def with_bad_rows(table: pa.Table) -> pa.Table:
    """Break five rows in five different ways (all must end up quarantined)."""
    rows = table.to_pylist()
    rows[3]["amount_minor"] = -5
    rows[7]["currency"] = "XXX"
    rows[11]["merchant_id"] = ""
    rows[13]["channel"] = "fax"
    rows[17]["customer_id"] = "C\x01bad"
    return pa.Table.from_pylist(rows, schema=TRAFFIC)


def _opt_float(value, default: float) -> float:
    return default if value is None else float(value)


class MirrorCandidate:
    """Decides like the simulated legacy core (same rules, its own rolling velocity state), then
    changes a deterministic share of rows by a hash of txn_id so diffs have known causes.

    Options (text, as from --candidate-opt): flip (share approve<->decline), route (share of
    approvals on another gateway, cheaper, p_success 0.95), fee_delta (minor units added to
    every approval's fee), raise_share (share of batches that raise: a batch raises when its
    first txn hashes below it), error_share (rows answered with decision "error"),
    merchant_risk (decline when the merchant has at least this many fraud labels known by the
    row's time; 0 = off), sleep_s (per batch, to make kill tests land mid-run).
    """

    model_version = "mirror-1"

    def __init__(self, flip=None, route=None, fee_delta=None, raise_share=None,
                 error_share=None, merchant_risk=None, sleep_s=None) -> None:
        self.flip = _opt_float(flip, 0.05)
        self.route = _opt_float(route, 0.03)
        self.fee_delta = int(_opt_float(fee_delta, 0))
        self.raise_share = _opt_float(raise_share, 0.0)
        self.error_share = _opt_float(error_share, 0.0)
        self.merchant_risk = int(_opt_float(merchant_risk, 0))
        self.sleep_s = _opt_float(sleep_s, 0.0)
        self.history = pa.table({"card_token": pa.array([], pa.string()),
                                 "ts": pa.array([], pa.timestamp("us", tz="UTC")),
                                 "txn_id": pa.array([], pa.string())})
        self.labels: dict[str, set[tuple[int, str]]] = {}

    def observe_labels(self, table: pa.Table) -> None:
        fraud = table.filter(pc.fill_null(table["is_fraud"], False))
        ts = pc.cast(fraud["label_ts"], pa.int64()).to_numpy(zero_copy_only=False)
        for merchant, label_us, txn in zip(fraud["merchant_id"].to_pylist(), ts,
                                           fraud["txn_id"].to_pylist(), strict=True):
            self.labels.setdefault(merchant, set()).add((int(label_us), txn))

    def warm(self, batch: pa.RecordBatch) -> None:
        self._remember(pa.Table.from_batches([batch]))

    def _remember(self, table: pa.Table) -> None:
        keep = pa.concat_tables([self.history, self._keys(table)])
        newest = pc.max(keep["ts"])
        horizon = pc.subtract(pc.cast(newest, pa.int64()), HOUR_US)
        self.history = keep.filter(pc.greater(pc.cast(keep["ts"], pa.int64()), horizon))

    def _keys(self, table: pa.Table) -> pa.Table:
        return table.select(["card_token", "ts", "txn_id"]).cast(self.history.schema)

    def _velocity(self, table: pa.Table) -> np.ndarray:
        both = pa.concat_tables([self.history, self._keys(table)])
        ts = pc.cast(both["ts"], pa.int64()).to_numpy()
        counts = velocity_1h(both["card_token"], ts)
        return counts[self.history.num_rows:]

    def _merchant_risky(self, table: pa.Table) -> np.ndarray:
        risky = np.zeros(table.num_rows, bool)
        if not self.merchant_risk:
            return risky
        ts = pc.cast(table["ts"], pa.int64()).to_numpy()
        merchants = np.asarray(table["merchant_id"].to_pylist(), dtype=object)
        for merchant, seen in self.labels.items():
            times = np.sort(np.array([t for t, _ in seen], dtype=np.int64))
            rows = merchants == merchant
            risky[rows] = np.searchsorted(times, ts[rows], side="right") >= self.merchant_risk
        return risky

    def decide_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import time
        if self.sleep_s:
            time.sleep(self.sleep_s)
        table = pa.Table.from_batches([batch])
        if self.raise_share and hash_fraction(table["txn_id"].slice(0, 1))[0] < self.raise_share:
            self._remember(table)
            raise RuntimeError("mirror candidate failed on purpose")
        cols = {k: np.asarray(table[k].to_pylist(), dtype=object) for k in
                ("currency", "mcc", "card_bin", "card_country", "merchant_country", "channel")}
        cols["amount_minor"] = table["amount_minor"].to_numpy()
        out = decide(cols, self._velocity(table), _CFG)
        self._remember(table)
        return self._perturb(table, out).to_batches()[0]

    def _perturb(self, table: pa.Table, out: dict) -> pa.Table:
        h = hash_fraction(table["txn_id"])
        decision = out["legacy_decision"].astype(object)
        flip = h < self.flip
        decision = np.where(flip & (decision == "approve"), "decline",
                            np.where(flip & (decision == "decline"), "approve", decision))
        decision = np.where(self._merchant_risky(table), "decline", decision).astype(object)
        reroute = (h >= 0.5) & (h < 0.5 + self.route) & (decision == "approve")
        route = np.where(reroute, "GW_CORAL_X", out["legacy_route"]).astype(object)
        fee = np.where(decision == "approve", out["legacy_fee_minor"] + self.fee_delta, 0)
        fee = np.where(reroute, np.maximum(fee - 5, 0), fee)
        decision = np.where((h >= 0.9) & (h < 0.9 + self.error_share), "error", decision)
        # Unflipped rows carry the legacy core's own canonical reason (compared as itself).
        same = decision == out["legacy_decision"]
        reasons = [[] if d == "approve" else [r] if keep else ["rule:score_decline"]
                   for d, r, keep in zip(decision, out["legacy_reason"], same, strict=True)]
        n = table.num_rows
        return pa.table({
            "txn_id": table["txn_id"], "decision": pa.array(decision.astype(object), pa.string()),
            "reason_codes": pa.array(reasons, pa.list_(pa.string())),
            "score": pa.array(h), "route": pa.array(route, pa.string()),
            "fee_minor": pa.array(fee.astype(np.int64)),
            "p_success": pa.array(np.where(reroute, 0.95, 0.9)),
            "retry_plan": pa.nulls(n, pa.string()),
            "model_version": pa.array([self.model_version] * n, pa.string()),
            "latency_us": pa.array(np.full(n, 7, np.int64)),
        }, schema=DECISION)

    def decide(self, txn: dict) -> dict:
        batch = pa.RecordBatch.from_pylist([txn])
        return self.decide_batch(batch).to_pylist()[0]


def mirror_candidate(**options) -> MirrorCandidate:
    """Factory for ``--candidate tests.replay_support:mirror_candidate``."""
    return MirrorCandidate(**options)


def exact_candidate(**options) -> MirrorCandidate:
    """A mirror with no changes at all: every replayable row must match."""
    return MirrorCandidate(flip=0, route=0, **options)


def drop_latency(table: pa.Table) -> pa.Table:
    """The table without timing columns (they differ between runs by nature)."""
    return table.drop_columns([c for c in ("legacy_latency_ms", "candidate_latency_ms",
                                           "latency_us") if c in table.column_names])


def read_parts(run_dir: Path, sub: str) -> pa.Table:
    """All parts of RUN_DIR/sub in part order."""
    import pyarrow.parquet as pq
    parts = sorted((Path(run_dir) / sub).glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def shifted(start: datetime, hours: float) -> datetime:
    """``start`` plus some hours."""
    return start + timedelta(hours=hours)


def gate_canary(report: Path) -> subprocess.CompletedProcess:
    """`cutover gate REPORT --policy cutover/fixtures/plans/demo.toml --phase canary-1` in a fresh
    process, the way CI calls it."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-c", "from cutover.cli import main; main()", "gate",
                           str(report), "--policy", str(root / "cutover/fixtures/plans/demo.toml"),
                           "--phase", "canary-1"], capture_output=True, text=True, cwd=root)



class SleepyCandidate(MirrorCandidate):
    """A mirror whose every single decision takes ``sleep_ms`` (20 by default): a slow model."""

    def __init__(self, sleep_ms=None, **options) -> None:
        super().__init__(**options)
        self.sleep_ms = _opt_float(sleep_ms, 20.0)

    def decide(self, txn: dict) -> dict:
        import time
        time.sleep(self.sleep_ms / 1000)
        return super().decide(txn)


def sleepy_candidate(**options) -> SleepyCandidate:
    """Factory for ``--candidate tests.replay_support:sleepy_candidate``."""
    return SleepyCandidate(**options)
