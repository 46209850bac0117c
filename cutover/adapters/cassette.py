"""Record legacy SOAP traffic to vcrpy cassettes with no card number in them, and play it back.

A cassette is evidence that leaves the machine, so every card number in a request or reply
(body, URI, header) is replaced by its keyed HMAC token in vcrpy's before-record hooks, i.e.
BEFORE anything is written, and credential headers are dropped. Playback matches on the
canonical request (the transaction id inside the SOAP body), not raw bytes, so volatile
elements (timestamps, trace ids) do not break it. vcrpy playback slows as a cassette grows,
so bulk work imports a cassette into the traffic store instead.

vcrpy does not carry the HTTP here: left to itself it reads a whole reply before any hook runs
(a 200 MB body would be read, then written). The adapter's own transport (deadline and size cap
while streaming) carries every exchange; ``RecordingExchange`` hands each complete, capped reply
to the cassette, and ``PlaybackExchange`` answers from it. A call that failed on the wire
(timeout, refused, oversized) has no reply and leaves no interaction.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from cutover.adapters.importer import assemble_traffic, check_values, commit
from cutover.adapters.mapping import load_mapping, read_request, read_response, xml_to_nested
from cutover.adapters.soap import CodeLookup, SoapAdapter, SoapOptions, vet_reply
from cutover.adapters.tokenize import find_pans, mask_pans, tokenize_text
from cutover.adapters.transport import CallFailed, Deadline, Exchange, NetworkExchange, Reply
from cutover.errors import AdapterError, ConfigError
from cutover.xmlsafe import parse_xml

#: Headers that carry credentials or sessions; they never reach a cassette.
SECRET_HEADERS: Final = ("authorization", "proxy-authorization", "cookie", "set-cookie",
                         "x-api-key", "x-auth-token")
MATCHER_NAME: Final = "canonical_txn"


def _tokenize_body(body: Any, key: bytes) -> Any:
    if body is None:
        return None
    if isinstance(body, bytes):
        return tokenize_text(body.decode("utf-8", "replace"), key).encode()
    return tokenize_text(str(body), key)


def _clean_headers(headers: dict, key: bytes) -> dict:
    return {name: ([tokenize_text(str(v), key) for v in value] if isinstance(value, list)
                   else tokenize_text(str(value), key))
            for name, value in headers.items() if name.lower() not in SECRET_HEADERS}


def request_hook(key: bytes):
    """vcrpy before_record_request: tokenise body, URI and headers; drop credentials."""
    def hook(request: Any) -> Any:
        request.body = _tokenize_body(request.body, key)
        request.uri = tokenize_text(request.uri, key)
        for name in list(request.headers):
            if name.lower() in SECRET_HEADERS:
                del request.headers[name]
            else:
                request.headers[name] = tokenize_text(str(request.headers[name]), key)
        return request
    return hook


def response_hook(key: bytes):
    """vcrpy before_record_response: tokenise the body and headers; drop cookies."""
    def hook(response: dict) -> dict:
        response["body"]["string"] = _tokenize_body(response["body"]["string"], key)
        response["headers"] = _clean_headers(response.get("headers", {}), key)
        return response
    return hook


def element_text(body: Any, element: str) -> str | None:
    """The text of the first element named ``element`` (any namespace) in a SOAP body."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    found = re.search(rf"<(?:[\w.-]+:)?{re.escape(element)}>([^<]*)</", text)
    return found.group(1) if found else None


def canonical_matcher(txn_element: str):
    """Match two requests by method, path and the transaction id inside their bodies."""
    def matcher(r1: Any, r2: Any) -> bool:
        if r1.method != r2.method or r1.path != r2.path:
            return False
        return element_text(r1.body, txn_element) == element_text(r2.body, txn_element)
    return matcher


def _vcr(txn_element: str, **kwargs: Any):
    import vcr

    recorder = vcr.VCR(serializer="yaml", decode_compressed_response=True, **kwargs)
    recorder.register_matcher(MATCHER_NAME, canonical_matcher(txn_element))
    return recorder


@contextlib.contextmanager
def recording(out: Path | str, key: bytes, txn_element: str) -> Iterator[Any]:
    """Record every HTTP exchange inside the block to ``out``, tokenised before writing."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    recorder = _vcr(txn_element, record_mode="all", match_on=(MATCHER_NAME,),
                    before_record_request=request_hook(key),
                    before_record_response=response_hook(key))
    with recorder.use_cassette(str(out)) as cassette:
        yield cassette


@contextlib.contextmanager
def playback(cassette: Path | str, txn_element: str = "TxnId") -> Iterator[Any]:
    """Answer every HTTP exchange inside the block from ``cassette``; no network."""
    if not Path(cassette).is_file():
        raise ConfigError(f"cassette {cassette} does not exist")
    recorder = _vcr(txn_element, record_mode="none", match_on=(MATCHER_NAME,))
    with recorder.use_cassette(str(cassette), allow_playback_repeats=True) as loaded:
        yield loaded


def read_cassette(path: Path | str) -> list[tuple[dict, dict]]:
    """Return the (request, response) pairs of a cassette as vcrpy stores them."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return [(i["request"], i["response"]) for i in doc["interactions"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"cassette {path}: cannot read: {exc}") from exc


