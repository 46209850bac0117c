"""Fuzz the boundaries (hypothesis): the layout reader, the CSV importer and `decide` raise
nothing but cutover's own errors, whatever bytes or values they are given."""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cutover.errors import CutoverError
from tests.adapters_support import ROOT

HOSTILE = ROOT / "tests" / "data" / "hostile"
BASE_AUTHLOG = (HOSTILE / "batch" / "base_authlog.txt").read_bytes()
PARTNER_MAPPING = ROOT / "cutover" / "fixtures" / "mappings" / "partner_export.toml"
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _read_layout_file(data: bytes) -> None:
    from cutover.adapters.files import FileReader, load_layout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "authlog.txt"
        path.write_bytes(data)
        reader = FileReader(path, load_layout("legacy_authlog"),
                            rejects_path=Path(folder) / "rejects.jsonl")
        rows = sum(batch.num_rows for _, batch in reader.batches())
        assert rows + reader.report.rejected >= 0
        reader.raise_for_controls()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(BASE_AUTHLOG) - 1), st.binary(min_size=1,
                                                                           max_size=4)),
                min_size=1, max_size=8))
def test_layout_reader_on_corrupted_authlog_raises_only_our_errors(changes):
    """Bytes overwritten anywhere in a real authlog: read, or a CutoverError; nothing else."""
    data = bytearray(BASE_AUTHLOG)
    for at, chunk in changes:
        data[at:at + len(chunk)] = chunk
    with contextlib.suppress(CutoverError):
        _read_layout_file(bytes(data))


@FUZZ
@given(st.binary(max_size=2_000))
def test_layout_reader_on_random_bytes_raises_only_our_errors(data):
    """Random bytes as an authlog: a CutoverError (or nothing), never a foreign exception."""
    with contextlib.suppress(CutoverError):
        _read_layout_file(data)


HEADER = ("Reference,When,Merchant,MCC,Customer,Card,CardCountry,Amount,Ccy,MerchantCountry,"
          "Channel,Result,Gateway,Fee")
CELL = st.one_of(
    st.sampled_from(["", "0", "-1", "12.34", "1e309", "nan", "2026-02-30 10:00:00",
                     "0001-01-01 00:00:00", "2026-10-01 10:00:00", "4111 1111 1111 1111",
                     "4111-1111-1111-1111", "USD", "XXX", "US", "ecom", "\"", "\"\"", "a,b",
                     "99999999999999999999999"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))


@FUZZ
@given(st.lists(st.lists(CELL, min_size=1, max_size=16), max_size=6))
def test_csv_importer_raises_only_our_errors_and_conserves(tmp_path, monkeypatch, rows):
    """Random cells under the partner header: imported with read = imported + duplicates +
    quarantined, or a CutoverError; never a foreign exception."""
    from cutover.adapters.columns import load_columns
    from cutover.adapters.importer import import_file, load_codes
    monkeypatch.setenv("CUTOVER_TOKEN_KEY", "fuzz-key")
    cmap = load_columns(PARTNER_MAPPING)
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        source = Path(folder) / "partner.csv"
        lines = [",".join(json.dumps(c) if ("," in c or '"' in c) else c for c in row)
                 for row in rows]
        source.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
        try:
            counts = import_file(source, Path(folder) / "store", "csv", cmap,
                                 load_codes(cmap.code_table), b"fuzz-key")
        except CutoverError:
            return
        assert counts.read == counts.imported + counts.duplicates + counts.quarantined


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The reference stack on a registry trained through the CLI on a small store."""
    from cutover.stack import default_stack
    from tests.cli_support import invoke
    from tests.stack_support import make_traffic, write_store
    root = tmp_path_factory.mktemp("fuzz-decide")
    store = write_store(make_traffic(12_000, seed=21, days=6), root / "store")
    code, stdout = invoke("train", str(store), "--models", str(root / "models"),
                          "--until", "2026-10-06", "--seed", "1", "--json")
    assert code == 0, stdout
    return default_stack(root / "models", None, None)


GOOD_TXN = json.loads((ROOT / "cutover" / "fixtures" / "requests" / "decide.json").read_text())
VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**40, 10**40),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                  st.sampled_from(["2026-02-30T00:00:00", "0001-01-01T00:00:00+00:00",
                                   "9999-12-31T23:59:59+00:00", "XXX", "fax", "ZZ"]),
                  st.lists(st.integers(), max_size=2),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@FUZZ
@example({"currency": ["USD"]})
@example({"amount_minor": 10**30, "channel": {"a": 1}})
@example({"card_country": [], "ts": 12})
@given(st.dictionaries(st.sampled_from(sorted(GOOD_TXN)), VALUE, max_size=5))
def test_decide_raises_only_our_errors(stack, changes):
    """A valid request with fields replaced by hostile values: a decision or a CutoverError."""
    from cutover.cli.stack import _read_txn
    text = json.dumps(GOOD_TXN | changes, allow_nan=True)
    try:
        result = stack.decide(_read_txn(text))
    except CutoverError:
        return
    assert result["decision"] in ("approve", "decline", "review")
    assert math.isfinite(result["score"])
