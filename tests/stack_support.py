"""Small synthetic traffic for the stack's tests: TRAFFIC rows with fraud patterns and labels.

Independent of the simulator so the stack's tests do not wait on it. The patterns are the
ones the stack should learn: card testing (bursts of small payments on one card), account
takeover (a new device, a large foreign payment) and compromised merchants (a share of their
payments is fraud), plus gateway outcomes that depend on gateway and card region.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from cutover.domain import TRAFFIC

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
US = 1_000_000
COUNTRIES = {"US": ("USD", "400100"), "GB": ("GBP", "415100"), "DE": ("EUR", "420100"),
             "FR": ("EUR", "425100"), "JP": ("JPY", "525100"), "BR": ("BRL", "540100")}
ROUTE = {"USD": "GW_CORAL", "GBP": "GW_BOREAL", "EUR": "GW_BOREAL", "JPY": "GW_CORAL",
         "BRL": "GW_ATLAS"}
TRUE_OK = {"GW_ATLAS": 0.93, "GW_BOREAL": 0.97, "GW_CORAL": 0.92}
MERCHANTS = 120
BAD_MERCHANTS = 4


def _people(rng: np.random.Generator, n_cards: int) -> dict[str, np.ndarray]:
    countries = np.array(list(COUNTRIES))
    home = rng.choice(countries, n_cards, p=[0.4, 0.15, 0.15, 0.1, 0.1, 0.1])
    return {"home": home, "device": np.array([f"D{i:06d}" for i in range(n_cards)])}


def make_traffic(rows: int = 20_000, seed: int = 0, days: float = 8.0) -> pa.Table:
    """A TRAFFIC table of about ``rows`` rows over ``days`` days, sorted by ts then txn_id."""
    rng = np.random.default_rng(seed)
    n_cards = max(rows // 10, 50)
    people = _people(rng, n_cards)
    m_country = rng.choice(np.array(list(COUNTRIES)), MERCHANTS, p=[0.4, 0.15, 0.15, 0.1, 0.1, 0.1])
    span_us = int(days * 86_400 * US)
    ev: dict[str, list] = {k: [] for k in ("ts", "card", "merch", "amount", "device", "channel",
                                            "fraud")}

    def add(ts, card, merch, amount, device, channel, fraud):
        for k, v in zip(ev, (ts, card, merch, amount, device, channel, fraud), strict=True):
            ev[k].append(v)

    n_legit = int(rows * 0.95)
    cards = rng.integers(0, n_cards, n_legit)
    for i, card in enumerate(cards):
        merch = int(rng.integers(0, MERCHANTS))
        fraud = merch < BAD_MERCHANTS and rng.random() < 0.25
        amount = int(rng.lognormal(8.0, 1.0)) + 100
        dev = people["device"][card] if rng.random() < 0.9 else None
        add(int(rng.integers(0, span_us)), card, merch, amount, dev,
            "ecom" if i % 3 else "pos", fraud)
    while len(ev["ts"]) < rows:
        card = int(rng.integers(0, n_cards))
        t0 = int(rng.integers(0, span_us))
        if rng.random() < 0.5:  # card testing: a burst of small payments
            for j in range(int(rng.integers(6, 14))):
                add(t0 + j * int(rng.integers(5, 60)) * US, card, int(rng.integers(0, MERCHANTS)),
                    int(rng.integers(100, 500)), None, "ecom", True)
        else:  # account takeover: a new device, a large payment
            add(t0, card, int(rng.integers(0, MERCHANTS)), int(rng.lognormal(10.5, 0.6)),
                f"X{int(rng.integers(0, 10**6)):06d}", "ecom", True)
    return _table(rng, ev, people, m_country)


def _table(rng, ev, people, m_country) -> pa.Table:
    order = np.argsort(np.array(ev["ts"]), kind="stable")
    n = len(order)
    ts = np.array(ev["ts"], np.int64)[order] + int(START.timestamp()) * US
    card = np.array(ev["card"])[order]
    merch = np.array(ev["merch"])[order]
    fraud = np.array(ev["fraud"])[order]
    amount_major = np.array(ev["amount"], np.int64)[order]
    device = np.array(ev["device"], dtype=object)[order]
    home = people["home"][card]
    currency = np.array([COUNTRIES[c][0] for c in m_country[merch]])
    amount = np.where(currency == "JPY", amount_major, amount_major)
    route = np.array([ROUTE[c] for c in currency])
    ok = rng.random(n) < np.array([TRUE_OK[r] for r in route])
    label_ts = ts + np.where(fraud, rng.integers(1, 10 * 86_400, n), 14 * 86_400) * US
    legacy = _legacy(ts, card, amount, currency)
    return pa.table({
        "txn_id": [f"T{i:08d}" for i in range(n)],
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "merchant_id": [f"M{m:05d}" for m in merch],
        "mcc": ["5999"] * n,
        "customer_id": [f"C{c:06d}" for c in card],
        "card_token": [f"tok_{c:06d}" for c in card],
        "card_bin": [COUNTRIES[h][1] for h in home],
        "card_country": home,
        "amount_minor": amount,
        "currency": currency,
        "merchant_country": m_country[merch],
        "channel": np.array(ev["channel"])[order],
        "device_hash": pa.array(list(device), pa.string()),
        "ip_hash": pa.nulls(n, pa.string()),
        "legacy_decision": legacy,
        "legacy_code": np.where(legacy == "approve", "00", "65"),
        "legacy_reason": np.where(legacy == "approve", "approved", "exceeds_frequency"),
        "legacy_route": route,
        "legacy_fee_minor": np.where(legacy == "approve", (amount * 150 + 5000) // 10000 + 25, 0),
        "legacy_latency_ms": pa.array(np.full(n, 40), pa.int32()),
        "is_fraud": fraud,
        "chargeback": fraud,
        "label_ts": pa.array(label_ts, pa.timestamp("us", tz="UTC")),
        "gateway_ok": ok,
    }).cast(TRAFFIC)


def _legacy(ts, card, amount, currency) -> np.ndarray:
    """Crude legacy rules: velocity over 5 per hour per card, or a large amount: decline."""
    out = np.full(len(ts), "approve", dtype=object)
    last: dict[int, list[int]] = {}
    for i, (t, c) in enumerate(zip(ts, card, strict=True)):
        times = [x for x in last.get(c, []) if x > t - 3600 * US]
        if len(times) >= 5 or amount[i] > 400_000:
            out[i] = "decline"
        last[c] = times + [int(t)]
    return out


def candidate_view(table: pa.Table) -> pa.Table:
    """What replay hands a candidate: TRAFFIC without legacy_* and label columns."""
    hidden = {"is_fraud", "chargeback", "label_ts", "gateway_ok"}
    return table.select([c for c in table.column_names
                         if not c.startswith("legacy_") and c not in hidden])


def labels_of(table: pa.Table) -> pa.Table:
    """The labels replay passes to observe_labels."""
    return table.select(["txn_id", "merchant_id", "label_ts", "is_fraud"])


def write_store(table: pa.Table, root: Path) -> Path:
    """Write ``table`` as a traffic store (day partitions)."""
    from cutover.store.traffic import write_day_partitions

    write_day_partitions(table, root, "part-00000")
    return root


def outcomes_of(table: pa.Table, down: tuple[str, int, int] | None = None) -> pa.Table:
    """The gateway outcomes replay passes to observe_outcomes; ``down = (gateway, from_us,
    until_us)`` fails every payment routed there in that window, like a simulated outage."""
    import pyarrow.compute as pc

    ok = table["gateway_ok"]
    if down is not None:
        gateway, lo, hi = down
        ts = table["ts"].cast(pa.int64())
        inside = pc.and_(pc.equal(table["legacy_route"], gateway),
                         pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))
        ok = pc.if_else(inside, False, ok)
    return pa.table({"ts": table["ts"], "gateway": table["legacy_route"], "gateway_ok": ok})
