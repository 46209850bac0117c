"""Parse XML from outside with DTDs, entities and external references forbidden.

Every XML parse of bytes that came from another system (the legacy core's replies, a SOAP
request to the simulated core, a cassette body) goes through here, so a billion-laughs body or
an XXE reference is refused before any expansion, and a huge body is refused by size.
"""

from __future__ import annotations

import re
from typing import Final

from lxml import etree

from cutover.errors import UnsafeXML

#: Bodies larger than this are refused unread; legacy SOAP messages are a few KiB.
XML_BYTES_MAX: Final = 4 * 1024 * 1024

_FORBIDDEN_MARKERS: Final = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _declared_non_utf8(body: bytes) -> bool:
    head = body[:4]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")) or b"\x00" in head:
        return True
    decl = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", body[:200])
    return bool(decl) and decl.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8",
                                                                            b"us-ascii", b"ascii")


def parse_xml(body: bytes, *, bytes_max: int = XML_BYTES_MAX) -> etree._Element:
    """Return the root element of ``body``; raise ``UnsafeXML`` for DTDs, entities or size.

    Raises ``ValueError`` (via ``etree.XMLSyntaxError``) translated to ``UnsafeXML`` only for
    the unsafe cases; malformed XML raises ``etree.XMLSyntaxError`` for callers to map.
    """
    if len(body) > bytes_max:
        raise UnsafeXML(f"XML body of {len(body)} bytes exceeds the limit of {bytes_max}")
    if _declared_non_utf8(body):
        # In UTF-16 or UTF-32 a DOCTYPE hides from the byte check below, and SOAP 1.1 peers
        # speak UTF-8; refusing the rest keeps that check sound.
        raise UnsafeXML("XML in an encoding other than UTF-8 is refused")
    if any(marker in body for marker in _FORBIDDEN_MARKERS):
        raise UnsafeXML("XML with a DTD or entity declaration is refused")
    root = etree.fromstring(body, parser=_parser())
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXML("XML with a DTD is refused")
    return root
