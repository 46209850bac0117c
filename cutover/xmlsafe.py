"""Parse XML from outside with DTDs, entities and external references forbidden.

Every XML parse of bytes that came from another system (the legacy core's replies, a SOAP
request to the simulated core, a cassette body) goes through here, so a billion-laughs body or
an XXE reference is refused before any expansion, and a huge body is refused by size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
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


#: Bytes of a file's prolog (before its root element) read to look for a DTD; a prolog longer
#: than this is refused, since a real statement's prolog is one declaration line.
PROLOG_BYTES_MAX: Final = 64 * 1024
#: Files streamed with ``iter_elements`` may be this large; a bank statement of a million
#: entries is about 1 GiB of XML.
XML_FILE_BYTES_MAX: Final = 8 * 1024 * 1024 * 1024


def _check_prolog(path: Path) -> None:
    """Refuse a DTD or entity declaration before the root element, or a non-UTF-8 file."""
    with open(path, "rb") as handle:
        head = handle.read(PROLOG_BYTES_MAX)
    if _declared_non_utf8(head):
        raise UnsafeXML(f"{path}: XML in an encoding other than UTF-8 is refused")
    at = 0
    while True:
        start = head.find(b"<", at)
        if start < 0:
            raise UnsafeXML(f"{path}: no root element in the first {PROLOG_BYTES_MAX} bytes")
        if head.startswith((b"<?", b"<!--"), start):
            end = head.find(b"?>" if head[start + 1:start + 2] == b"?" else b"-->", start)
            if end < 0:
                raise UnsafeXML(f"{path}: prolog longer than {PROLOG_BYTES_MAX} bytes")
            at = end + 2
            continue
        if head.startswith(b"<!", start):
            raise UnsafeXML(f"{path}: XML with a DTD or entity declaration is refused")
        return


def iter_elements(path: str | Path, tags: tuple[str, ...],
                  bytes_max: int = XML_FILE_BYTES_MAX,
                  schema: etree.XMLSchema | None = None) -> Iterator[etree._Element]:
    """Stream the elements named ``tags`` (Clark names) of a file, clearing each after use.

    Memory stays flat in the file size: an element is yielded when it ends, and once the
    caller is done with it, it is cleared and the streamed siblings before it are dropped. DTDs and
    entities are refused as in ``parse_xml``; malformed XML raises ``etree.XMLSyntaxError``.
    With ``schema`` the document is validated while it streams (libxml2), and the first
    violation raises ``etree.XMLSyntaxError`` naming its line.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > bytes_max:
        raise UnsafeXML(f"{path}: {size} bytes exceeds the limit of {bytes_max}")
    _check_prolog(path)
    context = etree.iterparse(str(path), events=("end",), tag=tags, resolve_entities=False,
                              no_network=True, load_dtd=False, huge_tree=False,
                              remove_comments=True, remove_pis=True, schema=schema)
    wanted = set(tags)
    for _, element in context:
        yield element
        element.clear(keep_tail=False)
        # Drop the streamed siblings already handled; headers between them stay readable.
        parent = element.getparent()
        previous = element.getprevious()
        while parent is not None and previous is not None and previous.tag in wanted:
            parent.remove(previous)
            previous = element.getprevious()


#: Bytes fed at a time when only the first elements of a file are wanted.
PEEK_CHUNK_BYTES: Final = 4096


def iter_start(path: str | Path) -> Iterator[etree._Element]:
    """The elements of a file as they open (hardened like ``iter_elements``): to peek at a root.

    Fed in small chunks, so peeking at the root of a 1 GiB statement reads a few KiB, not the
    file (lxml's iterparse parses far ahead of the first event).
    """
    path = Path(path)
    _check_prolog(path)
    parser = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True,
                                 load_dtd=False, huge_tree=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(PEEK_CHUNK_BYTES):
            parser.feed(chunk)
            for _, element in parser.read_events():
                yield element
