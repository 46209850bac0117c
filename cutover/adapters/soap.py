"""The SOAP adapter: one zeep client for any WSDL + mapping file, every failure an outcome.

The replay engine and the recorder need a legacy answer for each transaction, even when the
core times out, faults or sends something hostile. This adapter turns each call into a dict
of canonical fields: on success the mapped response plus the code-table translation, on
failure ``decision="error"`` with a canonical reason and the first words of what happened in
``detail``. It never raises for a call. The reasons:

    timeout, drip_headers, drip_body      the call's total deadline passed (see fetch)
    connection_refused, connection_reset  nobody answered, or the connection broke
    response_too_large, truncated         the size cap, or a body shorter than declared
    http_NNN                              an HTTP error status without a SOAP fault
    soap_fault:CODE                       a SOAP fault (faultcode's local name)
    truncated_xml, malformed_xml          XML that ends early, or is otherwise not XML
    wrong_namespace                       a reply element outside the mapping's namespace
    unsafe_xml                            DTD, entities, XXE, billion laughs: refused unparsed
    unexpected_response                   well-formed but not the reply the mapping expects
    breaker_open, bad_request, bad_http   not called (breaker; unmappable txn); not HTTP

Every call has one total deadline (``SoapOptions.deadline_s``): connect, headers, body and the
retries of an idempotent operation all fit in it. Replies are capped while streaming.

Raises ``ConfigError`` only at construction (bad mapping, unreadable WSDL file), or
``CallFailed`` when a remote WSDL cannot be fetched.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lxml import etree

from cutover.adapters.codes import CodeTable
from cutover.adapters.mapping import Mapping, build_request, load_mapping, read_response
from cutover.adapters.transport import (
    CALL_DEADLINE_S,
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    RESPONSE_BYTES_MAX,
    RETRY_ATTEMPTS_MAX,
    SYSTEM_CLOCK,
    BreakerOpen,
    CallFailed,
    CappedTransport,
    CircuitBreaker,
    Clock,
    Deadline,
    Exchange,
    NetworkExchange,
    Throttle,
    call_with_retries,
)
from cutover.adapters.wsdl_tree import check_mapping_paths
from cutover.errors import ConfigError, UnsafeXML
from cutover.xmlsafe import parse_xml

WORKERS_MAX: Final = 64
THROTTLE_CALLS_PER_S_DEFAULT: Final = 200.0
IN_FLIGHT_MAX_DEFAULT: Final = 8
SOAP_ENV_NS: Final = ("http://schemas.xmlsoap.org/soap/envelope/",
                      "http://www.w3.org/2003/05/soap-envelope")
#: Failures worth retrying on an idempotent operation; a fault or bad XML will not improve.
#: A dripping peer is not retried: it already spent the deadline.
RETRYABLE_REASONS: Final = frozenset({"timeout", "connection_refused", "connection_reset",
                                      "http_502", "http_503", "http_504"})


class CodeLookup:
    """Response code -> (decision, reason, retry); unknown codes are reported, never guessed."""

    def __init__(self, codes: dict[str, dict[str, Any]]) -> None:
        self._codes = codes

    @classmethod
    def for_mapping(cls, mapping: Mapping) -> CodeLookup:
        if mapping.codes:
            return cls(mapping.codes)
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
    """Limits of one adapter; defaults are the named constants of the transport module.

    ``deadline_s`` bounds a whole call (retries included); ``read_timeout_s`` is the longest
    silence between two bytes inside it; ``connect_timeout_s`` is kept for option
    compatibility and bounded by the deadline too.
    """

    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    deadline_s: float = CALL_DEADLINE_S
    response_bytes_max: int = RESPONSE_BYTES_MAX
    calls_per_s: float = THROTTLE_CALLS_PER_S_DEFAULT
    in_flight_max: int = IN_FLIGHT_MAX_DEFAULT
    retry_attempts_max: int = RETRY_ATTEMPTS_MAX
    address: str | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "read_timeout_s", "deadline_s", "calls_per_s",
                     "response_bytes_max", "in_flight_max", "retry_attempts_max"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"legacy option {name}={value!r}: expected a positive,"
                                  " finite number")


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


def _ends_early(body: bytes) -> bool:
    """True when ``body`` is a well-formed start of XML that stops before its end.

    Only called on a body ``parse_xml`` already scanned (no DTD or entity can be in it).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        parser.feed(body)
    except etree.XMLSyntaxError:
        return False
    try:
        parser.close()
    except etree.XMLSyntaxError:
        return True
    return False


