"""Feed-change scenario files: every shipped one loads, changes only its segment's rows from its
start on, leaves the legacy outcome as booked; a bad file is refused naming the key."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from cutover.errors import ConfigError
from cutover.sim.feed_change import apply_change, load_change, shipped_changes
from cutover.sim.traffic import generate_table

KINDS_MIN = 8


@pytest.fixture(scope="module")
def traffic():
    return generate_table(20_000, 4, days=8)


def test_at_least_eight_kinds_ship():
    """Eleven scenario files, at least eight different kinds of change among them."""
    kinds = {load_change(p).kind for p in shipped_changes()}
    assert len(shipped_changes()) >= 11 and len(kinds) >= KINDS_MIN


@pytest.mark.parametrize("path", shipped_changes(), ids=lambda p: p.stem)
def test_each_change_touches_only_its_segment_from_its_start(traffic, path):
    """Rows outside the segment or before the start are byte-identical; legacy columns never
    change; at least one row changed."""
    change = load_change(path)
    broken, info = apply_change(traffic, change)
    column, value = str(info["segment"]).split("=", 1)
    us = pc.cast(traffic["ts"], "int64").to_numpy()
    inside = np.asarray(pc.equal(traffic[change.segment.column], value).to_numpy(
        zero_copy_only=False), bool) & (us >= info["start_us"])
    assert info["rows"] > 0 and column == change.segment.column
    keep = ~inside
    for name in traffic.column_names:
        before, after = traffic[name].to_numpy(zero_copy_only=False), \
            broken[name].to_numpy(zero_copy_only=False)
        if name.startswith("legacy_") or name not in (change.field, change.other):
            assert list(before) == list(after), name
        else:
            assert list(before[keep]) == list(after[keep]), name


def test_a_bad_scenario_names_the_key(tmp_path):
    """An unknown kind and a segment chosen two ways: ConfigError naming both."""
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nkind = "explode"\nfield = "mcc"\n'
                    'segment = { column = "mcc", rank = 1, value = "5411" }\n')
    with pytest.raises(ConfigError, match="kind") as err:
        load_change(path)
    assert "exactly one of value, rank, rows" in str(err.value)
