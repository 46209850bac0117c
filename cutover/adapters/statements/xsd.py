"""Validate ISO 20022 messages against the official XSD of their message version.

The XSDs ship in ``fixtures/xsd`` exactly as ISO 20022 publishes them (see docs/decisions.md
for why xmlschema and not generated bindings). Validation streams (xmlschema's lazy mode), so a
statement of a million entries is checked in flat memory, and the first errors are reported
with the line and the element path, the way a user finds them in an editor.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Final

from lxml import etree

from cutover.adapters.statements.model import StatementProblem
from cutover.errors import InputError
from cutover.xmlsafe import iter_start

ISO_NS_PREFIX: Final = "urn:iso:std:iso:20022:tech:xsd:"
#: Message versions cutover reads, and the XSD file of each.
MESSAGES: Final = {"camt.053.001.02": "camt.053.001.02.xsd",
                   "pain.001.001.03": "pain.001.001.03.xsd",
                   "pacs.008.001.02": "pacs.008.001.02.xsd"}
#: Schema errors listed before the rest are counted, not shown.
ERRORS_SHOWN_MAX: Final = 5
#: Depth at which xmlschema's lazy mode validates subtrees one at a time (Document/X/Stmt).
LAZY_DEPTH: Final = 2


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
def _schema(message: str):  # noqa: ANN202 - xmlschema's type, imported lazily
    import xmlschema

    from cutover.paths import fixtures_dir

    return xmlschema.XMLSchema(str(fixtures_dir() / "xsd" / MESSAGES[message]))


def validate(path: Path, message: str) -> list[StatementProblem]:
    """Schema errors of ``path`` against the XSD of ``message`` (empty when valid)."""
    import xmlschema

    if message not in MESSAGES:
        raise InputError(f"{path}: message {message} is not supported (supported:"
                         f" {', '.join(MESSAGES)})")
    schema = _schema(message)
    problems: list[StatementProblem] = []
    count = 0
    try:
        # "sandbox": the file itself and nothing outside its folder; "always": a hardened
        # parser even for local files (no DTDs or entities).
        resource = xmlschema.XMLResource(str(Path(path).resolve()), lazy=LAZY_DEPTH,
                                         defuse="always", allow="sandbox")
        for error in schema.iter_errors(resource):
            count += 1
            if count <= ERRORS_SHOWN_MAX:
                problems.append(StatementProblem(getattr(error, "sourceline", None),
                                                 error.path or message,
                                                 f"not valid {message}: {error.reason}"))
    except (xmlschema.XMLSchemaException, SyntaxError, OSError) as exc:
        raise InputError(f"{path}: cannot be validated as {message}: {exc}") from exc
    if count > ERRORS_SHOWN_MAX:
        problems.append(StatementProblem(None, message, f"{count - ERRORS_SHOWN_MAX} more schema"
                                                        " errors not shown"))
    return problems
