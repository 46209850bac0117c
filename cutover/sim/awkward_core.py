"""A second simulated core of a deliberately awkward shape, served as a real SOAP service.

Issue 15 asks that a core unlike the first be wired with files alone. This one speaks
``cutover/fixtures/wsdl/awkward_core.wsdl``: a nested header with required message ids,
amounts in major units, ISO 4217 / ISO 3166 numeric codes, one-letter channels, a status
letter plus a three-digit code, and two reply elements that change on every call
(``Header/ServerMsgId``, ``Header/ProcessedAt``). Tests and docs/mapping.md run it on
127.0.0.1; ``cutover sim awkward`` serves it by hand.

Its decisions are a pure function of the request (so the same request always gets the same
answer, and the core is idempotent on TxnRef). A request that misses a required element gets
a SOAP Client fault naming it, the way a real core would refuse. Card tokens are only checked
for shape, never stored; request logging is off.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from lxml import etree

from cutover.adapters.valuemaps import resolve_map
from cutover.domain import CURRENCY_EXPONENTS
from cutover.paths import fixtures_dir
from cutover.xmlsafe import parse_xml

NS: Final = "urn:awkward:cardauth:v3"
SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
PATH: Final = "/awkward"
REQUEST_BYTES_MAX: Final = 64 * 1024
STOP_TIMEOUT_S: Final = 5.0
REQUIRED: Final = ("Header/MsgId", "Header/CorrelationRef", "Header/Version", "Header/SentAt",
                   "Payment/TxnRef", "Payment/Amount", "Payment/CcyNum", "Payment/Channel",
                   "Payment/Mcc", "Merchant/Id", "Customer/Id", "Card/Token", "Card/Bin")
CHANNEL_LETTERS: Final = ("E", "P", "M", "R")
VERSION: Final = "3.1"
#: Above this many major units the core declines for funds (D-051).
FUNDS_LIMIT_MAJOR: Final = Decimal(2000)
#: Mail/telephone orders from this many major units go to review (R-100).
MOTO_REVIEW_MAJOR: Final = Decimal(500)
#: Card BINs the core treats as compromised (D-059).
FRAUD_BIN_PREFIX: Final = "5300"
FEE_BASIS_POINTS: Final = 120


class ClientFault(ValueError):
    """The request is wrong; the message names the element."""


def _text(op: etree._Element, path: str) -> str | None:
    node = op
    for name in path.split("/"):
        node = node.find(f"{{{NS}}}{name}")
        if node is None:
            return None
    return (node.text or "").strip() or None


def decide(op: etree._Element, currencies: dict[str, str], exponents: dict[str, int]
           ) -> dict[str, dict[str, str]]:
    """The reply elements for one Authorise request; ClientFault naming a bad element."""
    missing = [p for p in REQUIRED if _text(op, p) is None]
    if missing:
        raise ClientFault(f"Missing element {missing[0]}")
    if _text(op, "Header/Version") != VERSION:
        raise ClientFault(f"Header/Version must be {VERSION}")
    ccy_num = str(_text(op, "Payment/CcyNum"))
    if ccy_num not in currencies:
        raise ClientFault(f"Payment/CcyNum {ccy_num!r} is not an ISO 4217 numeric code")
    if _text(op, "Payment/Channel") not in CHANNEL_LETTERS:
        raise ClientFault(f"Payment/Channel must be one of {', '.join(CHANNEL_LETTERS)}")
    exponent = exponents[currencies[ccy_num]]
    try:
        amount = Decimal(str(_text(op, "Payment/Amount")))
    except InvalidOperation:
        raise ClientFault("Payment/Amount is not a decimal") from None
    if amount <= 0 or amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise ClientFault(f"Payment/Amount must be positive with at most {exponent} decimals")
    status, code = "A", "000"
    if amount > FUNDS_LIMIT_MAJOR:
        status, code = "D", "051"
    elif str(_text(op, "Card/Bin")).startswith(FRAUD_BIN_PREFIX):
        status, code = "D", "059"
    elif _text(op, "Payment/Channel") == "M" and amount >= MOTO_REVIEW_MAJOR:
        status, code = "R", "100"
    fee = (amount * FEE_BASIS_POINTS / 10_000).quantize(Decimal(1).scaleb(-exponent),
                                                        rounding="ROUND_DOWN")
    outcome = {"Status": status, "Code": code, "Fee": str(fee), "FeeCcyNum": ccy_num}
    if status == "A":
        outcome["Route"] = "GW_EU" if ccy_num == "978" else "GW_GLOBAL"
    header = {"MsgId": str(_text(op, "Header/MsgId")), "ServerMsgId": str(uuid.uuid4()),
              "ProcessedAt": datetime.now(UTC).isoformat(timespec="microseconds")}
    return {"Header": header, "Outcome": outcome}


def _envelope(body: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    etree.SubElement(env, f"{{{SOAP_NS}}}Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def reply(parts: dict[str, dict[str, str]]) -> bytes:
    """The AuthoriseResult envelope."""
    root = etree.Element(f"{{{NS}}}AuthoriseResult", nsmap={"a": NS})
    for group, values in parts.items():
        node = etree.SubElement(root, f"{{{NS}}}{group}")
        for name in ("MsgId", "ServerMsgId", "ProcessedAt", "Status", "Code", "Route", "Fee",
                     "FeeCcyNum"):
            if name in values:
                etree.SubElement(node, f"{{{NS}}}{name}").text = values[name]
    return _envelope(root)


def fault(code: str, message: str) -> bytes:
    """A SOAP 1.1 fault."""
    node = etree.Element(f"{{{SOAP_NS}}}Fault")
    etree.SubElement(node, "faultcode").text = f"soap:{code}"
    etree.SubElement(node, "faultstring").text = message
    return _envelope(node)


@dataclass
class AwkwardCore:
    """A running awkward core: ``url`` to post to, ``wsdl_url`` to read; ``calls`` counted."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    calls: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}?wsdl"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(STOP_TIMEOUT_S)


