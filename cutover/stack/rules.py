"""The rules gate: deterministic, auditable checks around the model score.

Money decisions are never left to the model alone: hard limits, blocklists, velocity caps and
gateway availability decide first, the score bands after. The first rule that fires (in
``RULE_ORDER``) decides, and its name becomes the reason code ``rule:<name>``. Everything is
vectorised with ``np.select`` over a batch; a single decision is a batch of one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from cutover.config import StrictModel, config_model, load
from cutover.paths import fixtures_dir

#: Precedence of the rules: the first that fires decides.
RULE_ORDER: Final = ("amount_limit", "blocked_country", "blocked_bin", "velocity_cap_1h",
                     "no_route", "score_decline", "score_review")
#: What each rule decides.
RULE_DECISION: Final = {"score_review": "review"} | {
    r: "decline" for r in RULE_ORDER if r != "score_review"}
AMOUNT_UNCAPPED: Final = np.iinfo(np.int64).max


def rules_default() -> Path:
    """The rules file used when none is named: cutover/fixtures/rules/default.toml."""
    return fixtures_dir() / "rules" / "default.toml"


@dataclass(frozen=True)
class Rules:
    """The rules of one rules file, with its path and content hash (for audit)."""

    amount_max_minor: dict[str, int]
    card_countries: frozenset[str]
    card_bins: frozenset[str]
    card_n_1h_max: int
    review_at: float
    decline_at: float
    source: str = field(default="")
    sha256: str = field(default="")


class LimitsSection(StrictModel):
    """Amount caps."""

    amount_max_minor: dict[str, Annotated[int, Field(gt=0)]] = Field(
        description="currency -> largest approvable amount, in minor units (others uncapped)")


class BlocklistSection(StrictModel):
    """Cards declined outright."""

    card_countries: list[str] = Field(default_factory=list, description="ISO 3166 alpha-2")
    card_bins: list[str] = Field(default_factory=list, description="6-8 digit BINs")


class VelocitySection(StrictModel):
    """Velocity caps."""

    card_n_1h_max: int = Field(ge=1, description="decline at this many earlier payments in 1 h")


class ScoreSection(StrictModel):
    """Score bands (0 <= review_at <= decline_at <= 1)."""

    review_at: float = Field(ge=0, le=1)
    decline_at: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreSection:
        if self.review_at > self.decline_at:
            raise ValueError("needs 0 <= review_at <= decline_at <= 1")
        return self


@config_model("stack rules", "cutover/fixtures/rules/default.toml; `--candidate-opt rules=FILE`")
class RulesFile(StrictModel):
    """The reference stack's rules: limits, blocklists, velocity caps and score bands."""

    limits: LimitsSection
    blocklist: BlocklistSection = BlocklistSection()
    velocity: VelocitySection
    score: ScoreSection


def load_rules(path: Path | None = None) -> Rules:
    """Read a rules TOML file; errors name the file and the field."""
    path = Path(path) if path else rules_default()
    doc = load(RulesFile, path)
    return Rules(
        amount_max_minor=dict(doc.limits.amount_max_minor),
        card_countries=frozenset(doc.blocklist.card_countries),
        card_bins=frozenset(doc.blocklist.card_bins),
        card_n_1h_max=doc.velocity.card_n_1h_max,
        review_at=doc.score.review_at, decline_at=doc.score.decline_at,
        source=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def _amount_cap(rules: Rules, currency: pa.Array) -> np.ndarray:
    caps = np.array(list(rules.amount_max_minor.values()) + [AMOUNT_UNCAPPED], np.int64)
    idx = pc.index_in(currency, value_set=pa.array(list(rules.amount_max_minor), pa.string()))
    return caps[idx.fill_null(len(rules.amount_max_minor)).to_numpy(zero_copy_only=False)]


def apply_rules(rules: Rules, batch: pa.Table | pa.RecordBatch, card_n_1h: np.ndarray,
                has_route: np.ndarray, score: np.ndarray, review_at: float,
                decline_at: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (decision, firing rule name or "") per row; the first firing rule wins.

    ``card_n_1h`` counts the card's earlier payments in the last hour (this one excluded).
    """
    amount = np.asarray(batch.column("amount_minor").to_numpy(), dtype=np.int64)
    blocked_country = pc.is_in(batch.column("card_country"),
                               value_set=pa.array(sorted(rules.card_countries), pa.string()))
    blocked_bin = pc.is_in(batch.column("card_bin"),
                           value_set=pa.array(sorted(rules.card_bins), pa.string()))
    conds = [amount > _amount_cap(rules, batch.column("currency")),
             blocked_country.to_numpy(zero_copy_only=False),
             blocked_bin.to_numpy(zero_copy_only=False),
             card_n_1h >= rules.card_n_1h_max, ~has_route,
             score >= decline_at, score >= review_at]
    rule = np.select(conds, list(RULE_ORDER), default="").astype(object)
    decision = np.select([rule == "", rule == "score_review"], ["approve", "review"],
                         default="decline").astype(object)
    return decision, rule


def rule_one(rules: Rules, txn: dict, card_n_1h: float, has_route: bool, score: float,
             review_at: float, decline_at: float) -> tuple[str, str]:
    """The scalar twin of ``apply_rules`` for one online decision: (decision, rule or "")."""
    cap = rules.amount_max_minor.get(txn.get("currency"), AMOUNT_UNCAPPED)
    fired = (int(txn["amount_minor"]) > cap, txn.get("card_country") in rules.card_countries,
             txn.get("card_bin") in rules.card_bins, card_n_1h >= rules.card_n_1h_max,
             not has_route, score >= decline_at, score >= review_at)
    for name, hit in zip(RULE_ORDER, fired, strict=True):
        if hit:
            return RULE_DECISION[name], name
    return "approve", ""
