"""The ASGI app of ``cutover mirror``: a proxy in front of the legacy SOAP core.

Every client request goes to the legacy core and its reply goes back unchanged (status,
body bytes, content type); a copy of the pair is offered to the shadow worker after the
reply is known, so the candidate never sits on the client's path. With a plan, a request in
the current phase's cohort is answered by the candidate instead, rendered in the legacy
reply's shape; when the candidate fails or is slower than ``cohort_timeout_s`` the legacy
core answers (a counted fallback), so no client request fails because of the candidate.
``/admin/status`` and ``/admin/flush`` need ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import hmac
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutover.adapters.codes import CodeTable
from cutover.adapters.mapping import Mapping
from cutover.adapters.soap_wire import EnvelopeError, read_request, render_reply
from cutover.adapters.transport import BreakerOpen, CircuitBreaker
from cutover.adapters.wire import JSONL_TYPE, json_ready
from cutover.domain import REQUEST_COLUMNS
from cutover.mirror.phase import PhaseWatch
from cutover.mirror.shadow import Exchange, ShadowWorker
from cutover.serve.app import BodyTooLarge, read_body
from cutover.serve.metrics import Metrics

REQUEST_BYTES_MAX: Final = 256 * 1024
LEGACY_CONNECT_TIMEOUT_S: Final = 2.0
LEGACY_READ_TIMEOUT_S: Final = 10.0
COHORT_TIMEOUT_S: Final = 0.25
CONNECTIONS_MAX: Final = 64
CONNECT_RETRIES: Final = 2
LEGACY_ATTEMPTS_MAX: Final = 2
#: Request headers passed on to the legacy core; the rest (hop-by-hop, host) are not.
FORWARD_HEADERS: Final = ("content-type", "soapaction", "accept")


@dataclass
class MirrorConfig:
    """Where the legacy core and the candidate are, and the mirror's limits."""

    legacy_url: str
    candidate_url: str | None
    mapping: Mapping
    codes: CodeTable
    token_key: bytes
    admin_token: str | None
    cohort_timeout_s: float = COHORT_TIMEOUT_S


