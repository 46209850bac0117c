"""Fixtures for the TUI tests: a fixed small run (with ledger and plan) and a 1M-row run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tui_support import write_big_run, write_ledger, write_plan_db, write_small_run


@pytest.fixture(scope="session")
def small_run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small run, its ledger and plan db, built once; tests get a copy."""
    base = tmp_path_factory.mktemp("tui-template")
    run_dir = write_small_run(base / "run-small")
    write_ledger(run_dir)
    write_plan_db(base / "plan.db")
    return base


@pytest.fixture
def small_run(small_run_template: Path, tmp_path: Path) -> Path:
    """A private copy of the small run (tests may append rules or parts to it)."""
    base = tmp_path / "base"
    shutil.copytree(small_run_template, base)
    return base / "run-small"


@pytest.fixture(scope="session")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000,000 diff rows in 10 parts, built once per session (a couple of seconds)."""
    return write_big_run(tmp_path_factory.mktemp("tui-big") / "run-big")
