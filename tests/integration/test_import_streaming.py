"""A batch file is imported chunk by chunk: same result as one big chunk, crash-safe, and a
file whose control totals fail imports nothing.

Chunks are made tiny (``chunk_rows`` or $CUTOVER_IMPORT_CHUNK_ROWS) so a small file spans
many of them: duplicates and rejects then fall in different chunks than their originals.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cutover.adapters import importer as importer_module
from cutover.adapters.files import FileWriter, load_layout
from cutover.adapters.importer import STAGING_DIR
from cutover.adapters.sources import import_source
from cutover.cli import app
from cutover.domain import TRAFFIC
from cutover.errors import ConfigError, ControlTotalMismatch
from cutover.store import traffic as store_module
from tests.adapters_support import scan_for_pans
from tests.replay_support import make_traffic

CUTOVER = str(Path(sys.executable).with_name("cutover"))
COUNTS = ("read", "imported", "duplicates", "quarantined")


def _authlog(path: Path, table: pa.Table, amount_off: int = 0) -> Path:
    """Write ``table`` as an authlog; ``amount_off`` spoils the trailer's amount total."""
    bins = pc.cast(table["card_bin"], pa.int64())
    with FileWriter(path, load_layout("legacy_authlog")) as writer:
        writer.write("header", {"file_date": dt.date(2026, 10, 3), "sequence": 1})
        writer.write("detail", table)
        writer.write("trailer", {"record_count": table.num_rows,
                                 "amount_total": pc.sum(table["amount_minor"]).as_py()
                                 + amount_off,
                                 "hash_total": pc.sum(bins).as_py() % 10**15})
    return path


def _spoiled(tmp_path: Path, rows: int = 300) -> Path:
    """``rows`` transactions over 3 days, then: a channel 'fax' at row 40, a repeat of row 3 at
    the end (another chunk), and a truncated line after the header (a reader reject)."""
    base = make_traffic(rows, seed=11).select([f.name for f in TRAFFIC])
    records = base.to_pylist()
    records[40]["channel"] = "fax"
    records.append(dict(records[3]))
    path = _authlog(tmp_path / "authlog_20261003.txt",
                    pa.Table.from_pylist(records, schema=base.schema))
    lines = path.read_bytes().split(b"\n")
    lines.insert(1, b"D" + b"X" * 40 + b" short")
    path.write_bytes(b"\n".join(lines))
    return path


def _store_rows(store: Path) -> list[dict]:
    return pa.concat_tables(pq.read_table(f) for f in store_module.store_files(store)) \
        .sort_by("txn_id").to_pylist()


def _counts(counts) -> tuple[int, ...]:
    return tuple(getattr(counts, name) for name in COUNTS)


def test_chunked_import_equals_one_chunk_with_dups_across_chunks(tmp_path):
    """7-row chunks give the store, counts and quarantine of one chunk; the repeat of row 3
    (last chunk) is caught as a duplicate; every part name carries sha, chunk and day."""
    path = _spoiled(tmp_path)
    small = import_source(path, tmp_path / "small", fmt="layout", chunk_rows=7)
    whole = import_source(path, tmp_path / "whole", fmt="layout", chunk_rows=10_000)
    assert _counts(small) == _counts(whole) == (302, 299, 1, 2)
    assert small.days == whole.days and sum(small.days.values()) == 299
    assert _store_rows(tmp_path / "small") == _store_rows(tmp_path / "whole")
    assert len({r["txn_id"] for r in _store_rows(tmp_path / "small")}) == 299
    parts = store_module.store_files(tmp_path / "small")
    assert len(parts) >= 300 // 7
    assert all(p.name.startswith("import-") and "-c7-" in p.name for p in parts)
    assert not (tmp_path / "small" / STAGING_DIR).exists()
    # Re-importing writes nothing: every row is a duplicate of the store.
    again = import_source(path, tmp_path / "small", fmt="layout", chunk_rows=7)
    assert _counts(again) == (302, 0, 300, 2)
    assert store_module.store_files(tmp_path / "small") == parts


def test_quarantine_keeps_line_and_row_rejects_of_every_chunk(tmp_path):
    """One quarantine file per source holds the reader's line reject and the row rejects,
    whichever chunk they came from, and none is written over by a later chunk."""
    base = make_traffic(60, seed=12).select([f.name for f in TRAFFIC])
    records = base.to_pylist()
    for i in (2, 25, 51):  # three different 10-row chunks
        records[i]["channel"] = "fax"
    path = _authlog(tmp_path / "authlog.txt", pa.Table.from_pylist(records, schema=base.schema))
    lines = path.read_bytes().split(b"\n")
    lines.insert(30, b"D short")
    path.write_bytes(b"\n".join(lines))
    counts = import_source(path, tmp_path / "store", fmt="layout", chunk_rows=10)
    assert _counts(counts) == (61, 57, 0, 4)
    quarantine = [json.loads(line) for line in
                  (tmp_path / "store" / "_quarantine" / "authlog.txt.jsonl").read_text()
                  .splitlines()]
    # Line numbers: the header is line 1, so record i is line i + 2 (+1 after line 31).
    assert sorted((q["line"], q.get("field") or "") for q in quarantine) == \
        [(4, "channel"), (27, "channel"), (31, ""), (54, "channel")]


