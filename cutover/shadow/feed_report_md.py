"""The feed-health part of report.md: a table of findings and a chart, from report.json alone.

Kept apart from ``report_md`` so the replay report's other sections and this one change
independently; ``report_md.write_markdown`` appends what ``feed_lines`` returns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

from cutover.shadow.charts import DPI, _figure

FINDINGS_SHOWN: Final = 25
CHART_BARS_MAX: Final = 12
CHART_NAME: Final = "feed_health.png"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def feed_chart(report: dict[str, Any], folder: Path) -> Path | None:
    """Bars of -log10(q) of the strongest judged findings, labelled field @ segment (metric)."""
    rows = [f for f in (report.get("feed_health") or {}).get("findings", [])
            if f.get("gated", True)][:CHART_BARS_MAX]
    if not rows:
        return None
    labels = [f"{f['field']} @ {f['dimension']}={f['segment']} ({f['metric']})"[:60]
              for f in rows][::-1]
    strength = [min(-math.log10(max(float(f["q"]), 1e-300)), 300.0) for f in rows][::-1]
    fig = _figure(11, 0.35 * len(rows) + 1.3)
    ax = fig.add_subplot()
    ax.barh(labels, strength, color="#8e44ad")
    ax.axvline(2.0, color="#c0392b", linewidth=1, linestyle="--")
    ax.set_xlabel("-log10(q)  (dashed: q = 0.01)")
    ax.set_title("Feed health: strongest findings (field @ segment)")
    ax.grid(axis="x", alpha=0.3)
    fig.subplots_adjust(left=0.5, right=0.97, top=0.85, bottom=0.25)
    out = Path(folder) / CHART_NAME
    fig.savefig(out, dpi=DPI)
    return out


def feed_lines(report: dict[str, Any], chart: str | None) -> list[str]:
    """The "Feed health" section: reference, counts, chart and the findings table."""
    section = report.get("feed_health") or {}
    findings = section.get("findings", [])
    reference = section.get("reference", {})
    lines = ["## Feed health", ""]
    if section.get("note"):
        return lines + [section["note"], ""]
    lines += [f"Reference: {reference.get('kind', 'none')} ({reference.get('from', '?')} to "
              f"{reference.get('until', '?')}); {len(findings)} findings at q <= "
              f"{section.get('fdr', '?')} (Benjamini-Hochberg over every segment and field); "
              f"a finding seen in fewer than {section.get('spread_hours_min', '?')} distinct "
              "hours is a burst and is not gated.", ""]
    if not findings:
        return lines + ["No field changed in any segment.", ""]
    if chart:
        lines += [f"![feed health]({chart})", ""]
    header = ["field", "segment", "metric", "before", "after", "rows", "first seen", "q", "gated"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for f in findings[:FINDINGS_SHOWN]:
        segment = f"{f['dimension']}={f['segment']}" if f["dimension"] != "all" else "all rows"
        lines.append("| " + " | ".join(_cell(c) for c in (
            f["field"], segment, f["metric"], f["before"], f["after"],
            f"{f['rows_affected']:,} of {f['rows_replay']:,}", f.get("first_seen") or "-",
            f"{float(f['q']):.2g}", "yes" if f.get("gated", True) else "no (burst)")) + " |")
    if len(findings) > FINDINGS_SHOWN:
        lines.append(f"\n{len(findings) - FINDINGS_SHOWN} more in report.json.")
    return lines + [""]
