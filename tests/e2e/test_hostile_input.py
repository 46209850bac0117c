"""The hostile-input corpus (tests/data/hostile/cases.toml): every case ends in its documented
exit code with a one-line message naming the input, no row is lost or silently changed, and
no file written holds a card number in any form."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cutover.cli import main
from cutover.pan import find_pans
from tests.adapters_support import ROOT, scan_for_pans
from tests.migrate_support import make_report

HOSTILE = ROOT / "tests" / "data" / "hostile"
CASES = tomllib.loads((HOSTILE / "cases.toml").read_text(encoding="utf-8"))["case"]
CASES_MIN = 40


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """What several cases point at: a tiny store, a passing report, a file and a folder."""
    from cutover.sim.traffic import generate
    root = tmp_path_factory.mktemp("hostile-shared")
    generate(root / "store", 40, 3, days=7)
    (root / "report.json").write_text(json.dumps(make_report(100_000)))
    (root / "a-file.txt").write_text("not a folder\n")
    (root / "a-dir").mkdir()
    return root


def _args(case: dict, tmp: Path, shared: Path) -> list[str]:
    values = {"data": str(HOSTILE), "tmp": str(tmp), "fixtures": str(ROOT / "cutover" / "fixtures"),
              "store": str(shared / "store"), "report": str(shared / "report.json"),
              "file": str(shared / "a-file.txt"), "dir": str(shared / "a-dir")}
    return [arg.format(**values) if "{" in arg and not arg.startswith("{\"") else
            arg for arg in case["args"]]


def _run(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run `cutover ARGS` through the real entry point (its guard included), in process."""
    monkeypatch.setattr(sys, "argv", ["cutover", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_corpus_is_big_enough_and_covers_every_kind():
    """At least 40 cases, over batch, CSV, JSON lines, cassettes, TOML and CLI options."""
    kinds = {case["id"].split("-")[0] for case in CASES}
    assert len(CASES) >= CASES_MIN
    assert kinds == {"batch", "csv", "jsonl", "cassette", "toml", "cli"}
    assert len({case["id"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_hostile_case(case, shared, tmp_path, monkeypatch, capsys):
    """One corpus case: its exit code, its message, its counts, no card number written."""
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "hostile-corpus-key")
    monkeypatch.delenv("CUTOVER_DEBUG", raising=False)
    code, out, err = _run(_args(case, tmp_path, shared), monkeypatch, capsys)
    assert code == case["exit"], f"{case['id']}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in err and "unexpected" not in err, err
    if code:
        _check_message(case, err)
    if case.get("where") == "quarantine":
        text = "".join(p.read_text() for p in (tmp_path / "store" / "_quarantine").glob("*"))
        assert case["fragment"] in text
    if "counts" in case:
        _check_counts(case, out, tmp_path / "store")
    assert find_pans(out + err) == []
    assert scan_for_pans(tmp_path) == []


def _check_message(case: dict, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert case["fragment"] in err, err
    if err.startswith("error:"):
        # Our own errors are one line; click's usage errors come in its panel.
        assert len(lines) == 1, err


def _check_counts(case: dict, out: str, store: Path) -> None:
    """read = imported + duplicates + quarantined as documented; the store holds exactly
    the imported rows, the quarantine file one line per quarantined row."""
    total = json.loads(out)["total"]
    read, imported, duplicates, quarantined = case["counts"]
    assert [total["read"], total["imported"], total["duplicates"], total["quarantined"]] == \
        case["counts"]
    assert read == imported + duplicates + quarantined
    parts = sorted(store.glob("day=*/*.parquet"))
    rows = [row for part in parts for row in pq.read_table(part).to_pylist()]
    assert len(rows) == imported
    lines = sum(len(p.read_text().splitlines()) for p in (store / "_quarantine").glob("*"))
    assert lines == quarantined
    if "amounts" in case:
        assert {row["amount_minor"] for row in rows} <= set(case["amounts"])


def _boom(*_args, **_kwargs):
    raise RuntimeError("simulated bug\nsecond line 4111 1111 1111 1111")


def test_guard_turns_an_unexpected_error_into_one_line_exit_4(tmp_path, monkeypatch, capsys):
    """A foreign exception nobody translated: exit 4, one masked line, no traceback; with
    --debug the traceback is shown (and the exception propagates)."""
    import cutover.adapters.sources as sources
    monkeypatch.setattr(sources, "detect_format", _boom)
    source = HOSTILE / "csv" / "feb30.csv"
    code, _, err = _run(["import", str(source), "--into", str(tmp_path / "s")], monkeypatch,
                        capsys)
    assert code == 4 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "unexpected RuntimeError: simulated bug" in err and "--debug" in err
    with pytest.raises(RuntimeError):
        _run(["import", str(source), "--into", str(tmp_path / "s"), "--debug"], monkeypatch,
             capsys)
