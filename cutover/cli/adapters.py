"""CLI commands of the adapters area: `cutover record` and `cutover import`.

Thin shells: parse options, call cutover.adapters, print data to stdout and diagnostics to
stderr. zeep, vcrpy and pyarrow are imported inside the commands so `cutover --help` is fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cutover.adapters.guards import CALL_DEADLINE_S
from cutover.adapters.tally import MAX_ERROR_RATE_DEFAULT
from cutover.errors import ConfigError, InputError

err = Console(stderr=True)


def _token_key() -> bytes:
    from cutover.adapters.tokenize import TOKEN_KEY_ENV, token_key
    try:
        return token_key()
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}. Set it first, e.g. `export {TOKEN_KEY_ENV}=$(openssl rand -hex 32)`, and keep"
            " the same key for every recording and import so tokens join across sources") from exc


def _read_requests(path: Path) -> list[dict[str, Any]]:
    txns = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read requests (JSON lines, UTF-8): {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                txns.append(json.loads(line))
            except ValueError as exc:
                raise InputError(f"{path}:{number}: not a JSON object: {exc}") from exc
    return txns


def _store_sample(store: Path, rows_max: int) -> list[dict[str, Any]]:
    """The first ``rows_max`` transactions of a traffic store, as canonical dicts."""
    from cutover.store.traffic import iter_batches

    txns: list[dict[str, Any]] = []
    for batch in iter_batches(store, batch_rows=rows_max):
        txns += batch.slice(0, rows_max - len(txns)).to_pylist()
        if len(txns) >= rows_max:
            break
    return txns


def record(
    mapping: Path = typer.Option(..., "--mapping", help="Mapping TOML (cutover/fixtures/mappings/*.toml):"
                                 " which operation, which element carries which field."),
    out: Path = typer.Option(..., "--out", help="Cassette to write (YAML). Card numbers in it are"
                             " replaced by keyed HMAC tokens before anything is written."),
    wsdl: str = typer.Option(None, "--wsdl", help="WSDL URL or path; defaults to the mapping's."),
    requests_file: Path = typer.Option(None, "--requests", help="JSON lines of canonical"
                                       " transactions to send (a 'pan' field goes on the wire)."),
    demo_sample: int = typer.Option(None, "--demo-sample", min=1, help="Instead of --requests,"
                                    " send the first N transactions of --store (as tokens)."),
    store: Path = typer.Option(None, "--store", help="Traffic store for --demo-sample."),
    address: str = typer.Option(None, "--address", help="Endpoint URL overriding the WSDL's."),
    max_error_rate: float = typer.Option(
        MAX_ERROR_RATE_DEFAULT, "--max-error-rate", min=0.0, max=1.0,
        help="Largest share of failed calls (timeouts, refusals, faults, bad XML ...) the"
             " recording accepts; past it record stops, writes no cassette and exits 3."),
    deadline_s: float = typer.Option(
        CALL_DEADLINE_S, "--deadline-s", min=0.001, max=3600.0,
        help="Total seconds one call may take: connect, headers, body and retries."),
    errors_file: Path = typer.Option(None, "--errors", help="JSON lines of every failed call,"
                                     " each with its reason and message (default: the"
                                     " cassette's name with .errors.jsonl)."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome counts as JSON."),
) -> None:
    """Call the legacy core for each request and record a PAN-free vcrpy cassette.

    Needs CUTOVER_TOKEN_KEY (refuses to start without it). Each call has one total deadline
    and a reply size cap; a failed call is an error outcome with its reason. Exit 3 when the
    failed calls pass --max-error-rate (default 0.05), printing each kind of failure with its
    count and first message. Example:
    cutover record --mapping cutover/fixtures/mappings/legacy_auth.toml
    --requests cutover/fixtures/requests/sample.jsonl --out runs/c.yaml
    """
    from rich.progress import Progress

    from cutover.adapters.cassette import record_calls
    from cutover.adapters.soap import SoapOptions
    from cutover.adapters.tally import ErrorTally
    from cutover.paths import output_file

    key = _token_key()
    if out.is_dir():
        raise InputError(f"--out {out}: is a directory; give the cassette file to write")
    output_file(out, "--out")
    if requests_file is not None:
        txns = _read_requests(requests_file)
    elif demo_sample and store is not None:
        txns = _store_sample(store, demo_sample)
    else:
        raise InputError("give --requests FILE.jsonl, or --demo-sample N with --store STORE")
    tally = ErrorTally(len(txns), max_error_rate)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("recording", total=len(txns))
        outcomes = record_calls(mapping, txns, out, key, wsdl=wsdl,
                                options=SoapOptions(address=address, deadline_s=deadline_s),
                                progress=lambda: progress.advance(task), stop=tally.add)
    outcome_errors(outcomes, errors_file or out.with_suffix(".errors.jsonl"))
    _report_failures(tally, len(txns), out)
    by_decision: dict[str, int] = {}
    for outcome in outcomes:
        by_decision[outcome["legacy_decision"]] = by_decision.get(outcome["legacy_decision"], 0) + 1
    if as_json:
        typer.echo(json.dumps({"cassette": str(out), "calls": len(outcomes),
                               "by_decision": by_decision, "failed_calls": tally.by_reason}))
    else:
        typer.echo(f"recorded {len(outcomes)} calls to {out} · " +
                   " · ".join(f"{k} {v}" for k, v in sorted(by_decision.items())))


def outcome_errors(outcomes: list[dict[str, Any]], path: Path) -> Any:
    """Write every failed call (kind: legacy_reason; message: the cause verbatim) as JSON lines
    to ``path``; return the ErrorLog."""
    from cutover.adapters.tally import is_call_failure
    from cutover.adapters.tokenize import mask_pans
    from cutover.store.errorlog import ErrorLog

    log = ErrorLog(path, scrub=mask_pans)
    for outcome in outcomes:
        if is_call_failure(outcome):
            log.add(str(outcome.get("legacy_reason")),
                    str(outcome.get("detail") or outcome.get("legacy_reason")),
                    txn_id=outcome.get("txn_id"))
    log.close()
    return log


def _report_failures(tally: Any, planned: int, out: Path) -> None:
    """Print each kind of failed call (count, first message verbatim); exit 3 past the limit."""
    from cutover.errors import LegacyUnavailable

    for line in tally.lines():
        err.print(f"failed calls: {line}", highlight=False, markup=False, soft_wrap=True)
    if tally.crossed():
        raise LegacyUnavailable(
            f"{tally.errors} of {tally.calls} calls failed (stopped after {tally.calls} of"
            f" {planned}), over --max-error-rate {tally.max_error_rate:g}; no cassette written"
            f" to {out}")
    if tally.calls and tally.errors == tally.calls:
        # Nothing was recorded: a run that did nothing useful must not exit 0.
        raise LegacyUnavailable(f"all {tally.calls} calls failed; no cassette written to {out}")


def import_(
    sources: list[Path] = typer.Argument(..., help="Files to import: cassettes (.yaml), batch"
                                         " files (a --layout), CSV or JSON lines (a --mapping)."),
    into: Path = typer.Option(..., "--into", help="Traffic store directory (Parquet, by day)."),
    layout: str = typer.Option(None, "--layout", help="Layout name or TOML path for batch files"
                               " (default legacy_authlog)."),
    mapping: Path = typer.Option(None, "--mapping", help="Column mapping TOML for CSV/JSONL"
                                 " (cutover/fixtures/mappings/partner_export.toml shows the format), or"
                                 " the SOAP mapping for cassettes."),
    fmt: str = typer.Option("auto", "--format", help="auto | cassette | layout | csv | jsonl |"
                            " iso20022 (pain.001, pacs.008) | iso8583; auto goes by the file"
                            " name (.xml is iso20022, .iso8583 an ISO 8583 log)."),
    switch: str = typer.Option("ascii_switch", "--switch", help="ISO 8583 switch spec: a"
                               " built-in (ascii_switch, binary_switch) or a TOML path."),
    year: int = typer.Option(None, "--year", help="Year of an ISO 8583 log's field 7"
                             " (MMDDhhmmss); default the current UTC year."),
    max_quarantine_rate: float = typer.Option(0.5, "--max-quarantine-rate", help="Share of"
                                              " records that may be quarantined before the"
                                              " command exits 1 (default 0.5: a wrong mapping"
                                              " quarantines nearly every row)."),
    as_json: bool = typer.Option(False, "--json", help="Print per-source counts as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Import records into the traffic store: duplicates kept out, bad rows quarantined.

    Every record read is imported, a duplicate (txn_id seen in the input or the store), or
    quarantined to STORE/_quarantine/<source>.jsonl with file, line, field and reason.
    Re-importing a file imports nothing. A PAN column is tokenised (needs CUTOVER_TOKEN_KEY).
    Quarantine reasons are counted by field with the first of each printed word for word;
    exit 1 when every record, or more than --max-quarantine-rate of them, was quarantined.
    """
    from rich.progress import Progress

    from cutover.adapters.sources import ImportCounts, detect_format, import_source
    from cutover.paths import output_dir

    output_dir(into, "--into", create=False)
    from cutover.store.errorlog import check_rate_option

    check_rate_option(max_quarantine_rate)
    results: list[ImportCounts] = []
    with Progress(console=err, transient=True, disable=quiet) as progress:
        task = progress.add_task("importing", total=len(sources))
        for source in sources:
            if not source.is_file():
                raise InputError(f"{source}: no such file")
            kind = detect_format(source) if fmt == "auto" else fmt
            columns, key = _columns_and_key(mapping, kind)
            key = _token_key() if kind == "iso8583" else key
            results.append(import_source(source, into, fmt=kind, layout=layout, columns=columns,
                                         soap_mapping=mapping, key=key, switch=switch,
                                         year=year))
            progress.advance(task)
    total = ImportCounts("total")
    for counts in results:
        for name in ("read", "imported", "duplicates", "quarantined"):
            setattr(total, name, getattr(total, name) + getattr(counts, name))
        for code, rows in counts.unknown_codes.items():
            total.unknown_codes[code] = total.unknown_codes.get(code, 0) + rows
    total.check()
    if as_json:
        typer.echo(json.dumps({"sources": [c.as_dict() for c in results],
                               "total": total.as_dict()}))
    else:
        typer.echo(f"read {total.read} · imported {total.imported} · duplicates "
                   f"{total.duplicates} · quarantined {total.quarantined}")
    if total.unknown_codes:
        shown = ", ".join(f"{code or '(empty)'} x{rows}" for code, rows in
                          sorted(total.unknown_codes.items()))
        err.print(f"unknown legacy codes: {shown}; imported with reason unknown_code. Add them "
                  "to the code table (cutover/fixtures/codes/legacy_codes.toml or the mapping's "
                  "code_table) and re-import into a new store to classify them", highlight=False,
                  markup=False)
    _check_quarantine(into, sources, total, max_quarantine_rate)


