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
