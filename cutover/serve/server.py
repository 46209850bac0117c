"""Run an ASGI app on uvicorn: in the foreground for the CLI, on a thread for tests and benches.

Both ``cutover serve`` and ``cutover mirror`` bind 127.0.0.1 unless told otherwise, with
uvicorn's access log off (a URL carries nothing secret, but a quiet server keeps the
terminal for the progress line) and explicit limits rather than uvicorn's defaults.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import uvicorn

HOST_DEFAULT: Final = "127.0.0.1"
START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
#: Connections one server holds open at once; more wait in the kernel's backlog.
CONNECTIONS_MAX: Final = 512
BACKLOG: Final = 2048
KEEPALIVE_S: Final = 30


def config(app: Any, host: str, port: int, sock: socket.socket | None = None) -> uvicorn.Config:
    """uvicorn settings shared by every server cutover runs."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          limit_concurrency=CONNECTIONS_MAX, backlog=BACKLOG,
                          timeout_keep_alive=KEEPALIVE_S, lifespan="off", http="h11",
                          loop="asyncio")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: a free port), so the URL is known before start."""
    # proto=IPPROTO_TCP matters: asyncio turns Nagle off only on sockets that say TCP, and
    # with Nagle on, a reply's body waits for the client's delayed ACK (40 ms a request).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


@dataclass
class Running:
    """A server on a daemon thread; ``stop()`` shuts it down and frees the port."""

    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STOP_TIMEOUT_S)


def start_in_thread(app: Any, host: str = HOST_DEFAULT, port: int = 0) -> Running:
    """Serve ``app`` on a daemon thread; returns once it accepts connections."""
    sock = bind(host, port)
    server = uvicorn.Server(config(app, host, sock.getsockname()[1]))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="asgi-server")
    thread.start()
    deadline_s = time.monotonic() + START_TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline_s:
        time.sleep(0.01)
    if not server.started:
        server.should_exit = True
        raise OSError(f"server on {host}:{sock.getsockname()[1]} did not start in"
                      f" {START_TIMEOUT_S} s")
    port = sock.getsockname()[1]
    return Running(f"http://{host}:{port}", port, server, thread)


class _StopOnSignal(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its shutdown, which would end the process
    before the caller's cleanup (the mirror's last commit); here a signal only stops serving."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve_forever(app: Any, host: str, port: int, on_ready: Any = None) -> None:
    """Serve in the calling thread until SIGINT/SIGTERM, then return (so the caller can clean
    up); ``on_ready(url)`` once bound."""
    sock = bind(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}"
    if on_ready is not None:
        on_ready(url)
    _StopOnSignal(config(app, host, sock.getsockname()[1])).run(sockets=[sock])
