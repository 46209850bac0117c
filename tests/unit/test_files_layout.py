"""Unit tests of the layout language: built-ins load, invalid specs name the field."""

from __future__ import annotations

import pytest

from cutover.adapters.files import builtin_layouts, load_layout
from cutover.adapters.files.layout import parse_layout
from cutover.errors import LayoutError


def _spec(fields, controls=()):
    return {"layout": {"name": "t", "record_length": 10},
            "record": [{"name": "d", "match": [{"start": 1, "length": 1, "value": "D"}],
                        "fields": fields}],
            "control": list(controls)}


def test_builtins_load_and_cover_every_byte():
    """The shipped layouts load and their fields tile each record exactly."""
    names = [name for name, _ in builtin_layouts()]
    assert names == ["legacy_authlog", "legacy_balances", "legacy_settlement", "nacha"]
    for name in names:
        layout = load_layout(name)
        for record in layout.records:
            assert sum(f.length for f in record.fields) == layout.record_length


def test_authlog_names_are_traffic_names():
    """legacy_authlog's detail carries every TRAFFIC field but labels and derived legacy ones."""
    from cutover.domain import TRAFFIC

    detail = {f.name for f in load_layout("legacy_authlog").record("detail").data_fields}
    derived = {"is_fraud", "chargeback", "label_ts", "gateway_ok", "legacy_decision",
               "legacy_reason"}
    assert detail == set(TRAFFIC.names) - derived


@pytest.mark.parametrize(("fields", "message"), [
    ([{"name": "a", "start": 2, "length": 5}, {"name": "b", "start": 5, "length": 2}],
     "field 'b': starts at 5, overlapping"),
    ([{"name": "a", "start": 8, "length": 5}], "field 'a': ends at 12, past the record length"),
    ([{"name": "a", "start": 2, "length": 3, "type": "money"}], "field 'a': type 'money'"),
    ([{"name": "a", "start": 2, "length": 3, "type": "amount"}], "field 'a': an amount needs"),
    ([{"name": "a", "start": 2, "type": "date", "format": "DDMMYY"}], "field 'a': format"),
])
def test_invalid_spec_names_the_field(fields, message):
    """An invalid field is refused with a LayoutError naming the record and field."""
    with pytest.raises(LayoutError, match=message):
        parse_layout(_spec(fields))


def test_control_must_point_at_real_fields():
    """A control whose expected field does not exist is refused, naming it."""
    control = {"name": "n", "kind": "count", "records": ["d"], "expected": "d.nope"}
    with pytest.raises(LayoutError, match="control 'n': record type 'd' has no field 'nope'"):
        parse_layout(_spec([{"name": "a", "start": 2, "length": 3}], [control]))


def test_unknown_layout_name(tmp_path):
    """An unknown name or missing path is a LayoutError listing the built-ins."""
    with pytest.raises(LayoutError, match="built-ins: legacy_authlog"):
        load_layout(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[layout\n")
    with pytest.raises(LayoutError, match="not valid TOML"):
        load_layout(bad)
