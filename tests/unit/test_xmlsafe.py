"""cutover.xmlsafe refuses what could expand, reach out or hide from its checks."""

from __future__ import annotations

import pytest
from lxml import etree

from cutover.errors import UnsafeXML
from cutover.xmlsafe import parse_xml

LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><r>&lol2;</r>')
XXE = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'


def test_plain_utf8_parses_to_its_elements() -> None:
    root = parse_xml(b'<?xml version="1.0" encoding="UTF-8"?><r><a>1</a><a>2</a></r>')
    assert [a.text for a in root.findall("a")] == ["1", "2"]


@pytest.mark.parametrize("body", [LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_dtd_and_entities_are_refused(body: bytes) -> None:
    with pytest.raises(UnsafeXML, match="DTD or entity"):
        parse_xml(body)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_doctype_hidden_in_a_wide_encoding_is_refused(encoding: str) -> None:
    body = XXE.decode().replace('version="1.0"', f'version="1.0" encoding="{encoding}"')
    with pytest.raises(UnsafeXML, match="other than UTF-8"):
        parse_xml(body.encode(encoding))


def test_declared_latin1_is_refused_even_without_a_doctype() -> None:
    with pytest.raises(UnsafeXML, match="other than UTF-8"):
        parse_xml(b'<?xml version="1.0" encoding="ISO-8859-1"?><r/>')


def test_oversized_body_is_refused_before_parsing() -> None:
    with pytest.raises(UnsafeXML, match="exceeds the limit of 100"):
        parse_xml(b"<r>" + b"x" * 200 + b"</r>", bytes_max=100)


def test_malformed_xml_is_a_syntax_error_for_the_caller_to_map() -> None:
    with pytest.raises(etree.XMLSyntaxError):
        parse_xml(b"<r><unclosed></r>")