def _check_quarantine(into: Path, sources: list[Path], total: Any, rate_max: float) -> None:
    """Print quarantine reasons by field (first of each verbatim); exit 1 when all or too
    many records were quarantined."""
    from cutover.adapters.importer import quarantine_path
    from cutover.errors import ErrorRateExceeded
    from cutover.store.errorlog import ErrorLog

    if not total.quarantined:
        return
    log = ErrorLog()
    for source in sources:
        path = quarantine_path(into, source)
        if path.is_file():
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    log.add(row.get("field") or "record",
                            f"{row.get('file')}:{row.get('line')}: {row.get('reason')}")
    lines = log.summary(total.read, "records")
    lines[0] = f"{total.quarantined} of {total.read} records quarantined to {into}/_quarantine/"
    for line in lines:
        err.print(line, highlight=False, markup=False)
    if total.quarantined >= total.read or total.quarantined / total.read > rate_max:
        raise ErrorRateExceeded(
            f"{total.quarantined} of {total.read} records quarantined, above"
            f" --max-quarantine-rate {rate_max:.1%}; first reason: "
            f"{next(iter(log.first.values()), '?')}")


def _columns_and_key(mapping: Path | None, kind: str) -> tuple[Any, bytes | None]:
    if kind not in ("csv", "jsonl") or mapping is None:
        # A batch file's or cassette's card field is tokenised when a key is set; without
        # one a card number found there quarantines its record (never stored in clear).
        import os

        from cutover.adapters.tokenize import TOKEN_KEY_ENV
        return None, (_token_key() if os.environ.get(TOKEN_KEY_ENV) else None)
    from cutover.adapters.columns import load_columns
    columns = load_columns(mapping)
    key = _token_key() if "pan" in columns.columns.values() else None
    return columns, key


def register(app: typer.Typer) -> None:
    """Add this area's commands and groups to the root app."""
    app.command("record")(record)
    app.command("import")(import_)
