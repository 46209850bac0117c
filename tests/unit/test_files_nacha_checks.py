"""NACHA beyond the layout: structure, code tables, lenient lines, rejects that name positions."""

from __future__ import annotations

from cutover.adapters.files import FileReader, load_layout
from tests.files_support import nacha_file, nacha_line, small_ppd_lines


def _read(path):
    reader = FileReader(path, load_layout("nacha"))
    list(reader.batches())
    return reader.report


def _errors(report, level):
    return [f for f in report.findings if f.level == level and f.severity == "error"]


def test_valid_synthetic_file_has_no_findings(tmp_path):
    """The helper's PPD file reads with no reject, all totals ok and no finding at any level."""
    report = _read(nacha_file(tmp_path / "ok.ach", small_ppd_lines()))
    assert report.rejected == 0 and all(c.ok for c in report.checks)
    assert report.findings == []


def test_entry_outside_a_batch_is_a_structure_error(tmp_path):
    """An entry after the batch control is named by line and record type code 6."""
    lines = small_ppd_lines(1)
    lines.insert(4, lines[2])  # after the batch control (line 4), before the file control
    errors = _errors(_read(nacha_file(tmp_path / "x.ach", lines)), "structure")
    assert [(f.line, f.record_type_code) for f in errors] == [(5, "6")]
    assert "outside a batch" in errors[0].message


def test_batch_without_control_and_records_after_file_control(tmp_path):
    """A missing batch control and a record after the file control are two named errors."""
    lines = small_ppd_lines(1)
    del lines[3]  # the batch control
    lines.insert(4, nacha_line("batch_header", service_class_code=225,
                               standard_entry_class_code="PPD", batch_number=2))
    errors = _errors(_read(nacha_file(tmp_path / "x.ach", lines)), "structure")
    messages = [(f.line, f.message) for f in errors]
    assert (2, "batch has no batch control before the file control (line 4)") in messages
    assert any(line == 5 and "after the file control" in m for line, m in messages)


def test_addenda_indicator_and_stray_addenda(tmp_path):
    """Indicator 1 without addenda, and an addenda after a batch header, are structure errors."""
    lines = small_ppd_lines(1)
    lines[2] = lines[2][:78] + "1" + lines[2][79:]
    lines.insert(2, nacha_line("addenda_05", payment_related_information="hello",
                               addenda_sequence_number=1, entry_detail_sequence_number=1))
    errors = _errors(_read(nacha_file(tmp_path / "x.ach", lines)), "structure")
    kinds = sorted((f.line, f.record_type_code, f.positions) for f in errors)
    assert kinds == [(3, "705", None), (4, "6", "79-79")]


def test_unknown_return_code_is_layout_ok_semantically_invalid(tmp_path):
    """R96 reads fine (layout) but the semantic level names it with field and positions."""
    lines = small_ppd_lines(1)
    lines[2] = lines[2][:78] + "1" + lines[2][79:]
    lines.insert(3, nacha_line("addenda_99", return_reason_code="R96",
                               original_entry_trace_number="121042880000001",
                               original_rdfi_identification="23138010",
                               trace_number="121042880000001"))
    lines[4] = lines[4][:4] + "000002" + lines[4][10:]  # entry/addenda count 2
    lines[5] = lines[5][:13] + "00000002" + lines[5][21:]
    report = _read(nacha_file(tmp_path / "r96.ach", lines[:10]))
    assert report.rejected == 0 and all(c.ok for c in report.checks)
    assert _errors(report, "structure") == []
    [finding] = _errors(report, "semantic")
    assert (finding.line, finding.record_type_code, finding.field, finding.positions) == \
        (4, "799", "return_reason_code", "4-6")
    assert "R96" in finding.message


def test_dishonored_contested_and_noc_addenda_are_typed(tmp_path):
    """799 with R61/R71 and 798 with C01/C61 land in their own record types with their fields."""
    lines = small_ppd_lines(1)
    extra = [nacha_line("addenda_99_dishonored", dishonored_return_reason_code="R68",
                        return_reason_code="01"),
             nacha_line("addenda_99_contested", contested_return_reason_code="R73",
                        date_original_entry_returned="000000"),
             nacha_line("addenda_98", change_code="C01", corrected_data="1918171614"),
             nacha_line("addenda_98_refused", refused_change_code="C62", change_code="C01")]
    path = nacha_file(tmp_path / "x.ach", [*lines[:3], *extra, *lines[3:]])
    reader = FileReader(path, load_layout("nacha"))
    by_type = {t: b.to_pylist()[0] for t, b in reader.batches()}
    assert by_type["addenda_99_dishonored"]["return_reason_code"] == "01"
    assert by_type["addenda_99_contested"]["contested_return_reason_code"] == "R73"
    assert by_type["addenda_98"]["corrected_data"] == "1918171614"
    assert by_type["addenda_98_refused"]["refused_change_code"] == "C62"