def txn_element_of(mapping: Any) -> str:
    """The request element that carries ``txn_id`` in ``mapping`` (what playback matches on)."""
    for fmap in mapping.request:
        if fmap.canonical == "txn_id":
            return fmap.path[-1]
    raise ConfigError(f"mapping {mapping.source}: no request element carries txn_id")


def _vcr_request(url: str, body: bytes | None, headers: dict[str, str]) -> Any:
    from vcr.request import Request

    return Request("POST" if body is not None else "GET", url, body, dict(headers))


class RecordingExchange:
    """Sends through ``inner`` and appends each complete reply to ``cassette`` (hooks tokenise)."""

    def __init__(self, inner: Exchange, cassette: Any) -> None:
        self.inner = inner
        self.cassette = cassette
        self._lock = threading.Lock()

    def send(self, url: str, body: bytes | None, headers: dict[str, str], deadline: Deadline,
             bytes_max: int) -> Reply:
        reply = self.inner.send(url, body, headers, deadline, bytes_max)
        grouped: dict[str, list[str]] = {}
        for name, value in reply.headers:
            grouped.setdefault(name, []).append(value)
        response = {"status": {"code": reply.status, "message": reply.reason},
                    "headers": grouped, "body": {"string": reply.body}}
        with self._lock:
            self.cassette.append(_vcr_request(url, body, headers), response)
        return reply

    def close(self) -> None:
        self.inner.close()


class PlaybackExchange:
    """Answers each exchange from ``cassette``; an unknown request fails as ``not_in_cassette``."""

    def __init__(self, cassette: Any) -> None:
        self.cassette = cassette
        self._lock = threading.Lock()

    def send(self, url: str, body: bytes | None, headers: dict[str, str], deadline: Deadline,
             bytes_max: int) -> Reply:
        request = _vcr_request(url, body, headers)
        with self._lock:
            if not self.cassette.can_play_response_for(request):
                raise CallFailed("not_in_cassette", f"no recorded reply for {url}")
            response = self.cassette.play_response(request)
        data = response["body"]["string"]
        data = data.encode("utf-8") if isinstance(data, str) else bytes(data or b"")
        if len(data) > bytes_max:
            raise CallFailed("response_too_large", f"recorded body of {len(data)} bytes")
        headers_out = tuple((name, str(v)) for name, values in response.get("headers", {}).items()
                            for v in (values if isinstance(values, list) else [values]))
        status = response["status"]
        return Reply(int(status["code"]), str(status.get("message", "")), headers_out, data)

    def close(self) -> None:
        pass


def record_calls(mapping_path: Path | str, txns: list[dict[str, Any]], out: Path | str,
                 key: bytes, *, wsdl: str | None = None, progress: Any = None,
                 options: Any = None, stop: Callable[[dict], bool] | None = None) -> list[dict]:
    """Call the core once per transaction under a recorder; return the outcomes in order.

    A transaction may carry ``pan``: it goes on the wire as the card and is tokenised by the
    hooks before the cassette is written. Calls are sequential: a cassette is one file. When
    ``stop(outcome)`` says so, calling stops and no cassette is written (the outcomes so far
    are returned); otherwise the cassette replaces ``out`` only once complete.
    """
    mapping = load_mapping(mapping_path)
    options = options or SoapOptions()
    out = Path(out)
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    outcomes: list[dict] = []
    stopped = False
    with recording(partial, key, txn_element_of(mapping)) as cassette:
        exchange = RecordingExchange(NetworkExchange(idle_s=options.read_timeout_s,
                                                   connect_s=options.connect_timeout_s), cassette)
        adapter = SoapAdapter(mapping, wsdl=wsdl, options=options, exchange=exchange)
        try:
            for txn in txns:
                call = dict(txn)
                if call.get("pan"):
                    call["card_token"] = call.pop("pan")
                outcomes.append(adapter.authorize(call))
                if progress is not None:
                    progress()
                if stop is not None and stop(outcomes[-1]):
                    stopped = True
                    break
        finally:
            adapter.close()
    if stopped or not partial.exists():
        partial.unlink(missing_ok=True)
    else:
        os.replace(partial, out)
    return outcomes


#: The request has no card country; ISO 3166 user-assigned "ZZ" marks it unknown, not guessed.
CARD_COUNTRY_UNKNOWN: Final = "ZZ"


def _leaves(body: Any) -> dict[str, str]:
    """Local name -> text of every leaf element of a SOAP body (parsed safely)."""
    data = body.encode() if isinstance(body, str) else body
    root = parse_xml(data or b"")
    return {el.tag.rsplit("}", 1)[-1]: (el.text or "").strip()
            for el in root.iter() if isinstance(el.tag, str) and len(el) == 0}


