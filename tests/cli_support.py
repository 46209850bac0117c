"""Running the CLI in process the way `cutover.cli.main` does, for the end-to-end tests.

`main` maps our errors to exit codes and prints them on stderr; typer's CliRunner calls the app
underneath `main`, so the tests map the same way here. A foreign exception is a bug, not an
exit code, and is raised.
"""

from __future__ import annotations

from typer.testing import CliRunner

from cutover.cli import app
from cutover.errors import CutoverError, exit_code_for

runner = CliRunner()


def run_cli(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, error text) of `cutover ARGS`."""
    result = runner.invoke(app, [str(a) for a in args], env=env)
    if isinstance(result.exception, CutoverError):
        return exit_code_for(result.exception), result.stdout, str(result.exception)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def invoke(*args: str) -> tuple[int, str]:
    """(exit code, stdout) of `cutover ARGS`."""
    code, stdout, _ = run_cli(list(args))
    return code, stdout
