"""Unit tests of the legacy response-code table (cutover.adapters.codes)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from cutover.adapters.codes import CodeInfo, CodeTable
from cutover.errors import ConfigError

EXPECTED = {
    "00": ("approve", "approved", "none"), "01": ("review", "refer_to_issuer", "none"),
    "05": ("decline", "do_not_honor", "soft"), "14": ("decline", "invalid_card", "hard"),
    "41": ("decline", "lost_card", "hard"), "43": ("decline", "stolen_card", "hard"),
    "51": ("decline", "insufficient_funds", "soft"), "54": ("decline", "expired_card", "hard"),
    "57": ("decline", "not_permitted", "hard"), "59": ("decline", "suspected_fraud", "hard"),
    "61": ("decline", "exceeds_amount_limit", "soft"), "62": ("decline", "restricted_card", "hard"),
    "65": ("decline", "exceeds_frequency_limit", "soft"),
    "91": ("error", "issuer_unavailable", "soft"), "96": ("error", "system_malfunction", "soft"),
}


def test_shipped_table_has_every_code_with_its_meaning() -> None:
    """The fixture table maps each of the 15 documented codes to decision, reason, retry."""
    table = CodeTable.load()
    assert set(table.entries) == set(EXPECTED)
    for code, meaning in EXPECTED.items():
        assert table.lookup(code) == CodeInfo(*meaning)


def test_unknown_code_is_error_never_guessed() -> None:
    """A code not in the table is decision error / reason unknown_code."""
    info = CodeTable.load().lookup("99")
    assert (info.decision, info.reason, info.retry) == ("error", "unknown_code", "none")


def test_translate_numpy_matches_lookup_row_by_row() -> None:
    """Vectorised translate of a numpy batch equals lookup per row, unknowns included."""
    table = CodeTable.load()
    codes = np.array(["00", "51", "99", "01", "", "96", "A1", "00"])
    decisions, reasons, retry = table.translate(codes)
    for i, code in enumerate(codes):
        info = table.lookup(str(code))
        assert (decisions[i], reasons[i], retry[i]) == (info.decision, info.reason, info.retry)
    assert list(decisions).count("error") == 4


def test_translate_arrow_treats_null_as_unknown() -> None:
    """An Arrow array with a null translates the null to error / unknown_code."""
    decisions, reasons, _ = CodeTable.load().translate(pa.array(["05", None, "43"]))
    assert list(decisions) == ["decline", "error", "decline"]
    assert list(reasons) == ["do_not_honor", "unknown_code", "stolen_card"]


def test_unknown_lists_sorted_distinct_codes() -> None:
    """unknown() names each unknown code once, sorted."""
    table = CodeTable.load()
    assert table.unknown(np.array(["99", "00", "X9", "99", "51"])) == ["99", "X9"]
    assert table.unknown(pa.array(["00", "01"])) == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('[codes."00"]\ndecision = "approve"\nreason = "approved"\nretry = "maybe"\n', "'00'"),
        ('[codes."05"]\ndecision = "deny"\nreason = "x"\nretry = "soft"\n', "decision 'deny'"),
        ('[codes."' + "9" * 33 + '"]\ndecision = "decline"\nreason = "x"\nretry = "soft"\n',
         "1 to 32"),
        ('[codes."51"]\ndecision = "decline"\nretry = "soft"\n', "'reason'"),
        ("[other]\nx = 1\n", "[codes]"),
        ("codes = [", "not valid TOML"),
    ],
)
def test_bad_table_is_config_error_naming_file_and_code(tmp_path, body, needle) -> None:
    """A malformed table raises ConfigError naming the file and the offending code or key."""
    path = tmp_path / "codes.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        CodeTable.load(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_missing_table_file_is_config_error(tmp_path) -> None:
    """A missing file raises ConfigError naming the path."""
    with pytest.raises(ConfigError, match="cannot read"):
        CodeTable.load(tmp_path / "nope.toml")


def test_fixtures_dir_override_points_the_default_table_elsewhere(tmp_path, monkeypatch) -> None:
    """CUTOVER_FIXTURES_DIR makes CodeTable.load() read <dir>/codes/legacy_codes.toml."""
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "legacy_codes.toml").write_text(
        '[codes."00"]\ndecision = "approve"\nreason = "ok_here"\nretry = "none"\n')
    monkeypatch.setenv("CUTOVER_FIXTURES_DIR", str(tmp_path))
    table = CodeTable.load()
    assert table.lookup("00").reason == "ok_here" and len(table.entries) == 1
    assert table.source == str(tmp_path / "codes" / "legacy_codes.toml")


def test_codes_of_any_length_and_alphabet_load(tmp_path) -> None:
    """Three-digit, one-letter and status-plus-code keys are codes like any other (issue 15)."""
    path = tmp_path / "codes.toml"
    path.write_text('[codes."051"]\ndecision = "decline"\nreason = "insufficient_funds"\n'
                    'retry = "soft"\n[codes.A]\ndecision = "approve"\nreason = "approved"\n'
                    'retry = "none"\n[codes."D-059"]\ndecision = "decline"\n'
                    'reason = "suspected_fraud"\nretry = "hard"\n')
    table = CodeTable.load(path)
    assert [table.lookup(c).reason for c in ("051", "A", "D-059", "05")] == [
        "insufficient_funds", "approved", "suspected_fraud", "unknown_code"]
