"""Assemble ``cutover mirror`` from its options, and run it in the foreground or on a thread.

The legacy core's address is the origin of its WSDL URL (the mirror forwards each path
unchanged, so a client that called ``CORE/soap`` calls ``MIRROR/soap``); the mapping file is
the one replay and record use. Stopping the mirror commits what its queue holds and marks the
run finished; a SIGKILL loses only the batch being gathered, never a committed one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from cutover.adapters.candidate import CandidateSide, load_candidate
from cutover.adapters.codes import CodeTable
from cutover.adapters.mapping import load_mapping
from cutover.adapters.tokenize import token_key
from cutover.errors import ConfigError
from cutover.mirror.app import Mirror, MirrorConfig, build_app
from cutover.mirror.phase import PhaseWatch
from cutover.mirror.runlog import MirrorRun
from cutover.mirror.shadow import BATCH_ROWS_MAX, FLUSH_S, QUEUE_MAX, ShadowWorker
from cutover.serve.server import start_in_thread as start
from cutover.shadow.diff_rules import default_rules_path

ADMIN_TOKEN_ENV: Final = "CUTOVER_ADMIN_TOKEN"  # noqa: S105 (a variable name, not a secret)


@dataclass
class MirrorOptions:
    """Everything ``cutover mirror`` takes."""

    wsdl: str
    mapping: Path
    out: Path
    candidate: str | None = None
    candidate_options: dict[str, str] | None = None
    plan_db: str | None = None
    rules: Path | None = None
    batch_rows: int = BATCH_ROWS_MAX
    flush_s: float = FLUSH_S
    queue_max: int = QUEUE_MAX
    cohort_timeout_s: float = 0.25


def legacy_origin(wsdl: str) -> str:
    """``scheme://host:port`` of the WSDL URL; ConfigError when it is not an http(s) URL."""
    parts = urlsplit(wsdl)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--wsdl {wsdl!r}: expected the legacy core's http(s) WSDL URL")
    return f"{parts.scheme}://{parts.netloc}"


def _settings(opts: MirrorOptions) -> dict[str, Any]:
    return {"store": str((opts.out / "requests").resolve()), "candidate": opts.candidate or "",
            "candidate_options": dict(sorted((opts.candidate_options or {}).items())),
            "legacy": "mirror",
            "legacy_options": {"wsdl": opts.wsdl, "mapping": str(opts.mapping)},
            "narrowing": {}, "batch_rows": opts.batch_rows}


def _candidate(spec: str | None, options: dict[str, str] | None) -> CandidateSide:
    if spec is None:
        raise ConfigError("cutover mirror needs --candidate (http://HOST:PORT or module:attr)")
    options = dict(options or {})
    if spec.startswith(("http://", "https://")):
        options.setdefault("session", "live")  # live traffic is the service's live state
    return CandidateSide(load_candidate(spec, options))


def open_mirror(opts: MirrorOptions) -> tuple[Any, Mirror]:
    """The ASGI app and its Mirror (whose ``worker`` and ``phase`` the caller stops)."""
    mapping = load_mapping(opts.mapping)
    codes = CodeTable.load(mapping.code_table)
    rules_path = opts.rules or default_rules_path()
    try:
        rules_text = Path(rules_path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--rules {rules_path}: cannot read: {exc.strerror}") from exc
    key = token_key()
    candidate = _candidate(opts.candidate, opts.candidate_options)
    run = MirrorRun(opts.out, _settings(opts), rules_text, str(rules_path))
    worker = ShadowWorker(run, candidate, mapping, codes, key, queue_max=opts.queue_max,
                          batch_rows=opts.batch_rows, flush_s=opts.flush_s)
    phase = PhaseWatch(opts.plan_db)
    cfg = MirrorConfig(legacy_origin(opts.wsdl), opts.candidate
                       if opts.candidate and opts.candidate.startswith("http") else None,
                       mapping, codes, key, os.environ.get(ADMIN_TOKEN_ENV) or None,
                       opts.cohort_timeout_s)
    mirror = Mirror(cfg, worker, phase)
    return build_app(mirror), mirror


def stop_mirror(mirror: Mirror) -> None:
    """Stop watching the plan, commit the queue and mark the run finished."""
    mirror.phase.stop()
    mirror.worker.stop()


def start_in_thread(opts: MirrorOptions, host: str = "127.0.0.1", port: int = 0) -> Any:
    """The mirror on a daemon thread (tests, benches); returns (running server, mirror)."""
    app, mirror = open_mirror(opts)
    return start(app, host, port), mirror
