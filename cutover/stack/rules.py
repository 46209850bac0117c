"""The rules gate: deterministic, auditable checks after the model score, and retry plans.

Money decisions are never left to the model alone: hard limits, blocklists and velocity caps
decide first, the score bands after. The firing rule becomes the reason code ``rule:<name>``.
Everything is vectorised with ``np.select`` over a batch.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.errors import ConfigError

RULES_DEFAULT: Final = Path(__file__).resolve().parents[2] / "fixtures" / "rules" / "default.toml"
#: Rules whose decline means the card or payment is bad: never retry.
HARD_RULES: Final = frozenset({"blocked_country", "blocked_bin", "velocity_cap_1h",
                               "score_decline", "amount_limit"})
RETRY_DELAY: Final = "+30m"


@dataclass(frozen=True)
class Rules:
    """The rules of one rules file, with the path they came from (for audit)."""

    amount_max_minor: dict[str, int]
    card_countries: frozenset[str]
    card_bins: frozenset[str]
    card_n_1h_max: int
    review_at: float
    decline_at: float
    source: str = field(default="")


def load_rules(path: Path = RULES_DEFAULT) -> Rules:
    """Read a rules TOML file; errors name the file and the field."""
    try:
        doc = tomllib.loads(path.read_text())
        return Rules(
            amount_max_minor={k: int(v) for k, v in doc["limits"]["amount_max_minor"].items()},
            card_countries=frozenset(doc["blocklist"]["card_countries"]),
            card_bins=frozenset(doc["blocklist"]["card_bins"]),
            card_n_1h_max=int(doc["velocity"]["card_n_1h_max"]),
            review_at=float(doc["score"]["review_at"]),
            decline_at=float(doc["score"]["decline_at"]),
            source=str(path),
        )
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read rules: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: missing or invalid rules field {exc}") from exc


def apply_rules(rules: Rules, batch: pa.Table, card_n_1h: np.ndarray, score: np.ndarray,
                review_at: float, decline_at: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (decision, rule name or "") per row; the first firing rule wins."""
    cur = batch["currency"]
    limits = pa.array(list(rules.amount_max_minor.values()), pa.int64())
    idx = pc.index_in(cur, value_set=pa.array(list(rules.amount_max_minor), pa.string()))
    cap = pc.take(limits, idx).to_numpy(zero_copy_only=False)
    amount = batch["amount_minor"].to_numpy()
    over = np.where(np.isnan(cap.astype(np.float64)), False, amount > np.nan_to_num(cap))
    b_country = pc.is_in(batch["card_country"], pa.array(sorted(rules.card_countries), pa.string()))
    b_bin = pc.is_in(batch["card_bin"], pa.array(sorted(rules.card_bins), pa.string()))
    conds = [over, b_country.to_numpy(zero_copy_only=False), b_bin.to_numpy(zero_copy_only=False),
             card_n_1h >= rules.card_n_1h_max, score >= decline_at, score >= review_at]
    names = ["amount_limit", "blocked_country", "blocked_bin", "velocity_cap_1h",
             "score_decline", "score_review"]
    rule = np.select(conds, names, default="")
    decision = np.select([rule == "", rule == "score_review"], ["approve", "review"],
                         default="decline")
    return decision.astype(object), rule.astype(object)


def retry_plans(decision: np.ndarray, rule: np.ndarray, alt_route: np.ndarray) -> np.ndarray:
    """Per row: "none" for hard declines, "retry:<gateway>@+30m" for soft ones, null otherwise.

    Soft declines are the ones the payment itself is not to blame for (no gateway available
    right now); a retry then goes to the next-best allowed gateway, later.
    """
    declined = decision == "decline"
    hard = np.isin(rule, list(HARD_RULES))
    soft_plan = np.where(alt_route != None, "retry:" + alt_route.astype(str) + "@" + RETRY_DELAY,  # noqa: E711
                         "retry:any@" + RETRY_DELAY)
    plan = np.where(declined & ~hard, soft_plan, "none")
    return np.where(declined, plan, None).astype(object)
