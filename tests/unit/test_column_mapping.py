"""Column mappings for foreign exports (issue 15): generated ids, offset and epoch times, label
times given/derived/absent, value maps on coded columns, reasons that say what was expected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cutover.adapters.codes import CodeTable
from cutover.adapters.columns import load_columns, parse_time_column
from cutover.adapters.importer import map_columns
from cutover.errors import ConfigError

BASE = """
amount_scale = "major"
[columns]
"who" = ["customer_id", "card_token"]
"shop" = "merchant_id"
"kind" = "channel"
"amt" = "amount_minor"
"fraud" = "is_fraud"
[maps]
kind = { W = "ecom", S = "pos" }
[txn_id]
generate = "hash"
columns = ["t", "who", "amt"]
prefix = "X-"
[time]
column = "t"
format = "offset"
unit = "hours"
origin = "2026-09-01T00:00:00Z"
[defaults]
currency = "JPY"
mcc = "5999"
merchant_country = "JP"
card_country = "JP"
card_bin = "000000"
legacy_code = "00"
"""


def _cmap(tmp_path: Path, extra: str = "") -> object:
    path = tmp_path / "export.toml"
    path.write_text(BASE + extra)
    return load_columns(path)


def _table(rows: list[tuple[str, ...]]) -> pa.Table:
    names = ["t", "who", "shop", "kind", "amt", "fraud"]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


ROWS = [("0", "A", "M1", "W", "1200", "0"), ("25", "B", "M1", "S", "300", "1"),
        ("25", "B", "M1", "S", "300", "1"), ("1.5", "C", "M2", "F", "10", "0")]


def test_offsets_generated_ids_and_value_maps(tmp_path):
    """Hours from the origin, a stable id per row (two equal rows get two ids), W -> ecom, and
    an unmapped code quarantined with the allowed values."""
    cmap = _cmap(tmp_path, '[labels]\ntime = "absent"\n')
    table, reasons, fields = map_columns(_table(ROWS), cmap, None, CodeTable.load())
    ts = table["ts"].to_pylist()
    assert ts[0] == datetime(2026, 9, 1, tzinfo=UTC)
    assert ts[1] == datetime(2026, 9, 2, 1, tzinfo=UTC)
    assert ts[3] == datetime(2026, 9, 1, 1, 30, tzinfo=UTC)
    ids = table["txn_id"].to_pylist()
    assert len(set(ids)) == 4 and all(i.startswith("X-") for i in ids)
    again, _, _ = map_columns(_table(ROWS), cmap, None, CodeTable.load())
    assert again["txn_id"].to_pylist() == ids
    assert table["channel"].to_pylist()[:3] == ["ecom", "pos", "pos"]
    assert table["amount_minor"].to_pylist()[:2] == [1200, 300]  # JPY: major == minor
    assert list(reasons[:3]) == ["", "", ""]
    assert fields[3] == "channel" and "allowed: S, W" in reasons[3]
    assert table["label_ts"].null_count == 4


def test_derived_label_times_add_the_delay(tmp_path):
    """labels.time = derived: label_ts = ts + 48 h for every labelled row."""
    cmap = _cmap(tmp_path, '[labels]\ntime = "derived"\ndelay_hours = 48\n')
    table, _, _ = map_columns(_table(ROWS[:2]), cmap, None, CodeTable.load())
    assert table["label_ts"].to_pylist() == [datetime(2026, 9, 3, tzinfo=UTC),
                                             datetime(2026, 9, 4, 1, tzinfo=UTC)]


def test_unreadable_time_names_the_expected_format(tmp_path):
    """A step that is not a number is quarantined saying what an offset looks like."""
    cmap = _cmap(tmp_path)
    _, reasons, fields = map_columns(_table([("x", "A", "M1", "W", "1", "0")]), cmap, None,
                                     CodeTable.load())
    assert fields[0] == "ts"
    assert reasons[0] == "cannot read ts: expected a number of hours after 2026-09-01T00:00:00+00:00"


def test_line_ids_and_epoch_times(tmp_path):
    """generate = line: the file stem and line number; epoch_ms read exactly."""
    text = BASE.replace('generate = "hash"\ncolumns = ["t", "who", "amt"]', 'generate = "line"'
                        ).replace('format = "offset"\nunit = "hours"\norigin = "2026-09-01T00:00:00Z"',
                                  'format = "epoch_ms"')
    path = tmp_path / "ms.toml"
    path.write_text(text)
    cmap = load_columns(path)
    rows = [("1790000000123", "A", "M1", "W", "1", "0")]
    table, reasons, _ = map_columns(_table(rows), cmap, None, CodeTable.load(),
                                    np.array([7]), Path("exports/day1.csv"))
    assert reasons[0] == ""
    assert table["txn_id"].to_pylist() == ["X-day1-7"]
    assert table["ts"].to_pylist()[0] == datetime.fromtimestamp(1_790_000_000.123, tz=UTC)


def test_epoch_seconds():
    """epoch_s: seconds since 1970, a non-number is null."""
    from cutover.adapters.columns import TimeSpec
    parsed = parse_time_column(pa.array(["0", "86400", "soon"]), TimeSpec(format="epoch_s"))
    assert parsed.to_pylist() == [datetime(1970, 1, 1, tzinfo=UTC),
                                  datetime(1970, 1, 2, tzinfo=UTC), None]


@pytest.mark.parametrize(("extra", "needle"), [
    ('[labels]\ntime = "derived"\n', "delay_hours"),
    ('[labels]\ntime = "given"\n', "mapped to label_ts"),
    ('[labels]\ntime = "later"\n', "labels.time"),
    ("[txn_id2]\nx = 1\n", "unknown key 'txn_id2'"),
])
def test_bad_column_mappings_are_refused(tmp_path, extra, needle):
    """Each incomplete or unknown setting is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=needle):
        _cmap(tmp_path, extra)


def test_offset_needs_unit_and_origin(tmp_path):
    """format = offset without an origin is refused, naming both keys."""
    path = tmp_path / "x.toml"
    path.write_text(BASE.replace('origin = "2026-09-01T00:00:00Z"\n', ""))
    with pytest.raises(ConfigError, match="time.unit .* and time.origin"):
        load_columns(path)
