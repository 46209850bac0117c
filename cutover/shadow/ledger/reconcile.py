"""Reconcile the mirror's legacy book against the legacy core's end-of-day balance file.

The pure core compares two maps ``{(account, currency): amount_minor}`` and lists the breaks;
the shell reads the mirror's balances from the ledger and the file through the batch-file
adapter. Both sides are in the file's convention: MERCHANT_PAYABLE shown positive (the mirror's
credit balance negated) and FEE_EXPENSE shown positive (the mirror's debit balance as is).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, select

from cutover.errors import StoreError
from cutover.shadow.ledger.posting_rules import FEE_EXPENSE, MERCHANT_PAYABLE
from cutover.shadow.ledger.schema import BOOK_IDS, accounts, balances

BalanceMap = dict[tuple[str, str], int]

#: The classes the legacy file carries, and the sign that turns our balance into its figure.
RECONCILED_CLASSES: Final[dict[str, int]] = {MERCHANT_PAYABLE: -1, FEE_EXPENSE: 1}
#: Rows read from a balance file at most; a bigger file is not an end-of-day balance file.
BALANCE_ROWS_MAX: Final = 10_000_000
DETAIL_RECORD: Final = "detail"


@dataclass(frozen=True)
class ReconcileBreak:
    """One (account, currency) where legacy and the mirror disagree."""

    account: str
    currency: str
    legacy_minor: int
    mirror_minor: int

    @property
    def difference_minor(self) -> int:
        """Mirror minus legacy."""
        return self.mirror_minor - self.legacy_minor

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, difference included."""
        return {**asdict(self), "difference_minor": self.difference_minor}


def compare_balances(legacy: BalanceMap, mirror: BalanceMap) -> list[ReconcileBreak]:
    """Every key where the two maps differ (a missing key counts as zero), sorted."""
    breaks = []
    for key in sorted(set(legacy) | set(mirror)):
        legacy_minor, mirror_minor = legacy.get(key, 0), mirror.get(key, 0)
        if legacy_minor != mirror_minor:
            breaks.append(ReconcileBreak(key[0], key[1], legacy_minor, mirror_minor))
    return breaks


def mirror_balances(engine: Engine) -> BalanceMap:
    """The legacy book's reconciled balances, in the legacy file's sign convention."""
    query = (select(accounts.c.name, accounts.c.currency, accounts.c.account_class,
                    balances.c.balance_minor)
             .select_from(balances.join(accounts, accounts.c.account_id == balances.c.account_id))
             .where(balances.c.book_id == BOOK_IDS["legacy"],
                    accounts.c.account_class.in_(list(RECONCILED_CLASSES))))
    with engine.connect() as conn:
        return {(name, currency): RECONCILED_CLASSES[cls] * int(balance)
                for name, currency, cls, balance in conn.execute(query).all()}


def read_balance_file(path: Path, layout_name: str = "legacy_balances") -> BalanceMap:
    """The legacy end-of-day balance file as a map, read by the batch-file adapter."""
    try:
        from cutover.adapters.files import FileReader, load_layout
    except ImportError as exc:
        raise StoreError("the batch-file adapter (cutover.adapters.files) is not installed;"
                         " cannot read the legacy balance file") from exc
    if not Path(path).is_file():
        raise StoreError(f"legacy balance file {path} does not exist")
    reader = FileReader(Path(path), load_layout(layout_name))
    figures: BalanceMap = {}
    for record_type, batch in reader.batches():
        if record_type != DETAIL_RECORD:
            continue  # the header and trailer carry no balances
        rows = zip(batch["account_id"].to_pylist(), batch["currency"].to_pylist(),
                   batch["balance_minor"].to_pylist(), strict=True)
        for account, currency, amount_minor in rows:
            key = (str(account).strip(), str(currency).strip())
            if key in figures:
                raise StoreError(f"{path}: account {key[0]} {key[1]} appears twice")
            figures[key] = int(amount_minor)
            if len(figures) > BALANCE_ROWS_MAX:
                raise StoreError(f"{path}: more than {BALANCE_ROWS_MAX} balance rows")
    # A file whose trailer disagrees with its details cannot be reconciled against.
    reader.raise_for_controls()
    rejected = getattr(reader.report, "rejected", 0)
    if rejected:
        raise StoreError(f"{path}: {rejected} balance records could not be read; refusing to"
                         " reconcile against a partial file")
    return figures