def vet_reply(body: bytes, status: int, namespace: str) -> None:
    """Raise ``CallFailed`` unless ``body`` is a safe SOAP envelope of ``namespace`` or a fault."""
    try:
        root = parse_xml(body)
    except UnsafeXML as exc:
        raise CallFailed("unsafe_xml", str(exc)) from exc
    except etree.XMLSyntaxError as exc:
        if status >= 400:
            raise CallFailed(f"http_{status}", str(exc)) from exc
        reason = "truncated_xml" if body.strip() and _ends_early(body) else "malformed_xml"
        raise CallFailed(reason, str(exc)) from exc
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
        raise CallFailed("wrong_namespace", f"reply element {first.tag} is not in {namespace}")


def _fault_reason(exc: Exception) -> str:
    code = str(getattr(exc, "code", "") or "Fault")
    return "soap_fault:" + code.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def error_outcome(txn_id: Any, reason: str, latency_ms: int, detail: str = "") -> dict[str, Any]:
    """The outcome of a call that failed: decision ``error``, its canonical reason, the detail."""
    return {"txn_id": txn_id, "legacy_decision": "error", "legacy_code": "",
            "legacy_reason": reason, "legacy_route": None, "legacy_fee_minor": 0,
            "legacy_latency_ms": latency_ms, "detail": detail or reason}


