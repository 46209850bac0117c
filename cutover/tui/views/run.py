"""The small JSON files of a run directory (report, run, checkpoint) and a change fingerprint.

Follow mode polls ``fingerprint`` once a second: it only stats files, so polling a run that a
replay is writing costs microseconds and never reads a half-written part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: A report bigger than this is not one cutover wrote; refusing it keeps the UI responsive.
JSON_BYTES_MAX: Final = 64 * 1024 * 1024
PART_GLOB: Final = "part-*.parquet"


@dataclass(frozen=True)
class RunFiles:
    """What the run directory's JSON files hold; a missing or unreadable file is None."""

    report: dict[str, Any] | None
    run: dict[str, Any] | None
    checkpoint: dict[str, Any] | None
    problems: tuple[str, ...] = ()


def read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None), or (None, why) when the file is missing, too big or not JSON."""
    try:
        if path.stat().st_size > JSON_BYTES_MAX:
            return None, f"{path.name} is larger than {JSON_BYTES_MAX:,} bytes"
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        # A replay writes these atomically, so a bad file is worth telling the operator about.
        return None, f"{path.name}: {exc}"
    if not isinstance(data, dict):
        return None, f"{path.name} does not hold a JSON object"
    return data, None


def read_run_files(run_dir: Path) -> RunFiles:
    """report.json, run.json and checkpoint.json of ``run_dir``."""
    found: dict[str, dict[str, Any] | None] = {}
    problems = []
    for name in ("report", "run", "checkpoint"):
        found[name], problem = read_json(Path(run_dir) / f"{name}.json")
        if problem:
            problems.append(problem)
    return RunFiles(found["report"], found["run"], found["checkpoint"], tuple(problems))


def part_files(run_dir: Path, folder: str = "diffs") -> list[Path]:
    """The committed part files of ``folder`` in batch order (temp files never match)."""
    return sorted((Path(run_dir) / folder).glob(PART_GLOB))


def fingerprint(run_dir: Path) -> tuple[object, ...]:
    """Changes whenever a part is committed or a JSON file is replaced; stats only."""
    marks: list[object] = []
    for path in [*part_files(run_dir), *(Path(run_dir) / f"{n}.json"
                                          for n in ("report", "run", "checkpoint"))]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        marks.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(marks)


def run_facts(files: RunFiles) -> list[tuple[str, str]]:
    """(label, value) lines describing what was run, from run.json or the report's run block."""
    run = files.run or (files.report or {}).get("run") or {}
    facts = []
    for key in ("run_id", "candidate", "legacy_mode", "model_version", "rules_sha256",
                "code_version", "started_at", "finished_at"):
        if run.get(key) not in (None, ""):
            value = str(run[key])
            facts.append((key, value[:12] if key.endswith("sha256") else value))
    for item in run.get("inputs") or []:
        if isinstance(item, dict):
            rows = f" ({item['rows']:,} rows)" if isinstance(item.get("rows"), int) else ""
            facts.append(("input", f"{item.get('path', '?')}{rows}"))
    return facts
