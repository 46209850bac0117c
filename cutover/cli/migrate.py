"""CLI commands of the migrate area: `cutover gate` and the `cutover plan` group.

Thin shell: read files and the state database, call the pure gate and plan logic in
cutover.migrate, print. Data goes to stdout, diagnostics to stderr. sqlalchemy and pyarrow are
imported inside commands so `cutover --help` stays fast.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path
from typing import Any, Final

import typer
from rich.console import Console
from rich.table import Table

from cutover.errors import GateFailed, GateInputError, PlanError

DB_ENV: Final = "CUTOVER_PLAN_DB"
DEFAULT_DB: Final = "sqlite:///cutover-plan.db"
REPORT_BYTES_MAX: Final = 256 * 1024 * 1024
#: Width of tables written to a pipe or file: rich's 80-column default would wrap check names.
PIPE_WIDTH_COLUMNS: Final = 160

out = Console(highlight=False, soft_wrap=True)
if not out.is_terminal:
    out = Console(highlight=False, soft_wrap=True, width=PIPE_WIDTH_COLUMNS)
err = Console(stderr=True, highlight=False, soft_wrap=True)
plan_app = typer.Typer(help="Phase a cutover: init a plan, approve, advance on evidence, roll "
                            "back, and route traffic by the current phase's cohort.",
                       no_args_is_help=True)

DB_OPT = typer.Option(None, "--db", envvar=DB_ENV, show_envvar=True,
                      help=f"SQLAlchemy URL of the plan state (default {DEFAULT_DB} in the "
                           "current folder; a postgresql+psycopg:// URL works too).")
JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")
AS_OPT = typer.Option(..., "--as", help="Who is doing this; recorded in the history.")


def _read_report(path: Path) -> tuple[dict[str, Any], str]:
    """The report as a dict and the sha256 of its bytes; GateInputError naming the file."""
    try:
        if path.stat().st_size > REPORT_BYTES_MAX:
            raise GateInputError(f"{path}: report is larger than {REPORT_BYTES_MAX:,} bytes")
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise GateInputError(f"{path}: report file not found") from exc
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read report: {exc.strerror}") from exc
    def refuse(constant: str) -> None:
        # NaN and Infinity are not JSON; a report holding them was not written by cutover.
        raise GateInputError(f"{path}: report holds {constant}, which is not a number to judge")

    try:
        report = json.loads(raw, parse_constant=refuse)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{path}: report is not valid JSON: {exc}") from exc
    return report, hashlib.sha256(raw).hexdigest()


def _print_checks(result: Any) -> None:
    out.print(checks_table(result))


def checks_table(result: Any) -> Table:
    """The gate's checks as a table, for `cutover gate` and the demo's summary; the caption
    names what was judged."""
    e = result.evidence
    caption = (f"report {e.get('report')} sha256 {str(e.get('report_sha256'))[:16]}… run "
               f"{e.get('run_id')}; policy {e.get('policy')} sha256 "
               f"{str(e.get('policy_sha256'))[:16]}…") if e else None
    table = Table(title=f"gate {result.phase}: {'PASSED' if result.passed else 'FAILED'}",
                  caption=caption)
    for column in ("check", "observed", "upper bound", "threshold", "result"):
        table.add_column(column)
    for c in result.checks:
        table.add_row(c.name, c.observed, c.bound, c.threshold,
                      "[green]pass[/]" if c.passed else "[bold red]FAIL[/]")
    return table


def gate(
    report: Path = typer.Argument(..., help="report.json written by `cutover replay`."),
    policy: Path = typer.Option(..., "--policy", help="A plan file (use with --phase) or a "
                                "policy file with a top-level \\[gate] table."),
    phase: str = typer.Option(None, "--phase", help="The phase being ENTERED; its gate applies."),
    junit: Path = typer.Option(None, "--junit", help="Also write JUnit XML (one testcase per "
                               "check) here, for CI test reports."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write a Markdown summary "
                                  "here, e.g. for a pull-request comment."),
    as_json: bool = JSON_OPT,
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.9999,
                                     help="Confidence of the Wilson intervals; rates are "
                                          "judged on their upper bound."),
) -> None:
    """Judge a replay report against a phase's gate policy: exit 0 pass, 1 fail, 2 bad input."""
    from cutover.migrate import gate as gates
    from cutover.migrate import outputs
    from cutover.migrate.plan import load_policy
    from cutover.paths import output_file
    from cutover.values import number_in
    number_in(confidence, "--confidence", 0.5, 0.9999)
    for option, target in (("--junit", junit), ("--markdown", markdown)):
        if target is not None:
            output_file(target, option)
    chosen = load_policy(policy, phase)
    data, sha = _read_report(report)
    evidence = gates.evidence_of(data, str(report), sha, str(policy),
                                 hashlib.sha256(policy.read_bytes()).hexdigest(), phase or "")
    result = gates.evaluate(data, chosen, confidence, phase=phase or "", source=str(report),
                            evidence=evidence)
    if junit:
        junit.write_text(outputs.junit_xml(result), encoding="utf-8")
    if markdown:
        markdown.write_text(outputs.markdown(result), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_checks(result)
    if not result.passed:
        raise GateFailed(f"gate {phase or ''} failed {len(result.failures)} of "
                         f"{len(result.checks)} checks: "
                         + "; ".join(c.message for c in result.failures))


def _machine(db: str | None, creating: bool = False) -> Any:
    import sqlalchemy as sa

    from cutover.errors import ConfigError
    from cutover.migrate.state import PlanMachine

    url = db or DEFAULT_DB
    try:
        parsed = sa.engine.make_url(url)
        engine = sa.create_engine(parsed)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConfigError(f"--db {url!r}: not a usable SQLAlchemy URL: {exc}") from exc
    # SQLite creates a missing file on connect; only `init` may do that, or a typo in --db
    # would show an empty plan instead of an error.
    sqlite_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                                    ":memory:")
    if sqlite_file and not creating and not Path(parsed.database).exists():
        raise PlanError(f"--db {url}: no plan state at {parsed.database}; run "
                        "`cutover plan init PLAN_FILE` here first or pass the right --db")
    return PlanMachine(engine)


