"""The simulated legacy core's decision: one pure, vectorised function for server and generator.

The SOAP service (``legacy_server``) decides one request at a time and the traffic generator
decides millions of rows at once; both call ``decide`` here so the recorded legacy outcomes
and the live core can never drift apart. Nothing here draws random numbers or does I/O
(``load_core_config`` is the one reader, re-exported from ``legacy_config``).

Rules, in precedence order (the first that fires gives the code):

    "14" invalid_card          the BIN is in no known range (card country "ZZ")
    "62" restricted_card       the card country is on the blocklist
    "57" not_permitted         the currency is not processed here, or the amount is not positive
    "65" exceeds_frequency     more than ``velocity.txn_per_hour_max`` txns of the card in 1 h
    "61" exceeds_amount_limit  the amount is above the MCC's limit (or the default limit)
    "59" suspected_fraud       a moto transaction above ``suspicion.moto_over``
    "01" refer_to_issuer       a foreign card (card country != merchant country) above
                               ``suspicion.foreign_review_over``
    "00" approved

The route is the gateway the static table picks for the BIN and currency. It is kept for every
row, declines included, because that is what the legacy core reports and what a candidate's
route is compared against. The fee is charged only on approvals (0 otherwise):

    fee_minor = floor((amount_minor * fee_bps + 5000) / 10000) + fixed_minor[currency]

i.e. basis points of the amount rounded half up to a whole minor unit, in integer arithmetic.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.errors import BadRecord
from cutover.sim.legacy_config import BIN_DIGITS, CoreConfig, load_core_config

__all__ = ["CoreConfig", "VelocityCounter", "card_country_of", "decide", "decide_one",
           "load_core_config", "velocity_1h"]

HOUR_US: Final = 3_600_000_000
UNKNOWN_COUNTRY: Final = "ZZ"
BPS_DENOMINATOR: Final = 10_000
DECIDE_INPUTS: Final = ("amount_minor", "currency", "mcc", "card_bin", "card_country",
                        "merchant_country", "channel")
#: Rule codes in precedence order; ``decide`` builds one mask per entry.
RULE_CODES: Final = ("14", "62", "57", "65", "61", "59", "01")
APPROVED_CODE: Final = "00"


def _text(values: Any) -> np.ndarray:
    return np.asarray(values).astype(str)


def _bin_numbers(card_bin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BIN text -> (int64 numbers, valid mask); anything but exactly six digits is invalid.

    Reads the UCS-4 code points directly (a 7-wide view: the 7th must be empty), which is
    several times faster than ``astype(int64)`` on a million strings.
    """
    text = _text(card_bin).astype(f"U{BIN_DIGITS + 1}")
    points = text.view(np.uint32).reshape(len(text), BIN_DIGITS + 1).astype(np.int64)
    digits = points[:, :BIN_DIGITS] - ord("0")
    valid = ((digits >= 0) & (digits <= 9)).all(axis=1) & (points[:, BIN_DIGITS] == 0)
    weights = 10 ** np.arange(BIN_DIGITS - 1, -1, -1, dtype=np.int64)
    return np.where(valid, digits @ weights, 0), valid


def card_country_of(card_bin: np.ndarray, cfg: CoreConfig) -> np.ndarray:
    """Issuing country per BIN from the range table; unknown or malformed BIN -> "ZZ"."""
    numbers, valid = _bin_numbers(card_bin)
    pos = np.searchsorted(cfg.bin_starts, numbers, side="right") - 1
    pos_safe = np.clip(pos, 0, max(len(cfg.bin_starts) - 1, 0))
    inside = valid & (pos >= 0) & (numbers <= cfg.bin_ends[pos_safe])
    return np.where(inside, cfg.bin_countries[pos_safe], UNKNOWN_COUNTRY).astype(object)


