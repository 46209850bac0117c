"""report.md: the replay report for people, rendered from report.json alone.

Tables for counts, rates, money, latency, segments and drift, and the charts as images next
to it (RUN_DIR/charts/*.png). Money is printed with ``domain.format_money`` so a JPY amount is
never shown with cents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutover.domain import MoneyError, format_money
from cutover.errors import ConfigError
from cutover.pan import mask_pans
from cutover.shadow.charts import CHARTS_DIR, draw_all
from cutover.shadow.feed_report_md import feed_chart as draw_feed_chart
from cutover.shadow.feed_report_md import feed_lines
from cutover.stack.reasons import explain


def _money(amount_minor: int, currency: str) -> str:
    try:
        return format_money(int(amount_minor), currency)
    except MoneyError:
        return f"{amount_minor} minor {currency}"


def _pct(value: float) -> str:
    return f"{100.0 * value:.3f}%"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _counts(report: dict[str, Any]) -> list[str]:
    counts = report["counts"]
    expected = counts.get("expected_by_category", {})
    rows = [[c, f"{n:,}", f"{expected.get(c, 0):,}", _pct(n / counts["in"]) if counts["in"] else "-"]
            for c, n in counts["by_category"].items()]
    verdict = "holds" if counts["conservation_ok"] else "BROKEN"
    return [f"## Categories ({counts['in']:,} transactions in; conservation {verdict})", "",
            *_table(["category", "rows", "of which expected", "share"], rows)]


def _rates(report: dict[str, Any]) -> list[str]:
    rows = [[c, f"{r['k']:,}", _pct(r["rate"]), f"{_pct(r['lo'])} – {_pct(r['hi'])}"]
            for c, r in report["rates"].items()]
    return ["## Mismatch rates (not expected; 95% Wilson interval)", "",
            *_table(["category", "k", "rate", "95% interval"], rows)]


def _money_section(report: dict[str, Any]) -> list[str]:
    rows = []
    for cur, m in report["money"]["by_currency"].items():
        delta = m["approved_volume_candidate_minor"] - m["approved_volume_legacy_minor"]
        rows.append([cur, _money(m["approved_volume_legacy_minor"], cur),
                     _money(m["approved_volume_candidate_minor"], cur), _money(delta, cur),
                     f"{_money(m['false_decline_minor'], cur)} ({m['false_decline_count']:,})",
                     f"{_money(m['fraud_let_through_minor'], cur)} ({m['fraud_let_through_count']:,})",
                     f"{_money(m['fraud_caught_minor'], cur)} ({m['fraud_caught_count']:,})",
                     _money(m["at_stake_minor"], cur)])
    return ["## Money", "", *_table(["currency", "approved (legacy)", "approved (candidate)",
                                     "gained / lost", "false declines", "fraud let through",
                                     "fraud caught", "at stake"], rows)]


def _latency(report: dict[str, Any]) -> list[str]:
    """Each latency figure with how it was measured: a batch's time per row is not a decision's."""
    rows = [[side, *("-" if v.get(q) is None else v[q] for q in ("p50", "p95", "p99")),
             v.get("how", "recorded per transaction") + (f" (n = {v['n']:,})" if "n" in v else "")]
            for side, v in report["latency_ms"].items()]
    return ["## Latency (ms)", "", *_table(["side", "p50", "p95", "p99", "measured as"], rows)]


def _segments(report: dict[str, Any]) -> list[str]:
    rows = [[s["dimension"], s["value"], f"{s['n']:,}", f"{s['mismatches']:,}", _pct(s["rate"])]
            for s in report["segments"]]
    return ["## Segments with the most mismatches", "",
            *_table(["dimension", "value", "n", "mismatches", "rate"], rows)]


def _drift(report: dict[str, Any]) -> list[str]:
    drift = report["drift"]
    reference = drift.get("reference", {})
    lines = ["## Drift", "", f"Reference: {reference.get('kind', 'none')} "
             f"({reference.get('from', '?')} to {reference.get('until', '?')}).", ""]
    lines += _table(["feature", "PSI", "status"],
                    [[f["name"], f"{f['psi']:.4f}", f["status"]] for f in drift["features"]])
    if drift.get("segments"):
        lines += _table(["merchant", "feature", "PSI", "status"],
                        [[s["value"], s["feature"], f"{s['psi']:.4f}", s["status"]]
                         for s in drift["segments"]])
    for column, values in drift.get("new_values", {}).items():
        lines.append(f"- new values of {column}: {', '.join(map(str, values))}")
    for spike in drift.get("null_spikes", []):
        lines.append(f"- null spike in {spike['column']}: {_pct(spike['train_null_rate'])} ->"
                     f" {_pct(spike['replay_null_rate'])}")
    return lines + [""]


#: Reason codes listed in report.md (report.json holds them all).
REASONS_SHOWN_MAX = 15


def _reasons(report: dict[str, Any]) -> list[str]:
    """The candidate's reason codes by frequency, each with its sentence; a feature that
    pushed the score without one is said to be exactly that (cutover.stack.reasons)."""
    counts = (report.get("reasons") or {}).get("counts") or {}
    if not counts:
        return []
    shown = list(counts.items())[:REASONS_SHOWN_MAX]
    try:
        texts = explain([code for code, _ in shown])
    except ConfigError:
        texts = [code for code, _ in shown]
    rows = [[code, f"{n:,}", text] for (code, n), text in zip(shown, texts, strict=True)]
    return ["## Reason codes of the candidate", "",
            "`model:` codes passed their sentence's check against the model's reference "
            "population (with the value, in `cutover diff show`); `pushed:` codes moved the "
            "score with no plain-language reason claimed.", "",
            *_table(["code", "times given", "meaning"], rows)]


def render_markdown(report: dict[str, Any], charts: list[str],
                    feed_chart: str | None = None) -> str:
    """The whole report.md text."""
    run = report["run"]
    head = [f"# Replay report {run.get('run_id', '')}", "",
            f"- candidate: `{run.get('candidate')}` (model {run.get('model_version')})",
            f"- legacy: {run.get('legacy_mode')}; rules sha256 {str(run.get('rules_sha256'))[:12]}",
            f"- started {run.get('started_at')}, finished {run.get('finished_at')}",
            f"- code version {run.get('code_version')}", ""]
    images = [f"![{Path(c).stem}]({c})" for c in charts]
    body = [*_counts(report), *_rates(report), *_money_section(report), *_latency(report),
            *_reasons(report),
            *images, "", *_segments(report), *_drift(report), *feed_lines(report, feed_chart)]
    return "\n".join(head + body) + "\n"


def write_markdown(run_dir: Path, report: dict[str, Any], name: str = "report.md") -> Path:
    """Draw the charts and write RUN_DIR/report.md (or ``name``, a later version's)."""
    # report.md's charts in charts/, report-2.md's in charts-2/: each version keeps its own.
    folder = CHARTS_DIR + name.removeprefix("report").removesuffix(".md")
    charts = [str(p.relative_to(run_dir)) for p in draw_all(run_dir, report, folder)]
    feed = draw_feed_chart(report, Path(run_dir) / folder)
    path = Path(run_dir) / name
    path.write_text(mask_pans(render_markdown(report, charts, str(feed.relative_to(run_dir))
                                              if feed else None)), encoding="utf-8")
    return path