def test_control_total_mismatch_imports_nothing_and_names_the_totals(tmp_path):
    """A wrong trailer amount is only known at the end: the chunks already staged are dropped,
    the store gets no rows, the error names the total and says nothing was imported."""
    base = make_traffic(50, seed=13).select([f.name for f in TRAFFIC])
    path = _authlog(tmp_path / "authlog.txt", base, amount_off=1)
    store = tmp_path / "store"
    with pytest.raises(ControlTotalMismatch) as caught:
        import_source(path, store, fmt="layout", chunk_rows=5)
    message = str(caught.value)
    expected = pc.sum(base["amount_minor"]).as_py()
    assert f"amount_total in file (trailer line 52): expected {expected + 1}, actual " \
           f"{expected}" in message
    assert "Nothing imported" in message
    assert not list(store.rglob("*.parquet"))
    assert not (store / STAGING_DIR).exists()
    result = CliRunner().invoke(app, ["import", str(path), "--into", str(store), "--quiet"])
    assert result.exit_code == 1 and not list(store.rglob("*.parquet"))


def test_chunk_rows_env_must_be_a_positive_number(tmp_path, monkeypatch):
    path = _authlog(tmp_path / "authlog.txt", make_traffic(5, seed=2).select(
        [f.name for f in TRAFFIC]))
    for bad in ("many", "0"):
        monkeypatch.setenv("CUTOVER_IMPORT_CHUNK_ROWS", bad)
        with pytest.raises(ConfigError):
            import_source(path, tmp_path / "store", fmt="layout")


def test_killed_import_rerun_equals_a_clean_import(tmp_path):
    """SIGKILL the CLI once its first chunk is on disk, re-run: the store is a clean import's
    (same rows, none twice) and the re-run's counts are a clean import's counts."""
    path = _spoiled(tmp_path, rows=4000)
    store = tmp_path / "store"
    env = os.environ | {"CUTOVER_IMPORT_CHUNK_ROWS": "10"}
    proc = subprocess.Popen([CUTOVER, "import", str(path), "--into", str(store), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(store.rglob("import-*.parquet")):
            assert proc.poll() is None, "import ended before its first part file appeared"
            assert time.monotonic() < deadline, "no part file after 60 s"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the import finished before it was killed"
    # Killed mid-file: its chunks sit in staging, and nothing was published.
    assert list((store / STAGING_DIR).rglob("*.parquet"))
    assert not [p for p in store.glob("day=*/*.parquet")]

    runner = CliRunner()
    rerun = runner.invoke(app, ["import", str(path), "--into", str(store), "--json", "--quiet"],
                          env={"CUTOVER_IMPORT_CHUNK_ROWS": "10"})
    assert rerun.exit_code == 0, rerun.output
    clean = runner.invoke(app, ["import", str(path), "--into", str(tmp_path / "clean"),
                                "--json", "--quiet"], env={"CUTOVER_IMPORT_CHUNK_ROWS": "10"})
    got, want = (json.loads(r.stdout)["total"] for r in (rerun, clean))
    assert [got[k] for k in COUNTS] == [want[k] for k in COUNTS] == [4002, 3999, 1, 2]
    rows = _store_rows(store)
    assert rows == _store_rows(tmp_path / "clean")
    assert len({r["txn_id"] for r in rows}) == len(rows) == 3999
    assert not (store / STAGING_DIR).exists()
    assert scan_for_pans(store) == []


def test_crash_while_publishing_then_rerun_imports_exactly_the_rest(tmp_path, monkeypatch):
    """Publishing is one rename per part; a crash after 3 of them leaves those rows in the
    store. The re-run counts them as duplicates, publishes the rest, and writes no part twice."""
    path = _spoiled(tmp_path)
    real_replace = os.replace

    def crash_after_three(staging: Path, root: Path) -> int:
        parts = sorted(Path(staging).glob("day=*/*.parquet"))
        for part in parts[:3]:
            (root / part.parent.name).mkdir(parents=True, exist_ok=True)
            real_replace(part, root / part.parent.name / part.name)
        raise OSError("simulated crash while publishing")

    store = tmp_path / "store"
    with monkeypatch.context() as patch:
        # Patched where the importer looks it up, so only the publish step crashes.
        patch.setattr(importer_module, "move_parts", crash_after_three)
        with pytest.raises(OSError, match="simulated crash"):
            import_source(path, store, fmt="layout", chunk_rows=7)
    published = store_module.store_files(store)
    early = sum(pq.ParquetFile(p).metadata.num_rows for p in published)
    assert len(published) == 3 and early > 0

    rerun = import_source(path, store, fmt="layout", chunk_rows=7)
    clean = import_source(path, tmp_path / "clean", fmt="layout", chunk_rows=7)
    assert _counts(rerun) == (clean.read, clean.imported - early, clean.duplicates + early,
                              clean.quarantined)
    assert _store_rows(store) == _store_rows(tmp_path / "clean")
    assert sorted(p.relative_to(store) for p in store_module.store_files(store)) == \
        sorted(p.relative_to(tmp_path / "clean")
               for p in store_module.store_files(tmp_path / "clean"))
