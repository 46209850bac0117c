"""`cutover replay | report | explain | diff show` through the CLI, with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_support import run_cli as run
from tests.replay_support import make_traffic, with_bad_rows, write_store

MIRROR = "tests.replay_support:mirror_candidate"



@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_store(tmp_path_factory.mktemp("cli") / "store",
                       with_bad_rows(make_traffic(3_000, seed=9)))


def _replay(store: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run(["replay", str(store), "--out", str(out), "--candidate", MIRROR,
                "--candidate-opt", "fee_delta=1", "--batch-rows", "1000", "--quiet", *extra])


def test_replay_prints_conservation_and_categories_then_refuses_a_rerun(store, tmp_path):
    """Exit 0 with the conservation line; the same command again exits 2; --resume exits 0."""
    out = tmp_path / "run"
    code, stdout, _ = _replay(store, out)
    assert code == 0
    assert "conservation holds: 3,000 in = 3,000 categorised" in stdout
    assert "quarantined" in stdout and "fee_change" in stdout
    code, _, message = _replay(store, out)
    assert code == 2 and "not empty" in message
    code, stdout, _ = _replay(store, out, "--resume")
    assert code == 0 and "already finished" in stdout


def test_replay_json_and_bad_input(store, tmp_path):
    """--json is one object whose counts add up; a bad date or candidate exits 2."""
    code, stdout, _ = _replay(store, tmp_path / "j", "--json", "--limit", "1500")
    payload = json.loads(stdout)
    assert code == 0 and payload["rows_in"] == 1500 == sum(payload["by_category"].values())
    assert payload["batches"] == 2 and payload["conservation_ok"] is True
    assert _replay(store, tmp_path / "d", "--since", "last tuesday")[0] == 2
    assert run(["replay", str(store), "--out", str(tmp_path / "c"), "--candidate", "x"])[0] == 2
    assert _replay(store, tmp_path / "e", "--engine", "spark")[0] == 2
    assert _replay(store, tmp_path / "f", "--address", "10.0.0.1:6379")[0] == 2


def test_report_explain_and_diff_show(store, tmp_path):
    """report rebuilds the same counts; explain shows a quarantined row with its reason, and
    says why a candidate other than the reference stack has no recomputed contributions."""
    out = tmp_path / "run"
    assert _replay(store, out)[0] == 0
    before = json.loads((out / "report.json").read_text())
    code, stdout, _ = run(["report", str(out), "--json"])
    rebuilt = json.loads(stdout)
    assert code == 0 and rebuilt["counts"] == before["counts"]
    assert {k: v for k, v in rebuilt.items() if k != "run"} == \
        {k: v for k, v in before.items() if k != "run"}
    code, stdout, _ = run(["explain", str(out), "T9-0000003", "--json"])
    detail = json.loads(stdout)
    assert code == 0 and detail["category"] == "quarantined"
    assert detail["quarantine_reason"] == "amount_minor is missing or not positive"
    code, stdout, _ = run(["diff", "show", str(out), "T9-0000001"])
    assert code == 0 and "T9-0000001" in stdout and "outcomes" in stdout
    # The mirror candidate is not the reference stack: no features to recompute, said plainly.
    assert "not the reference stack" in " ".join(stdout.split())
    code, stdout, _ = run(["explain", str(out), "T9-0000001", "--json"])
    model = json.loads(stdout)["candidate_model"]
    assert code == 0 and model["available"] is False and MIRROR in model["why"]
    assert run(["explain", str(out), "NOPE"])[0] == 2


def test_a_broken_conservation_exits_4(store, tmp_path, monkeypatch):
    """If the engine ever reports rows missing, the CLI stops with exit 4."""
    from cutover.replay import engine

    real = engine.run_replay

    def lossy(*args, **kwargs):
        summary = real(*args, **kwargs)
        summary.by_category["match"] -= 1
        summary.conservation_ok = False
        return summary

    monkeypatch.setattr(engine, "run_replay", lossy)
    code, _, message = _replay(store, tmp_path / "run")
    assert code == 4 and "conservation broken" in message
