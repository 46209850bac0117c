"""The report's charts as PNG files: mismatch rate over time and by segment.

matplotlib runs headless (figures drawn straight on the Agg canvas, pyplot never imported)
because a replay runs in CI and over SSH. Each chart is drawn from report.json data only, so
``cutover report`` can redraw it without the diffs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final

CHARTS_DIR: Final = "charts"
DPI: Final = 90
SEGMENT_BARS_MAX: Final = 10


def _figure(width_in: float, height_in: float) -> Any:
    """A figure on the Agg canvas, without pyplot (whose import alone costs most of a second)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def timeline_chart(report: dict[str, Any], out: Path) -> Path | None:
    """Mismatch rate per timeline bucket; None when there is no timeline."""
    timeline = report.get("timeline") or []
    if not timeline:
        return None
    x = [datetime.fromisoformat(b["bucket_start"]) for b in timeline]
    y = [100.0 * b["mismatches"] / b["n"] if b["n"] else 0.0 for b in timeline]
    fig = _figure(8, 3)
    ax = fig.add_subplot()
    ax.plot(x, y, color="#c0392b", linewidth=1.2)
    ax.set_ylabel("mismatch rate (%)")
    ax.set_title("Mismatch rate over time (not-expected mismatches)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    # Fixed margins instead of tight_layout: the layout pass costs more than drawing.
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.25)
    fig.savefig(out, dpi=DPI)
    return out


def segment_chart(report: dict[str, Any], out: Path, dimension: str = "merchant_id") -> Path | None:
    """Horizontal bars of the segments of ``dimension`` with the most mismatches."""
    rows = [s for s in report.get("segments", []) if s["dimension"] == dimension][:SEGMENT_BARS_MAX]
    if not rows:
        return None
    labels = [str(r["value"]) for r in rows][::-1]
    rates = [100.0 * r["rate"] for r in rows][::-1]
    fig = _figure(8, 0.35 * len(rows) + 1.2)
    ax = fig.add_subplot()
    ax.barh(labels, rates, color="#2980b9")
    ax.set_xlabel("mismatch rate (%)")
    ax.set_title(f"Mismatch rate by {dimension} (top by mismatch count)")
    ax.grid(axis="x", alpha=0.3)
    fig.subplots_adjust(left=0.22, right=0.97, top=0.85, bottom=0.2)
    fig.savefig(out, dpi=DPI)
    return out


def draw_all(run_dir: Path, report: dict[str, Any], folder_name: str = CHARTS_DIR) -> list[Path]:
    """Draw every chart into RUN_DIR/charts (a later report version: its own folder, so the
    charts of an earlier report.md never change); return the files written."""
    folder = Path(run_dir) / folder_name
    folder.mkdir(exist_ok=True)
    drawn = [timeline_chart(report, folder / "mismatch_timeline.png"),
             segment_chart(report, folder / "mismatch_by_merchant.png")]
    return [p for p in drawn if p is not None]
