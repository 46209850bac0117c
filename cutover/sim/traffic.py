"""The deterministic traffic generator: TRAFFIC rows day by day, legacy outcomes and labels.

Given (rows, seed, start, days) the output is always the same, byte for byte. Each day draws
from its own random stream (``world.rng_for(seed, STREAM_DAY, days, day)``), so memory is
one day at a time whatever the row count; the only state carried from one day to the next
is the last hour of card activity, because the legacy velocity rule looks back one hour
across midnight.

The legacy outcome columns come from ``legacy_rules.decide``, the same pure function the
SOAP legacy core calls, with each card's one-hour velocity from ``legacy_rules.velocity_1h``
over the rows in store order (ts, then txn_id).

Labels and when they become known (``label_ts``):

- ``is_fraud``: the row belongs to a fraud pattern (see ``fraud.py``). Fraud is reported by
  the issuer, or charged back, 3 to 45 days after the transaction: ``label_ts = ts + lag``.
- ``chargeback``: most approved frauds (90%) and a few approved ordinary rows (0.2%,
  disputes) are charged back 3 to 45 days after ``ts``; a declined row is never charged
  back because no money moved.
- every other row is known to be clean when the 45-day chargeback window closes:
  ``label_ts = ts + 45 days``. So ``label_ts > ts`` always.
- ``gateway_ok``: whether the gateway the legacy core routed to settled the payment; null
  when legacy did not approve. Success depends on gateway, card region, whether the card
  pays in a foreign currency, and the gateway's outage windows.
"""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import TRAFFIC, TS, conform, currency_exponent
from cutover.errors import InputError
from cutover.sim import fraud, outcomes
from cutover.sim.fraud import PATTERNS, Draft
from cutover.sim.legacy_rules import decide, velocity_1h
from cutover.sim.scenario import DAY_US, HOUR_US, Scenario, build_scenario, rows_per_day
from cutover.sim.world import (
    CHANNEL_NAMES,
    COUNTRY_WEIGHTS,
    MCC_PROFILES,
    STREAM_DAY,
    UNITS_PER_USD,
    UTC_OFFSET_H,
    World,
    build_world,
    pans_for,
    rng_for,
    sample_requests,
)
from cutover.store.traffic import write_day_partitions

__all__ = ["DayResult", "GenerateSummary", "default_days", "generate", "generate_table",
           "iter_days", "pans_for", "sample_requests"]

START_DEFAULT: Final = dt.date(2026, 9, 1)
DAYS_MIN: Final = 7
ROWS_PER_DEFAULT_DAY: Final = 5_000
#: txn_id has seven digits per day.
ROWS_PER_DAY_MAX: Final = 9_999_999
DAYS_MAX: Final = 3_660
PART_NAME: Final = "part-00000"
#: Days handed to the writer thread and not yet written.
WRITES_PENDING_MAX: Final = 2
#: Relative volume by local hour, 00..23: a night trough and an evening peak.
HOURLY_WEIGHTS: Final = (0.15, 0.10, 0.07, 0.06, 0.06, 0.10, 0.25, 0.50, 0.80, 1.00, 1.10, 1.20,
                         1.30, 1.20, 1.10, 1.10, 1.15, 1.25, 1.35, 1.40, 1.30, 1.00, 0.60, 0.30)
ABROAD_SHARE: Final = 0.08
SECOND_CARD_SHARE: Final = 0.25
FRAUD_SHARE_MAX: Final = 0.25
PA_TAKES: Final = ("merchant_id", "merchant_mcc", "merchant_country", "merchant_currency",
                   "customer_id", "card_token", "card_bin", "card_country")


@dataclass(frozen=True)
class GenerateSummary:
    """What ``generate`` wrote."""

    path: Path
    rows: int
    days: list[str]
    fraud_rows: int
    chargeback_rows: int
    legacy_approved: int
    legacy_declined: int
    legacy_review: int
    currencies: dict[str, int]
    seconds: float
    fraud_by_pattern: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DayResult:
    """One generated day: its TRAFFIC table and the fraud pattern of each row (0 = none)."""

    day: dt.date
    table: pa.Table
    pattern: np.ndarray


