"""The demo's ledger path on the simulated world: replay, apply, legacy EOD file, reconcile.

Synthetic diff tables prove the reconcile arithmetic elsewhere; this proves the mirror agrees
with the balance file the simulated legacy core itself exports, through the CLI a user runs.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from tests.cli_support import run_cli

MIRROR = "tests.replay_support:mirror_candidate"
WINDOW_START = "2026-09-03"


def invoke(*args: str) -> tuple[int, str, str]:
    """(exit code as cutover.cli.main maps it, stdout, error text)."""
    return run_cli(list(args))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    """A generated store replayed from its third day, applied; the core's EOD for that window."""
    root = tmp_path_factory.mktemp("reconcile-sim")
    store, run, eod = root / "store", root / "run", root / "eod"
    assert invoke("sim", "traffic", "--rows", "4000", "--seed", "17", "--out", str(store),
                  "--days", "5")[0] == 0
    code, stdout, _ = invoke("replay", str(store), "--out", str(run), "--candidate", MIRROR,
                             "--since", WINDOW_START, "--quiet", "--json")
    assert code == 0 and json.loads(stdout)["conservation_ok"] is True
    assert invoke("shadow", "apply", str(run), "--quiet")[0] == 0
    code, stdout, _ = invoke("sim", "eod", str(store), "--out", str(eod), "--since",
                             WINDOW_START, "--json")
    assert code == 0
    return run, next(eod.glob("balances_*.txt"))


def _details(path: Path) -> pa.Table:
    from cutover.adapters.files import FileReader, load_layout
    reader = FileReader(path, load_layout("legacy_balances"))
    return pa.Table.from_batches([b for kind, b in reader.batches() if kind == "detail"])


def test_mirror_of_a_replay_reconciles_with_the_cores_own_file(world):
    """Zero breaks against the simulated core's balance file, over every account it lists."""
    run, balances = world
    code, stdout, _ = invoke("shadow", "reconcile", str(run), "--legacy-balances",
                             str(balances), "--json")
    result = json.loads(stdout)
    accounts = _details(balances).num_rows
    assert code == 0 and result["breaks"] == [] and accounts > 10
    assert result["accounts_compared"] == accounts


def test_one_altered_balance_line_is_exactly_one_break(world, tmp_path):
    """One detail changed (trailer kept consistent): exactly that account breaks, exit 1."""
    from cutover.adapters.files import FileWriter, load_layout
    run, balances = world
    details = _details(balances).drop_columns(["_line"])
    figures = details["balance_minor"].to_pylist()
    figures[3] += 7
    altered = details.set_column(2, "balance_minor", pa.array(figures, pa.int64()))
    path = tmp_path / "balances_altered.txt"
    with FileWriter(path, load_layout("legacy_balances")) as writer:
        writer.write("header", {"as_of": dt.date(2026, 9, 5)})
        writer.write("detail", altered)
        writer.write("trailer", {"record_count": altered.num_rows,
                                 "balance_total": sum(figures)})
    code, stdout, message = invoke("shadow", "reconcile", str(run), "--legacy-balances",
                                   str(path), "--save")
    saved = json.loads((run / "reconcile.json").read_text(encoding="utf-8"))
    assert code == 1 and "1 breaks" in message
    assert [(b["account"], b["legacy_minor"] - b["mirror_minor"]) for b in saved["breaks"]] == \
        [(details["account_id"][3].as_py().strip(), 7)]


def test_a_hand_edited_line_fails_the_control_total_naming_it(world, tmp_path):
    """A detail edited without its trailer is refused: exit 1, the balance_total named."""
    run, balances = world
    lines = balances.read_bytes().split(b"\n")
    detail = next(i for i, line in enumerate(lines) if line.startswith(b"D"))
    # Overpunch keeps the sign in the last digit, so change the digit before it.
    line = bytearray(lines[detail])
    line[76] = ord("1") if line[76] != ord("1") else ord("2")
    lines[detail] = bytes(line)
    path = tmp_path / "balances_edited.txt"
    path.write_bytes(b"\n".join(lines))
    code, _, message = invoke("shadow", "reconcile", str(run), "--legacy-balances", str(path))
    assert code == 1 and "balance_total" in message and str(path) in message


def _statement(world_eod: Path, suffix: str) -> Path:
    return next(world_eod.glob(f"statement_*{suffix}"))


@pytest.mark.parametrize("suffix", [".camt053.xml", ".mt940"])
def test_mirror_reconciles_with_the_cores_statement(world, suffix):
    """Zero breaks against the core's own camt.053 and MT940 statements of the same window."""
    run, balances = world
    code, stdout, _ = invoke("shadow", "reconcile", str(run), "--statement",
                             str(_statement(balances.parent, suffix)), "--json")
    result = json.loads(stdout)
    assert code == 0 and result["breaks"] == []
    assert result["accounts_compared"] == _details(balances).num_rows
    assert result["entries"] > 100


def test_one_edited_statement_entry_gives_one_named_break(world, tmp_path):
    """One entry booked 1.00 higher (closing and net moved with it): exactly one break, naming
    the account, currency, expected, booked and that entry with its line."""
    from lxml import etree

    run, balances = world
    source = _statement(balances.parent, ".camt053.xml")
    tree = etree.parse(str(source))
    ns = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"}
    stmt = tree.xpath("//c:Stmt[c:Ntry/c:CdtDbtInd='CRDT' and"
                      " c:Bal[c:Tp/c:CdOrPrtry/c:Cd='CLBD']/c:CdtDbtInd='CRDT']", namespaces=ns)[0]
    entry = stmt.xpath("c:Ntry[c:CdtDbtInd='CRDT']", namespaces=ns)[0]
    account = stmt.xpath("string(c:Acct/c:Id/c:Othr/c:Id)", namespaces=ns)
    txn_id = entry.xpath("string(c:AcctSvcrRef)", namespaces=ns)
    for amount in (entry.xpath("c:Amt", namespaces=ns)[0],
                   stmt.xpath("c:Bal[c:Tp/c:CdOrPrtry/c:Cd='CLBD']/c:Amt", namespaces=ns)[0],
                   stmt.xpath("c:TxsSummry/c:TtlNtries/c:TtlNetNtryAmt", namespaces=ns)[0]):
        whole, _, frac = amount.text.partition(".")
        amount.text = f"{int(whole) + 1}.{frac}" if frac else str(int(whole) + 1)
    edited = tmp_path / "edited.camt053.xml"
    tree.write(str(edited), xml_declaration=True, encoding="utf-8")
    code, stdout, _ = invoke("shadow", "reconcile", str(run), "--statement", str(edited),
                             "--json")
    result = json.loads(stdout)
    assert code == 1
    [brk] = result["breaks"]
    assert brk["account"] == account and brk["booked_minor"] - brk["expected_minor"] in (1, 100)
    [named] = brk["entries"]
    assert named["reference"] == txn_id and named["line"] == entry.sourceline
    assert named["booked_minor"] - named["expected_minor"] == brk["booked_minor"] - \
        brk["expected_minor"]
