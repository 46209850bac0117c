"""Validate ISO 20022 messages against the official XSD of their message version.

The XSDs ship in ``fixtures/xsd`` exactly as ISO 20022 publishes them. They are compiled once
by libxml2 (through lxml, which cutover already uses for SOAP) and applied while the message
streams through ``cutover.xmlsafe.iter_elements``: one pass, flat memory, and the first
violation names its line. docs/decisions.md says why this and not xmlschema or xsdata.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Final

from lxml import etree

from cutover.adapters.statements.model import StatementProblem
from cutover.errors import InputError
from cutover.paths import fixtures_dir
from cutover.xmlsafe import iter_elements, iter_start

ISO_NS_PREFIX: Final = "urn:iso:std:iso:20022:tech:xsd:"
#: Message versions cutover reads, and the XSD file of each.
MESSAGES: Final = {"camt.053.001.02": "camt.053.001.02.xsd",
                   "pain.001.001.03": "pain.001.001.03.xsd",
                   "pacs.008.001.02": "pacs.008.001.02.xsd"}


def message_id(path: Path) -> str:
    """The message version of an ISO 20022 file, from its root element's namespace."""
    try:
        root = next(iter_start(path))
    except (StopIteration, etree.XMLSyntaxError) as exc:
        raise InputError(f"{path}: not XML: {exc}") from exc
    namespace = etree.QName(root).namespace or ""
    if not namespace.startswith(ISO_NS_PREFIX):
        raise InputError(f"{path}: root element {etree.QName(root).localname} is not in an ISO"
                         f" 20022 namespace (got {namespace or 'none'!r})")
    return namespace[len(ISO_NS_PREFIX):]


@lru_cache(maxsize=len(MESSAGES))
def schema_for(message: str) -> etree.XMLSchema:
    """The compiled XSD of a supported message version (our own shipped file, trusted)."""
    if message not in MESSAGES:
        raise InputError(f"message {message} is not supported (supported:"
                         f" {', '.join(MESSAGES)})")
    return etree.XMLSchema(etree.parse(str(fixtures_dir() / "xsd" / MESSAGES[message])))


#: A file up to this size is parsed whole once more after a schema error, because libxml2's
#: streaming validation does not say on which line the error is; bigger files say "line ?".
RELOCATE_BYTES_MAX: Final = 64 * 1024 * 1024


def schema_problem(exc: etree.XMLSyntaxError, message: str, path: Path) -> StatementProblem:
    """A parse or validation error as a problem naming its line."""
    line = exc.lineno or None
    text = str(exc.msg if getattr(exc, "msg", None) else exc)
    if line is None and Path(path).stat().st_size <= RELOCATE_BYTES_MAX:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=False)
        try:
            schema = schema_for(message)
            if not schema.validate(etree.parse(str(path), parser)):
                error = schema.error_log.last_error
                line, text = error.line or None, error.message
        except etree.XMLSyntaxError as again:
            line = again.lineno or None
    return StatementProblem(line, message, f"not valid {message}: {text}")


def validate(path: Path, message: str) -> list[StatementProblem]:
    """Schema errors of ``path`` against the XSD of ``message`` (empty when valid)."""
    try:
        for _ in iter_elements(path, ("{*}Document",), schema=schema_for(message)):
            pass
    except etree.XMLSyntaxError as exc:
        return [schema_problem(exc, message, path)]
    return []
