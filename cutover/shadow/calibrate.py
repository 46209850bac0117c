"""Noise calibration: which elements of the live legacy core differ between identical requests.

A live core answers the same request twice with some elements changed (an auth code, a trace
id, a timestamp). Diffing a live replay on those would report noise as mismatches, so each
sampled request is sent twice and every element of the two raw replies is compared, mapped or
not: each element that differs in any pair is named by its path (relative to the reply
element, the mapping's syntax), with its evidence (how many pairs differed, an example), and
the canonical fields of the mapped ones become ``[ignore]`` rules. The core must be idempotent
on txn_id for this to be safe: the mapping says so (``idempotent = true``), which is checked
before anything is sent.

Failed calls are counted by kind with the first message of each (``cutover.store.errorlog``);
the CLI refuses a calibration in which every pair failed or too many did.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow.compute as pc

from cutover.adapters.candidate import request_columns
from cutover.adapters.mapping import PATH_SEP, load_mapping
from cutover.adapters.soap import SoapAdapter, SoapOptions
from cutover.adapters.transport import BreakerOpen, CallFailed
from cutover.adapters.xmlpaths import reply_leaves
from cutover.errors import ConfigError, InputError
from cutover.shadow.diff_rules import default_rules_path, parse_diff_rules, toml_string
from cutover.store.filters import Narrowing
from cutover.store.quarantine import quarantine_reasons
from cutover.store.stream import iter_input

WORKERS: Final = 4
#: The field of an evidence entry whose element the mapping does not read.
UNMAPPED: Final = "(unmapped)"
SAMPLE_MAX: Final = 100_000
EXAMPLE_CHARS_MAX: Final = 80
_IGNORE_BLOCK: Final = re.compile(r"^\[ignore\][^\n]*\n(?:(?!\[)[^\n]*\n)*", re.MULTILINE)


@dataclass
class Calibration:
    """What calibration saw: pairs compared, and the fields that differed with evidence."""

    wsdl: str
    pairs: int
    failed_pairs: int
    evidence: list[dict[str, Any]] = field(default_factory=list)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    errors: list[tuple[str, str, Any]] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        """The canonical fields of the volatile elements the mapping reads, first seen first."""
        out: list[str] = []
        for e in self.evidence:
            if e["field"] != UNMAPPED and e["field"] not in out:
                out.append(e["field"])
        return out

    @property
    def elements(self) -> list[str]:
        """Every volatile element of the reply by path, mapped or not."""
        return [e["element"] for e in self.evidence]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"wsdl": self.wsdl, "pairs": self.pairs, "failed_pairs": self.failed_pairs,
                "fields": self.fields, "elements": self.elements, "evidence": self.evidence,
                "at": self.at}


def sample_requests(store: Path, sample: int) -> list[dict[str, Any]]:
    """The first ``sample`` replayable rows of the store, as request dicts."""
    if not 0 < sample <= SAMPLE_MAX:
        raise InputError(f"--sample {sample}: between 1 and {SAMPLE_MAX}")
    rows: list[dict[str, Any]] = []
    for table in iter_input(Path(store), Narrowing(), batch_rows=max(sample, 1)):
        valid = table.filter(pc.is_null(quarantine_reasons(table)))
        rows += request_columns(valid).slice(0, sample - len(rows)).to_pylist()
        if len(rows) >= sample:
            break
    return rows


def _exchange(adapter: Any, txn: dict[str, Any]) -> dict[str, Any]:
    """One call: the leaves of the raw reply by path, or the failure's kind and message."""
    try:
        adapter.call_raw(txn)
    except (CallFailed, BreakerOpen) as exc:
        return {"error": exc.reason, "message": str(exc)}
    _, received = adapter.last_exchange()
    return {"error": None, "leaves": reply_leaves(received or b"")}


