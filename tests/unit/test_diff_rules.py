"""Diff rules files: the shipped default loads, errors name file and key, appends keep text."""

from datetime import UTC, datetime

import pytest

from cutover.errors import ConfigError
from cutover.shadow.diff_rules import append_expected_rule, default_rules_path, load_diff_rules


def test_default_rules_load():
    """The shipped rules parse, with the cheaper-route expectation and a reason map."""
    rules = load_diff_rules()
    assert rules.expected[0].when == "cheaper_route_same_success"
    assert rules.reason_map["rule:velocity_cap_1h"] == "exceeds_frequency_limit"
    assert rules.severity["decline_to_approve"] == "critical" and len(rules.sha256) == 64


@pytest.mark.parametrize(("text", "key"), [
    ("version = 2\n", "version"),
    ("version = 1\n[tolerance.fee_minor]\nabs = -1\n", "tolerance.fee_minor.abs"),
    ("version = 1\n[severity]\nmatch = \"huge\"\n", "severity.match"),
    ("version = 1\n[[expected]]\ncategory = \"match\"\nreason = \"r\"\nby = \"b\"\n",
     "expected[0].category"),
    ("version = 1\n[[expected]]\ncategory = \"fee_change\"\nwhen = \"magic\"\nreason = \"r\"\n"
     "by = \"b\"\n", "expected[0].when"),
    ("version = 1\n[[expected]]\ncategory = \"fee_change\"\nsegment = { planet = \"x\" }\n"
     "reason = \"r\"\nby = \"b\"\n", "expected[0].segment.planet"),
    ("version = 1\nsurprise = 1\n", "surprise"),
])
def test_errors_name_the_file_and_the_key(tmp_path, text, key):
    """Every invalid value is refused with the file's path and the key in the message."""
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_diff_rules(path)
    assert str(path) in str(info.value) and key in str(info.value)


def test_append_keeps_the_text_and_adds_one_rule(tmp_path):
    """The file's bytes stay a prefix; the new rule parses with its segment and fields."""
    path = tmp_path / "diff_rules.toml"
    original = default_rules_path().read_text()
    path.write_text(original)
    at = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    rule = append_expected_rule(path, category="approve_to_decline", fields=["decision"],
                                segment={"merchant_id": 'M"7', "channel": "ecom"},
                                reason="known policy change\nfor M7", by="ops@bank", at=at)
    text = path.read_text()
    assert text.startswith(original) and len(load_diff_rules(path).expected) == 2
    rules = load_diff_rules(path)
    added = rules.expected[-1]
    assert added.segment == {"merchant_id": 'M"7', "channel": "ecom"}
    assert added.fields == ("decision",) and added.reason == "known policy change\nfor M7"
    assert rule["at"] == "2026-11-23T20:00:00+00:00" and added.at == rule["at"]


def test_append_refuses_a_bad_rule_and_leaves_the_file(tmp_path):
    """An unknown category is refused; the file is byte-for-byte unchanged."""
    path = tmp_path / "diff_rules.toml"
    path.write_text(default_rules_path().read_text())
    before = path.read_bytes()
    with pytest.raises(ConfigError):
        append_expected_rule(path, category="teleport", fields=[], segment={}, reason="r", by="b")
    with pytest.raises(ConfigError):
        append_expected_rule(path, category="fee_change", fields=["colour"], segment={},
                             reason="r", by="b")
    assert path.read_bytes() == before
