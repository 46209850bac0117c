"""Bank statements and payment messages from outside: ISO 20022 (camt.053, pain.001, pacs.008)
and SWIFT MT940, read into balances, entries and payments in minor units.

Banks hand over their books as statements; a shadow ledger is only trusted once it reconciles
against one. ``open_statement`` reads a camt.053 or MT940 file (chosen by its content) into
account statements whose opening balance plus booked entries must equal the closing balance,
streaming the entries as Arrow batches. XML is parsed through ``cutover.xmlsafe`` (no DTDs, no
entities) and validated against the official XSD of the message version shipped in
``fixtures/xsd``.

Raises: InputError (a file that is not what it claims, with file, line and element),
UnsafeXML (a DTD or entity), CheckFailed (balances or control sums that do not add up).
"""

from cutover.adapters.statements.model import AccountStatement, StatementProblem, StatementRead
from cutover.adapters.statements.reader import open_statement, read_statement

__all__ = ["AccountStatement", "StatementProblem", "StatementRead", "open_statement",
           "read_statement"]
