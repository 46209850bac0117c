"""Shared by bench/serve.py and bench/mirror.py: a trained model, servers as subprocesses.

Servers run as their own processes (as they would be deployed), so the client measuring them
does not share a GIL with them; on this 2-core machine they do share the cores.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import requests

REPO: Final = Path(__file__).resolve().parents[1]
CUTOVER: Final = str(Path(sys.executable).parent / "cutover")
START_TIMEOUT_S: Final = 60.0
TRAIN_UNTIL: Final = datetime(2026, 9, 5, tzinfo=UTC)
SINCE: Final = "2026-09-05"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(root: Path, rows: int, seed: int = 5) -> tuple[Path, Path]:
    """A generated store over 8 days and a model trained on its first 4 days."""
    sys.path.insert(0, str(REPO))
    from cutover.sim.traffic import generate
    from cutover.stack.model import train as train_model
    store = root / "store"
    generate(store, rows, seed, days=8)
    train_model(store, root / "models", until=TRAIN_UNTIL, seed=0)
    return store, root / "models"


def start(args: list[str], ready_url: str, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """Start ``cutover ARGS`` and wait until ``ready_url`` answers."""
    proc = subprocess.Popen([CUTOVER, *args], env=env or dict(os.environ), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline_s = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline_s:
        if proc.poll() is not None:
            raise RuntimeError(f"cutover {args[0]} exited: {proc.stderr.read().decode()[-500:]}")
        try:
            requests.get(ready_url, timeout=0.5)
            return proc
        except requests.exceptions.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"cutover {args[0]} did not answer {ready_url} in {START_TIMEOUT_S} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class SlowStack:
    """The reference stack with ``delay_s`` added to every call: a candidate having a bad day."""

    def __init__(self, stack: object, delay_s: float) -> None:
        self._stack = stack
        self.delay_s = delay_s

    def __getattr__(self, name: str) -> object:
        return getattr(self._stack, name)

    def decide_batch(self, batch: object) -> object:
        time.sleep(self.delay_s)
        return self._stack.decide_batch(batch)  # type: ignore[attr-defined]

    def decide(self, txn: dict) -> dict:
        time.sleep(self.delay_s)
        return self._stack.decide(txn)  # type: ignore[attr-defined]


def slow_stack(models: str, delay_ms: str = "200") -> SlowStack:
    """``cutover serve --candidate bench.live_support:slow_stack`` factory."""
    from cutover.stack import default_stack
    return SlowStack(default_stack(models), float(delay_ms) / 1000)
