"""The SOAP adapter: one zeep client for any WSDL + mapping file, every failure an outcome.

The replay engine and the recorder need a legacy answer for each transaction, even when the
core times out, faults or sends something hostile. This adapter turns each call into a dict
of canonical fields: on success the mapped response plus the code-table translation, on
failure ``decision="error"`` with a canonical reason (``timeout``, ``http_503``,
``soap_fault:Server``, ``unsafe_xml``, ``breaker_open`` ...). It never raises for a call.

Raises ``ConfigError`` only at construction (bad mapping, unreadable WSDL).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cutover.adapters.mapping import Mapping, build_request, load_mapping, read_response
from cutover.adapters.transport import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    RESPONSE_BYTES_MAX,
    RETRY_ATTEMPTS_MAX,
    BreakerOpen,
    CallFailed,
    CappedTransport,
    CircuitBreaker,
    Throttle,
    backoff_wait_s,
)
from cutover.errors import ConfigError, UnsafeXML

WORKERS_MAX: Final = 64
THROTTLE_CALLS_PER_S_DEFAULT: Final = 200.0
IN_FLIGHT_MAX_DEFAULT: Final = 8
SOAP_ENV_NS: Final = ("http://schemas.xmlsoap.org/soap/envelope/",
                      "http://www.w3.org/2003/05/soap-envelope")
#: Failures worth retrying on an idempotent operation; a fault or bad XML will not improve.
RETRYABLE_REASONS: Final = frozenset({"timeout", "connection_refused", "http_502", "http_503",
                                      "http_504"})


class CodeLookup:
    """Response code -> (decision, reason, retry); unknown codes are reported, never guessed."""

    def __init__(self, codes: dict[str, dict[str, Any]]) -> None:
        self._codes = codes

    @classmethod
    def for_mapping(cls, mapping: Mapping) -> CodeLookup:
        if mapping.codes:
            return cls(mapping.codes)
        from cutover.adapters.codes import CodeTable

        return _TableLookup(CodeTable.load(mapping.code_table))

    def lookup(self, code: str) -> tuple[str, str]:
        info = self._codes.get(code)
        if info is None:
            return "error", "unknown_code"
        return info["decision"], info["reason"]


class _TableLookup(CodeLookup):
    def __init__(self, table: Any) -> None:
        self._table = table

    def lookup(self, code: str) -> tuple[str, str]:
        info = self._table.lookup(code)
        return info.decision, info.reason


@dataclass
class SoapOptions:
    """Limits of one adapter; defaults are the named constants of the transport module."""

    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    response_bytes_max: int = RESPONSE_BYTES_MAX
    calls_per_s: float = THROTTLE_CALLS_PER_S_DEFAULT
    in_flight_max: int = IN_FLIGHT_MAX_DEFAULT
    retry_attempts_max: int = RETRY_ATTEMPTS_MAX
    address: str | None = None


class CheckedTransport(CappedTransport):
    """Capped transport that also vets each reply through cutover.xmlsafe before zeep sees it."""

    def __init__(self, namespace: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace
        # The last exchange of each thread, for `soap try` and calibration (issue 15 hook):
        # a reference to bytes already held, so the simulated-core path pays nothing.
        self.exchanges = threading.local()

    def post(self, address: str, message: Any, headers: dict) -> Any:
        self.exchanges.sent, self.exchanges.received = message, None
        response = super().post(address, message, headers)
        self.exchanges.received = response.content
        vet_reply(response.content, response.status_code, self.namespace)
        return response


def vet_reply(body: bytes, status: int, namespace: str) -> None:
    """Raise ``CallFailed`` unless ``body`` is a safe SOAP envelope of ``namespace`` or a fault."""
    from lxml import etree

    from cutover.xmlsafe import parse_xml
    try:
        root = parse_xml(body)
    except UnsafeXML as exc:
        raise CallFailed("unsafe_xml", str(exc)) from exc
    except etree.XMLSyntaxError as exc:
        raise CallFailed(f"http_{status}" if status >= 400 else "malformed_xml", str(exc)) from exc
    ns, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local != "Envelope" or ns not in SOAP_ENV_NS:
        raise CallFailed(f"http_{status}" if status >= 400 else "unexpected_response",
                         f"root element {root.tag}")
    body_el = next((el for el in root if isinstance(el.tag, str) and el.tag.endswith("}Body")),
                   None)
    children = [el for el in body_el if isinstance(el.tag, str)] if body_el is not None else []
    first = children[0] if children else None
    if first is None:
        raise CallFailed("unexpected_response", "SOAP Body is empty")
    if first.tag.endswith("}Fault"):
        return
    if status >= 400:
        raise CallFailed(f"http_{status}", "HTTP error without a SOAP fault")
    if not first.tag.startswith("{" + namespace + "}"):
        raise CallFailed("unexpected_response", f"reply element {first.tag} is not in {namespace}")


def _fault_reason(exc: Exception) -> str:
    code = str(getattr(exc, "code", "") or "Fault")
    return "soap_fault:" + code.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def error_outcome(txn_id: Any, reason: str, latency_ms: int) -> dict[str, Any]:
    """The outcome of a call that failed: decision ``error`` with its canonical reason."""
    return {"txn_id": txn_id, "legacy_decision": "error", "legacy_code": "",
            "legacy_reason": reason,
            "legacy_route": None, "legacy_fee_minor": 0, "legacy_latency_ms": latency_ms}


class SoapAdapter:
    """Calls one WSDL operation per transaction: throttled, breaker-guarded, retried if idempotent.

    Never raises for a call: ``authorize`` returns an outcome dict, errors included.
    """

    def __init__(self, mapping: Mapping | Path | str, *, wsdl: str | None = None,
                 options: SoapOptions | None = None, breaker: CircuitBreaker | None = None) -> None:
        import zeep
        from zeep.exceptions import Error as ZeepError

        self.mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
        self.options = options or SoapOptions()
        self.codes = CodeLookup.for_mapping(self.mapping)
        self.throttle = Throttle(self.options.calls_per_s, self.options.in_flight_max)
        self.breaker = breaker or CircuitBreaker()
        self.transport = CheckedTransport(
            self.mapping.namespace, connect_timeout_s=self.options.connect_timeout_s,
            read_timeout_s=self.options.read_timeout_s,
            response_bytes_max=self.options.response_bytes_max)
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True, xml_huge_tree=False)
        source = wsdl or self.mapping.wsdl
        try:
            self.client = zeep.Client(source, transport=self.transport, settings=settings)
            service = self.client.service
            if self.options.address:
                binding = next(iter(self.client.wsdl.bindings))
                service = self.client.create_service(binding, self.options.address)
            self._operation = service[self.mapping.operation]
        except (ZeepError, OSError, AttributeError, KeyError, ValueError) as exc:
            raise ConfigError(f"WSDL {source} / operation {self.mapping.operation!r}: {exc}"
                              ) from exc
        from cutover.adapters.wsdl_tree import check_mapping_paths
        check_mapping_paths(self.mapping, self.client, str(source))

    def last_exchange(self) -> tuple[bytes | None, bytes | None]:
        """(request XML, response XML) of this thread's last call; None for what was not sent
        or not received."""
        sent = getattr(self.transport.exchanges, "sent", None)
        sent = sent.encode() if isinstance(sent, str) else sent
        return sent, getattr(self.transport.exchanges, "received", None)

    def call_raw(self, txn: dict[str, Any]) -> dict[str, Any]:
        """One guarded call; the mapped response fields, or raise ``CallFailed``/``BreakerOpen``."""
        from zeep.exceptions import Error as ZeepError
        from zeep.exceptions import Fault, TransportError, ValidationError, XMLSyntaxError

        self.transport.exchanges.sent = self.transport.exchanges.received = None
        kwargs = build_request(self.mapping, txn)
        self.breaker.before_call()
        with self.throttle:
            try:
                reply = self._operation(**kwargs)
            except CallFailed:
                self.breaker.record(False)
                raise
            except Fault as exc:
                self.breaker.record(False)
                raise CallFailed(_fault_reason(exc), str(exc)) from exc
            except TransportError as exc:
                self.breaker.record(False)
                raise CallFailed(f"http_{exc.status_code}", str(exc)) from exc
            except XMLSyntaxError as exc:
                self.breaker.record(False)
                raise CallFailed("malformed_xml", str(exc)) from exc
            except ValidationError as exc:
                # zeep refused to build the request (a required element unmapped, a wrong
                # type): the core never saw it; zeep's message names the element path.
                raise CallFailed("bad_request", str(exc)) from exc
            except (ZeepError, ValueError, TypeError) as exc:
                self.breaker.record(False)
                raise CallFailed("unexpected_response", str(exc)) from exc
        self.breaker.record(True)
        try:
            return read_response(self.mapping, reply, str(txn.get("currency")))
        except (ValueError, ArithmeticError) as exc:
            raise CallFailed("unexpected_response", str(exc)) from exc

    def _call_with_retry(self, txn: dict[str, Any]) -> dict[str, Any]:
        attempts = self.options.retry_attempts_max if self.mapping.idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                return self.call_raw(txn)
            except CallFailed as exc:
                if attempt == attempts or exc.reason not in RETRYABLE_REASONS:
                    raise
                time.sleep(backoff_wait_s(attempt))
        raise AssertionError("unreachable: the retry loop returns or raises")

    def authorize(self, txn: dict[str, Any]) -> dict[str, Any]:
        """Return the canonical outcome of ``txn``; every failure is an ``error`` outcome."""
        started_s = time.monotonic()
        try:
            raw = self._call_with_retry(txn)
        except (CallFailed, BreakerOpen) as exc:
            return error_outcome(txn.get("txn_id"), exc.reason, _ms_since(started_s)) | {
                "detail": str(exc)}
        except (KeyError, ValueError) as exc:
            # A transaction we cannot express in the mapping (missing field, unknown currency)
            # never reached the core: an outcome, with the reason, not a crash.
            return error_outcome(txn.get("txn_id"), "bad_request", _ms_since(started_s)) | {
                "detail": str(exc)}
        code = raw.get("response_code") or ""
        decision, reason = self.codes.lookup(code)
        return {"txn_id": txn.get("txn_id"), "legacy_decision": decision, "legacy_code": code,
                "legacy_reason": reason, "legacy_route": raw.get("route"),
                "legacy_fee_minor": int(raw.get("fee_minor") or 0),
                "legacy_latency_ms": _ms_since(started_s)}

    def authorize_many(self, txns: list[dict[str, Any]], workers: int = 4) -> list[dict[str, Any]]:
        """Authorise on a bounded thread pool; results come back in input order."""
        workers = max(1, min(workers, WORKERS_MAX))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.authorize, txns))

    def close(self) -> None:
        self.transport.session.close()


def _ms_since(started_s: float) -> int:
    return int(round((time.monotonic() - started_s) * 1000))
