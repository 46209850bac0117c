"""SOAP envelopes read and written by the mapping alone, for the mirror and the load driver.

``cutover mirror`` sits between clients and the legacy core: it must read each client
request and each legacy reply into canonical fields without a zeep client per call (far too
slow on the request path), and in a canary cohort it must answer in the legacy core's own
shape. The mapping file already says which element holds which field; this module applies
it in both directions with lxml, parsing only through ``cutover.xmlsafe``. A card number in a
request becomes a token here, before anything else sees the fields.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Final

from lxml import etree

from cutover.adapters.codes import CodeTable
from cutover.adapters.mapping import FieldMap, Mapping, _format_value
from cutover.adapters.tokenize import luhn_ok, tokenize_pan
from cutover.domain import to_minor
from cutover.errors import UnsafeXML
from cutover.xmlsafe import parse_xml

SOAP_ENV_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
#: A legacy request or reply is a few KiB; the mirror refuses to parse more.
ENVELOPE_BYTES_MAX: Final = 256 * 1024
AUTH_CODE_CHARS: Final = 6
#: Fields the mirror fills when the legacy request does not carry them.
CARD_FIELD: Final = "card_token"


class EnvelopeError(ValueError):
    """An envelope the mapping cannot read; the message names the element, never a PAN."""


def _operation_element(body: bytes) -> etree._Element:
    try:
        root = parse_xml(body, bytes_max=ENVELOPE_BYTES_MAX)
    except UnsafeXML as exc:
        raise EnvelopeError(f"unsafe_xml: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise EnvelopeError(f"malformed_xml: {exc.msg}") from exc
    soap_body = next((c for c in root if isinstance(c.tag, str) and c.tag.endswith("}Body")),
                     None)
    ops = [] if soap_body is None else [c for c in soap_body if isinstance(c.tag, str)]
    if len(ops) != 1:
        raise EnvelopeError("unexpected_response: the SOAP Body holds no single element")
    return ops[0]


def _text_at(op: etree._Element, ns: str, path: tuple[str, ...]) -> str | None:
    node: etree._Element | None = op
    for name in path:
        node = None if node is None else node.find(f"{{{ns}}}{name}")
    return None if node is None or node.text is None else node.text.strip()


def _parse_value(fmap: FieldMap, text: str, currency: str | None) -> Any:
    if fmap.fmt == "int_minor":
        return int(text)
    if fmap.fmt == "decimal_major":
        return to_minor(text, currency or "")
    if fmap.fmt == "datetime":
        try:
            parsed = datetime.strptime(text, fmap.pattern)
        except ValueError:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
    return text


def read_request(mapping: Mapping, body: bytes, token_key: bytes) -> dict[str, Any]:
    """The canonical fields of a client request; a card number is tokenised here."""
    op = _operation_element(body)
    texts = {f.canonical: _text_at(op, mapping.namespace, f.path) for f in mapping.request}
    currency = texts.get("currency")
    txn: dict[str, Any] = {}
    for fmap in mapping.request:
        text = texts[fmap.canonical]
        if text is None or text == "":
            raise EnvelopeError(f"bad_request: element {'/'.join(fmap.path)} is missing")
        try:
            txn[fmap.canonical] = _parse_value(fmap, text, currency)
        except (ValueError, ArithmeticError) as exc:
            raise EnvelopeError(f"bad_request: element {'/'.join(fmap.path)} is unreadable"
                                ) from exc
    card = str(txn.get(CARD_FIELD, ""))
    digits = card.replace(" ", "")
    if digits.isdigit() and 13 <= len(digits) <= 19 and luhn_ok(digits):
        txn[CARD_FIELD] = tokenize_pan(digits, token_key)
    elif any(ch.isdigit() for ch in card) and digits.isdigit():
        txn[CARD_FIELD] = tokenize_pan(digits, token_key)  # a digit run is never kept in clear
    return txn


def read_reply(mapping: Mapping, codes: CodeTable, body: bytes, status: int,
               currency: str) -> dict[str, Any]:
    """The legacy outcome fields of a reply; a fault or an unreadable reply is an error."""
    try:
        op = _operation_element(body)
    except EnvelopeError as exc:
        reason = str(exc).split(":", 1)[0]
        return _error(f"http_{status}" if status >= 400 else reason)
    if op.tag.endswith("}Fault"):
        code = (op.findtext("faultcode") or "Fault").rsplit(":", 1)[-1]
        return _error(f"soap_fault:{code}")
    if status >= 400:
        return _error(f"http_{status}")
    values: dict[str, Any] = {}
    for fmap in mapping.response:
        text = _text_at(op, mapping.namespace, fmap.path)
        try:
            values[fmap.canonical] = None if not text else _parse_value(fmap, text, currency)
        except (ValueError, ArithmeticError):
            return _error("unexpected_response")
    code = str(values.get("response_code") or "")
    info = codes.lookup(code)
    return {"legacy_decision": info.decision, "legacy_code": code,
            "legacy_reason": info.reason, "legacy_route": values.get("route"),
            "legacy_fee_minor": int(values.get("fee_minor") or 0)}


def _error(reason: str) -> dict[str, Any]:
    return {"legacy_decision": "error", "legacy_code": "", "legacy_reason": reason,
            "legacy_route": None, "legacy_fee_minor": 0}


def code_for(codes: CodeTable, decision: str) -> str:
    """The legacy code that says ``decision``: the lowest code of the table with it."""
    for code in sorted(codes.entries):
        if codes.entries[code].decision == decision:
            return code
    raise EnvelopeError(f"the code table {codes.source} has no code for decision {decision!r}")


def _envelope(payload: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soap": SOAP_ENV_NS})
    etree.SubElement(env, f"{{{SOAP_ENV_NS}}}Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def _put(parent: etree._Element, ns: str, path: tuple[str, ...], value: Any) -> None:
    node = parent
    for name in path[:-1]:
        found = node.find(f"{{{ns}}}{name}")
        node = found if found is not None else etree.SubElement(node, f"{{{ns}}}{name}")
    etree.SubElement(node, f"{{{ns}}}{path[-1]}").text = str(value)


def render_reply(mapping: Mapping, codes: CodeTable, decision: dict[str, Any],
                 currency: str) -> bytes:
    """A candidate's decision in the legacy reply's shape: ``<Operation>Response`` with the
    mapped elements (code from the table, route, fee; a fresh auth code and trace id)."""
    approved = decision["decision"] == "approve"
    canonical = {"response_code": code_for(codes, decision["decision"]),
                 "auth_code": secrets.token_hex(AUTH_CODE_CHARS // 2).upper() if approved else "",
                 "route": decision.get("route") or "", "fee_minor": decision.get("fee_minor") or 0,
                 "trace_id": secrets.token_hex(8),
                 "response_ts": datetime.now(UTC).isoformat(timespec="microseconds")}
    ns = mapping.namespace
    payload = etree.Element(f"{{{ns}}}{mapping.operation}Response", nsmap={"tns": ns})
    for fmap in mapping.response:
        value = canonical.get(fmap.canonical, "")
        if fmap.fmt in ("int_minor", "decimal_major") and value != "":
            value = _format_value(fmap, value, currency)
        _put(payload, ns, fmap.path, value)
    return _envelope(payload)


def render_request(mapping: Mapping, txn: dict[str, Any]) -> bytes:
    """A client request envelope for ``txn`` (the load driver's); ``KeyError`` when short."""
    ns = mapping.namespace
    payload = etree.Element(f"{{{ns}}}{mapping.operation}Request", nsmap={"tns": ns})
    for fmap in mapping.request:
        if txn.get(fmap.canonical) is None:
            raise KeyError(f"transaction {txn.get('txn_id')!r} lacks field {fmap.canonical!r}")
        _put(payload, ns, fmap.path, _format_value(fmap, txn[fmap.canonical],
                                                   txn.get("currency")))
    return _envelope(payload)
