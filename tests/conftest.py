"""Fixtures shared across areas: a simulated legacy core served on a free local port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def legacy_core() -> Iterator[object]:
    """Start the simulated legacy SOAP core on 127.0.0.1 (free port); stop it after the session.

    Yields a ``cutover.sim.legacy_server.RunningCore`` (.url, .wsdl_url, .port, .state).
    Its memory (velocity, balances, txn ids) is shared by the session: use unique txn ids,
    card numbers and merchant ids per test.
    """
    from cutover.sim.legacy_server import start_server

    core = start_server(host="127.0.0.1", port=0)
    try:
        yield core
    finally:
        core.stop()
