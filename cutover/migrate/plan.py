"""The cutover plan: ordered phases, each with a cohort, a gate, approvers and a bake time.

A plan is a TOML file reviewed like code. Loading validates everything up front and names the
file, phase and field in every error, so a broken plan is refused before it routes traffic.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cutover.errors import ConfigError
from cutover.migrate import cohort as cohorts
from cutover.migrate.policy import MONEY_MEASURES, Policy, parse_policy
from cutover.paths import fixtures_dir
from cutover.stack.fx import load_fx

PHASES_MAX: Final = 32
APPROVALS_MAX: Final = 20
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PHASE_FIELDS: Final = frozenset({"name", "percent", "merchants", "countries", "channels",
                                 "gate", "approvals", "bake"})


def parse_duration_s(text: Any, where: str) -> int:
    """'24h' -> 86400, '30m' -> 1800; units s, m, h, d."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f'{where} must be a duration like "30m", "24h" or "2d", got {text!r}')
    return int(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class Phase:
    """One step of the cutover: who goes to the candidate, and what it takes to enter."""

    name: str
    cohort: cohorts.Cohort
    gate: Policy | None
    approvals: int
    bake_s: int


@dataclass(frozen=True)
class Plan:
    """A validated plan; ``phases[0]`` is where every cutover starts."""

    name: str
    salt: str
    sticky_key: str
    phases: tuple[Phase, ...]
    source: str = ""

    def phase(self, name: str) -> Phase:
        """The phase called ``name``; ConfigError listing the known names otherwise."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        known = ", ".join(p.name for p in self.phases)
        raise ConfigError(f'{self.source}: no phase "{name}" in plan {self.name!r}; known: {known}')

    def index(self, name: str) -> int:
        """Position of phase ``name`` in the plan."""
        return self.phases.index(self.phase(name))

    def assign(self, txn: dict[str, Any], phase: str | None = None) -> str:
        """'legacy' or 'candidate' for one transaction in ``phase`` (default: the last phase)."""
        return self.explain(txn, phase)[0]

    def explain(self, txn: dict[str, Any], phase: str | None = None) -> tuple[str, str]:
        """Like ``assign`` but also returns the reason."""
        chosen = self.phase(phase) if phase else self.phases[-1]
        return cohorts.explain(chosen.cohort, self.salt, self.sticky_key, txn)

    def assign_batch(self, batch: Any, phase: str) -> Any:
        """Vectorised ``assign`` over a pyarrow RecordBatch; returns a string array."""
        return cohorts.assign_batch(self.phase(phase).cohort, self.salt, self.sticky_key, batch)


def _strings(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return frozenset(value)


def _phase(raw: Any, where_file: str, position: int, fx: Any = None,
           fx_source: str = "") -> Phase:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ConfigError(f"{where_file}: phase #{position + 1}: name must be a non-empty string")
    where = f'{where_file}: phase "{raw["name"]}"'
    unknown = sorted(set(raw) - PHASE_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; "
                          f"known: {', '.join(sorted(PHASE_FIELDS))}")
    percent = raw.get("percent")
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise ConfigError(f"{where}: percent must be between 0 and 100, got {percent!r}")
    approvals = raw.get("approvals", 0)
    if isinstance(approvals, bool) or not isinstance(approvals, int) \
            or not 0 <= approvals <= APPROVALS_MAX:
        raise ConfigError(f"{where}: approvals must be a whole number 0..{APPROVALS_MAX}, "
                          f"got {approvals!r}")
    gate = raw.get("gate")
    if gate is None and position > 0:
        raise ConfigError(f"{where}: gate is missing; every phase after the first needs the "
                          "gate policy for entering it")
    return Phase(
        name=raw["name"],
        cohort=cohorts.Cohort(
            percent=float(percent),
            merchants=_strings(raw.get("merchants", []), f"{where}: merchants"),
            countries=_strings(raw.get("countries", []), f"{where}: countries"),
            channels=_strings(raw.get("channels", []), f"{where}: channels"),
        ),
        gate=None if gate is None else parse_policy(gate, where, fx, fx_source),
        approvals=approvals,
        bake_s=parse_duration_s(raw.get("bake", "0s"), f"{where}: bake"),
    )


def _check_widening(before: Phase, phase: Phase, source: str) -> None:
    """Allow-lists may only widen along the phases, or a merchant on the candidate in one
    phase would be sent back to legacy by the next (the split would not be monotonic)."""
    for label, old, new in (("merchants", before.cohort.merchants, phase.cohort.merchants),
                            ("countries", before.cohort.countries, phase.cohort.countries),
                            ("channels", before.cohort.channels, phase.cohort.channels)):
        if new and (not old or not old <= new):
            dropped = sorted(old - new) if old else ["(all)"]
            raise ConfigError(f'{source}: phase "{phase.name}": {label} must keep every entry of '
                              f'"{before.name}" (allow-lists only widen); missing {dropped[:5]}')


def parse_plan(data: dict[str, Any], source: str) -> Plan:
    """Validate a plan already read from TOML; ``source`` names it in errors."""
    for key in ("name", "salt"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{source}: {key} must be a non-empty string")
    sticky = data.get("sticky_key", "merchant_id")
    if sticky not in cohorts.STICKY_KEYS:
        raise ConfigError(f"{source}: sticky_key must be one of {cohorts.STICKY_KEYS}, "
                          f"got {sticky!r}")
    raw_phases = data.get("phases")
    if not isinstance(raw_phases, list) or not 1 <= len(raw_phases) <= PHASES_MAX:
        raise ConfigError(f"{source}: phases must be a list of 1..{PHASES_MAX} [[phases]] tables")
    fx, fx_source = load_plan_fx(data.get("fx"), source)
    phases = tuple(_phase(raw, source, i, fx, fx_source) for i, raw in enumerate(raw_phases))
    _check_money_limits(phases, source)
    seen: set[str] = set()
    for before, phase in zip((None, *phases), phases, strict=False):
        if phase.name in seen:
            raise ConfigError(f'{source}: phase "{phase.name}": name is used twice')
        seen.add(phase.name)
        if before is not None:
            _check_widening(before, phase, source)
        if before is not None and phase.cohort.percent < before.cohort.percent:
            raise ConfigError(
                f'{source}: phase "{phase.name}": percent must not decrease along the phases, '
                f'got {phase.cohort.percent:g} after "{before.name}" at {before.cohort.percent:g}')
    return Plan(data["name"], data["salt"], sticky, phases, source)


#: A plan's ``fx`` naming a rates file shipped in cutover/fixtures rather than a path.
FIXTURES_PREFIX: Final = "fixtures:"


def load_plan_fx(value: Any, source: str) -> tuple[Any, str]:
    """The plan's indicative rates (top-level ``fx``): ``fixtures:fx/indicative.toml`` or a
    path relative to the plan file; (None, "") when the plan sets none."""
    if value is None:
        return None, ""
    if not isinstance(value, str) or not value:
        raise ConfigError(f'{source}: fx must name a rates file, like "fixtures:fx/indicative.toml"')
    if value.startswith(FIXTURES_PREFIX):
        path = fixtures_dir() / value.removeprefix(FIXTURES_PREFIX)
    else:
        path = Path(source).parent / value if not Path(value).is_absolute() else Path(value)
    try:
        return load_fx(path), value
    except ConfigError as exc:
        raise ConfigError(f"{source}: fx: {exc}") from exc


def _check_money_limits(phases: tuple[Phase, ...], source: str) -> None:
    """Every money check of every phase has a limit for every currency the plan names.

    A phase listing limits for three currencies while another lists thirteen would fail "no
    limit set" at the gate for the other ten, with no candidate at fault: refused here, when
    the plan is written, naming phase, measure and currencies. A total in the reference
    currency covers every currency.
    """
    for measure in MONEY_MEASURES:
        named = {c for p in phases if p.gate for c in getattr(p.gate, measure)}
        for phase in phases:
            if phase.gate is None:
                continue
            per_currency, total = phase.gate.money_limits(measure)
            missing = sorted(named - set(per_currency))
            if per_currency and total is None and missing:
                raise ConfigError(
                    f'{source}: phase "{phase.name}": gate.{measure} has no limit for '
                    f"{', '.join(missing)} (other phases limit them); list every currency or set "
                    f"gate.{measure}_total in the reference currency of the plan's fx")


def read_toml(path: Path | str) -> dict[str, Any]:
    """Read a TOML file; ConfigError naming the file if missing or malformed."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): TOML must be UTF-8") \
            from exc