def _operation_element(body: Any) -> Any:
    """The first element inside the SOAP Body (the operation or reply), parsed safely."""
    data = body.encode() if isinstance(body, str) else body
    root = parse_xml(data or b"")
    soap_body = next((el for el in root if isinstance(el.tag, str)
                      and el.tag.endswith("}Body")), None)
    children = [el for el in soap_body if isinstance(el.tag, str)] if soap_body is not None \
        else []
    if not children:
        raise ValueError("the SOAP Body is empty")
    return children[0]


def _request_row(mapping: Any, body: Any) -> dict[str, Any]:
    row = read_request(mapping, xml_to_nested(_operation_element(body)))
    if find_pans(str(row.get("card_token", ""))):
        raise ValueError("card number in clear in the cassette")
    return row


def refuse_clear_pans(leaves: dict[str, str], side: str) -> None:
    """Raise ``ValueError`` naming the element when any element, not only the card's, holds a
    card number in clear (masked in the message): the record is quarantined, never stored."""
    for name, text in leaves.items():
        if find_pans(text):
            raise ValueError(f"card number in clear in {side} element {name}:"
                             f" {mask_pans(text)}")


def _outcome(mapping: Any, codes: Any, response: dict, currency: str) -> dict[str, Any]:
    body = response["body"]["string"]
    body = body.encode() if isinstance(body, str) else body
    try:
        vet_reply(body, int(response["status"]["code"]), mapping.namespace)
        element = _operation_element(body)
        if element.tag.endswith("}Fault"):
            code = str(xml_to_nested(element).get("faultcode", "")).rsplit(":", 1)[-1]
            return _error_outcome(f"soap_fault:{code}")
    except CallFailed as exc:
        return _error_outcome(exc.reason)
    refuse_clear_pans(_leaves(body), "response")
    raw = read_response(mapping, xml_to_nested(element), currency)
    code = raw.get("response_code") or ""
    decision, reason = codes.lookup(code)
    return {"legacy_decision": decision, "legacy_code": code, "legacy_reason": reason,
            "legacy_route": raw.get("route"), "legacy_fee_minor": raw.get("fee_minor") or 0}


def _error_outcome(reason: str) -> dict[str, Any]:
    """A recorded legacy failure as a legacy_error outcome: no fee, no route, its reason."""
    return {"legacy_decision": "error", "legacy_code": "", "legacy_reason": reason,
            "legacy_route": None, "legacy_fee_minor": 0}


def _interaction_row(mapping: Any, codes: Any, request: dict, response: dict,
                     key: bytes | None = None) -> dict[str, Any]:
    """One interaction -> one TRAFFIC row dict; ``ValueError`` (and kin) name what is wrong.

    With ``key``, a card number in clear in the card element is tokenised; anywhere else (or
    without a key) the interaction is refused, masked.
    """
    body = request["body"]
    leaves = _leaves(body)
    card = next((f.path[-1] for f in mapping.request if f.canonical == "card_token"), None)
    refuse_clear_pans({k: v for k, v in leaves.items() if key is None or k != card}, "request")
    if key is not None:
        # Only the card element can still hold a card number here: tokenise it in place.
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        body = tokenize_text(text, key)
    row = _request_row(mapping, body)
    row |= _outcome(mapping, codes, response, row.get("currency", ""))
    return row | {"legacy_latency_ms": 0,
                  "card_country": row.get("card_country", CARD_COUNTRY_UNKNOWN)}


def import_cassette(path: Path, store: Path, mapping_path: Path | None,
                    key: bytes | None = None) -> Any:
    """Import a recorded cassette's SOAP exchanges as TRAFFIC rows (outcome as recorded).

    One interaction at a time: a cassette is small by nature (playback is the slow path).
    """
    if mapping_path is None:
        raise ConfigError(f"{path}: importing a cassette needs --mapping (the SOAP mapping)")
    mapping = load_mapping(mapping_path)
    codes = CodeLookup.for_mapping(mapping)
    txn_element = txn_element_of(mapping)
    rows, bad = [], []
    for number, (request, response) in enumerate(read_cassette(path), start=1):
        if str(request.get("method", "")).upper() == "GET":
            continue  # a WSDL or schema fetch, not a transaction: read, but not a record
        try:
            if element_text(request.get("body"), txn_element) is None:
                raise ValueError(f"no transaction id: the request has no {txn_element} element")
            rows.append(_interaction_row(mapping, codes, request, response, key))
        except (ValueError, KeyError, TypeError, ArithmeticError, AdapterError) as exc:
            bad.append({"file": str(path), "line": number, "field": "interaction",
                        "reason": mask_pans(str(exc)), "record": None})
    n = len(rows)
    cols = {name: pa.array([r.get(name) for r in rows]) for name in {k for r in rows for k in r}}
    reasons, fields = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    check_values(cols, reasons, fields, tokenised=False)
    table, reasons, fields = assemble_traffic(cols, n, reasons, fields)
    return commit(table, np.arange(1, n + 1), reasons, fields, None, Path(path), store, bad)
