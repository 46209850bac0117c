"""`cutover train / models / decide / evaluate` end to end: output, --json and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_support import invoke
from tests.stack_support import candidate_view, make_traffic, write_store

CUTOVER = str(Path(sys.executable).with_name("cutover"))



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small store (6 days) and a registry trained on its first 5 days through the CLI."""
    root = tmp_path_factory.mktemp("cli")
    table = make_traffic(12_000, seed=21, days=6)
    store = write_store(table, root / "store")
    code, stdout = invoke("train", str(store), "--models", str(root / "models"),
                          "--until", "2026-10-06", "--seed", "1", "--json")
    assert code == 0, stdout
    return {"root": root, "store": store, "models": root / "models", "card": json.loads(stdout),
            "table": table}


def test_train_prints_the_card_and_models_list_and_show_find_it(trained):
    """train --json gives the card; list marks it latest; show prints the same version."""
    card = trained["card"]
    assert card["data_window"]["until"] < "2026-10-06" and card["rows"]["total"] > 9_000
    code, stdout = invoke("models", "list", "--models", str(trained["models"]), "--json")
    rows = json.loads(stdout)
    assert code == 0 and [r["version"] for r in rows] == [card["version"]] and rows[0]["latest"]
    code, stdout = invoke("models", "show", card["version"], "--models", str(trained["models"]))
    assert code == 0 and card["version"] in stdout and "PR-AUC" in stdout


def test_decide_explains_a_decision_from_a_file(trained, tmp_path):
    """decide --txn @FILE --json: one decision with the model version and plain reasons."""
    txn = candidate_view(trained["table"]).slice(100, 1).to_pylist()[0]
    txn["ts"] = txn["ts"].isoformat()
    path = tmp_path / "txn.json"
    path.write_text(json.dumps(txn))
    code, stdout = invoke("decide", "--models", str(trained["models"]), "--txn", f"@{path}", "--json")
    result = json.loads(stdout)
    assert code == 0 and result["txn_id"] == txn["txn_id"]
    assert result["decision"] in {"approve", "decline", "review"}
    assert result["model_version"] == trained["card"]["version"]
    assert len(result["reasons"]) == len(result["reason_codes"])


def test_evaluate_prints_both_sides(trained):
    """evaluate on the held-out last day: legacy and stack side by side; --json has both."""
    args = ("evaluate", str(trained["store"]), "--models", str(trained["models"]),
            "--since", "2026-10-06", "--until", "2026-10-07")
    code, stdout = invoke(*args)
    assert code == 0 and "legacy" in stdout and "fraud_caught_count" in stdout
    code, stdout = invoke(*args, "--json")
    sides = json.loads(stdout)["sides"]
    assert sides["legacy"]["rows"] == sides["stack"]["rows"] > 1_000


def test_missing_store_or_model_exits_2(tmp_path, trained):
    """A store that does not exist, or a registry with no model: exit 2 (real process)."""
    proc = subprocess.run([CUTOVER, "train", str(tmp_path / "none"), "--models", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    # A valid request, so the missing registry is what is refused (a bad one is refused first).
    root = Path(__file__).resolve().parents[2]
    request = "@" + str(root / "cutover" / "fixtures" / "requests" / "decide.json")
    proc = subprocess.run([CUTOVER, "decide", "--models", str(tmp_path / "m"), "--txn", request],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cutover train" in proc.stderr
    code, _ = invoke("evaluate", str(trained["store"]), "--models", str(trained["models"]),
                     "--since", "2026-10-07", "--until", "2026-10-06")
    assert code == 2


def test_the_cli_and_the_stack_package_do_not_import_xgboost_up_front():
    """`cutover --help` stays fast: importing cutover.cli or cutover.stack loads no xgboost."""
    code = ("import sys, cutover.cli, cutover.stack; "
            "sys.exit(1 if 'xgboost' in sys.modules else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_shipped_example_transaction_is_decided(trained):
    """The README's `decide --txn @cutover/fixtures/requests/decide.json` works: a decision and a route."""
    example = Path(__file__).resolve().parents[2] / "cutover" / "fixtures" / "requests" / "decide.json"
    code, stdout = invoke("decide", "--models", str(trained["models"]), "--txn", f"@{example}",
                          "--json")
    result = json.loads(stdout)
    assert code == 0 and result["txn_id"] == "EXAMPLE-0001"
    assert result["decision"] in {"approve", "decline", "review"}
    assert (result["decision"] == "approve") == bool(result.get("route"))