def test_addenda_type_not_allowed_for_the_sec_code(tmp_path):
    """An addenda 02 (POS terminal data) in a PPD batch is a semantic error naming both."""
    lines = small_ppd_lines(1)
    lines[2] = lines[2][:78] + "1" + lines[2][79:]
    lines.insert(3, nacha_line("addenda_02", terminal_city="Austin"))
    report = _read(nacha_file(tmp_path / "x.ach", lines[:10]))
    semantic = [f.message for f in _errors(report, "semantic")]
    assert semantic == ["addenda type 02 is not allowed in a PPD batch (allowed: 05, 98, 99)"]


def test_zero_and_blank_effective_dates_are_allowed_bad_ones_named(tmp_path):
    """000000 and blanks pass as effective entry date; 261341 is a layout error at 70-75."""
    for value, expected in (("000000", []), ("      ", []), ("261341", [(2, "70-75")])):
        lines = small_ppd_lines(1)
        lines[1] = lines[1][:69] + value + lines[1][75:]
        report = _read(nacha_file(tmp_path / "x.ach", lines))
        assert [(f.line, f.positions) for f in _errors(report, "layout")] == expected


def test_short_and_crlf_lines_are_mended_with_a_warning(tmp_path):
    """Trailing spaces stripped and CRLF endings read clean; each short line is one warning."""
    lines = [line.rstrip(" ") for line in small_ppd_lines(1)]
    path = tmp_path / "short.ach"
    path.write_bytes(b"".join(line.encode() + b"\r\n" for line in lines))
    report = _read(path)
    assert report.rejected == 0 and all(c.ok for c in report.checks)
    short = sum(len(line) < 94 for line in lines)
    assert report.warnings == short > 0
    assert _errors(report, "structure") == []


def test_wrong_length_reject_names_the_record_type_code(tmp_path):
    """A 100-character entry line is rejected naming record type code 6, not None."""
    lines = small_ppd_lines(1)
    lines[2] = lines[2] + "XXXXXX"
    reader = FileReader(nacha_file(tmp_path / "x.ach", lines), load_layout("nacha"))
    list(reader.batches())
    [reject] = reader.report.reject_sample
    assert (reject["line"], reject["record_type_code"]) == (3, "6")


def test_bad_amount_reject_names_field_and_positions(tmp_path):
    """Letters in the amount are rejected naming the field and positions 30-39."""
    lines = small_ppd_lines(1)
    lines[2] = lines[2][:29] + "00000001X0" + lines[2][39:]
    reader = FileReader(nacha_file(tmp_path / "x.ach", lines), load_layout("nacha"))
    list(reader.batches())
    [reject] = reader.report.reject_sample
    assert (reject["record_type_code"], reject["field"], reject["positions"]) == \
        ("6", "amount", "30-39")


def test_check_digit_mismatch_is_semantic(tmp_path):
    """A routing check digit that does not match the ABA weights is named at position 12."""
    lines = small_ppd_lines(1)
    lines[2] = lines[2][:11] + "5" + lines[2][12:]
    [finding] = _errors(_read(nacha_file(tmp_path / "x.ach", lines)), "semantic")
    assert (finding.line, finding.field, finding.positions) == (3, "check_digit", "12-12")


def test_empty_lines_are_skipped_with_a_warning(tmp_path):
    """Blank lines between records and at the end are not records: warnings, no reject."""
    lines = small_ppd_lines(1)
    path = tmp_path / "blank.ach"
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n\n\n")
    report = _read(path)
    assert report.rejected == 0 and all(c.ok for c in report.checks)
    assert report.read == len(lines) and report.warnings == 3


def test_sec_entry_views_name_the_sec_codes_own_fields():
    """The same entry columns read as CCD, SHR and IAT fields by position, from the table."""
    from cutover.adapters.files.nacha import entry_view

    row = {"dfi_account_number": "0007         ", "individual_identification": "1225DOCREF00001",
           "individual_name": "ACME SUPPLY CO", "discretionary_data": "01"}
    assert entry_view("CCD", row)["receiving_company_name"] == "ACME SUPPLY CO"
    shr = entry_view("SHR", row)
    assert (shr["card_expiration_date"], shr["document_reference_number"]) == \
        ("1225", "DOCREF00001")
    assert entry_view("IAT", row)["number_of_addenda_records"] == "0007"


def test_ctx_number_of_addenda_must_be_digits(tmp_path):
    """A CTX entry whose positions 55-58 are not digits is a semantic error at 55-58."""
    lines = small_ppd_lines(1, sec="CTX")
    lines[2] = lines[2][:54] + "ABCD" + lines[2][58:]
    [finding] = _errors(_read(nacha_file(tmp_path / "x.ach", lines)), "semantic")
    assert (finding.line, finding.field, finding.positions) == \
        (3, "number_of_addenda_records", "55-58")
