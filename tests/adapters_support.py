"""Test helpers for the adapters area: a fault-injecting SOAP server speaking other_core.wsdl.

The server runs on 127.0.0.1 in a thread; the URL path picks the behaviour (``/ok``, ``/slow``,
``/http500``, ``/http503``, ``/fault``, ``/truncated``, ``/short``, ``/wrongns``, ``/extra``,
``/notsoap``, ``/xxe``, ``/laughs``, ``/huge``, ``/chunked``, ``/drip_headers``, ``/drip_body``,
``/nothttp``, ``/gzip``), so one
server serves every failure case. ``closed_port()`` gives a port nobody listens on. Card numbers
are made in memory. ``FakeClock`` drives the throttle, breaker and retries without sleeping.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cutover.adapters.tokenize import luhn_ok

ROOT = Path(__file__).resolve().parents[1]
OTHER_MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "other_core.toml"
NS = "urn:othercore:payments:v2"
HUGE_BYTES = 200 * 1024 * 1024
SLOW_S = 3.0
#: A dripping server sends one byte per gap: each gap is well inside any read timeout in the
#: tests, so only a total deadline can cut it.
DRIP_GAP_S = 0.1
DRIP_BYTES_MAX = 600

_ENV = ('<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '{body}</soap:Body></soap:Envelope>')


def ok_body(ref: str, value: str, ns: str = NS) -> str:
    """A good reply: approve (A) unless the amount ends in .13 (decline D) or .99 (unknown Z)."""
    result = "D" if value.endswith(".13") else "Z" if value.endswith(".99") else "A"
    return _ENV.format(body=(
        f'<r:SubmitAuthorisationResult xmlns:r="{ns}"><r:Result>{result}</r:Result>'
        f'<r:ApprovalCode>X1</r:ApprovalCode><r:Gateway>GW_A</r:Gateway>'
        f'<r:Charge>0.25</r:Charge><r:Correlation>{ref}</r:Correlation>'
        f'</r:SubmitAuthorisationResult>'))


FAULT = _ENV.format(body='<soap:Fault><faultcode>soap:Server</faultcode>'
                         '<faultstring>core is down</faultstring></soap:Fault>')
XXE = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
       + _ENV.format(body="<x>&e;</x>").split("?>", 1)[1])
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;">]>'
          + _ENV.format(body="<x>&b;</x>").split("?>", 1)[1])


class FakeClock:
    """A ``Clock`` that only moves when told: ``sleep`` advances it instead of waiting."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s
        self.slept_s: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now_s

    def sleep(self, seconds: float) -> None:
        with self._lock:
            if seconds > 0:
                self.slept_s.append(seconds)
                self.now_s += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now_s += seconds


def closed_port() -> int:
    """A local port that was just free: connecting to it is refused."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FaultServer:
    """A running fault server; ``calls`` counts requests per path (state to assert on)."""

    server: ThreadingHTTPServer
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(state: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: str | bytes) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The client may have given up (the slow case): that is the point of the test.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def _huge(self) -> None:
            # No Content-Length: the client must stop reading by itself at its cap.
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"<a>" + b"x" * 65_536 + b"</a>"
            try:
                for _ in range(HUGE_BYTES // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _drip(self, data: bytes) -> None:
            # One byte per gap, until the client hangs up (or the drip's own maximum).
            self.close_connection = True
            try:
                for byte in data[:DRIP_BYTES_MAX]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(DRIP_GAP_S)
            except OSError:
                pass

        def _drip_reply(self, path: str, body: str) -> None:
            data = body.encode()
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n").encode()
            if path == "drip_headers":
                return self._drip(head + data)
            with contextlib.suppress(OSError):
                self.wfile.write(head)
                self.wfile.flush()
            self._drip(data)

        def _short(self, body: str) -> None:
            # Declares the whole body, sends half, hangs up.
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.wfile.write(data[: len(data) // 2])

        def _raw(self, data: bytes) -> None:
            # Bytes exactly as given, then hang up: for replies that are not proper HTTP.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.wfile.write(data)

        def _chunked_forever(self) -> None:
            # A chunked body with no end in sight (bounded here by HUGE_BYTES).
            self.close_connection = True
            chunk = b"<a>" + b"x" * 65_536 + b"</a>"
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            with contextlib.suppress(OSError):
                self.wfile.write(head)
                for _ in range(HUGE_BYTES // len(chunk)):
                    self.wfile.write(framed)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            text = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            path = self.path.strip("/")
            state.calls[path] = state.calls.get(path, 0) + 1
            ref = (re.search(r"Reference>([^<]*)<", text) or [None, "?"])[1]
            value = (re.search(r"Value>([^<]*)<", text) or [None, "0"])[1]
            if path == "slow":
                time.sleep(SLOW_S)
            if path == "huge":
                return self._huge()
            if path in ("drip_headers", "drip_body"):
                return self._drip_reply(path, ok_body(ref, value))
            if path == "short":
                return self._short(ok_body(ref, value))
            if path == "chunked":
                return self._chunked_forever()
            if path == "nothttp":
                return self._raw(b"220 legacy-core ESMTP ready\r\n")
            if path == "gzip":
                return self._raw(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                                 b"Content-Length: 4\r\n\r\nxxxx")
            replies = {"http500": (500, "<html>oops</html>"), "http503": (503, "busy"),
                       "fault": (500, FAULT), "truncated": (200, ok_body(ref, value)[:180]),
                       "wrongns": (200, ok_body(ref, value, "urn:someone:else")),
                       "extra": (200, ok_body(ref, value).replace(
                           "<r:Gateway>", "<r:Surprise>1</r:Surprise><r:Gateway>")),
                       "notsoap": (200, "<html><body>maintenance</body></html>"),
                       "xxe": (200, XXE), "laughs": (200, LAUGHS)}
            status, body = replies.get(path, (200, ok_body(ref, value)))
            self._send(status, body)

    return Handler


def start_fault_server() -> FaultServer:
    """Start the fault server on a free port of 127.0.0.1."""
    state = FaultServer(server=None)  # type: ignore[arg-type]
    state.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.server.daemon_threads = True
    threading.Thread(target=state.server.serve_forever, daemon=True).start()
    return state


def make_pan(rng: random.Random, bin6: str = "411111") -> str:
    """A Luhn-valid 16-digit test card number, made in memory only."""
    body = bin6 + "".join(str(rng.randrange(10)) for _ in range(9))
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def sample_txn(i: int, amount_minor: int = 1050, pan: str | None = None) -> dict:
    """A canonical transaction as the adapters take it."""
    return {"txn_id": f"T{i:06d}", "card_token": pan or f"tok_{i:032x}", "card_bin": "411111",
            "amount_minor": amount_minor, "currency": "USD", "merchant_id": "M00001",
            "merchant_country": "US", "mcc": "5411", "channel": "ecom", "customer_id": "C1",
            "ts": datetime(2026, 10, 1, 12, 0, tzinfo=UTC)}


def scan_for_pans(root: Path) -> list[str]:
    """Return 'file: masked run' for every Luhn-valid 13-19 digit run in any file under root."""
    from cutover.adapters.tokenize import find_pans, mask_pans
    hits = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            # Compressed pages hold random digit runs; scan the decoded values instead.
            import pyarrow.parquet as pq
            text = json.dumps(pq.read_table(path).to_pylist(), default=str)
        else:
            text = path.read_bytes().decode("latin-1")
        hits += [f"{path}: {mask_pans(pan)}" for pan in find_pans(text)]
    return hits