def _status(machine: Any) -> dict[str, Any]:
    from cutover.migrate.state import approvers, current_phase

    plan, events = machine.state()
    here = current_phase(events)
    index = plan.index(here)
    phase = plan.phases[index]
    entered = max(e.at for e in events if e.action in ("init", "advance", "rollback"))
    status: dict[str, Any] = {
        "plan": plan.name, "phase": here, "percent": phase.cohort.percent,
        "entered_at": entered.isoformat(),
        "baked_s": int((machine.clock() - entered).total_seconds()), "bake_s": phase.bake_s,
        "next": None}
    if index + 1 < len(plan.phases):
        target = plan.phases[index + 1]
        status["next"] = {"phase": target.name, "percent": target.cohort.percent,
                          "approvals_needed": target.approvals,
                          "approved_by": sorted(approvers(events, target.name))}
    return status


@plan_app.command("init")
def plan_init(
    plan_file: Path = typer.Argument(..., help="The plan TOML (see cutover/fixtures/plans/demo.toml)."),
    db: str = DB_OPT,
    actor: str = typer.Option(None, "--as", help="Who starts the plan (default: your login)."),
) -> None:
    """Validate a plan and start it in its first phase; the plan text is stored in the db."""
    from cutover.migrate.plan import load_plan

    load_plan(plan_file)
    text = plan_file.read_text(encoding="utf-8")
    plan = _machine(db, creating=True).init(text, str(plan_file), actor or getpass.getuser())
    err.print(f"plan {plan.name!r} initialised in phase {plan.phases[0].name!r}")


@plan_app.command("status")
def plan_status(db: str = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Show the current phase, its bake clock and the next phase's approvals."""
    status = _status(_machine(db))
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    out.print(f"plan {status['plan']}: phase {status['phase']} ({status['percent']:g}% on "
              f"the candidate), baked {status['baked_s'] / 3600:.2f}h of "
              f"{status['bake_s'] / 3600:.2f}h")
    nxt = status["next"]
    if nxt:
        out.print(f"next: {nxt['phase']} ({nxt['percent']:g}%), approvals "
                  f"{len(nxt['approved_by'])}/{nxt['approvals_needed']} "
                  f"({', '.join(nxt['approved_by']) or 'none'})")
    else:
        out.print("next: none (last phase)")


@plan_app.command("approve")
def plan_approve(actor: str = AS_OPT, db: str = DB_OPT,
                 phase: str = typer.Option(None, "--phase", help="The phase approved for "
                                           "entry; must be the next one (default).")) -> None:
    """Record your approval to enter the next phase (distinct people count)."""
    event = _machine(db).approve(actor, phase)
    err.print(f"{event.actor} approved entering {event.to_phase!r}")


@plan_app.command("advance")
def plan_advance(
    report: Path = typer.Option(..., "--report", help="report.json of a replay; the next "
                                "phase's gate is computed on it and its sha256 recorded."),
    actor: str = AS_OPT, db: str = DB_OPT,
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.9999,
                                     help="Confidence of the gate's Wilson intervals."),
) -> None:
    """Enter the next phase if its gate passes, approvals are in and the bake time is over."""
    from cutover.values import number_in
    # click's FloatRange lets nan through (every comparison with nan is false).
    number_in(confidence, "--confidence", 0.5, 0.9999)
    data, sha = _read_report(report)
    try:
        event, _ = _machine(db).advance(data, sha, actor, confidence, str(report.resolve()))
    except PlanError:
        err.print("advance refused; the attempt is recorded in `cutover plan history`")
        raise
    err.print(f"advanced {event.from_phase!r} -> {event.to_phase!r} on report {sha[:12]}")


