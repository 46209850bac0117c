"""The simulated legacy payment core, served as a real SOAP 1.1 service over HTTP.

The demo and the integration tests need a legacy core that behaves like one on the wire:
WSDL, document/literal envelopes, faults, and a little noise (auth codes, trace ids, response
times) that calibration must learn to ignore. Decisions come from ``legacy_rules.decide_one``,
the same function the traffic generator uses, so live and recorded outcomes agree.

Card numbers are used only as the velocity key, and only as a keyed hash with a per-process
random key: the PAN is never stored, logged or echoed. Request logging is off.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import socketserver
import string
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lxml import etree

from cutover.paths import fixtures_dir
from cutover.sim import legacy_soap as soap
from cutover.sim.legacy_rules import (
    CoreConfig,
    VelocityCounter,
    card_country_of,
    decide_one,
    load_core_config,
)
from cutover.xmlsafe import parse_xml

log = logging.getLogger(__name__)

WSDL_RELPATH: Final = Path("wsdl") / "legacy_auth.wsdl"
WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP_PATH: Final = "/soap"
AUTH_CODE_CHARS: Final = 6
_AUTH_ALPHABET: Final = string.ascii_uppercase + string.digits
#: Idempotency memory: outcomes of this many txn_ids are remembered (oldest forgotten first).
OUTCOMES_MAX: Final = 1_000_000
#: Bytes of an oversized or refused body read and thrown away so the client sees the fault.
DRAIN_BYTES_MAX: Final = 8 * 1024 * 1024
DRAIN_CHUNK_BYTES: Final = 64 * 1024
#: A client that sends nothing for this long is dropped, so a stalled socket frees its thread.
SOCKET_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 5.0


@dataclass
class CoreState:
    """The core's memory: velocity, decided outcomes by txn_id, merchant balances."""

    cfg: CoreConfig
    velocity: VelocityCounter = field(default_factory=VelocityCounter)
    outcomes: OrderedDict[str, tuple[str, dict[str, Any]]] = field(default_factory=OrderedDict)
    balances_minor: dict[tuple[str, str], int] = field(default_factory=dict)
    card_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def card_ref(self, card_number: str) -> str:
        """Keyed hash of a PAN or token: the only form in which a card is kept."""
        return hmac.new(self.card_key, card_number.encode(), hashlib.sha256).hexdigest()


def _fingerprint(req: dict[str, Any], card_ref: str) -> str:
    fields = [str(v) for k, v in sorted(req.items()) if k != "card_number"]
    return hashlib.sha256("\x1f".join([*fields, card_ref]).encode()).hexdigest()


def authorize(state: CoreState, req: dict[str, Any]) -> dict[str, Any]:
    """Decide one authorization, idempotent on txn_id; returns the response elements."""
    card_ref = state.card_ref(req["card_number"])
    fingerprint = _fingerprint(req, card_ref)
    with state.lock:
        known = state.outcomes.get(req["txn_id"])
        if known is not None and known[0] != fingerprint:
            raise soap.SoapClientError(
                f"TxnId {req['txn_id']} was already used for a different request")
        if known is None:
            velocity = state.velocity.count(card_ref, req["ts_us"], req["txn_id"])
            txn = {**req, "card_country": card_country_of([req["card_bin"]], state.cfg)[0]}
            outcome = decide_one(txn, velocity, state.cfg)
            state.outcomes[req["txn_id"]] = (fingerprint, outcome)
            if len(state.outcomes) > OUTCOMES_MAX:
                state.outcomes.popitem(last=False)
            if outcome["legacy_decision"] == "approve":
                key = (req["merchant_id"], req["currency"])
                state.balances_minor[key] = state.balances_minor.get(key, 0) + req["amount_minor"]
        else:
            outcome = known[1]
    approved = outcome["legacy_decision"] == "approve"
    return {
        "ResponseCode": outcome["legacy_code"],
        "AuthCode": "".join(secrets.choice(_AUTH_ALPHABET) for _ in range(AUTH_CODE_CHARS))
        if approved else "",
        "RouteCode": outcome["legacy_route"],
        "FeeAmount": outcome["legacy_fee_minor"],
        "TraceId": secrets.token_hex(8),
        "ResponseTime": soap.utc_now_text(),
    }


