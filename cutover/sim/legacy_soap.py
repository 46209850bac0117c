"""SOAP 1.1 envelopes of the simulated legacy core: read requests, write replies and faults.

Kept apart from the server so the XML rules (namespace, required elements, field validation)
are pure functions tested without a socket. Requests are parsed with ``cutover.xmlsafe`` only:
a DTD, an entity declaration or an oversized body is refused before any expansion.
Validation messages name the element but never echo a card number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from cutover.domain import CHANNELS, MoneyError, currency_exponent
from cutover.errors import UnsafeXML
from cutover.xmlsafe import parse_xml

SOAP_ENV_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
CORE_NS: Final = "urn:cutover:legacy:auth:v1"
#: A legacy request is about 1 KiB; anything above this is refused unread.
REQUEST_BYTES_MAX: Final = 64 * 1024
TEXT_CHARS_MAX: Final = 64
CARD_CHARS_MAX: Final = 128
#: Amounts above this are refused: no payment is this large, and fees must fit int64.
AMOUNT_MINOR_MAX: Final = 10**14
OPERATIONS: Final = {"AuthorizePaymentRequest": "AuthorizePayment",
                     "GetBalanceRequest": "GetBalance"}
AUTH_FIELDS: Final = ("TxnId", "CardNumber", "CardBin", "Amount", "Currency", "MerchantId",
                      "Mcc", "MerchantCountry", "Channel", "CustomerId", "RequestTime")
BALANCE_FIELDS: Final = ("AccountId", "Currency")
_AMOUNT: Final = re.compile(r"^[0-9]{1,15}$")
_ID: Final = re.compile(r"^[A-Za-z0-9_:.\-]+$")


class SoapClientError(ValueError):
    """The request is wrong (faultcode soap:Client); the message names the element."""


def _children(op: etree._Element, names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        node = op.find(f"{{{CORE_NS}}}{name}")
        if node is None or not (node.text or "").strip():
            raise SoapClientError(f"missing or empty element {name}")
        out[name] = node.text.strip()
    return out


def parse_request(body: bytes) -> tuple[str, dict[str, str]]:
    """Return (operation, raw element texts) of a SOAP 1.1 request; SoapClientError if not."""
    try:
        # xmlsafe spots a DTD by its bytes; another encoding (UTF-16) would hide them.
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SoapClientError("refused: the request body must be UTF-8") from exc
    try:
        root = parse_xml(body, bytes_max=REQUEST_BYTES_MAX)
    except UnsafeXML as exc:
        raise SoapClientError(f"refused: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise SoapClientError(f"malformed XML: {exc.msg}") from exc
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise SoapClientError(f"root element {root.tag} is not a SOAP 1.1 Envelope")
    soap_body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    ops = [] if soap_body is None else [c for c in soap_body if isinstance(c.tag, str)]
    if len(ops) != 1:
        raise SoapClientError("the SOAP Body must hold exactly one operation element")
    qname = etree.QName(ops[0])
    if qname.namespace != CORE_NS or qname.localname not in OPERATIONS:
        raise SoapClientError(f"unknown operation {{{qname.namespace}}}{qname.localname}; "
                              f"expected one of {sorted(OPERATIONS)} in {CORE_NS}")
    fields = AUTH_FIELDS if qname.localname == "AuthorizePaymentRequest" else BALANCE_FIELDS
    return OPERATIONS[qname.localname], _children(ops[0], fields)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SoapClientError(message)


def _currency(text: str, element: str) -> str:
    try:
        currency_exponent(text)
    except MoneyError as exc:
        raise SoapClientError(f"{element}: {exc}") from exc
    return text


def _request_time_us(text: str) -> int:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SoapClientError(f"RequestTime {text[:40]!r} is not an xsd:dateTime") from exc
    _check(when.tzinfo is not None, "RequestTime must carry a time zone (UTC)")
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def validate_auth(raw: Mapping[str, str]) -> dict[str, object]:
    """Typed AuthorizePayment fields, or SoapClientError naming the bad element."""
    for name in ("TxnId", "MerchantId", "CustomerId"):
        _check(len(raw[name]) <= TEXT_CHARS_MAX and bool(_ID.match(raw[name])),
               f"{name} must be 1-{TEXT_CHARS_MAX} letters, digits or _:.-")
    card = raw["CardNumber"]
    _check(len(card) <= CARD_CHARS_MAX and bool(_ID.match(card)),
           f"CardNumber must be 1-{CARD_CHARS_MAX} letters, digits or _:.- (value not shown)")
    _check(len(raw["CardBin"]) == 6 and raw["CardBin"].isdigit(), "CardBin must be 6 digits")
    _check(bool(_AMOUNT.match(raw["Amount"])),
           "Amount must be a positive integer of minor units (no sign, no decimals)")
    amount_minor = int(raw["Amount"])
    _check(0 < amount_minor <= AMOUNT_MINOR_MAX,
           f"Amount must be between 1 and {AMOUNT_MINOR_MAX} minor units")
    _check(len(raw["Mcc"]) == 4 and raw["Mcc"].isdigit(), "Mcc must be 4 digits")
    country = raw["MerchantCountry"]
    _check(len(country) == 2 and country.isalpha() and country.isupper(),
           "MerchantCountry must be a 2-letter ISO 3166 code")
    _check(raw["Channel"] in CHANNELS, f"Channel must be one of {', '.join(CHANNELS)}")
    return {
        "txn_id": raw["TxnId"], "card_number": card, "card_bin": raw["CardBin"],
        "amount_minor": amount_minor, "currency": _currency(raw["Currency"], "Currency"),
        "merchant_id": raw["MerchantId"], "mcc": raw["Mcc"], "merchant_country": country,
        "channel": raw["Channel"], "customer_id": raw["CustomerId"],
        "ts_us": _request_time_us(raw["RequestTime"]),
    }


def validate_balance(raw: Mapping[str, str]) -> tuple[str, str]:
    """(merchant_id, currency) of a GetBalance request; AccountId is MERCHANT_PAYABLE:<id>."""
    kind, _, merchant_id = raw["AccountId"].partition(":")
    _check(kind == "MERCHANT_PAYABLE" and bool(merchant_id) and bool(_ID.match(merchant_id)),
           "AccountId must look like MERCHANT_PAYABLE:<merchant id>")
    return merchant_id, _currency(raw["Currency"], "Currency")


def _envelope(payload: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soap": SOAP_ENV_NS})
    etree.SubElement(env, f"{{{SOAP_ENV_NS}}}Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def response(operation: str, values: Mapping[str, object]) -> bytes:
    """A ``<Operation>Response`` envelope with ``values`` as child elements, in order."""
    payload = etree.Element(f"{{{CORE_NS}}}{operation}Response", nsmap={"tns": CORE_NS})
    for name, value in values.items():
        etree.SubElement(payload, f"{{{CORE_NS}}}{name}").text = str(value)
    return _envelope(payload)


def fault(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault; ``code`` is "Client" (the request is wrong) or "Server"."""
    payload = etree.Element(f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(payload, "faultcode").text = f"soap:{code}"
    etree.SubElement(payload, "faultstring").text = message
    return _envelope(payload)


def utc_now_text() -> str:
    """Now as an xsd:dateTime in UTC with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
