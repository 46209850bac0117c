"""The recording hooks scrub card numbers and credentials before vcrpy writes anything."""

from __future__ import annotations

import random

from vcr.request import Request

from cutover.adapters.cassette import canonical_matcher, request_hook, response_hook
from cutover.adapters.tokenize import find_pans, tokenize_pan
from tests.adapters_support import make_pan

KEY = b"unit-key"


def test_request_hook_tokenises_body_uri_headers_and_drops_credentials():
    """PANs in body, URI and a header become tokens; Authorization and Cookie are removed."""
    pan = make_pan(random.Random(1))
    body = f"<CardNumber>{pan}</CardNumber>".encode()
    request = Request("POST", f"http://core/x?card={pan}", body,
                      {"Authorization": "Basic abc", "Cookie": "s=1", "X-Card": pan,
                       "Content-Type": "text/xml"})
    out = request_hook(KEY)(request)
    text = out.uri + out.body.decode() + str(dict(out.headers))
    assert find_pans(text) == []
    assert text.count(tokenize_pan(pan, KEY)) == 3
    assert {k.lower() for k in out.headers} == {"x-card", "content-type"}


def test_response_hook_tokenises_body_and_drops_set_cookie():
    """A PAN echoed in a reply body is tokenised; Set-Cookie is dropped."""
    pan = make_pan(random.Random(2))
    response = {"body": {"string": f"<Echo>{pan}</Echo>".encode()},
                "headers": {"Set-Cookie": ["a=b"], "Content-Type": ["text/xml"]}}
    out = response_hook(KEY)(response)
    assert out["body"]["string"] == f"<Echo>{tokenize_pan(pan, KEY)}</Echo>".encode()
    assert list(out["headers"]) == ["Content-Type"]


def test_matcher_ignores_volatile_elements():
    """Same TxnId with another timestamp matches; another TxnId does not."""
    match = canonical_matcher("TxnId")
    a = Request("POST", "http://c/soap", b"<a:TxnId>T1</a:TxnId><Time>1</Time>", {})
    b = Request("POST", "http://c/soap", b"<b:TxnId>T1</b:TxnId><Time>2</Time>", {})
    c = Request("POST", "http://c/soap", b"<b:TxnId>T2</b:TxnId><Time>1</Time>", {})
    assert match(a, b) is True and match(a, c) is False
