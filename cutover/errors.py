"""One tree of cutover's errors, and the one table that maps them to exit codes.

    CutoverError                      anything cutover raises on purpose
    ├── InputError                    the user's input is unusable (exit 2)
    │   ├── ConfigError               a TOML/JSON config, mapping, rules or plan file is invalid
    │   ├── LayoutError               a record layout spec is invalid
    │   ├── GateInputError            a report or policy the gate cannot judge
    │   └── StoreError                a traffic store or run directory is missing or malformed
    ├── CheckFailed                   a check ran and said no (exit 1)
    │   ├── ControlTotalMismatch      a batch file's control totals disagree with its records
    │   ├── ReconcileBreaks           the ledger mirror disagrees with the legacy books
    │   ├── ChainBroken               the ledger's audit hash chain does not verify
    │   ├── GateFailed                a gate policy check failed
    │   └── ErrorRateExceeded         more calls or rows failed than --max-error-rate allows
    ├── AdapterError                  the outside world misbehaved (exit 3)
    │   ├── LegacyUnavailable         the legacy core cannot be reached (refused, timeout, breaker open)
    │   ├── LegacyFault               the legacy core answered with a fault or unreadable XML
    │   ├── UnsafeXML                 XML with a DTD, entity or external reference was refused
    │   ├── NothingUseful             every call failed: the command did nothing useful
    │   └── BadRecord                 one record cannot be read; it is quarantined, not dropped
    ├── LedgerError                   the ledger refused a write (exit 4)
    │   └── Unbalanced                an entry whose postings do not sum to zero per currency
    ├── PlanError                     a cutover-plan transition is not allowed (exit 1)
    └── InvariantBroken               a broken invariant (conservation, ...): stop now (exit 4)

Foreign exceptions are translated at the boundary with ``raise OurError(...) from exc``.
"""

from __future__ import annotations

from typing import Final

from cutover.domain import MoneyError


class CutoverError(Exception):
    """Anything cutover raises on purpose."""


class InputError(CutoverError):
    """The user's input is unusable; the message names the file, line or field."""


class ConfigError(InputError):
    """A TOML/JSON config, mapping, rules or plan file is invalid."""


class LayoutError(InputError):
    """A record layout spec is invalid."""


class GateInputError(InputError):
    """A report or policy that the gate cannot judge."""


class StoreError(InputError):
    """A traffic store or run directory is missing or malformed."""


class CheckFailed(CutoverError):
    """A check ran to completion and its answer is no."""


class ControlTotalMismatch(CheckFailed):
    """A batch file's control totals disagree with its records."""


class ReconcileBreaks(CheckFailed):
    """The ledger mirror disagrees with the legacy books."""


class ChainBroken(CheckFailed):
    """The ledger's audit hash chain does not verify."""


class GateFailed(CheckFailed):
    """A gate policy check failed."""


class AdapterError(CutoverError):
    """The outside world misbehaved."""


class ErrorRateExceeded(CheckFailed):
    """More calls or rows failed than the error-rate limit allows; the message says why."""


class LegacyUnavailable(AdapterError):
    """The legacy core cannot be reached: refused, timed out, or the breaker is open."""


class LegacyFault(AdapterError):
    """The legacy core answered with a SOAP fault or XML we cannot read."""


class UnsafeXML(AdapterError):
    """XML with a DTD, entity declaration or external reference was refused."""


class NothingUseful(AdapterError):
    """Every call to the outside failed; the message gives the first error of each kind."""


class BadRecord(AdapterError):
    """One record cannot be read; callers quarantine it with this reason."""


class LedgerError(CutoverError):
    """The ledger refused a write."""


class Unbalanced(LedgerError):
    """An entry whose postings do not sum to zero per currency."""


class PlanError(CutoverError):
    """A cutover-plan transition is not allowed (missing approvals, gate or bake time)."""


class InvariantBroken(CutoverError):
    """An invariant that must always hold does not: stop rather than write wrong numbers."""


#: Exit codes by error class; the most specific class in an error's MRO wins.
EXIT_CODES: Final[dict[type[BaseException], int]] = {
    CutoverError: 1,
    CheckFailed: 1,
    PlanError: 1,
    InputError: 2,
    MoneyError: 2,
    AdapterError: 3,
    LedgerError: 4,
    InvariantBroken: 4,
}


def exit_code_for(error: BaseException) -> int:
    """Return the exit code for ``error`` from ``EXIT_CODES`` (1 for anything unknown)."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
