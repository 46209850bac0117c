"""Reconcile the mirror's legacy book against the legacy core's end-of-day balance file.

The pure core compares two maps ``{(account, currency): amount_minor}`` and lists the breaks;
the shell reads the mirror's balances from the ledger and the file through the batch-file
adapter. Both sides are in the file's convention: MERCHANT_PAYABLE shown positive (the mirror's
credit balance negated) and FEE_EXPENSE shown positive (the mirror's debit balance as is).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, select

from cutover.adapters.files import FileReader, load_layout
from cutover.errors import StoreError
from cutover.shadow.ledger.posting_rules import FEE_EXPENSE, MERCHANT_PAYABLE
from cutover.shadow.ledger.schema import BOOK_IDS, accounts, balances

BalanceMap = dict[tuple[str, str], int]

#: The classes the legacy file carries, and the sign that turns our balance into its figure.
RECONCILED_CLASSES: Final[dict[str, int]] = {MERCHANT_PAYABLE: -1, FEE_EXPENSE: 1}
#: Rows read from a balance file at most; a bigger file is not an end-of-day balance file.
BALANCE_ROWS_MAX: Final = 10_000_000
DETAIL_RECORD: Final = "detail"
#: Where `cutover shadow reconcile RUN_DIR --save` leaves its result; the TUI's Ledger screen
#: reads this name, because a run directory does not hold the legacy file to reconcile itself.
RECONCILE_FILE: Final = "reconcile.json"


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
        pass
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
        first = reader.report.reject_sample[0]
        raise StoreError(f"{path}: {rejected} balance records could not be read (first: line"
                         f" {first['line']}, field {first['field'] or '-'}: {first['reason']});"
                         " refusing to reconcile against a partial file")
    return figures


def reconcile_result(legacy: BalanceMap, mirror: BalanceMap, breaks: list[ReconcileBreak],
                     legacy_file: Path | str) -> dict[str, Any]:
    """The JSON object `reconcile --json` prints and `--save` writes (pure).

    ``accounts_compared`` and ``breaks`` are what the TUI shows; ``ok`` and the file name let a
    reader of a saved result tell which end-of-day file it was checked against.
    """
    return {"accounts_compared": len(set(legacy) | set(mirror)),
            "breaks": [b.as_dict() for b in breaks], "ok": not breaks,
            "legacy_balances": str(legacy_file)}


def save_reconcile(run_dir: Path, result: dict[str, Any]) -> Path:
    """Write ``result`` to RUN_DIR/reconcile.json atomically and return the path.

    Written through a temporary file and a rename, so the TUI (which may be following the run)
    reads either the previous result or the new one, never half a file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StoreError(f"run directory {run_dir} does not exist; cannot save {RECONCILE_FILE}")
    target = run_dir / RECONCILE_FILE
    fd, tmp_name = tempfile.mkstemp(prefix=".reconcile-", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
