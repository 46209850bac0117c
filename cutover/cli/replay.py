"""CLI commands of the replay area: `cutover replay | report | explain | calibrate | diff show`.

Thin: each command parses options, calls cutover.replay / cutover.shadow, and prints. Data
goes to stdout (tables, or one JSON object with --json); the progress bar and diagnostics go
to stderr. pyarrow, matplotlib and zeep are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cutover.cli.diff_list import diff_list_cmd

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
diff_app = typer.Typer(help="Look into a replay's diffs: list them with filters, show one.",
                       no_args_is_help=True)

JSON_HELP = "Print one JSON object on stdout instead of tables."
#: Where a replay against a live core writes every failed call (JSON lines).
LEGACY_ERRORS_FILE = "legacy_errors.jsonl"
RUN_DIR_HELP = "A replay run directory (written by `cutover replay`)."


def register(app: typer.Typer) -> None:
    """Add this area's commands and groups to the root app."""
    app.command("replay")(replay_cmd)
    app.command("report")(report_cmd)
    app.command("explain")(explain_cmd)
    app.command("calibrate")(calibrate_cmd)
    diff_app.command("show")(explain_cmd)
    diff_app.command("list")(diff_list_cmd)
    app.add_typer(diff_app, name="diff")


def _pairs(values: list[str], option: str) -> dict[str, str]:
    from cutover.errors import InputError
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {item!r}: expected key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _legacy_options(wsdl: str | None, mapping: Path | None, cassette: Path | None,
                    extra: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = _pairs(extra, "--legacy-opt")
    for key, value in (("wsdl", wsdl), ("mapping", mapping), ("cassette", cassette)):
        if value is not None:
            options[key] = str(value)
    from cutover.replay.legacy_side import coerce_legacy_options
    coerce_legacy_options(options)  # refuse a bad option before any model or store is read
    return options


def _category_table(by_category: dict[str, int], rows_in: int) -> Table:
    table = Table("category", "rows", "share", title="diff categories")
    for category, count in by_category.items():
        share = f"{100.0 * count / rows_in:.2f}%" if rows_in else "-"
        table.add_row(category, f"{count:,}", share)
    return table


def replay_cmd(
    store: Path = typer.Argument(..., help="The traffic store (STORE/day=YYYY-MM-DD/*.parquet)."),
    run_dir: Path = typer.Option(..., "--out", help="The run directory to write."),
    candidate: str = typer.Option("cutover.stack:default_stack", "--candidate",
                                  help="module:attr of the candidate stack or its factory, or"
                                       " http://HOST:PORT of a service (cutover serve)."),
    candidate_opt: list[str] = typer.Option([], "--candidate-opt",
                                            help="key=value passed to the candidate factory;"
                                                 " repeat for more."),
    legacy: str = typer.Option("recorded", "--legacy", help="recorded | soap | cassette."),
    wsdl: str | None = typer.Option(None, "--wsdl", help="WSDL URL of the live legacy core."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Field mapping (soap, cassette)."),
    cassette: Path | None = typer.Option(None, "--cassette", help="vcrpy cassette (cassette)."),
    legacy_opt: list[str] = typer.Option([], "--legacy-opt",
                                         help="key=value for the legacy adapter, e.g."
                                              " calls_per_s=200."),
    rules: Path | None = typer.Option(None, "--rules", help="Diff rules TOML (default: shipped)."),
    since: str | None = typer.Option(None, "--since", help="From this UTC date/datetime."),
    until: str | None = typer.Option(None, "--until", help="Before this UTC date/datetime."),
    merchant: str | None = typer.Option(None, "--merchant", help="Only this merchant_id."),
    sample: float | None = typer.Option(None, "--sample", help="Fraction of txns, by txn_id hash."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many rows."),
    resume: bool = typer.Option(False, "--resume", help="Continue after the last committed batch."),
    force: bool = typer.Option(False, "--force", help="Replace a run directory that is not empty."),
    batch_rows: int = typer.Option(65_536, "--batch-rows", min=1, help="Rows per batch."),
    engine: str = typer.Option("local", "--engine", help="local | ray (needs the ray extra, docs/ray.md)."),
    address: str | None = typer.Option(None, "--address",
                                       help="Ray cluster address (--engine ray; default:"
                                            " $RAY_ADDRESS, else a local Ray instance)."),
    workers: int | None = typer.Option(None, "--workers", min=1, max=4_096,
                                       help="Ray workers (--engine ray; default: every CPU of"
                                            " the cluster)."),
    max_error_rate: float = typer.Option(0.05, "--max-error-rate", help="With --legacy soap or"
                                         " cassette: share of calls that may fail before the"
                                         " command exits 1 (default 0.05)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Replay recorded traffic through the legacy side and a candidate; diff; report.

    Exit 0 when done, 2 for bad input, a non-empty RUN_DIR without --resume or --force, or
    --engine ray without Ray installed; 4 if conservation breaks (a row missing or counted twice).
    Against a live core (--legacy soap) every failed call is written to
    RUN_DIR/legacy_errors.jsonl and the first of each kind is printed word for word; the
    command exits 3 when every call failed and 1 when more than --max-error-rate did.
    """
    from cutover.errors import InputError, InvariantBroken
    from cutover.paths import output_dir
    from cutover.replay import engine as local_engine
    from cutover.replay.options import ReplayOptions
    output_dir(run_dir, "--out", create=False)
    if engine not in ("local", "ray"):
        raise InputError(f"--engine {engine!r}: expected local or ray")
    if engine == "local" and (address is not None or workers is not None):
        raise InputError("--address and --workers apply to --engine ray only")
    run: Any = local_engine.run_replay
    if engine == "ray":
        from functools import partial

        from cutover.replay.ray_engine import import_ray, run_replay_ray
        import_ray()  # exit 2 with the install hint before anything else happens
        run = partial(run_replay_ray, address=address, workers=workers)
    from cutover.store.errorlog import check_rate_option
    check_rate_option(max_error_rate)
    legacy_options = _legacy_options(wsdl, mapping, cassette, legacy_opt)
    if legacy != "recorded":
        legacy_options.setdefault("errors_file", str(run_dir / LEGACY_ERRORS_FILE))
    options = ReplayOptions(
        candidate=candidate, candidate_options=_pairs(candidate_opt, "--candidate-opt"),
        legacy=legacy, legacy_options=legacy_options,
        since=since, until=until, merchant=merchant, sample=sample, limit=limit, resume=resume,
        force=force, rules=rules, batch_rows=batch_rows)
    with _progress(quiet or as_json) as on_progress:
        summary = run(store, run_dir, options, on_progress=on_progress)
    _print_summary(summary, as_json)
    if not summary.conservation_ok:
        raise InvariantBroken(f"conservation broken: {summary.rows_in:,} rows in, "
                              f"{sum(summary.by_category.values()):,} categorised")
    if legacy != "recorded" and not summary.already_finished:
        _check_legacy_errors(Path(legacy_options["errors_file"]), summary.rows_in,
                             max_error_rate)


def _check_legacy_errors(path: Path, calls: int, max_error_rate: float) -> None:
    """Print the live core's failures by kind (first of each verbatim); exit non-zero when
    all or too many calls failed."""
    from cutover.store.errorlog import read_error_file
    log = read_error_file(path)
    for line in log.summary(calls):
        err.print(line, markup=False)
    log.check(calls, max_error_rate)


def _progress(disabled: bool) -> Any:
    from contextlib import contextmanager

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    @contextmanager
    def bar() -> Any:
        columns = [TextColumn("replay"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:>10} txn/s"), TimeElapsedColumn(),
                   TimeRemainingColumn()]
        with Progress(*columns, console=err, disable=disabled, transient=True) as progress:
            task = progress.add_task("replay", total=None, rate="-")

            def update(done: int, total: int | None) -> None:
                elapsed = progress.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:,.0f}" if elapsed > 0 else "-"
                progress.update(task, completed=done, total=total, rate=rate)
            yield update
    return bar()


def _print_summary(summary: Any, as_json: bool) -> None:
    total = sum(summary.by_category.values())
    payload = {"run_dir": str(summary.run_dir), "rows_in": summary.rows_in,
               "categorised": total, "conservation_ok": summary.conservation_ok,
               "by_category": summary.by_category,
               "expected_by_category": summary.expected_by_category,
               "mismatches": summary.mismatches, "batches": summary.batches,
               "resumed_from_batch": summary.resumed_from_batch,
               "already_finished": summary.already_finished,
               "seconds": round(summary.seconds, 3), "rows_per_s": round(summary.rows_per_s),
               "timings_s": summary.timings_s}
    if as_json:
        typer.echo(json.dumps(payload, indent=2, sort_keys=True))
        return
    if summary.already_finished:
        out.print(f"{summary.run_dir} is already finished; nothing changed.")
    verdict = "[green]holds[/]" if summary.conservation_ok else "[bold red]BROKEN[/]"
    out.print(f"conservation {verdict}: {summary.rows_in:,} in = {total:,} categorised")
    out.print(_category_table(summary.by_category, summary.rows_in))
    if not summary.already_finished:
        out.print(f"{summary.batches} batches in {summary.seconds:.2f} s"
                  f" ({summary.rows_per_s:,.0f} txn/s end to end); report: "
                  f"{summary.run_dir / 'report.md'}")


def report_cmd(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print report.json on stdout."),
) -> None:
    """Rebuild report.json and report.md of RUN_DIR from its diffs, and print the summary."""
    from cutover.shadow.report import report_path, write_reports
    report = write_reports(run_dir)
    path = report_path(run_dir, report["run"]["report_version_of_run"])
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    counts = report["counts"]
    verdict = "holds" if counts["conservation_ok"] else "BROKEN"
    # Earlier versions stay as they were: a plan may hold their sha256 as evidence.
    out.print(f"conservation {verdict}: {counts['in']:,} in; report: {path} and "
              f"{path.with_suffix('.md')} (earlier versions unchanged)")
    for table in report_tables(report):
        out.print(table)


def report_tables(report: dict[str, Any]) -> list[Table]:
    """The report summary people read first: categories, then rates with their intervals."""
    counts = report["counts"]
    rates = Table("category", "k (not expected)", "rate", "95% interval", title="rates")
    for category, r in report["rates"].items():
        rates.add_row(category, f"{r['k']:,}", f"{100 * r['rate']:.3f}%",
                      f"{100 * r['lo']:.3f}% – {100 * r['hi']:.3f}%")
    return [_category_table(counts["by_category"], counts["in"]), rates]


def explain_cmd(
    run_dir: Path = typer.Argument(..., help=RUN_DIR_HELP),
    txn_id: str = typer.Argument(..., help="The transaction to explain."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One transaction side by side: legacy and candidate outcome, the deepdiff, reason codes
    (`cutover explain` and `cutover diff show` are the same command)."""
    from cutover.cli.explain_view import render_tree
    from cutover.shadow.drilldown import explain
    result = explain(run_dir, txn_id)
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    out.print(render_tree(result))


def calibrate_cmd(
    wsdl: str = typer.Option(..., "--wsdl", help="WSDL URL of the live legacy core."),
    mapping: Path = typer.Option(..., "--mapping", help="Field mapping of the core."),
    store: Path = typer.Option(..., "--store", help="Traffic store to draw requests from."),
    sample: int = typer.Option(200, "--sample", min=1, max=100_000, help="Requests to send twice."),
    rules_out: Path = typer.Option(..., "--out", help="Rules TOML to write."),
    base: Path | None = typer.Option(None, "--base", help="Rules file to start from (default:"
                                                          " the shipped rules)."),
    address: str | None = typer.Option(None, "--address", help="Endpoint URL overriding the"
                                                               " WSDL's."),
    errors_file: Path | None = typer.Option(None, "--errors", help="JSON lines of every failed"
                                            " call (default: next to --out, .errors.jsonl)."),
    max_error_rate: float = typer.Option(0.05, "--max-error-rate", help="Share of calls that"
                                         " may fail before calibration refuses (default 0.05)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Send sampled requests twice to the live core; compare every element of the two replies;
    write the canonical fields of the volatile elements as ignores.

    Exit 3 when every call failed, 1 when more than --max-error-rate failed (nothing is
    written then); the first error of each kind is printed word for word.
    """
    from cutover.adapters.tokenize import mask_pans
    from cutover.shadow.calibrate import calibrate, write_calibrated_rules
    from cutover.store.errorlog import ErrorLog, check_rate_option
    check_rate_option(max_error_rate)
    result = calibrate(wsdl, mapping, store, sample, address=address)
    log = ErrorLog(errors_file or rules_out.with_suffix(".errors.jsonl"), scrub=mask_pans)
    for kind, message, _ in result.errors:
        log.add(kind, message)
    log.close()
    calls = 2 * (result.pairs + result.failed_pairs)
    for line in log.summary(calls):
        err.print(line, markup=False)
    log.check(calls, max_error_rate)
    write_calibrated_rules(result, rules_out, base)
    if as_json:
        typer.echo(json.dumps(result.as_dict() | {"errors": log.as_dict(calls)}, indent=2,
                              sort_keys=True))
        return
    table = Table("element", "field", "pairs differing", "of pairs", "example",
                  title="volatile reply elements")
    for ev in result.evidence:
        table.add_row(ev["element"], ev["field"], f"{ev['pairs_differing']:,}",
                      f"{ev['pairs']:,}", " / ".join(map(str, ev["example"])))
    out.print(table)
    out.print(f"{len(result.evidence)} volatile elements; fields {', '.join(result.fields) or '-'}"
              f" written as ignore rules to {rules_out}")
