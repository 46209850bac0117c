"""Shared helpers for tests of live services: a trained model, `cutover serve` on a thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

TRAIN_UNTIL = datetime(2026, 9, 5, tzinfo=UTC)
SINCE = "2026-09-05"


def train_small(root: Path, rows: int = 12_000, seed: int = 5) -> tuple[Path, Path]:
    """A generated store over 8 days and a model trained on its first 4 days."""
    from cutover.sim.traffic import generate
    from cutover.stack.model import train
    store = root / "store"
    generate(store, rows, seed, days=8)
    train(store, root / "models", until=TRAIN_UNTIL, seed=0)
    return store, root / "models"


@contextmanager
def serving(models: Path) -> Iterator[object]:
    """`cutover serve` of the reference stack on a free 127.0.0.1 port, for the block."""
    from cutover.adapters.candidate import load_candidate
    from cutover.serve.app import build_app
    from cutover.serve.server import start_in_thread
    app = build_app(lambda: load_candidate("cutover.stack:default_stack",
                                           {"models": str(models)}))
    running = start_in_thread(app)
    try:
        yield running
    finally:
        running.stop()


TEST_PAN = "4111111111111111"  # the documented Visa test card number


def store_rows(store: Path, since: str = SINCE, limit: int = 1_000) -> list[dict]:
    """The first ``limit`` rows of ``store`` from ``since``, as dicts (time order)."""
    from cutover.store.filters import Narrowing, parse_when
    from cutover.store.stream import iter_input
    rows: list[dict] = []
    for table in iter_input(store, Narrowing(parse_when(since), None, None, None, limit), 5_000):
        rows.extend(table.to_pylist())
    return rows[:limit]


class RecordingCore:
    """The simulated legacy core with every reply body kept by TxnId (what legacy sent)."""

    def __init__(self) -> None:
        import re

        from cutover.sim.legacy_server import start_server
        self.core = start_server()
        self.replies: dict[str, bytes] = {}
        inner = self.core._server.get_app()
        txn_id = re.compile(rb"TxnId>([^<]+)<")

        def app(environ, start_response):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            import io
            environ["wsgi.input"] = io.BytesIO(body)
            reply = b"".join(inner(environ, start_response))
            found = txn_id.search(body)
            if found:
                self.replies[found.group(1).decode()] = reply
            return [reply]
        self.core._server.set_app(app)

    @property
    def wsdl_url(self) -> str:
        return self.core.wsdl_url

    def stop(self) -> None:
        self.core.stop()


def soap_client_send(url: str, rows: list[dict], pan_rows: int = 0) -> list[tuple[str, int, bytes]]:
    """POST each row as a legacy SOAP request to ``url``/soap; (txn_id, status, body) each.
    The first ``pan_rows`` rows carry the test PAN instead of their token."""
    import requests

    from cutover.adapters.mapping import load_mapping
    from cutover.adapters.soap_wire import render_request
    from cutover.paths import fixtures_dir
    mapping = load_mapping(fixtures_dir() / "mappings" / "legacy_auth.toml")
    out = []
    with requests.Session() as http:
        for i, row in enumerate(rows):
            txn = dict(row, card_token=TEST_PAN) if i < pan_rows else row
            reply = http.post(url + "/soap", data=render_request(mapping, txn),
                              headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=10)
            out.append((row["txn_id"], reply.status_code, reply.content))
    return out