def _codes_of(values: Any) -> np.ndarray:
    """Dense int64 codes of equal values (hash-based via Arrow: no string sort)."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(
        np.asarray(values).astype(str))
    # A null token is one more "card" rather than garbage codes.
    encoded = pc.dictionary_encode(array.fill_null(""))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def velocity_1h(card_token: np.ndarray, ts_us: np.ndarray) -> np.ndarray:
    """Per row, how many EARLIER rows of the same card have ts in (ts - 1 h, ts].

    "Earlier" is input order, and rows are expected sorted by ts (ties keep input order).
    Vectorised: rows are stably sorted by (card, ts); each timestamp and each window start is
    replaced by its rank among all of them, so ``card * ranks + rank`` is a sort key that
    cannot overflow, and one searchsorted finds every window's first row.
    """
    ts = np.asarray(ts_us, dtype=np.int64)
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    card = _codes_of(card_token)
    order = np.lexsort((np.arange(n), ts, card))
    points = np.unique(np.concatenate([ts, ts - HOUR_US]))
    stride = len(points) + 1
    key = card * stride + np.searchsorted(points, ts)
    window_key = card * stride + np.searchsorted(points, ts - HOUR_US)
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, window_key[order], side="right")
    counts = np.empty(n, dtype=np.int64)
    counts[order] = np.arange(n, dtype=np.int64) - first
    return counts


class VelocityCounter:
    """The online twin of ``velocity_1h`` for the SOAP service, thread-safe and bounded.

    ``count`` returns how many distinct earlier txn_ids of the card have ts in (ts - 1 h, ts].
    It is idempotent on txn_id: a repeated txn_id gets the count of its first call and is not
    counted twice. Memory is bounded: timestamps older than 1 h before the newest seen are
    evicted, and at most ``cards_max`` cards and ``txns_max`` remembered txn_ids are kept
    (oldest dropped first), so a flood of new cards cannot grow the server without limit.
    """

    CARDS_MAX: Final = 200_000
    TXNS_MAX: Final = 1_000_000
    #: Every this many calls, cards with nothing left in the window are dropped entirely.
    SWEEP_EVERY_CALLS: Final = 10_000

    def __init__(self, cards_max: int = CARDS_MAX, txns_max: int = TXNS_MAX) -> None:
        self._cards_max = cards_max
        self._txns_max = txns_max
        self._by_card: OrderedDict[str, list[int]] = OrderedDict()
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._newest_us = np.iinfo(np.int64).min
        self._calls = 0
        self._lock = threading.Lock()

    def count(self, card_token: str, ts_us: int, txn_id: str) -> int:
        """Count earlier txns of ``card_token`` in the hour up to ``ts_us``; record this one."""
        with self._lock:
            if txn_id in self._seen:
                return self._seen[txn_id]
            times = self._by_card.setdefault(card_token, [])
            self._by_card.move_to_end(card_token)
            result = bisect.bisect_right(times, ts_us) - bisect.bisect_right(times, ts_us - HOUR_US)
            bisect.insort_right(times, ts_us)
            self._seen[txn_id] = result
            self._newest_us = max(self._newest_us, ts_us)
            self._evict(times)
            return result

    def _evict(self, times: list[int]) -> None:
        horizon_us = self._newest_us - HOUR_US
        del times[:bisect.bisect_right(times, horizon_us)]
        self._calls += 1
        if self._calls % self.SWEEP_EVERY_CALLS == 0:
            stale = [card for card, kept in self._by_card.items()
                     if not kept or kept[-1] <= horizon_us]
            for card in stale:
                del self._by_card[card]
        while len(self._by_card) > self._cards_max:
            self._by_card.popitem(last=False)
        while len(self._seen) > self._txns_max:
            self._seen.popitem(last=False)


def _threshold(cfg_table: Mapping[str, int], currency: np.ndarray) -> np.ndarray:
    """Per-row amount from a currency table; -1 where the currency is not listed."""
    out = np.full(len(currency), -1, dtype=np.int64)
    for code, amount_minor in cfg_table.items():
        out[currency == code] = amount_minor
    return out


def _limits(mcc: np.ndarray, currency: np.ndarray, cfg: CoreConfig) -> np.ndarray:
    """Per-row amount limit: the MCC's own for its currency, else the currency default."""
    out = _threshold(cfg.limits_default, currency)
    for (code_mcc, code_currency), amount_minor in cfg.limits_by_mcc.items():
        out[(mcc == code_mcc) & (currency == code_currency)] = amount_minor
    return out


def _routes(card_bin: np.ndarray, currency: np.ndarray, cfg: CoreConfig) -> np.ndarray:
    """The first matching static route per row, else the default gateway."""
    if not cfg.routes:
        return np.full(len(currency), cfg.default_gateway, dtype=object)
    numbers, valid = _bin_numbers(card_bin)
    conditions = [
        valid & (numbers >= r.bin_start) & (numbers <= r.bin_end)
        & (np.isin(currency, list(r.currencies)) if r.currencies is not None else True)
        for r in cfg.routes
    ]
    choices = [r.gateway for r in cfg.routes]
    return np.select(conditions, choices, default=cfg.default_gateway).astype(object)


