"""The mirror's run directory: live requests written in committed batches like a replay's.

Each batch writes ``requests/`` (the TRAFFIC rows, card numbers already tokens, with the
legacy outcome the client got), ``decisions/`` and ``diffs/`` through the replay engine's
own ``write_batch_parts``, then moves ``checkpoint.json``: so ``report``, ``gate``, ``shadow
apply`` and ``tui --follow`` read a mirror run as they read a replay. A batch is committed
exactly when the checkpoint says so; parts beyond it (a killed mirror's) are removed on the
next start, which continues the same run. Transaction ids already committed are refused
(counted as duplicates), so a client's retry after a restart is not written twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cutover.adapters.candidate import CandidateSide
from cutover.domain import CATEGORIES, TRAFFIC
from cutover.errors import InputError, InvariantBroken
from cutover.replay.engine import RULES_COPY, write_batch_parts
from cutover.replay.legacy_side import recorded_outcomes
from cutover.replay.stages import prepare
from cutover.shadow.diff_rules import parse_diff_rules
from cutover.store import runinfo
from cutover.store.checkpoint import (
    Checkpoint,
    part_name,
    read_checkpoint,
    remove_uncommitted_parts,
    write_checkpoint,
    write_json_atomic,
    write_parquet_atomic,
)

REQUESTS_DIR: Final = "requests"
STATS_FILE: Final = "mirror.json"
#: Committed txn_ids remembered for the duplicate check; past this the oldest run is
#: too large for one mirror directory and the operator starts a new one.
TXN_IDS_MAX: Final = 20_000_000


@dataclass
class MirrorStats:
    """What happened to every request the mirror saw (each lands in exactly one count)."""

    received: int = 0
    committed: int = 0
    duplicates: int = 0
    dropped_queue_full: int = 0
    unreadable: int = 0
    served_by_candidate: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)
    legacy_unreachable: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}


class MirrorRun:
    """Open (or continue) a mirror run directory and commit batches into it."""

    def __init__(self, out: Path, settings: dict[str, Any], rules_text: str,
                 rules_source: str) -> None:
        self.out = Path(out)
        self.rules = parse_diff_rules(rules_text, rules_source)
        fingerprint = runinfo.fingerprint(settings | {"rules_sha256": self.rules.sha256}, [])
        previous = read_checkpoint(self.out) if self.out.is_dir() else None
        if previous is not None and previous.fingerprint != fingerprint:
            raise InputError(f"{self.out} holds a run with other settings (legacy, mapping,"
                             " candidate, rules); use the same ones or another --out")
        if previous is None and self.out.is_dir() and any(self.out.iterdir()):
            raise InputError(f"{self.out} is not empty and holds no mirror run: use another"
                             " --out")
        self.stats = MirrorStats()
        self.watermark: Any = None
        if previous is None:
            self._create(settings, fingerprint, rules_text)
        else:
            self._continue(previous)
        for sub in (REQUESTS_DIR, "decisions", "diffs"):
            (self.out / sub).mkdir(exist_ok=True)

    def _create(self, settings: dict[str, Any], fingerprint: str, rules_text: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / RULES_COPY).write_text(rules_text, encoding="utf-8")
        self.run = runinfo.new_run(self.out, settings, [], self.rules.sha256)
        self.run["engine"] = "mirror"
        runinfo.write_run(self.out, self.run)
        self.checkpoint = Checkpoint(fingerprint=fingerprint,
                                     by_category=dict.fromkeys(CATEGORIES, 0),
                                     rules_toml=rules_text)
        write_checkpoint(self.out, self.checkpoint)
        self.seen: set[str] = set()

    def _continue(self, previous: Checkpoint) -> None:
        self.checkpoint = previous
        remove_uncommitted_parts(self.out, previous.batches_committed)
        _remove_parts_from(self.out / REQUESTS_DIR, previous.batches_committed)
        self.run = runinfo.read_run(self.out)
        self.run["resumed_at"].append({"at": runinfo.utc_now(),
                                       "batch": previous.batches_committed})
        self.run["finished_at"] = None
        runinfo.write_run(self.out, self.run)
        previous.finished = False
        write_checkpoint(self.out, previous)
        self.seen = _committed_ids(self.out, previous.batches_committed)
        if previous.batches_committed:
            last = pq.read_table(self.out / REQUESTS_DIR / part_name(previous.batches_committed - 1),
                                 columns=["ts"])["ts"]
            self.watermark = pc.max(last.cast(pa.int64())).as_py()
        stats = self.out / STATS_FILE
        if stats.is_file():
            self.stats = MirrorStats(**json.loads(stats.read_text(encoding="utf-8")))

    def fresh(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` without txn_ids already committed or repeated inside ``rows``."""
        kept, ids = [], set()
        for row in rows:
            txn_id = row["txn_id"]
            if txn_id in self.seen or txn_id in ids:
                self.stats.duplicates += 1
                continue
            ids.add(txn_id)
            kept.append(row)
        return kept

    def commit(self, rows: list[dict[str, Any]], candidate: CandidateSide) -> int:
        """Decide ``rows`` (TRAFFIC dicts with the legacy outcome) and commit them as one
        batch; returns the rows written (0: all were duplicates, nothing committed)."""
        rows = self.fresh(rows)
        if not rows:
            self.write_stats()
            return 0
        # Concurrent clients arrive a little out of order; the stack's look-back needs time
        # order (then txn_id), as a replay's store gives it.
        rows.sort(key=lambda r: (r["ts"], r["txn_id"]))
        traffic = pa.Table.from_pylist(rows, schema=TRAFFIC)
        prepared = prepare(traffic)
        decided = candidate.decide(self._in_arrival_order(prepared.valid))
        batch_no = self.checkpoint.batches_committed
        write_parquet_atomic(traffic, self.out / REQUESTS_DIR / part_name(batch_no))
        parts = write_batch_parts(self.out, batch_no, prepared, recorded_outcomes(prepared.valid),
                                  decided, self.rules)
        if sum(parts.by_category.values()) != traffic.num_rows:
            raise InvariantBroken(f"mirror batch {batch_no}: {traffic.num_rows} requests but"
                                  f" {sum(parts.by_category.values())} diff rows")
        cp = self.checkpoint
        for category, count in parts.by_category.items():
            cp.by_category[category] = cp.by_category.get(category, 0) + count
        for category, count in parts.expected_by_category.items():
            cp.expected_by_category[category] = cp.expected_by_category.get(category, 0) + count
        cp.batches_committed, cp.rows_in = batch_no + 1, cp.rows_in + traffic.num_rows
        write_checkpoint(self.out, cp)
        if len(self.seen) < TXN_IDS_MAX:
            self.seen.update(r["txn_id"] for r in rows)
        self.stats.committed += traffic.num_rows
        if self.run.get("model_version") is None and parts.model_version:
            self.run["model_version"] = parts.model_version
            runinfo.write_run(self.out, self.run)
        self.write_stats()
        return traffic.num_rows

    def _in_arrival_order(self, valid: pa.Table) -> pa.Table:
        """``valid`` with each ts raised to the latest ts already decided (the watermark).

        A stateful stack decides in time order, as live traffic reaches it; a request that
        arrives after a later one was decided is decided as of its arrival, never before.
        Only the candidate sees the raised times: requests/ keeps each request's own ts.
        """
        if valid.num_rows == 0:
            return valid
        ts_type = valid.schema.field("ts").type
        ts_us = valid["ts"].cast(pa.int64())
        if self.watermark is not None:
            ts_us = pc.max_element_wise(ts_us, pa.scalar(self.watermark, pa.int64()))
        self.watermark = pc.max(ts_us).as_py()
        return valid.set_column(valid.schema.get_field_index("ts"), "ts", ts_us.cast(ts_type))

    def write_stats(self) -> None:
        write_json_atomic(self.out / STATS_FILE, self.stats.as_dict())

    def finish(self) -> None:
        """Mark the run finished (a graceful stop); a restart reopens it."""
        self.checkpoint.finished = True
        write_checkpoint(self.out, self.checkpoint)
        self.run["finished_at"] = runinfo.utc_now()
        runinfo.write_run(self.out, self.run)
        self.write_stats()


def _remove_parts_from(folder: Path, batches_committed: int) -> None:
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        stem = path.name.lstrip(".").removeprefix("part-").split(".")[0]
        if path.name.startswith(".") or (stem.isdigit() and int(stem) >= batches_committed):
            path.unlink()


def _committed_ids(out: Path, batches_committed: int) -> set[str]:
    seen: set[str] = set()
    for batch_no in range(batches_committed):
        path = out / "diffs" / part_name(batch_no)
        seen.update(pq.read_table(path, columns=["txn_id"])["txn_id"].to_pylist())
    return seen
