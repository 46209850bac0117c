"""Every leaf element of a SOAP reply by path, in the mapping's path syntax.

Calibration compares whole replies, not only the mapped fields, so it needs each leaf named
the way a mapping names it: local names joined by ``/`` from the reply element down
(``Header/ServerMsgId``). A repeated element gets its position from the second on
(``Rates/Rate[2]/Value``), so two replies are compared element for element.
"""

from __future__ import annotations

from typing import Any, Final

from cutover.errors import UnsafeXML
from cutover.xmlsafe import parse_xml

#: Leaves read from one reply at most; a larger reply is cut (calibration needs a sample).
LEAVES_MAX: Final = 10_000


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _walk(element: Any, prefix: str, out: dict[str, str]) -> None:
    seen: dict[str, int] = {}
    for child in element:
        if not isinstance(child.tag, str) or len(out) >= LEAVES_MAX:
            continue
        name = _local(child.tag)
        seen[name] = seen.get(name, 0) + 1
        step = name if seen[name] == 1 else f"{name}[{seen[name]}]"
        path = f"{prefix}/{step}" if prefix else step
        if len(child):
            _walk(child, path, out)
        else:
            out[path] = (child.text or "").strip()


def reply_leaves(body: bytes) -> dict[str, str]:
    """path -> text of every leaf under the SOAP Body's first element; {} if unreadable."""
    from lxml import etree

    try:
        root = parse_xml(body)
    except (UnsafeXML, etree.XMLSyntaxError, ValueError):
        return {}
    soap_body = next((el for el in root if isinstance(el.tag, str)
                      and _local(el.tag) == "Body"), None)
    first = next((el for el in soap_body if isinstance(el.tag, str)), None) \
        if soap_body is not None else None
    out: dict[str, str] = {}
    if first is not None:
        _walk(first, "", out)
    return out