def _fees(amount: np.ndarray, currency: np.ndarray, route: np.ndarray,
          approved: np.ndarray, cfg: CoreConfig) -> np.ndarray:
    """Fee of each approved row on its route; 0 elsewhere. Integer arithmetic only."""
    fee = np.zeros(len(amount), dtype=np.int64)
    for name, gateway in cfg.gateways.items():
        rows = approved & (route == name)
        if not rows.any():
            continue
        fixed = _threshold(gateway.fixed_minor, currency[rows])
        fee[rows] = (amount[rows] * gateway.fee_bps + BPS_DENOMINATOR // 2) // BPS_DENOMINATOR
        fee[rows] += fixed
    return fee


def _rule_masks(c: Mapping[str, np.ndarray], velocity: np.ndarray,
                cfg: CoreConfig) -> list[np.ndarray]:
    """One boolean mask per entry of RULE_CODES, in the same order."""
    amount, currency = c["amount_minor"], c["currency"]
    supported = np.isin(currency, list(cfg.currencies))
    moto_over = _threshold(cfg.moto_over, currency)
    review_over = _threshold(cfg.foreign_review_over, currency)
    return [
        c["card_country"] == UNKNOWN_COUNTRY,
        np.isin(c["card_country"], list(cfg.blocked_countries)),
        ~supported | (amount <= 0),
        velocity + 1 > cfg.velocity_txn_per_hour_max,
        amount > _limits(c["mcc"], currency, cfg),
        (c["channel"] == "moto") & (amount > moto_over),
        (c["card_country"] != c["merchant_country"]) & (amount > review_over),
    ]


def decide(cols: Mapping[str, np.ndarray], velocity: np.ndarray,
           cfg: CoreConfig) -> dict[str, np.ndarray]:
    """Decide a batch: legacy_code, legacy_decision, legacy_reason, legacy_route, legacy_fee_minor.

    ``cols`` holds the columns of DECIDE_INPUTS (equal length); ``velocity`` is the count of
    earlier transactions of the card in the past hour (``velocity_1h`` or VelocityCounter).
    """
    missing = [name for name in DECIDE_INPUTS if name not in cols]
    if missing:
        raise BadRecord(f"decide needs columns {missing}")
    c = {name: _text(cols[name]) for name in DECIDE_INPUTS if name != "amount_minor"}
    try:
        c["amount_minor"] = np.asarray(cols["amount_minor"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRecord(f"amount_minor must be integer minor units: {exc}") from exc
    lengths = {len(v) for v in c.values()} | {len(np.atleast_1d(velocity))}
    if len(lengths) != 1:
        raise BadRecord(f"decide columns and velocity differ in length: {sorted(lengths)}")
    velocity = np.asarray(velocity, dtype=np.int64)
    code = np.select(_rule_masks(c, velocity, cfg), list(RULE_CODES), default=APPROVED_CODE)
    decision, reason, _ = cfg.codes.translate(code)
    route = _routes(c["card_bin"], c["currency"], cfg)
    fee = _fees(c["amount_minor"], c["currency"], route, code == APPROVED_CODE, cfg)
    return {"legacy_code": code.astype(object), "legacy_decision": decision,
            "legacy_reason": reason, "legacy_route": route, "legacy_fee_minor": fee}


def decide_one(txn: Mapping[str, Any], velocity: int, cfg: CoreConfig) -> dict[str, Any]:
    """Decide one transaction (a dict with DECIDE_INPUTS) exactly as ``decide`` would."""
    missing = [name for name in DECIDE_INPUTS if name not in txn]
    if missing:
        raise BadRecord(f"transaction {txn.get('txn_id', '?')} lacks fields {missing}")
    amount_minor = txn["amount_minor"]
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int | np.integer):
        raise BadRecord(f"transaction {txn.get('txn_id', '?')}: amount_minor must be an int, "
                        f"got {type(amount_minor).__name__}")
    cols = {name: np.array([txn[name]], dtype=object) for name in DECIDE_INPUTS}
    cols["amount_minor"] = np.array([int(amount_minor)], dtype=np.int64)
    out = decide(cols, np.array([velocity], dtype=np.int64), cfg)
    return {name: (int(v[0]) if name == "legacy_fee_minor" else str(v[0]))
            for name, v in out.items()}
