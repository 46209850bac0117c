"""Configuration files are validated by strict models: unknown keys are refused with the file,
the key and the allowed keys; docs/config.md is generated from the same models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cutover import config
from cutover.adapters.iso8583 import load_switch
from cutover.errors import ConfigError
from cutover.paths import shipped_fixtures_dir
from cutover.shadow.diff_rules import load_diff_rules
from cutover.sim.legacy_config import load_core_config
from cutover.stack.health import load_health
from cutover.stack.routing import load_gateways
from cutover.stack.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
FIX = shipped_fixtures_dir()
#: Each shipped file with the loader that reads it and a top-level key it already has.
LOADERS = [
    ("diff_rules/default.toml", load_diff_rules),
    ("rules/default.toml", load_rules),
    ("routing.toml", load_health),
    ("gateways.toml", load_gateways),
    ("legacy/core.toml", load_core_config),
    ("iso8583/ascii_switch.toml", load_switch),
    ("iso8583/binary_switch.toml", load_switch),
]


def test_the_reference_is_current() -> None:
    """docs/config.md equals what the models generate (regenerate: python -m cutover.config)."""
    out = subprocess.run([sys.executable, "-m", "cutover.config"], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == out
    config._load_all_models()
    assert out.count("\n## ") == len(config.REGISTRY) >= 6


@pytest.mark.parametrize(("relpath", "loader"), LOADERS)
def test_every_shipped_file_loads_and_refuses_an_unknown_key(tmp_path, relpath, loader) -> None:
    """The shipped file loads; the same file with one unknown top-level key is refused, and the
    message names the file, the key and the keys that are allowed."""
    loader(FIX / relpath)
    bad = tmp_path / Path(relpath).name
    bad.write_text("surprise_key = 1\n" + (FIX / relpath).read_text(encoding="utf-8"))
    with pytest.raises(ConfigError) as info:
        loader(bad)
    message = str(info.value)
    assert str(bad) in message and "'surprise_key'" in message and "allowed:" in message


def test_a_nested_unknown_key_names_its_path_and_siblings(tmp_path) -> None:
    """A typo inside a section names the dotted path and that section's keys."""
    path = tmp_path / "rules.toml"
    path.write_text((FIX / "rules/default.toml").read_text().replace(
        "review_at", "reveiw_at"))
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert "'score.reveiw_at'" in str(info.value) and "decline_at, review_at" in str(info.value)


@pytest.mark.parametrize("text", ["decline_at = nan", "decline_at = inf", "decline_at = 1.5",
                                  'decline_at = "high"'])
def test_numbers_must_be_finite_and_in_range(tmp_path, text) -> None:
    """NaN, infinity, out-of-range and wrong-type values are refused naming the key."""
    path = tmp_path / "rules.toml"
    path.write_text((FIX / "rules/default.toml").read_text().replace("decline_at = 0.9", text))
    with pytest.raises(ConfigError, match=r"score\.decline_at"):
        load_rules(path)


def test_unreadable_files_are_config_errors(tmp_path) -> None:
    """Missing, a directory, non-UTF-8 and broken TOML each give one ConfigError naming it."""
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    broken = tmp_path / "broken.toml"
    broken.write_text("[score\n")
    for path, words in ((tmp_path / "none.toml", "no such file"), (tmp_path, "not a file"),
                        (binary, "not UTF-8"), (broken, "not valid TOML")):
        with pytest.raises(ConfigError) as info:
            load_rules(path)
        assert str(path) in str(info.value) and words in str(info.value)