def balance(state: CoreState, merchant_id: str, currency: str) -> dict[str, Any]:
    """Total approved amount of a merchant in a currency, in this server's memory."""
    with state.lock:
        amount_minor = state.balances_minor.get((merchant_id, currency), 0)
    return {"Balance": amount_minor, "AsOf": soap.utc_now_text()}


def handle_soap(state: CoreState, body: bytes) -> tuple[int, bytes]:
    """One POST body -> (HTTP status, SOAP reply). Never raises: failures become faults."""
    try:
        operation, raw = soap.parse_request(body)
        if operation == "AuthorizePayment":
            values = authorize(state, soap.validate_auth(raw))
        else:
            values = balance(state, *soap.validate_balance(raw))
        return 200, soap.response(operation, values)
    except soap.SoapClientError as exc:
        return 500, soap.fault("Client", str(exc))
    except Exception as exc:  # the service must keep answering whatever one request does
        log.error("legacy core internal error: %s", type(exc).__name__)
        return 500, soap.fault("Server", "internal error of the legacy core")


def wsdl_for(url: str) -> bytes:
    """The WSDL with its soap:address pointing at ``url``."""
    root = parse_xml((fixtures_dir() / WSDL_RELPATH).read_bytes())
    for address in root.iter(f"{{{WSDL_NS}}}address"):
        address.set("location", url)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, or None (after draining) when it is missing or too large."""
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if 0 <= length <= soap.REQUEST_BYTES_MAX:
        return stream.read(length)
    remaining = min(max(length, 0), DRAIN_BYTES_MAX)
    while remaining > 0 and stream.read(min(DRAIN_CHUNK_BYTES, remaining)):
        remaining -= DRAIN_CHUNK_BYTES
    return None


def make_app(state: CoreState, url: str) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: GET /soap?wsdl or /wsdl serves the WSDL; POST /soap answers SOAP."""
    wsdl = wsdl_for(url)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        xml_type = [("Content-Type", "text/xml; charset=utf-8")]
        if method == "GET" and (path == "/wsdl" or (path == SOAP_PATH and
                                                  environ.get("QUERY_STRING", "") == "wsdl")):
            start_response("200 OK", xml_type)
            return [wsdl]
        if method == "POST" and path == SOAP_PATH:
            body = _read_body(environ)
            if body is None:
                status, reply = 500, soap.fault(
                    "Client", f"request body missing or over {soap.REQUEST_BYTES_MAX} bytes")
            else:
                status, reply = handle_soap(state, body)
            start_response("200 OK" if status == 200 else "500 Internal Server Error",
                           xml_type)
            return [reply]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: POST /soap, GET /soap?wsdl or /wsdl\n"]

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    """No access log: URLs carry nothing secret, but a quiet core keeps test output clean."""

    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@dataclass
class RunningCore:
    """A core serving in a daemon thread; ``stop()`` shuts it down and frees the port."""

    url: str
    wsdl_url: str
    port: int
    state: CoreState
    _server: WSGIServer
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=STOP_TIMEOUT_S)


def _bind(host: str, port: int, cfg: CoreConfig | None) -> tuple[WSGIServer, CoreState, str]:
    state = CoreState(cfg=cfg if cfg is not None else load_core_config())
    server = make_server(host, port, lambda e, s: [], server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    url = f"http://{host}:{server.server_port}{SOAP_PATH}"
    server.set_app(make_app(state, url))
    return server, state, url


def start_server(host: str = "127.0.0.1", port: int = 0,
                 cfg: CoreConfig | None = None) -> RunningCore:
    """Serve the core on ``host:port`` (0 = a free port) in a daemon thread."""
    server, state, url = _bind(host, port, cfg)
    thread = threading.Thread(target=server.serve_forever, name="legacy-core", daemon=True)
    thread.start()
    return RunningCore(url=url, wsdl_url=f"{url}?wsdl", port=server.server_port, state=state,
                       _server=server, _thread=thread)


def serve_forever(host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve in the calling thread until interrupted; ``on_ready`` gets the WSDL URL."""
    server, _, url = _bind(host, port, None)
    try:
        if on_ready is not None:
            on_ready(f"{url}?wsdl")
        server.serve_forever()
    finally:
        server.server_close()
