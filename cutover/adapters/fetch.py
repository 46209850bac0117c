"""One HTTP exchange bounded by a total deadline and a size cap, enforced while bytes arrive.

``requests`` (and ``urllib3`` under it) time out each socket read, not the call: a server that
drips its headers one byte every few seconds is never cut, and a body is size-checked only
after it is read. Here every read of the socket waits at most what is left of the call's
``Deadline`` (and at most ``idle_s`` of silence), headers and body alike, and the body stops at
``bytes_max`` before another chunk is read. ``http.client`` parses the protocol (status line,
header limits, chunked and Content-Length bodies); only its socket reads are ours.

    reply = fetch("http://core:8080/soap", body, Deadline(10.0), bytes_max=1 << 20,
                  headers={"Content-Type": "text/xml"}, pool=pool)

Raises ``CallFailed`` with one of these reasons (never a foreign exception):

    connection_refused   nobody listens, or the host is unreachable
    timeout              no byte for ``idle_s``, or the deadline passed before any reply byte
    drip_headers         reply started but its headers were not complete by the deadline
    drip_body            headers arrived but the body was not complete by the deadline
    response_too_large   Content-Length or the streamed body passed ``bytes_max``
    truncated            the peer closed the connection before the declared end of the body
    connection_reset     the connection broke while talking
    bad_http             the reply is not HTTP/1.x (status line, header limits, encoding)
    tls_error            the TLS handshake or certificate check failed (https)
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from cutover.adapters.deadline import Deadline
from cutover.adapters.guards import CallFailed

STREAM_CHUNK_BYTES: Final = 64 * 1024
#: Longest silence tolerated between two bytes of a reply, inside the deadline.
IDLE_S_DEFAULT: Final = 5.0
#: Longest a TCP (and TLS) connect may take, inside the deadline.
CONNECT_S_DEFAULT: Final = 2.0
#: Idle keep-alive connections kept per host; more are closed after use.
POOL_CONNECTIONS_MAX: Final = 16
READ_BUFFER_BYTES: Final = 16 * 1024


@dataclass(frozen=True)
class Reply:
    """A complete HTTP reply: status, headers as received, the whole (capped) body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (case-insensitive)."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), default)


class _Expired(Exception):
    """The call's deadline passed while waiting for bytes (internal: becomes a reason)."""


class _Progress:
    """What one exchange has seen, so a cut can say where it stopped."""

    __slots__ = ("bytes_in", "headers_done")

    def __init__(self) -> None:
        self.bytes_in = 0
        self.headers_done = False