def load_plan(path: Path | str) -> Plan:
    """Read and validate a plan file."""
    return parse_plan(read_toml(path), str(path))


def load_policy(path: Path | str, phase: str | None) -> Policy:
    """The gate policy from a plan (the gate for entering ``phase``) or a policy file
    (a top-level [gate] table)."""
    data = read_toml(path)
    if "phases" in data:
        plan = parse_plan(data, str(path))
        if not phase:
            raise ConfigError(f"{path}: is a plan; say which phase's gate to apply with --phase")
        chosen = plan.phase(phase)
        if chosen.gate is None:
            raise ConfigError(f'{path}: phase "{phase}": has no gate (it is the starting phase)')
        return chosen.gate
    if "gate" in data:
        fx, fx_source = load_plan_fx(data.get("fx"), str(path))
        return parse_policy(data["gate"], str(path), fx, fx_source)
    raise ConfigError(f"{path}: neither a plan ([[phases]]) nor a policy file ([gate] table)")


#: Keys routed through the exported rule as test vectors; fixed so other implementations can
#: pin them in their own tests.
TEST_VECTOR_KEYS: Final = ("M00001", "M00042", "M12345", "C0000007", "customer-\u00e9")


def export_rule(plan: Plan, phase: str) -> dict[str, Any]:
    """The assignment rule of ``phase`` as plain data a router in any language can apply."""
    chosen = plan.phase(phase)
    cohort = chosen.cohort
    vectors = []
    for key in TEST_VECTOR_KEYS:
        bucket = cohorts.bucket_of(plan.salt, key)
        vectors.append({"key": key, "bucket": bucket,
                        "in_bucket_range": bucket < cohort.threshold})
    return {
        "format": "cutover-route-rule/1",
        "plan": plan.name, "phase": chosen.name, "percent": cohort.percent,
        "sticky_key": plan.sticky_key, "salt": plan.salt,
        "hash": {"algorithm": cohorts.HASH_ALGORITHM, "input": "utf8(salt + ':' + key)",
                 "digest_bytes_used": cohorts.DIGEST_BYTES, "byte_order": "big",
                 "buckets": cohorts.BUCKETS},
        "threshold": cohort.threshold,
        "allow": {"merchant_id": sorted(cohort.merchants),
                  "merchant_country": sorted(cohort.countries),
                  "channel": sorted(cohort.channels)},
        "rule": ("candidate iff every non-empty allow list contains the transaction's value "
                 "AND bucket < threshold, where bucket = int.from_bytes(sha256(utf8(salt + ':' "
                 "+ key))[0:8], 'big') % buckets and key is the transaction's sticky_key; "
                 "a missing key routes to legacy"),
        "test_vectors": vectors,
    }
