"""The ASGI app of ``cutover serve``: the candidate port over HTTP (docs/openapi.yaml).

Routes: ``POST /decide`` (one transaction as JSON, one decision back), ``POST /decide-batch``
(Arrow IPC stream or JSON lines, same format back), ``POST /sessions`` and
``POST /sessions/{id}/{warm|labels|outcomes}`` (a replay's own stack and what it observes),
``GET /healthz`` and ``GET /metrics`` (Prometheus text). The stack's work runs on the thread
pool, one call per session at a time; the event loop only moves bytes. Every failure is a
JSON body ``{"error": kind, "detail": text}`` with a 4xx/5xx status, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import pyarrow as pa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutover.adapters.candidate import CandidateSide, error_text
from cutover.adapters.wire import (
    ARROW_TYPE,
    JSONL_TYPE,
    WireError,
    decisions_table,
    from_ipc,
    json_ready,
    parse_jsonl,
    request_table,
    rows_to_table,
    to_ipc,
    to_jsonl,
    txn_row,
)
from cutover.serve.metrics import Metrics
from cutover.serve.sessions import Session, SessionError, Sessions

#: A batch body past this is refused while it arrives (a 65,536-row Arrow batch is ~10 MiB).
REQUEST_BYTES_MAX: Final = 64 * 1024 * 1024
SESSION_HEADER: Final = "x-cutover-session"
SEQ_HEADER: Final = "x-cutover-seq"
OBSERVE_KINDS: Final = ("warm", "labels", "outcomes")


class BodyTooLarge(ValueError):
    """The request body passed ``REQUEST_BYTES_MAX``."""


async def read_body(request: Request, bytes_max: int = REQUEST_BYTES_MAX) -> bytes:
    """The body, refused as soon as it passes ``bytes_max``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > bytes_max:
        raise BodyTooLarge(f"body of {declared} bytes is over {bytes_max}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > bytes_max:
            raise BodyTooLarge(f"body passed {bytes_max} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _failure(kind: str, detail: str, status: int) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status)


class Service:
    """The sessions, the metrics and the handlers that use them."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.metrics = Metrics("cutover_serve")
        self.model_version = CandidateSide(sessions.live.stack).model_version or "unknown"
        self.metrics.info["model_version"] = self.model_version

    def _session(self, request: Request) -> tuple[Session, int | None]:
        seq_text = request.headers.get(SEQ_HEADER)
        if seq_text is not None and not seq_text.isdigit():
            raise SessionError(f"{SEQ_HEADER} {seq_text!r}: expected a non-negative integer")
        session = self.sessions.get(request.path_params.get("sid")
                                    or request.headers.get(SESSION_HEADER))
        return session, int(seq_text) if seq_text is not None else None

    def _count_decisions(self, decisions: pa.Table) -> None:
        for value in decisions["decision"].value_counts().to_pylist():
            self.metrics.count("decisions_total", "decision", str(value["values"]),
                               int(value["counts"]))

    async def decide(self, request: Request) -> Response:
        obj = json.loads(await read_body(request, 1024 * 1024) or b"null")
        table = rows_to_table([txn_row(obj)])
        session, seq = self._session(request)
        decision = await run_in_threadpool(session.run, seq,
                                           lambda stack: _decide_one(stack, table))
        self.metrics.count("decisions_total", "decision", str(decision["decision"]))
        return JSONResponse(json_ready(decision))

    async def decide_batch(self, request: Request) -> Response:
        body = await read_body(request)
        arrow = request.headers.get("content-type", "").startswith(ARROW_TYPE)
        table = request_table(from_ipc(body)) if arrow else parse_jsonl(body)
        session, seq = self._session(request)
        decisions = await run_in_threadpool(session.run, seq,
                                            lambda stack: _decide_table(stack, table))
        self._count_decisions(decisions)
        if arrow:
            return Response(to_ipc(decisions), media_type=ARROW_TYPE)
        return Response(to_jsonl(decisions), media_type=JSONL_TYPE)

    async def open_session(self, request: Request) -> Response:
        sid = await run_in_threadpool(self.sessions.open)
        return JSONResponse({"session": sid, "model_version": self.model_version})

    async def close_session(self, request: Request) -> Response:
        closed = self.sessions.close(request.path_params["sid"])
        return JSONResponse({"closed": closed}, status_code=200 if closed else 404)

    async def observe(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in OBSERVE_KINDS:
            return _failure("not_found", f"unknown kind {kind!r}; allowed: {OBSERVE_KINDS}", 404)
        table = from_ipc(await read_body(request))
        session, seq = self._session(request)
        await run_in_threadpool(session.run, seq, lambda stack: _observe(stack, kind, table))
        return JSONResponse({"rows": table.num_rows})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model_version": self.model_version})

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    def guarded(self, route: str, handler: Callable[[Request], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` with latency recorded and every failure turned into a JSON error."""
        async def run(request: Request) -> Response:
            started_s = time.perf_counter()
            try:
                response = await handler(request)
            except (WireError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                response = _failure("bad_request", str(exc)[:300], 400)
            except BodyTooLarge as exc:
                response = _failure("too_large", str(exc), 413)
            except SessionError as exc:
                response = _failure("session", str(exc), 409)
            except Exception as exc:  # the stack's fault: a finding for the caller, not a crash
                response = _failure("candidate_failed", error_text(exc), 500)
            if response.status_code >= 400:
                self.metrics.count("errors_total", "kind",
                                   json.loads(bytes(response.body))["error"])
            self.metrics.observe(route, time.perf_counter() - started_s)
            return response
        return run


def _decide_table(stack: Any, table: pa.Table) -> pa.Table:
    side = CandidateSide(stack)
    result = side.decide(table)
    if result.error is not None:
        raise RuntimeError(result.error)
    return decisions_table(result.decisions)


def _decide_one(stack: Any, table: pa.Table) -> dict[str, Any]:
    decide = getattr(stack, "decide", None)
    if decide is None:
        return _decide_table(stack, table).to_pylist()[0]
    row = table.to_pylist()[0]
    return decisions_table(pa.Table.from_pylist([decide(row)])).to_pylist()[0]


def _observe(stack: Any, kind: str, table: pa.Table) -> None:
    """Pass what the client's CandidateSide passed, to the same method of this stack."""
    fn = getattr(stack, {"warm": "warm", "labels": "observe_labels",
                         "outcomes": "observe_outcomes"}[kind], None)
    if fn is not None and table.num_rows:
        fn(table.combine_chunks().to_batches()[0] if kind == "warm" else table)


def build_app(factory: Callable[[], Any]) -> Starlette:
    """The app around a stack factory (called once for the live session, once per session)."""
    service = Service(Sessions(factory))
    routes = [
        Route("/decide", service.guarded("/decide", service.decide), methods=["POST"]),
        Route("/decide-batch", service.guarded("/decide-batch", service.decide_batch),
              methods=["POST"]),
        Route("/sessions", service.guarded("/sessions", service.open_session), methods=["POST"]),
        Route("/sessions/{sid}", service.guarded("/sessions", service.close_session),
              methods=["DELETE"]),
        Route("/sessions/{sid}/{kind}", service.guarded("/observe", service.observe),
              methods=["POST"]),
        Route("/healthz", service.guarded("/healthz", service.healthz), methods=["GET"]),
        Route("/metrics", service.metrics_text, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.service = service
    return app