class _DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose every read waits at most the time left.

    It wraps the socket's own ``SocketIO`` so the socket keeps its reference count: closing the
    connection while a reply is being read leaves the file descriptor open until this closes.
    """

    def __init__(self, conn: _DeadlineConnection, raw: socket.socket) -> None:
        super().__init__()
        self._conn = conn
        self._raw = raw
        self._io = raw.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        conn = self._conn
        wait_s = conn.deadline.cap(conn.idle_s)
        if wait_s <= 0:
            raise _Expired
        self._raw.settimeout(wait_s)
        count = self._io.readinto(buffer) or 0
        conn.progress.bytes_in += count
        return count

    def close(self) -> None:
        self._io.close()
        super().close()


class _DeadlineSocket:
    """What ``http.client`` needs of a socket, with reads and writes bounded by the deadline."""

    def __init__(self, conn: _DeadlineConnection, raw: socket.socket) -> None:
        self._conn = conn
        self._raw = raw

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._conn, self._raw), READ_BUFFER_BYTES)

    def sendall(self, data: bytes) -> None:
        wait_s = self._conn.deadline.remaining_s()
        if wait_s <= 0:
            raise _Expired
        self._raw.settimeout(wait_s)
        self._raw.sendall(data)

    def setsockopt(self, *args: object) -> None:
        self._raw.setsockopt(*args)  # type: ignore[call-overload]

    def close(self) -> None:
        self._raw.close()


class _DeadlineConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection whose connect, send and every read obey the current deadline."""

    def __init__(self, scheme: str, host: str, port: int) -> None:
        super().__init__(host, port)
        self.scheme = scheme
        self.raw_sock: socket.socket | None = None
        self.deadline = Deadline(1.0)
        self.idle_s = IDLE_S_DEFAULT
        self.connect_s = CONNECT_S_DEFAULT
        self.progress = _Progress()

    def connect(self) -> None:
        wait_s = self.deadline.cap(self.connect_s)
        if wait_s <= 0:
            raise _Expired
        raw = socket.create_connection((self.host, self.port), timeout=wait_s)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.scheme == "https":
            raw.settimeout(self.deadline.cap(self.connect_s) or 0.001)
            raw = ssl.create_default_context().wrap_socket(raw, server_hostname=self.host)
        self.raw_sock = raw
        self.sock = _DeadlineSocket(self, raw)

    def stale(self) -> bool:
        """True when an idle pooled connection was closed by the peer (readable means EOF)."""
        if self.sock is None or self.raw_sock is None:
            return True
        try:
            readable, _, _ = select.select([self.raw_sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class ConnectionPool:
    """Idle keep-alive connections by (scheme, host, port); thread-safe, bounded per host."""

    def __init__(self, connections_max: int = POOL_CONNECTIONS_MAX) -> None:
        self.connections_max = connections_max
        self._idle: dict[tuple[str, str, int], list[_DeadlineConnection]] = {}
        self._lock = threading.Lock()

    def take(self, scheme: str, host: str, port: int) -> _DeadlineConnection:
        """An idle live connection to the host, or a new (unconnected) one."""
        with self._lock:
            idle = self._idle.get((scheme, host, port), [])
            while idle:
                conn = idle.pop()
                if not conn.stale():
                    return conn
                conn.close()
        return _DeadlineConnection(scheme, host, port)

    def give_back(self, conn: _DeadlineConnection) -> None:
        """Keep ``conn`` for reuse, or close it when the host already has enough idle."""
        with self._lock:
            idle = self._idle.setdefault((conn.scheme, conn.host, conn.port), [])
            if len(idle) < self.connections_max:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallFailed("bad_request", f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, target


def _read_body(response: http.client.HTTPResponse, bytes_max: int) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > bytes_max:
        raise CallFailed("response_too_large", f"Content-Length {declared.strip()} > {bytes_max}")
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        # We asked for identity; a compressed body could expand past any cap after the check.
        raise CallFailed("bad_http", f"Content-Encoding {encoding} refused (asked for identity)")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(min(STREAM_CHUNK_BYTES, bytes_max + 1 - size))
        if not chunk:
            # read(n) returns short at EOF without complaint; the declared length says more.
            if response.length:
                raise http.client.IncompleteRead(b"".join(chunks), response.length)
            return b"".join(chunks)
        size += len(chunk)
        if size > bytes_max:
            raise CallFailed("response_too_large", f"body passed {bytes_max} bytes")
        chunks.append(chunk)


def _expired_reason(conn: _DeadlineConnection) -> CallFailed:
    budget_s = conn.deadline.budget_s
    if conn.progress.bytes_in == 0:
        return CallFailed("timeout", f"no reply within the {budget_s:g} s deadline")
    where = "body" if conn.progress.headers_done else "headers"
    return CallFailed(f"drip_{where}", f"reply {where} still arriving at the {budget_s:g} s"
                      f" deadline ({conn.progress.bytes_in} bytes in)")


def _exchange(conn: _DeadlineConnection, method: str, target: str, body: bytes | None,
              headers: dict[str, str], bytes_max: int) -> Reply:
    conn.request(method, target, body=body, headers=headers)
    response = conn.getresponse()
    conn.progress.headers_done = True
    data = _read_body(response, bytes_max)
    return Reply(response.status, response.reason, tuple(response.getheaders()), data)


def fetch(url: str, body: bytes | None, deadline: Deadline, *, bytes_max: int,
          method: str | None = None, headers: dict[str, str] | None = None,
          idle_s: float = IDLE_S_DEFAULT, connect_s: float = CONNECT_S_DEFAULT,
          pool: ConnectionPool | None = None) -> Reply:
    """One request (POST when ``body`` is given, else GET) and its whole reply, or ``CallFailed``.

    Connect, send, headers and body all finish by ``deadline``; no read waits longer than
    ``idle_s`` for a byte, no connect longer than ``connect_s``; the body stops at
    ``bytes_max``. The connection returns to ``pool`` only after a clean, complete exchange.
    """
    scheme, host, port, target = _split(url)
    conn = pool.take(scheme, host, port) if pool else _DeadlineConnection(scheme, host, port)
    conn.deadline, conn.idle_s, conn.connect_s = deadline, idle_s, connect_s
    conn.progress = _Progress()
    sent = {"Accept-Encoding": "identity", **(headers or {})}
    clean = False
    try:
        reply = _exchange(conn, method or ("POST" if body is not None else "GET"), target, body,
                          sent, bytes_max)
        clean = True
        return reply
    except _Expired as exc:
        raise _expired_reason(conn) from exc
    except TimeoutError as exc:
        if deadline.expired():
            raise _expired_reason(conn) from exc
        waited = "no connection" if conn.raw_sock is None else "no byte"
        raise CallFailed("timeout", f"{url}: {waited} within the limit ({exc})") from exc
    except ConnectionRefusedError as exc:
        raise CallFailed("connection_refused", f"{url}: {exc}") from exc
    except http.client.IncompleteRead as exc:
        raise CallFailed("truncated", f"{url}: body ended after {len(exc.partial)} bytes,"
                         f" {exc.expected} more expected") from exc
    except (http.client.RemoteDisconnected, ConnectionError) as exc:
        raise CallFailed("connection_reset", f"{url}: {exc}") from exc
    except (http.client.HTTPException, ValueError) as exc:
        raise CallFailed("bad_http", f"{url}: {type(exc).__name__}: {exc}") from exc
    except ssl.SSLError as exc:
        raise CallFailed("tls_error", f"{url}: {exc}") from exc
    except OSError as exc:
        # Unreachable host or network, failed name lookup: nobody answered.
        raise CallFailed("connection_refused", f"{url}: {exc}") from exc
    finally:
        # http.client drops ``sock`` itself when the reply said the connection closes.
        if clean and pool is not None and conn.sock is not None:
            pool.give_back(conn)
        else:
            conn.close()
