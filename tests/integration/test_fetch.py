"""`fetch`, the deadline-bounded HTTP exchange any client reuses, against a misbehaving server."""

from __future__ import annotations

import time

import pytest

from cutover.adapters.fetch import ConnectionPool, fetch
from cutover.adapters.transport import CallFailed, Deadline
from tests.adapters_support import start_fault_server

BODY = b"<Envelope><Reference>T1</Reference><Value>10.50</Value></Envelope>"
CAP_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def fault_server():
    server = start_fault_server()
    yield server
    server.stop()


def _fail(url: str, deadline_s: float = 1.0, **kwargs) -> CallFailed:
    with pytest.raises(CallFailed) as failed:
        fetch(url, BODY, Deadline(deadline_s), bytes_max=kwargs.pop("bytes_max", CAP_BYTES),
              **kwargs)
    return failed.value


def test_keep_alive_connection_is_reused_from_the_pool(fault_server):
    """Three calls through one pool leave one idle connection and return 200 with a body."""
    pool = ConnectionPool()
    replies = [fetch(f"{fault_server.base}/ok", BODY, Deadline(2.0), bytes_max=CAP_BYTES,
                     pool=pool) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200]
    assert all(b"T1" in r.body for r in replies)
    assert sum(len(idle) for idle in pool._idle.values()) == 1  # noqa: SLF001 - the pool's state
    pool.close()


def test_endless_chunked_body_stops_at_the_cap(fault_server):
    """A chunked 200 MB body (no Content-Length to refuse early) stops at 1 MiB, within 1 s."""
    started_s = time.monotonic()
    assert _fail(f"{fault_server.base}/chunked").reason == "response_too_large"
    assert time.monotonic() - started_s < 1.0


@pytest.mark.parametrize(("path", "reason"), [
    ("short", "truncated"), ("nothttp", "bad_http"), ("gzip", "bad_http"),
])
def test_broken_replies_have_their_reason(fault_server, path, reason):
    """Half a declared body is 'truncated'; a non-HTTP or compressed reply is 'bad_http'."""
    assert _fail(f"{fault_server.base}/{path}").reason == reason


def test_idle_limit_cuts_a_silent_peer_before_the_deadline(fault_server):
    """idle_s 0.3 inside a 5 s deadline: a silent core is a 'timeout' after about 0.3 s."""
    started_s = time.monotonic()
    failed = _fail(f"{fault_server.base}/slow", deadline_s=5.0, idle_s=0.3)
    assert failed.reason == "timeout" and "no byte" in str(failed)
    assert time.monotonic() - started_s < 1.0


def test_not_an_http_url_is_refused_without_a_call():
    """A file: URL is 'bad_request' before any socket is opened."""
    assert _fail("file:///etc/passwd").reason == "bad_request"
