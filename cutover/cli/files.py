"""CLI group `cutover files`: look inside batch files through their layouts.

`layouts` lists the built-in layouts; `inspect` reads a file, prints its records and the
control-total checks, and exits 1 when a total fails or a line was rejected, so a script can
refuse a bad file before importing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

files_app = typer.Typer(help="Read batch files (NACHA, legacy end-of-day logs) through layouts.",
                        no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)

#: Records printed per record type unless --limit says otherwise (a table, not a dump).
INSPECT_LIMIT_DEFAULT = 20


def register(app: typer.Typer) -> None:
    """Mount `cutover files` on the root app."""
    app.add_typer(files_app, name="files")


@files_app.command("layouts")
def layouts(as_json: bool = typer.Option(False, "--json", help="Print JSON lines, one layout each.")
            ) -> None:
    """List the built-in layouts (name and what they describe); use a name with --layout."""
    from cutover.adapters.files import builtin_layouts

    rows = builtin_layouts()
    if as_json:
        for name, description in rows:
            typer.echo(json.dumps({"name": name, "description": description}))
        return
    from rich.table import Table

    table = Table("layout", "description")
    for name, description in rows:
        table.add_row(name, description)
    out.print(table)


def _jsonable(value: object) -> object:
    """Dates as ISO text; text with a card number in it (an SHR entry's card account) masked."""
    from cutover.adapters.tokenize import mask_pans

    if isinstance(value, str):
        return mask_pans(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


@files_app.command("inspect")
def inspect(
    file: Path = typer.Argument(..., help="The batch file to read."),
    layout: str = typer.Option(..., "--layout", "-l",
                               help="Built-in layout name (see `cutover files layouts`) or a"
                                    " path to a layout TOML."),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print one JSON object per record (with record_type and"
                                      " _line), then one per control check."),
    limit: int = typer.Option(INSPECT_LIMIT_DEFAULT, "--limit", min=0, max=10_000_000,
                              help="Records shown per record type (0 = all)."),
    rejects: Path | None = typer.Option(None, "--rejects",
                                        help="Write rejected lines here as JSON lines (card"
                                             " numbers masked)."),
    level: str = typer.Option("all", "--level",
                              help="Which checks decide the exit code: layout (fields of each"
                                   " line), structure (record order, counts, hashes, totals),"
                                   " semantic (code tables), or all."),
) -> None:
    """Print a file's records, control totals and findings; exit 1 when a chosen level fails."""
    from cutover.adapters.files import FileReader, load_layout
    from cutover.adapters.files.findings import LEVELS
    from cutover.errors import InputError

    if level != "all" and level not in LEVELS:
        raise InputError(f"--level {level!r}: allowed values are all, {', '.join(LEVELS)}")
    levels = LEVELS if level == "all" else (level,)

    reader = FileReader(file, load_layout(layout), rejects_path=rejects)
    shown: dict[str, list[dict]] = {}
    for record_type, batch in reader.batches():
        kept = shown.setdefault(record_type, [])
        room = (limit - len(kept)) if limit else batch.num_rows
        if room > 0:
            kept.extend(batch.slice(0, room).to_pylist())
    report = reader.report
    if as_json:
        _print_json(shown, report)
    else:
        _print_tables(shown, report)
    _finish(file, report, reader, levels)


def _print_json(shown: dict[str, list[dict]], report: object) -> None:
    for record_type, rows in shown.items():
        for row in rows:
            typer.echo(json.dumps({"record_type": record_type,
                                   **{k: _jsonable(v) for k, v in row.items()}}))
    for check in report.checks:
        typer.echo(json.dumps({"control": check.name, "scope": check.scope,
                               "expected": check.expected, "actual": check.actual,
                               "ok": check.ok}))
    for finding in report.findings:
        typer.echo(json.dumps({"finding": finding.message, **finding.as_dict()}))


def _print_tables(shown: dict[str, list[dict]], report: object) -> None:
    from rich.table import Table

    for record_type, rows in shown.items():
        if not rows:
            continue
        title = f"{record_type} ({report.by_type.get(record_type, 0)} records)"
        table = Table(*rows[0].keys(), title=title)
        for row in rows:
            table.add_row(*("" if v is None else str(_jsonable(v)) for v in row.values()))
        out.print(table)
    checks = Table("control", "scope", "expected", "actual", "ok", title="control totals")
    for c in report.checks:
        checks.add_row(c.name, c.scope, str(c.expected), str(c.actual), "ok" if c.ok else "FAIL")
    out.print(checks)


def _finish(file: Path, report: object, reader: object, levels: tuple[str, ...]) -> None:
    from cutover.errors import CheckFailed

    for entry in report.reject_sample:
        where = ", ".join(p for p in (
            f"record type {entry['record_type_code']}" if entry.get("record_type_code") else "",
            entry["record_type"] or "", f"field {entry['field']}" if entry["field"] else "",
            f"positions {entry['positions']}" if entry.get("positions") else "") if p)
        err.print(f"  rejected line {entry['line']} ({where}): {entry['reason']}",
                  highlight=False)
    for finding in report.findings:
        err.print(f"  {finding.describe()}", highlight=False)
    verdicts = _verdicts(report)
    err.print(f"{file}: {report.read} lines read, {report.rejected} rejected,"
              f" {sum(c.ok for c in report.checks)}/{len(report.checks)} control totals ok; "
              + ", ".join(f"{lvl} {'ok' if not why else 'invalid: ' + why}"
                          for lvl, why in verdicts.items()), highlight=False)
    failing = {lvl: why for lvl, why in verdicts.items() if why and lvl in levels}
    if "structure" in failing and any(not c.ok for c in report.checks):
        reader.raise_for_controls()
    if failing:
        raise CheckFailed(f"{file}: " + "; ".join(f"{lvl} invalid: {why}"
                                                   for lvl, why in failing.items()))


def _verdicts(report: object) -> dict[str, str]:
    """Per level, "" when it passed or the first reason it did not (for the summary line)."""
    from cutover.adapters.files.findings import LEVELS

    out = {lvl: "" for lvl in LEVELS}
    if report.rejected:
        first = report.reject_sample[0]
        out["layout"] = (f"{report.rejected} line(s) rejected (first at line {first['line']}:"
                         f" {first['reason']})")
    failing = [c for c in report.checks if not c.ok]
    if failing:
        out["structure"] = f"control total {failing[0].name} in {failing[0].scope}"
    for finding in report.findings:
        if finding.severity == "error" and not out[finding.level]:
            out[finding.level] = finding.message
    return out