@plan_app.command("rollback")
def plan_rollback(actor: str = AS_OPT,
                  reason: str = typer.Option(..., "--reason", help="Why; recorded."),
                  to: str = typer.Option(None, "--to", help="Phase to return to (default: "
                                         "the previous one)."),
                  db: str = DB_OPT) -> None:
    """Go back at once: no gate, approval or bake time is needed to reduce exposure."""
    event = _machine(db).rollback(actor, reason, to)
    err.print(f"rolled back {event.from_phase!r} -> {event.to_phase!r}")


@plan_app.command("history")
def plan_history(db: str = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Every step, oldest first: who, what, when, and on which evidence."""
    _, events = _machine(db).state()
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    table = Table(title="plan history")
    for column in ("#", "at (UTC)", "who", "action", "from", "to", "report", "gate", "reason"):
        table.add_column(column)
    for e in events:
        gate_text = "" if e.gate is None else ("pass" if e.gate.get("passed") else "FAIL")
        table.add_row(str(e.seq), e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action,
                      e.from_phase or "", e.to_phase or "", (e.report_sha256 or "")[:12],
                      gate_text, e.reason or "")
    out.print(table)


def _plan_and_phase(db: str | None, plan_file: Path | None, phase: str | None) -> tuple[Any, str]:
    from cutover.migrate.plan import load_plan
    from cutover.migrate.state import current_phase

    if plan_file is not None:
        plan = load_plan(plan_file)
        return plan, phase or plan.phases[0].name
    plan, events = _machine(db).state()
    return plan, phase or current_phase(events)


PLAN_FILE_OPT = typer.Option(None, "--plan", help="Read this plan file instead of the state db "
                             "(then --phase defaults to the first phase).")


@plan_app.command("route")
def plan_route(
    merchant: str = typer.Option(..., "--merchant", help="merchant_id of the transaction."),
    customer: str = typer.Option(..., "--customer", help="customer_id of the transaction."),
    country: str = typer.Option(None, "--country", help="merchant_country (ISO 3166 alpha-2)."),
    channel: str = typer.Option(None, "--channel", help="ecom, pos, moto or recurring."),
    phase: str = typer.Option(None, "--phase", help="Phase to route by (default: current)."),
    plan_file: Path = PLAN_FILE_OPT, db: str = DB_OPT, as_json: bool = JSON_OPT,
) -> None:
    """Print legacy or candidate for one transaction, and why."""
    plan, chosen = _plan_and_phase(db, plan_file, phase)
    txn = {"merchant_id": merchant, "customer_id": customer, "merchant_country": country,
           "channel": channel}
    side, why = plan.explain(txn, chosen)
    if as_json:
        typer.echo(json.dumps({"route": side, "phase": chosen, "why": why}))
    else:
        typer.echo(side)
        err.print(f"phase {chosen}: {why}")


@plan_app.command("export")
def plan_export(
    out_file: Path = typer.Option(None, "--out", help="Write the JSON here (default stdout)."),
    phase: str = typer.Option(None, "--phase", help="Phase to export (default: current)."),
    plan_file: Path = PLAN_FILE_OPT, db: str = DB_OPT,
) -> None:
    """Write the phase's routing rule as JSON for an API gateway or router, with test vectors."""
    from cutover.migrate.plan import export_rule

    plan, chosen = _plan_and_phase(db, plan_file, phase)
    text = json.dumps(export_rule(plan, chosen), indent=2, ensure_ascii=False) + "\n"
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
        err.print(f"wrote the {chosen!r} rule to {out_file}")


def register(app: typer.Typer) -> None:
    """Add `cutover gate` and the `cutover plan` group to the root app."""
    app.command("gate")(gate)
    app.add_typer(plan_app, name="plan")
