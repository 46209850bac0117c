"""CLI commands for live services: `cutover serve | mirror | load`.

Thin: each command parses options, builds the app or the load run from cutover.serve and
cutover.mirror, and runs it. Servers bind 127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("serve")(serve_cmd)
    app.command("mirror")(mirror_cmd)
    app.command("load")(load_cmd)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    from cutover.cli.replay import _pairs as pairs
    return pairs(values, option)


def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (127.0.0.1: this"
                             " machine only)."),
    port: int = typer.Option(8090, "--port", help="Port to bind (0: a free one)."),
    candidate: str = typer.Option("cutover.stack:default_stack", "--candidate",
                                  help="module:attr of the stack (or its factory) to serve."),
    candidate_opt: list[str] = typer.Option([], "--candidate-opt",
                                            help="key=value for the factory, e.g."
                                                 " models=data/models; repeatable."),
) -> None:
    """Serve a candidate stack over HTTP: POST /decide, /decide-batch; GET /healthz, /metrics.

    The contract is docs/openapi.yaml. A replay reaches it with --candidate http://HOST:PORT.
    """
    from cutover.adapters.candidate import load_candidate
    from cutover.serve.app import build_app
    from cutover.serve.server import serve_forever

    options = _pairs(candidate_opt, "--candidate-opt")
    app = build_app(lambda: load_candidate(candidate, options))
    serve_forever(app, host, port,
                  on_ready=lambda url: err.print(f"serving {candidate} on {url} (Ctrl-C stops)"))





def mirror_cmd(
    wsdl: str = typer.Option(..., "--wsdl", help="The legacy core's WSDL URL; the mirror"
                             " forwards to its origin."),
    mapping: Path = typer.Option(..., "--mapping", help="The mapping file of that core."),
    out: Path = typer.Option(..., "--out", help="The run directory (continued if it exists)."),
    candidate: str = typer.Option(..., "--candidate", help="http://HOST:PORT of a candidate"
                                  " service (cutover serve) or module:attr."),
    candidate_opt: list[str] = typer.Option([], "--candidate-opt", help="key=value; repeatable."),
    plan_db: str | None = typer.Option(None, "--plan-db", help="Plan database URL: the current"
                                       " phase's cohort is answered by the candidate."),
    rules: Path | None = typer.Option(None, "--rules", help="Diff rules TOML."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8086, "--port", help="Port to bind (0: a free one)."),
    batch_rows: int = typer.Option(4096, "--batch-rows", help="Requests per committed batch."),
    flush_s: float = typer.Option(1.0, "--flush-s", help="Commit at least this often (s)."),
) -> None:
    """Proxy a legacy SOAP core: clients get legacy's replies unchanged, the candidate decides
    copies in the dark, and both outcomes land in a run directory like a replay's.

    Needs CUTOVER_TOKEN_KEY (card numbers are tokenised before anything is written). Admin
    endpoints (/admin/status, /admin/flush, /admin/metrics) need CUTOVER_ADMIN_TOKEN.
    """
    from cutover.errors import InputError
    from cutover.mirror.service import MirrorOptions, open_mirror, stop_mirror
    from cutover.serve.server import serve_forever

    if batch_rows <= 0 or flush_s <= 0:
        raise InputError("--batch-rows and --flush-s must be positive")
    opts = MirrorOptions(wsdl, mapping, out, candidate, _pairs(candidate_opt, "--candidate-opt"),
                         plan_db, rules, batch_rows, flush_s)
    app, mirror = open_mirror(opts)
    try:
        serve_forever(app, host, port, on_ready=lambda url: err.print(
            f"mirroring {mirror.cfg.legacy_url} on {url}; run directory {out} (Ctrl-C stops)"))
    finally:
        stop_mirror(mirror)
        stats = mirror.worker.status()
        err.print(f"stopped: {stats['committed']:,} requests committed in"
                  f" {stats['batches_committed']} batches; {stats['dropped_queue_full']} copies"
                  f" dropped; {stats['served_by_candidate']} answered by the candidate")


def load_cmd(
    store: Path = typer.Argument(..., help="The traffic store to send."),
    target: str = typer.Option(..., "--target", help="Base URL of the mirror or the core"
                               " (requests go to TARGET/soap)."),
    rate: float | None = typer.Option(None, "--rate", help="Requests per second."),
    speed: str | None = typer.Option(None, "--speed", help="A multiple of the recorded pace,"
                                     " e.g. 2x."),
    mapping: Path = typer.Option(None, "--mapping", help="Mapping file of the core (default:"
                                 " the simulated core's)."),
    since: str | None = typer.Option(None, "--since", help="First time to send (UTC)."),
    until: str | None = typer.Option(None, "--until", help="Send before this time (UTC)."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many requests."),
    senders: int = typer.Option(16, "--senders", help="Requests in flight at most."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Send recorded traffic as legacy SOAP requests at a fixed rate or a multiple of its
    recorded pace; a live progress line, then p50/p99/max latency and errors by kind."""
    import json

    from cutover.errors import InputError, LegacyUnavailable
    from cutover.mirror.load import read_rows, run_load
    from cutover.paths import fixtures_dir

    factor = None
    if speed is not None:
        try:
            factor = float(speed.lower().removesuffix("x"))
        except ValueError as exc:
            raise InputError(f"--speed {speed!r}: expected a multiple like 2x") from exc
    rows = read_rows(store, since, until, limit)
    if not rows:
        raise InputError(f"{store}: no rows to send (check --since/--until)")

    def progress(summary, total: int) -> None:
        # Plain stderr, not rich: a carriage return rewrites the line in place.
        typer.echo(f"\r{summary.sent:,}/{total:,} sent, {summary.ok:,} ok,"
                   f" p99 {summary.percentile_ms(99):.1f} ms,"
                   f" errors {sum(summary.errors.values())}   ", err=True, nl=False)

    summary = run_load(rows, target, mapping or fixtures_dir() / "mappings" /
                       "legacy_auth.toml", rate_per_s=rate, speed=factor, senders=senders,
                       on_progress=progress)
    typer.echo("", err=True)
    result = summary.as_dict()
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        lat = result["latency_ms"]
        typer.echo(f"sent {result['sent']:,} in {result['seconds']} s"
                   f" ({result['rate_per_s']}/s); latency ms p50 {lat['p50']} p99 {lat['p99']}"
                   f" max {lat['max']}; errors {result['errors'] or 'none'};"
                   f" late by at most {result['late_s_max']} s")
    if result["ok"] == 0:
        raise LegacyUnavailable(f"{target}: no request succeeded ({result['errors']})")