def _pair(adapter: Any, txn: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return _exchange(adapter, txn), _exchange(adapter, txn)


def _short(value: Any) -> Any:
    text = value if isinstance(value, int | float | bool) or value is None else str(value)
    return text[:EXAMPLE_CHARS_MAX] if isinstance(text, str) else text


def compare_pairs(pairs: list[tuple[dict[str, Any], dict[str, Any]]], wsdl: str,
                  mapped: dict[str, str] | None = None) -> Calibration:
    """Count, per reply element (path -> text leaves), the pairs whose two replies differ.

    ``mapped`` gives the canonical field of each element path the mapping reads.
    """
    mapped = mapped or {}
    ok = [(a, b) for a, b in pairs if a.get("error") is None and b.get("error") is None]
    result = Calibration(wsdl, pairs=len(ok), failed_pairs=len(pairs) - len(ok))
    for a, b in pairs:
        for one in (a, b):
            if one.get("error") is not None:
                result.errors.append((one["error"], one.get("message", one["error"]), None))
    paths: list[str] = []
    for a, b in ok:
        for path in (*a["leaves"], *b["leaves"]):
            if path not in paths:
                paths.append(path)
    for path in paths:
        differing = [(a["leaves"].get(path), b["leaves"].get(path)) for a, b in ok
                     if a["leaves"].get(path) != b["leaves"].get(path)]
        if differing:
            result.evidence.append({
                "element": path, "field": mapped.get(path, UNMAPPED), "pairs": len(ok),
                "pairs_differing": len(differing), "share": round(len(differing) / len(ok), 6),
                "example": [_short(differing[0][0]), _short(differing[0][1])]})
    return result


def calibrate(wsdl: str, mapping: Path, store: Path, sample: int, *,
              address: str | None = None) -> Calibration:
    """Send ``sample`` requests from ``store`` twice each to the live core and compare."""
    loaded = load_mapping(mapping)
    if not loaded.idempotent:
        raise ConfigError(f"{mapping}: the operation is not idempotent (idempotent = false);"
                          " sending a request twice could book it twice, so calibration refuses")
    txns = sample_requests(store, sample)
    adapter = SoapAdapter(loaded, wsdl=wsdl, options=SoapOptions(address=address))
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            pairs = list(pool.map(lambda t: _pair(adapter, t), txns))
    finally:
        adapter.close()
    mapped = {PATH_SEP.join(f.path): f.canonical for f in loaded.response}
    mapped |= {PATH_SEP.join(p): "response_code" for p in loaded.code_paths}
    return compare_pairs(pairs, wsdl, mapped)


def _ignore_block(fields: list[str], result: Calibration) -> str:
    lines = ["[ignore]",
             f"# Calibrated {result.at} against {result.wsdl}: {result.pairs} requests sent twice",
             f"# ({result.failed_pairs} pairs failed and were left out); these fields differed.",
             "# Volatile reply elements (path: canonical field, or (unmapped)):",
             *[f"#   {e['element']}: {e['field']}" for e in result.evidence],
             "fields = [" + ", ".join(toml_string(f) for f in fields) + "]",
             "evidence = ["]
    for ev in result.evidence:
        example = ", ".join(toml_string(str(x)) for x in ev["example"])
        lines.append(f"  {{ element = {toml_string(ev['element'])},"
                     f" field = {toml_string(ev['field'])}, pairs = {ev['pairs']},"
                     f" pairs_differing = {ev['pairs_differing']}, share = {ev['share']},"
                     f" example = [{example}] }},")
    return "\n".join([*lines, "]"]) + "\n\n"


def write_calibrated_rules(result: Calibration, out: Path, base: Path | None = None) -> Path:
    """Write ``out``: the base rules with [ignore] holding the noisy fields and the evidence."""
    base = Path(base) if base is not None else default_rules_path()
    text = base.read_text(encoding="utf-8")
    before = parse_diff_rules(text, base)
    fields = sorted(before.ignore_fields) + [f for f in result.fields
                                             if f not in before.ignore_fields]
    block = _ignore_block(fields, result)
    if _IGNORE_BLOCK.search(text):
        text = _IGNORE_BLOCK.sub(lambda _: block, text, count=1)
    else:
        text = re.sub(r"^(version\s*=\s*\d+\s*\n)", lambda m: m.group(1) + "\n" + block, text,
                      count=1, flags=re.MULTILINE)
    rules = parse_diff_rules(text, out)
    if set(result.fields) - rules.ignore_fields:
        raise ConfigError(f"{out}: the calibrated fields did not land in [ignore]")
    Path(out).write_text(text, encoding="utf-8")
    return Path(out)
