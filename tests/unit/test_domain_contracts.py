"""Contracts: schemas, categories, the error table, and the layering rules of the package."""

import subprocess
import sys

import pyarrow as pa
import pytest

from cutover import domain, errors


def test_categories_cover_design_and_are_unique():
    """Every category of DESIGN.md exists exactly once, and match is last in precedence."""
    expected = {"match", "approve_to_decline", "decline_to_approve", "review_change",
                "route_change", "fee_change", "reason_change", "legacy_error",
                "candidate_error", "quarantined"}
    assert set(domain.CATEGORIES) == expected
    assert len(domain.CATEGORIES) == len(expected)
    assert domain.CATEGORIES[-1] == "match"


def test_money_columns_are_integers():
    """No money column in any schema is a float."""
    for schema in (domain.TRAFFIC, domain.DECISION, domain.DIFF):
        for field in schema:
            if field.name.endswith("_minor"):
                assert pa.types.is_integer(field.type), field.name


def test_conform_names_missing_columns():
    """conform() refuses a table lacking a contract column and names it."""
    table = pa.table({"txn_id": ["a"]})
    with pytest.raises(KeyError, match="decision"):
        domain.conform(table, domain.DECISION)


@pytest.mark.parametrize(
    ("error", "code"),
    [(errors.GateFailed("x"), 1), (errors.ConfigError("x"), 2), (errors.LegacyUnavailable("x"), 3),
     (errors.Unbalanced("x"), 4), (errors.InvariantBroken("x"), 4), (errors.PlanError("x"), 1),
     (domain.MoneyError("x"), 2), (RuntimeError("x"), 1)],
)
def test_exit_codes_come_from_one_table(error, code):
    """Each error class maps to its documented exit code."""
    assert errors.exit_code_for(error) == code


def test_core_never_imports_cli_or_tui():
    """Importing the core packages pulls in neither cutover.cli nor cutover.tui nor textual."""
    code = (
        "import sys, importlib, pathlib, cutover\n"
        "root = pathlib.Path(cutover.__file__).parent\n"
        "skip = ('cutover.cli', 'cutover.tui')\n"
        "for f in sorted(root.rglob('*.py')):\n"
        "    parts = f.relative_to(root.parent).with_suffix('').parts\n"
        "    name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)\n"
        "    if not name.startswith(skip):\n"
        "        importlib.import_module(name)\n"
        "bad = [n for n in sys.modules if n.startswith(skip) or n == 'textual']\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_domain_imports_nothing_of_ours():
    """cutover.domain imports no other cutover module."""
    code = ("import sys; import cutover.domain; "
            "print(sorted(n for n in sys.modules if n.startswith('cutover.') and n != 'cutover.domain'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