@functools.lru_cache(maxsize=4)
def _lookups(world: World) -> dict[str, np.ndarray]:
    """Per-merchant and per-card arrays the day loop needs, derived once per world."""
    profiles = list(MCC_PROFILES.values())
    factor = np.array([UNITS_PER_USD[c] * 10 ** currency_exponent(c)
                       for c in world.merchant_currency])
    return {
        "minor_per_usd": factor,
        "offset_us": np.array([UTC_OFFSET_H[c] * HOUR_US for c in world.merchant_country]),
        "channel_cum": np.cumsum([p.channels for p in profiles], axis=1),
        "log_median": np.log([p.median_usd for p in profiles]),
        "sigma": np.array([p.sigma for p in profiles]),
        # Arrow copies of the string tables: a take() by id is far cheaper than converting
        # numpy unicode arrays row by row every day.
        **{f"pa_{name}": pa.array(getattr(world, name), pa.string()) for name in PA_TAKES},
        "pa_channel": pa.array(CHANNEL_NAMES, pa.string()),
    }


def _pick_merchants(world: World, rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    merchant = np.full(len(country), -1, dtype=np.int64)
    for code, (ids, cum) in world.merchants_by_country.items():
        rows = np.flatnonzero(country == code)
        pick = np.searchsorted(cum, rng.random(len(rows)), side="right")
        merchant[rows] = ids[np.minimum(pick, len(ids) - 1)]
    nowhere = merchant < 0
    merchant[nowhere] = rng.integers(0, len(world.merchant_id), int(nowhere.sum()))
    return merchant


def _ordinary(world: World, rng: np.random.Generator, day_us: int, n: int) -> Draft:
    """Ordinary customers shopping: mostly at home, in daylight, amounts by MCC."""
    look = _lookups(world)
    customer = np.minimum(np.searchsorted(world.customer_cum_weight, rng.random(n), side="right"),
                          len(world.customer_id) - 1)
    second = (world.customer_cards[customer] == 2) & (rng.random(n) < SECOND_CARD_SHARE)
    card = world.customer_first_card[customer] + second
    countries = np.array(list(COUNTRY_WEIGHTS))
    weights = np.array(list(COUNTRY_WEIGHTS.values()))
    abroad = countries[rng.choice(len(countries), n, p=weights / weights.sum())]
    target = np.where(rng.random(n) < ABROAD_SHARE, abroad, world.customer_country[customer])
    merchant = _pick_merchants(world, rng, target)
    profile = world.merchant_profile[merchant]
    channel = (rng.random(n)[:, None] > look["channel_cum"][profile]).sum(axis=1)
    channel = np.minimum(channel, len(CHANNEL_NAMES) - 1).astype(np.int8)
    amount = np.exp(look["log_median"][profile] + look["sigma"][profile] * rng.standard_normal(n))
    hours = np.array(HOURLY_WEIGHTS)
    local_us = rng.choice(24, n, p=hours / hours.sum()) * HOUR_US + rng.integers(0, HOUR_US, n)
    # Local time is folded back into the same UTC day so a day's rows stay in its partition.
    ts = day_us + (local_us - look["offset_us"][merchant]) % DAY_US
    device_pick = rng.integers(0, 3, n) % world.customer_devices[customer]
    online = channel == 0
    device = np.where(online, world.device_hash[world.customer_first_device[customer] + device_pick],
                      None)
    ip = np.where(online, world.customer_ip[customer], None)
    return Draft(card, merchant, ts, amount, channel, device, ip, np.zeros(n, np.int8))


def _fraud(world: World, scenario: Scenario, rng: np.random.Generator, index: int,
           n: int) -> list[Draft]:
    """The day's fraud drafts. All counts are drawn before any pattern's rows, in a fixed
    order, so whether a pattern fires today never depends on another pattern's draws."""
    day_us = scenario.day_us(index)
    testing = fraud.event_count(rng, n * fraud.CARD_TESTING_EVENTS_PER_ROW)
    takeovers = fraud.event_count(rng, n * fraud.TAKEOVER_EVENTS_PER_ROW)
    spike = fraud.event_count(rng, n * fraud.SPIKE_ROWS_PER_ROW)
    spike_day = rng.random() < fraud.SPIKE_DAY_PROBABILITY
    window_share = len(scenario.rows_per_day) / len(scenario.compromised_days)
    compromised = fraud.event_count(rng, n * fraud.COMPROMISED_ROWS_PER_ROW * window_share)
    drafts = []
    if testing:
        drafts.append(fraud.card_testing(world, rng, day_us, testing))
    if takeovers:
        drafts.append(fraud.account_takeover(world, rng, day_us, takeovers))
    if spike_day and spike:
        drafts.append(fraud.cross_border_spike(world, rng, day_us, spike))
    if index in scenario.compromised_days and compromised:
        drafts.append(fraud.compromised_merchant(world, rng, day_us, compromised,
                                                 scenario.compromised_merchant))
    return drafts


def _take(draft: Draft, rows: np.ndarray) -> Draft:
    return Draft(*(getattr(draft, f)[rows] for f in Draft.__dataclass_fields__))


def _draft_day(world: World, scenario: Scenario, rng: np.random.Generator, index: int) -> Draft:
    """All rows of day ``index`` (fraud included, capped), sorted by time."""
    n = scenario.rows_per_day[index]
    bad = _fraud(world, scenario, rng, index, n)
    bad_draft = fraud.concat(bad) if bad else None
    cap = int(n * FRAUD_SHARE_MAX)
    if bad_draft is not None and bad_draft.rows > cap:
        bad_draft = _take(bad_draft, np.arange(cap))
    bad_rows = bad_draft.rows if bad_draft is not None else 0
    good = _ordinary(world, rng, scenario.day_us(index), n - bad_rows)
    draft = fraud.concat([good, bad_draft]) if bad_rows else good
    return _take(draft, np.argsort(draft.ts_us, kind="stable"))


def _txn_ids(day: dt.date, n: int) -> pa.Array:
    numbers = pc.utf8_lpad(pa.array(np.arange(n, dtype=np.int64)).cast(pa.string()), 7, "0")
    # The dash keeps every digit run shorter than a card number (13+), so PAN scanners
    # (importer, cassette checks, find_pans) never mistake an id for a PAN.
    return pc.binary_join_element_wise(f"T{day:%Y%m%d}-", numbers, "")


def _velocity(tokens: np.ndarray, ts: np.ndarray,
              tail: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """One-hour card velocity, counting the previous day's last hour too."""
    # An Arrow array goes straight to velocity_1h's hash encoding, skipping numpy's slow
    # object-to-unicode conversion.
    all_tokens = pa.array(np.concatenate([tail[0], tokens]), pa.string())
    all_ts = np.concatenate([tail[1], ts])
    return velocity_1h(all_tokens, all_ts)[len(tail[0]):]


def _day(world: World, scenario: Scenario, index: int,
         tail: tuple[np.ndarray, np.ndarray]) -> tuple[DayResult, tuple[np.ndarray, np.ndarray]]:
    """Day ``index`` as TRAFFIC, and its last hour of (card token, ts) for the next day."""
    rng = rng_for(world.seed, STREAM_DAY, len(scenario.rows_per_day), index,
                  scenario.day_us(index) // DAY_US)
    d = _draft_day(world, scenario, rng, index)
    tokens = world.card_token[d.card]
    amount = np.maximum(1, np.rint(d.amount_usd * _lookups(world)["minor_per_usd"][d.merchant]))
    cols = {"amount_minor": amount.astype(np.int64), "currency": world.merchant_currency[d.merchant],
            "mcc": world.merchant_mcc[d.merchant], "card_bin": world.card_bin[d.card],
            "card_country": world.card_country[d.card],
            "merchant_country": world.merchant_country[d.merchant],
            "channel": np.array(CHANNEL_NAMES)[d.channel]}
    legacy = decide(cols, _velocity(tokens, d.ts_us, tail), world.cfg)
    approved = legacy["legacy_decision"] == "approve"
    ok, latency = outcomes.settlement(world, scenario, rng, d.card, cols["currency"],
                                      legacy["legacy_route"], d.ts_us)
    after = {**legacy, "legacy_latency_ms": latency,
             "gateway_ok": pa.array(ok, pa.bool_(), mask=~approved),
             **outcomes.labels(rng, d.pattern, approved, d.ts_us)}
    table = _assemble(world, d, scenario.day(index), cols["amount_minor"], after)
    keep = d.ts_us >= scenario.day_us(index) + DAY_US - HOUR_US
    return DayResult(scenario.day(index), table, d.pattern), (tokens[keep], d.ts_us[keep])


def _assemble(world: World, d: Draft, day: dt.date, amount_minor: np.ndarray,
              after: dict) -> pa.Table:
    """The TRAFFIC table of a sorted draft, its amounts and what followed the decision."""
    look = _lookups(world)
    merchant, card = pa.array(d.merchant), pa.array(d.card)
    table = pa.table({
        "txn_id": _txn_ids(day, d.rows), "ts": pa.array(d.ts_us, TS),
        "merchant_id": look["pa_merchant_id"].take(merchant),
        "mcc": look["pa_merchant_mcc"].take(merchant),
        "customer_id": look["pa_customer_id"].take(pa.array(world.card_customer[d.card])),
        "card_token": look["pa_card_token"].take(card), "card_bin": look["pa_card_bin"].take(card),
        "card_country": look["pa_card_country"].take(card),
        "amount_minor": amount_minor, "currency": look["pa_merchant_currency"].take(merchant),
        "merchant_country": look["pa_merchant_country"].take(merchant),
        "channel": look["pa_channel"].take(pa.array(d.channel)),
        "device_hash": pa.array(d.device, pa.string()), "ip_hash": pa.array(d.ip, pa.string()),
        **{k: pa.array(after[k], pa.string()) for k in
           ("legacy_decision", "legacy_code", "legacy_reason", "legacy_route")},
        "legacy_fee_minor": after["legacy_fee_minor"],
        "legacy_latency_ms": after["legacy_latency_ms"],
        "is_fraud": after["is_fraud"], "chargeback": after["chargeback"],
        "label_ts": pa.array(after["label_ts"], TS), "gateway_ok": after["gateway_ok"],
    })
    return conform(table, TRAFFIC)


def default_days(rows: int) -> int:
    """max(7, rows // 5000): 150,000 rows -> 30 days."""
    return max(DAYS_MIN, rows // ROWS_PER_DEFAULT_DAY)


def _check(rows: int, seed: int, start: dt.date, days: int | None) -> int:
    """Validate the arguments, naming the bad one; return the number of days."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows <= 0:
        raise InputError(f"rows must be a positive integer, got {rows!r}")
    if not isinstance(start, dt.date) or isinstance(start, dt.datetime):
        raise InputError(f"start must be a date (not a datetime or text), got {start!r}")
    days = default_days(rows) if days is None else days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= DAYS_MAX:
        raise InputError(f"days must be an integer in [1, {DAYS_MAX}], got {days!r}")
    busiest = max(rows_per_day(rows, start, days))
    if busiest > ROWS_PER_DAY_MAX:
        raise InputError(f"rows {rows} over {days} days puts {busiest} rows on one day, more than"
                         f" {ROWS_PER_DAY_MAX}; raise days")
    rng_for(seed)  # validates the seed with a message naming it
    return days


def iter_days(rows: int, seed: int, *, start: dt.date = START_DEFAULT,
              days: int | None = None) -> Iterator[DayResult]:
    """Yield each day of the period in order; days without rows are skipped."""
    days = _check(rows, seed, start, days)
    world = build_world(seed)
    scenario = build_scenario(world, rows, start, days)
    tail = (np.empty(0, dtype=object), np.empty(0, dtype=np.int64))
    for index in range(days):
        if scenario.rows_per_day[index] == 0:
            tail = (np.empty(0, dtype=object), np.empty(0, dtype=np.int64))
            continue
        result, tail = _day(world, scenario, index, tail)
        yield result


def generate_table(rows: int, seed: int, *, start: dt.date = START_DEFAULT,
                   days: int | None = None) -> pa.Table:
    """The rows ``generate`` would write, in store order, as one in-memory table."""
    tables = [r.table for r in iter_days(rows, seed, start=start, days=days)]
    return pa.concat_tables(tables) if tables else TRAFFIC.empty_table()


def _is_previous_store(out: Path) -> bool:
    for child in out.iterdir():
        if not (child.is_dir() and child.name.startswith("day=")):
            return False
        if any(not f.is_file() or not f.name.endswith((".parquet", ".parquet.tmp"))
               for f in child.iterdir()):
            return False
    return True


def _prepare_out(out: Path) -> None:
    """Refuse a foreign non-empty directory; clear a previous store so no stale day survives."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not _is_previous_store(out):
            raise InputError(f"--out {out} is not empty and is not a traffic store; "
                             "choose an empty or new directory")
        for child in sorted(out.iterdir()):
            shutil.rmtree(child)
    out.mkdir(parents=True, exist_ok=True)


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    return {v["values"]: v["counts"] for v in pc.value_counts(column).to_pylist()}


class _Tally:
    """Running totals of the written days, for the summary."""

    def __init__(self) -> None:
        self.rows = 0
        self.days: list[str] = []
        self.counts: Counter[str] = Counter()
        self.currencies: Counter[str] = Counter()
        self.patterns: Counter[str] = Counter({p: 0 for p in PATTERNS[1:]})

    def add(self, result: DayResult) -> None:
        t = result.table
        self.rows += t.num_rows
        self.days.append(result.day.isoformat())
        self.counts.update(_value_counts(t["legacy_decision"]))
        self.counts["chargeback"] += pc.sum(t["chargeback"].cast(pa.int64())).as_py() or 0
        self.currencies.update(_value_counts(t["currency"]))
        self.patterns.update(PATTERNS[p] for p in result.pattern[result.pattern > 0].tolist())

    def summary(self, out: Path, seconds: float) -> GenerateSummary:
        c = self.counts
        return GenerateSummary(
            path=out, rows=self.rows, days=self.days, fraud_rows=sum(self.patterns.values()),
            chargeback_rows=c["chargeback"], legacy_approved=c["approve"],
            legacy_declined=c["decline"], legacy_review=c["review"],
            currencies=dict(sorted(self.currencies.items())), seconds=seconds,
            fraud_by_pattern=dict(self.patterns))


def generate(out: Path, rows: int, seed: int, *, start: dt.date = START_DEFAULT,
             days: int | None = None,
             on_progress: Callable[[int], None] | None = None) -> GenerateSummary:
    """Write the traffic store of (rows, seed, start, days) under ``out``, one day at a time.

    A writer thread compresses and writes day d while day d+1 is drawn (Arrow's Parquet
    writer releases the GIL); at most WRITES_PENDING_MAX days wait, so memory stays flat.
    """
    began = time.perf_counter()
    _check(rows, seed, start, days)
    out = Path(out)
    _prepare_out(out)
    tally = _Tally()
    pending: list[tuple[Future, DayResult]] = []

    def settle(limit: int) -> None:
        while len(pending) > limit:
            future, result = pending.pop(0)
            future.result()
            tally.add(result)
            if on_progress is not None:
                on_progress(tally.rows)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="traffic-writer") as writer:
        for result in iter_days(rows, seed, start=start, days=days):
            pending.append((writer.submit(write_day_partitions, result.table, out, PART_NAME),
                            result))
            settle(WRITES_PENDING_MAX)
        settle(0)
    return tally.summary(out, time.perf_counter() - began)
