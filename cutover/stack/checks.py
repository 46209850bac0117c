"""Checks on the data a model is trained and evaluated on, stated in the model card.

A model trained on a feature that never changes, on labels whose arrival time is unknown, or
evaluated on the window it was trained on looks better or worse than it is, and nothing in
its metrics says so. Training and evaluation run these checks: the CLI prints a warning for
each, ``--strict`` refuses, and the model card keeps them (``checks``) for whoever reads it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.store.traffic import open_store


def constant_features(X: np.ndarray, names: list[str]) -> list[str]:
    """Names of the columns of ``X`` that hold one value (or only NaN) over every row."""
    if X.size == 0:
        return list(names)
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0) if np.isfinite(X).any() else \
            np.zeros(X.shape[1])
    spread = np.nan_to_num(spread, nan=0.0)
    return [n for n, s in zip(names, spread, strict=True) if s == 0]


def label_times(store: Path, until: datetime | None) -> dict[str, Any]:
    """How many labelled rows (is_fraud not null) before ``until`` lack a label_ts."""
    dataset = open_store(store)
    columns = [c for c in ("ts", "is_fraud", "label_ts") if c in dataset.schema.names]
    table = dataset.to_table(columns=columns)
    if until is not None:
        table = table.filter(pc.less(table["ts"], pa.scalar(until, table["ts"].type)))
    if "is_fraud" not in columns:
        return {"labels": 0, "without_time": 0, "label_times": "absent"}
    labelled = pc.is_valid(table["is_fraud"])
    labels = int(pc.sum(labelled).as_py() or 0)
    missing = pc.and_(labelled, pc.is_null(table["label_ts"])) if "label_ts" in columns \
        else labelled
    without = int(pc.sum(missing).as_py() or 0)
    state = "given" if without == 0 else "absent" if without == labels else "partial"
    return {"labels": labels, "without_time": without, "label_times": state}


def training_warnings(checks: dict[str, Any]) -> list[str]:
    """The warnings a card's ``checks`` call for, one sentence each."""
    out = []
    if checks.get("constant_features"):
        out.append("constant feature(s), no signal in this data: "
                   + ", ".join(checks["constant_features"]))
    labels = checks.get("labels", {})
    if labels.get("without_time"):
        out.append(f"{labels['without_time']:,} of {labels['labels']:,} labels have no label"
                   " time (label_ts): the look-back features never see them and nobody can"
                   " say when they were known; state the label delay in the column mapping"
                   " ([labels] time = \"derived\") if it is known")
    return out


def window_overlap(card: dict[str, Any], since: datetime) -> str | None:
    """A warning when an evaluation from ``since`` overlaps the card's training window."""
    until = card.get("data_window", {}).get("until")
    if until and since < datetime.fromisoformat(until):
        return (f"the evaluation window starts {since.isoformat()}, before the end of model "
                f"{card.get('version')}'s training data ({until}): rows it learned from are "
                "scored again, so the figures are optimistic")
    return None
