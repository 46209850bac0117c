"""The candidate's side of a drill-down: the features it saw and what each added to its score.

Neither is stored (the DECISION schema keeps reason codes, not numbers): they are recomputed
for the one transaction a person asks about, from the run's own inputs. The earlier rows and
labels come from the traffic store the run read (``cutover.store.lookback``), the model is
the version named in the decision, and the features come from the stack's own code
(``cutover.stack.explain``), so they are the values the replay computed; the recomputed
score is compared with the recorded one to prove it.

Only the reference stack can be recomputed like this. For another candidate, a missing model
or store, the answer says why in one sentence instead of failing the drill-down.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from cutover.adapters.candidate import DEFAULT_CANDIDATE
from cutover.errors import ConfigError, InputError, StoreError
from cutover.stack import registry
from cutover.stack.default import load_stack
from cutover.stack.explain import LABEL_KEY, LOOKBACK_KEYS, LOOKBACK_US, attribution, features_for
from cutover.store.lookback import read_lookback
from cutover.store.runinfo import read_run


def unavailable(why: str) -> dict[str, Any]:
    """The answer when the features cannot be recomputed, with the reason."""
    return {"available": False, "why": why}


def candidate_view(run_dir: Path, diff_row: dict[str, Any],
                   decided: dict[str, Any] | None) -> dict[str, Any]:
    """Features and exact contributions of the candidate for the transaction of ``diff_row``."""
    started = time.perf_counter()
    try:
        run = read_run(run_dir)
    except StoreError as exc:
        return unavailable(str(exc))
    if run.get("candidate") != DEFAULT_CANDIDATE:
        return unavailable(f"the candidate {run.get('candidate')!r} is not the reference stack "
                           f"({DEFAULT_CANDIDATE}): its features and contributions are its own "
                           "and cannot be recomputed here")
    if not decided or not decided.get("model_version") or diff_row.get("ts") is None:
        return unavailable("the candidate made no model decision for this transaction "
                           f"(category {diff_row.get('category')})")
    try:
        out = _recompute(run_dir, run, diff_row, decided)
    except (InputError, ConfigError, StoreError) as exc:
        return unavailable(str(exc))
    out["seconds"] = round(time.perf_counter() - started, 4)
    return out


def _recompute(run_dir: Path, run: dict[str, Any], diff_row: dict[str, Any],
               decided: dict[str, Any]) -> dict[str, Any]:
    options = run.get("candidate_options") or {}
    version = decided["model_version"]
    models = registry.models_dir(options.get("models"))
    if not (models / version).is_dir():
        # The folder searched goes in its own field: the sentence stays the same on every
        # machine (the TUI shows it, and its snapshot is compared byte for byte).
        return {**unavailable(f"model {version} is not in the model registry (the run's "
                              "--candidate-opt models=DIR, else $CUTOVER_MODELS, else "
                              "./models)"), "models": str(models)}
    stack = load_stack(models, version, options.get("rules"))
    found = read_lookback(Path(run_dir), diff_row["txn_id"], diff_row["ts"],
                          timedelta(microseconds=LOOKBACK_US), LOOKBACK_KEYS, LABEL_KEY)
    if found is None:
        return unavailable(f"{diff_row['txn_id']} is not in the traffic store the run read")
    X = features_for(stack, found.target, found.history, found.labels)
    out = attribution(stack, X, list(decided.get("reason_codes") or []), decided.get("score"))
    return {"available": True, "why": None, "model_version": version, "models": str(models),
            **out,
            "lookback": {"rows": found.history.num_rows, "labels": found.labels.num_rows,
                         "files": found.files_read, "first_decided": found.first[0].isoformat()}}
