"""run.json: what a replay was asked to do and with what, so a report can be trusted later.

It records the inputs with their hashes, the candidate and its options, the legacy mode, the
rules' hash, the code version, the command line and the timings. The fingerprint of the parts
that decide the output (everything but timings and argv) guards ``--resume`` against splicing
two different runs into one directory.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq

from cutover import __version__
from cutover.digest import file_sha256
from cutover.errors import StoreError
from cutover.store.checkpoint import write_json_atomic
from cutover.store.traffic import store_files

RUN_FILE: Final = "run.json"


def utc_now() -> str:
    """Now, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")



def store_inputs(store: Path) -> list[dict[str, Any]]:
    """Each store file with its hash and row count (from the Parquet footer)."""
    return [{"path": str(f.resolve()), "sha256": file_sha256(f),
             "rows": pq.ParquetFile(f).metadata.num_rows} for f in store_files(store)]


def fingerprint(settings: dict[str, Any], inputs: list[dict[str, Any]]) -> str:
    """A hash of everything that decides a run's output."""
    payload = {"settings": settings, "inputs": [(i["path"], i["sha256"]) for i in inputs]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def new_run(run_dir: Path, settings: dict[str, Any], inputs: list[dict[str, Any]],
            rules_sha256: str) -> dict[str, Any]:
    """The run.json of a fresh run (written by the caller)."""
    return {"run_id": uuid.uuid4().hex, "run_dir": str(Path(run_dir).resolve()),
            "started_at": utc_now(), "finished_at": None, "store": settings["store"],
            "inputs": inputs,
            "candidate": settings["candidate"], "candidate_options": settings["candidate_options"],
            "legacy_mode": settings["legacy"], "legacy_options": settings["legacy_options"],
            "narrowing": settings["narrowing"], "batch_rows": settings["batch_rows"],
            "model_version": None, "rules_sha256": rules_sha256, "code_version": __version__,
            "python": sys.version.split()[0], "argv": list(sys.argv), "resumed_at": [],
            "timings_s": {}, "engine": "local"}


def read_run_json(run_dir: Path, name: str) -> dict[str, Any]:
    """One JSON file of a run directory; StoreError naming it when missing or unreadable."""
    path = Path(run_dir) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{run_dir} has no {name}: not a replay run directory") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable: {exc}") from exc


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run's run.json; StoreError when missing or unreadable."""
    return read_run_json(run_dir, RUN_FILE)


def write_run(run_dir: Path, run: dict[str, Any]) -> None:
    """Replace run.json atomically."""
    write_json_atomic(Path(run_dir) / RUN_FILE, run)