class SoapAdapter:
    """Calls one WSDL operation per transaction: throttled, breaker-guarded, retried if idempotent.

    Never raises for a call: ``authorize`` returns an outcome dict, errors included. ``exchange``
    carries the HTTP (the network by default; a cassette to record or play back); ``clock``
    drives the throttle, the backoff and the deadline (the breaker brings its own).
    """

    def __init__(self, mapping: Mapping | Path | str, *, wsdl: str | None = None,
                 options: SoapOptions | None = None, breaker: CircuitBreaker | None = None,
                 exchange: Exchange | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
        self.options = options or SoapOptions()
        self.clock = clock
        self.codes = CodeLookup.for_mapping(self.mapping)
        self.throttle = Throttle(self.options.calls_per_s, self.options.in_flight_max,
                                 clock=clock)
        self.breaker = breaker or CircuitBreaker()
        self.transport = CheckedTransport(
            self.mapping.namespace, deadline_s=self.options.deadline_s,
            response_bytes_max=self.options.response_bytes_max, clock=clock,
            exchange=exchange or NetworkExchange(idle_s=self.options.read_timeout_s,
                                                     connect_s=self.options.connect_timeout_s))
        self.client, self._operation = _open_operation(self.mapping, self.transport, wsdl,
                                                       self.options.address)
        check_mapping_paths(self.mapping, self.client, str(wsdl or self.mapping.wsdl))

    def last_exchange(self) -> tuple[bytes | None, bytes | None]:
        """(request XML, response XML) of this thread's last call; None for what was not sent
        or not received."""
        sent = getattr(self.transport.exchanges, "sent", None)
        sent = sent.encode() if isinstance(sent, str) else sent
        return sent, getattr(self.transport.exchanges, "received", None)

    def _deadline(self) -> Deadline:
        return Deadline(self.options.deadline_s, self.clock)

    def _attempt(self, kwargs: dict[str, Any], deadline: Deadline, slot_held: bool) -> Any:
        """One guarded exchange under ``deadline``; the zeep reply or ``CallFailed``.

        Releases the throttle slot it takes (or was handed with ``slot_held``).
        """
        from zeep.exceptions import Error as ZeepError
        from zeep.exceptions import Fault, TransportError, ValidationError, XMLSyntaxError

        if not slot_held:
            self.throttle.acquire(deadline)
        try:
            self.breaker.before_call()
            with self.transport.call_deadline(deadline):
                reply = self._operation(**kwargs)
        except CallFailed as exc:
            self.breaker.record(False, str(exc))
            raise
        except Fault as exc:
            self.breaker.record(False, _fault_reason(exc))
            raise CallFailed(_fault_reason(exc), str(exc)) from exc
        except TransportError as exc:
            self.breaker.record(False, f"http_{exc.status_code}")
            raise CallFailed(f"http_{exc.status_code}", str(exc)) from exc
        except XMLSyntaxError as exc:
            self.breaker.record(False, "malformed_xml")
            raise CallFailed("malformed_xml", str(exc)) from exc
        except ValidationError as exc:
            # zeep refused to build the request (a required element unmapped, a wrong type):
            # the core never saw it; zeep's message names the element path (issue 15). It is
            # recorded so a half-open probe is released, and an open breaker quotes it.
            self.breaker.record(False, f"bad_request: {exc}")
            raise CallFailed("bad_request", str(exc)) from exc
        except (ZeepError, ValueError, TypeError) as exc:
            self.breaker.record(False, "unexpected_response")
            raise CallFailed("unexpected_response", str(exc)) from exc
        finally:
            self.throttle.release()
        self.breaker.record(True)
        return reply

    def _read(self, txn: dict[str, Any], reply: Any) -> dict[str, Any]:
        try:
            return read_response(self.mapping, reply, str(txn.get("currency")))
        except (ValueError, ArithmeticError) as exc:
            raise CallFailed("unexpected_response", str(exc)) from exc

    def call_raw(self, txn: dict[str, Any]) -> dict[str, Any]:
        """One guarded call; the mapped response fields, or raise ``CallFailed``/``BreakerOpen``."""
        self.transport.exchanges.sent = self.transport.exchanges.received = None
        kwargs = build_request(self.mapping, txn)
        # Waiting in our own throttle is not the core's time: the deadline starts after it.
        self.throttle.acquire()
        return self._read(txn, self._attempt(kwargs, self._deadline(), slot_held=True))

    def _call_with_retry(self, txn: dict[str, Any]) -> dict[str, Any]:
        kwargs = build_request(self.mapping, txn)
        attempts = self.options.retry_attempts_max if self.mapping.idempotent else 1
        self.throttle.acquire()
        deadline = self._deadline()
        slot_held = [True]

        def attempt() -> Any:
            # The first attempt uses the slot taken above; a retry queues again, in the deadline.
            held, slot_held[0] = slot_held[0], False
            return self._attempt(kwargs, deadline, held)

        reply = call_with_retries(attempt, deadline, attempts_max=attempts,
                                  retryable=RETRYABLE_REASONS, clock=self.clock)
        return self._read(txn, reply)

    def authorize(self, txn: dict[str, Any]) -> dict[str, Any]:
        """Return the canonical outcome of ``txn``; every failure is an ``error`` outcome."""
        started_s = self.clock.monotonic()
        try:
            raw = self._call_with_retry(txn)
        except CallFailed as exc:
            return error_outcome(txn.get("txn_id"), exc.reason, self._ms_since(started_s),
                                 str(exc))
        except BreakerOpen as exc:
            return error_outcome(txn.get("txn_id"), exc.reason, self._ms_since(started_s),
                                 str(exc))
        except (KeyError, ValueError) as exc:
            # A transaction we cannot express in the mapping (missing field, unknown currency)
            # never reached the core: an outcome, with the reason, not a crash.
            return error_outcome(txn.get("txn_id"), "bad_request", self._ms_since(started_s),
                                 str(exc))
        code = raw.get("response_code") or ""
        decision, reason = self.codes.lookup(code)
        return {"txn_id": txn.get("txn_id"), "legacy_decision": decision, "legacy_code": code,
                "legacy_reason": reason, "legacy_route": raw.get("route"),
                "legacy_fee_minor": int(raw.get("fee_minor") or 0),
                "legacy_latency_ms": self._ms_since(started_s)}

    def authorize_many(self, txns: list[dict[str, Any]], workers: int = 4) -> list[dict[str, Any]]:
        """Authorise on a bounded thread pool; results come back in input order."""
        workers = max(1, min(workers, WORKERS_MAX))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.authorize, txns))

    def close(self) -> None:
        self.transport.close()

    def _ms_since(self, started_s: float) -> int:
        return int(round((self.clock.monotonic() - started_s) * 1000))


def _open_operation(mapping: Mapping, transport: CappedTransport, wsdl: str | None,
                    address: str | None) -> tuple[Any, Any]:
    """The zeep client and its bound operation; a bad WSDL or operation is a ``ConfigError``."""
    import zeep
    from zeep.exceptions import Error as ZeepError

    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True,
                             forbid_external=True, xml_huge_tree=False)
    source = wsdl or mapping.wsdl
    try:
        client = zeep.Client(source, transport=transport, settings=settings)
        service = client.service
        if address:
            binding = next(iter(client.wsdl.bindings))
            service = client.create_service(binding, address)
        return client, service[mapping.operation]
    except CallFailed as exc:
        raise CallFailed(exc.reason, f"WSDL {source}: {exc.detail or exc}") from exc
    except (ZeepError, OSError, AttributeError, KeyError, ValueError) as exc:
        raise ConfigError(f"WSDL {source} / operation {mapping.operation!r}: {exc}") from exc
