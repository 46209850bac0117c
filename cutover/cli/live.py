"""CLI commands for live services: `cutover serve | mirror | load`.

Thin: each command parses options, builds the app or the load run from cutover.serve and
cutover.mirror, and runs it. Servers bind 127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("serve")(serve_cmd)


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



