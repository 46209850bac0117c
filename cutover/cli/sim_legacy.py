"""CLI commands of `cutover sim` for the legacy part of the simulated world.

`cutover sim legacy` serves the simulated legacy core (a SOAP 1.1 service) so the demo, the
SOAP adapter and a person with a SOAP client can talk to it like to a real core.
"""

from __future__ import annotations

import ipaddress
import sys

import typer
from rich.console import Console

from cutover.errors import ConfigError

#: The port the demo and the docs use; pass --port 0 for any free port.
DEFAULT_PORT = 8085
LOOPBACK_NAMES = ("localhost",)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def legacy(
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on. Loopback only unless --allow-remote."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535,
                             help="TCP port to listen on; 0 picks a free port."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote",
        help="Allow a non-loopback --host. The simulator has no authentication and no TLS: "
             "anyone who can reach the port can send it payments."),
) -> None:
    """Serve the simulated legacy payment core (SOAP 1.1) until Ctrl-C.

    Prints the WSDL URL on stdout, for `zeep.Client(url)` or the SOAP adapter.

    Decisions follow cutover/fixtures/legacy/core.toml: blocklist, MCC limits, velocity, suspicion.

    Routes and fees come from its static routing table and cutover/fixtures/gateways.toml.

    Approved amounts add up per merchant; read them with the GetBalance operation.
    """
    if not _is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"--host {host} is not a loopback address: the simulated core has no authentication "
            "or TLS, so it listens on 127.0.0.1 unless you pass --allow-remote")
    from cutover.sim.legacy_server import serve_forever

    err = Console(stderr=True)

    def ready(wsdl_url: str) -> None:
        print(wsdl_url, flush=True)
        err.print("legacy core serving; Ctrl-C stops it", highlight=False)

    try:
        serve_forever(host, port, on_ready=ready)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        err.print("legacy core stopped")
        sys.exit(0)


def awkward(
    port: int = typer.Option(8086, "--port", min=0, max=65535,
                             help="TCP port on 127.0.0.1; 0 picks a free port."),
) -> None:
    """Serve the awkward second core (cutover/fixtures/wsdl/awkward_core.wsdl) until Ctrl-C.

    Prints the WSDL URL on stdout; docs/mapping.md wires it with
    cutover/fixtures/mappings/awkward_core.toml.
    """
    import time

    from cutover.sim.awkward_core import start_awkward

    err = Console(stderr=True)
    try:
        core = start_awkward("127.0.0.1", port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    print(core.wsdl_url, flush=True)
    err.print("awkward core serving; Ctrl-C stops it", highlight=False)
    try:
        while core.thread.is_alive():
            time.sleep(1.0)
    except KeyboardInterrupt:
        core.stop()
        err.print("awkward core stopped")
        sys.exit(0)


def add(sim_app: typer.Typer) -> None:
    """Add this module's commands to the `cutover sim` group."""
    sim_app.command("legacy")(legacy)
    sim_app.command("awkward")(awkward)