def _wsdl_bytes(url: str) -> bytes:
    text = (fixtures_dir() / "wsdl" / "awkward_core.wsdl").read_text(encoding="utf-8")
    return text.replace("http://127.0.0.1:9/awkward", url).encode()


def _answer(body: bytes, currencies: dict[str, str], exponents: dict[str, int]
            ) -> tuple[int, bytes]:
    try:
        root = parse_xml(body, bytes_max=REQUEST_BYTES_MAX)
        soap_body = root.find(f"{{{SOAP_NS}}}Body")
        op = soap_body.find(f"{{{NS}}}Authorise") if soap_body is not None else None
        if op is None:
            raise ClientFault("the SOAP Body must hold one Authorise element")
        return 200, reply(decide(op, currencies, exponents))
    except ClientFault as exc:
        return 500, fault("Client", str(exc))
    except Exception as exc:  # unsafe or malformed XML: refused as the client's fault
        return 500, fault("Client", f"refused: {type(exc).__name__}")


def _handler(core: list[AwkwardCore]) -> type[BaseHTTPRequestHandler]:
    currencies = resolve_map("currency", "iso4217_numeric", fixtures_dir(), "awkward core"
                             ).to_canonical

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # no request logging (card tokens)
            pass

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._send(200, _wsdl_bytes(core[0].url))

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            if length > REQUEST_BYTES_MAX:
                self._send(413, fault("Client", "request too large"))
                return
            core[0].calls += 1
            self._send(*_answer(self.rfile.read(length), currencies, dict(CURRENCY_EXPONENTS)))

    return Handler


def start_awkward(host: str = "127.0.0.1", port: int = 0) -> AwkwardCore:
    """Serve the awkward core on ``host:port`` (0: a free port) in a thread."""
    holder: list[AwkwardCore] = []
    server = ThreadingHTTPServer((host, port), _handler(holder))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="awkward-core", daemon=True)
    holder.append(AwkwardCore(server, thread))
    thread.start()
    return holder[0]