class Mirror:
    """The proxy's state: the two HTTP clients, the shadow worker, the phase watch."""

    def __init__(self, cfg: MirrorConfig, worker: ShadowWorker, phase: PhaseWatch) -> None:
        self.cfg = cfg
        self.worker = worker
        self.phase = phase
        self.metrics = Metrics("cutover_mirror")
        self.breaker = CircuitBreaker()
        limits = httpx.Limits(max_connections=CONNECTIONS_MAX,
                              max_keepalive_connections=CONNECTIONS_MAX)
        self.legacy = httpx.AsyncClient(
            base_url=cfg.legacy_url.rstrip("/"), transport=_transport(limits),
            timeout=httpx.Timeout(LEGACY_READ_TIMEOUT_S, connect=LEGACY_CONNECT_TIMEOUT_S))
        self.candidate = httpx.AsyncClient(
            base_url=(cfg.candidate_url or "http://127.0.0.1:9").rstrip("/"),
            transport=_transport(limits), timeout=httpx.Timeout(cfg.cohort_timeout_s))

    async def proxy(self, request: Request) -> Response:
        started_s = time.perf_counter()
        try:
            body = await read_body(request, REQUEST_BYTES_MAX)
        except BodyTooLarge as exc:
            return Response(str(exc), status_code=413)
        served = await self._from_candidate(request, body)
        if served is not None:
            self.metrics.observe("candidate", time.perf_counter() - started_s)
            return served
        received_at = datetime.now(UTC)
        headers = {k: v for k, v in request.headers.items() if k in FORWARD_HEADERS}
        try:
            reply = await self._call_legacy(request, body, headers)
        except httpx.HTTPError as exc:
            self.worker.count("legacy_unreachable")
            self.metrics.count("errors_total", "kind", f"legacy:{type(exc).__name__}")
            return Response(f"legacy core unreachable: {type(exc).__name__}\n", status_code=502)
        latency_s = time.perf_counter() - started_s
        if request.method == "POST":
            self.worker.offer(Exchange(body, reply.content, reply.status_code,
                                       int(round(latency_s * 1000)), received_at))
        self.metrics.observe("legacy", latency_s)
        return Response(reply.content, status_code=reply.status_code,
                        media_type=reply.headers.get("content-type"))

    async def _call_legacy(self, request: Request, body: bytes,
                           headers: dict[str, str]) -> httpx.Response:
        """Forward the request; a dropped connection is retried only when the mapping says
        the operation is idempotent (the core answers a repeated TxnId with its first reply)."""
        attempts = LEGACY_ATTEMPTS_MAX if self.cfg.mapping.idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self.legacy.request(request.method, request.url.path,
                                                 params=request.url.query or None,
                                                 content=body, headers=headers)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable: the loop returns or raises")

    async def _from_candidate(self, request: Request, body: bytes) -> Response | None:
        """The candidate's answer in the legacy shape for a cohort request, else None."""
        if request.method != "POST" or self.phase.url is None or self.phase.plan is None:
            return None
        try:
            txn = read_request(self.cfg.mapping, body, self.cfg.token_key)
        except EnvelopeError:
            return None  # the legacy core answers what it makes of it
        if not self.phase.answers_with_candidate(txn):
            return None
        reason = await self._ask_candidate(txn)
        if isinstance(reason, Response):
            self.worker.count("served_by_candidate")
            self.metrics.count("answered_total", "by", "candidate")
            return reason
        self.worker.count("fallbacks", reason)
        self.metrics.count("fallbacks_total", "reason", reason)
        return None

    async def _ask_candidate(self, txn: dict[str, Any]) -> Response | str:
        """The rendered reply, or the reason to fall back to the legacy core."""
        if self.cfg.candidate_url is None:
            return "no_candidate"
        try:
            self.breaker.before_call()
        except BreakerOpen:
            return "breaker_open"
        row = json_ready({k: txn.get(k) for k in REQUEST_COLUMNS}
                         | {"card_country": txn.get("card_country")
                            or self.worker.bin_country(str(txn.get("card_bin", "")))})
        try:
            reply = await self.candidate.post("/decide-batch", content=json.dumps(row).encode(),
                                              headers={"Content-Type": JSONL_TYPE})
        except httpx.TimeoutException:
            self.breaker.record(False)
            return "timeout"
        except httpx.HTTPError:
            self.breaker.record(False)
            return "connection_refused"
        self.breaker.record(reply.status_code == 200)
        if reply.status_code != 200:
            return f"http_{reply.status_code}"
        try:
            decision = json.loads(reply.content.splitlines()[0])
            rendered = render_reply(self.cfg.mapping, self.cfg.codes, decision,
                                    str(txn.get("currency")))
        except (ValueError, IndexError, KeyError, EnvelopeError):
            return "unexpected_response"
        return Response(rendered, media_type="text/xml; charset=utf-8")

    def _authorised(self, request: Request) -> bool:
        token = self.cfg.admin_token
        if not token:
            return False  # no token configured: the admin endpoints stay shut
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    async def admin_status(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "forbidden", "detail": "admin token missing or"
                                 " wrong"}, status_code=403)
        return JSONResponse(self.worker.status() | {"phase": self.phase.phase,
                                                    "plan_read_failures":
                                                        self.phase.read_failures})

    async def admin_flush(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "forbidden", "detail": "admin token missing or"
                                 " wrong"}, status_code=403)
        self.worker.flush()
        return JSONResponse({"flush": "requested"})

    async def metrics_text(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def close(self) -> None:
        await self.legacy.aclose()
        await self.candidate.aclose()


def _transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """A pooled transport with Nagle off: headers and body go out as separate writes, and
    with Nagle on the body waits for the peer's delayed ACK (about 40 ms a request here)."""
    # retries applies to failed connects only (the request never left), so it is safe for a
    # non-idempotent operation too; a busy core's full accept backlog refuses a few connects.
    return httpx.AsyncHTTPTransport(limits=limits, retries=CONNECT_RETRIES, socket_options=[
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])


def build_app(mirror: Mirror) -> Starlette:
    """The proxy app; admin routes first, everything else goes to the legacy core."""
    routes = [
        Route("/admin/status", mirror.admin_status, methods=["GET"]),
        Route("/admin/flush", mirror.admin_flush, methods=["POST"]),
        Route("/admin/metrics", mirror.metrics_text, methods=["GET"]),
        Route("/{path:path}", mirror.proxy, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.mirror = mirror
    return app
