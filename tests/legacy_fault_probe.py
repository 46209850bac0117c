"""Run every legacy fault kind through the SOAP adapter in a fresh process; print JSON results.

Peak memory is a property of the whole process, so the fault suite runs the client here,
alone, while the fault server stays in the pytest process: the growth of this process's peak
RSS over its RSS after start-up (imports, one adapter built) is what the faults cost.

    python tests/legacy_fault_probe.py BASE_URL DEADLINE_S

prints one JSON object: {"baseline_mb", "kinds": [{kind, path, reason, detail, elapsed_s,
peak_growth_mb}], "record": {...}} where ``record`` is a recording against the 200 MB reply.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cutover.adapters.cassette import record_calls  # noqa: E402
from cutover.adapters.soap import SoapAdapter, SoapOptions  # noqa: E402
from cutover.adapters.transport import CircuitBreaker  # noqa: E402
from tests.adapters_support import OTHER_MAPPING, closed_port, sample_txn  # noqa: E402

#: Fault kind -> the fault server's path ("refused" goes to a port nobody listens on).
KINDS = {"timeout": "slow", "refused": None, "http_5xx": "http500", "soap_fault": "fault",
         "truncated_xml": "truncated", "wrong_namespace": "wrongns", "xxe": "xxe",
         "billion_laughs": "laughs", "huge_200mb": "huge", "header_drip": "drip_headers",
         "body_drip": "drip_body"}
#: Longest silence between bytes: shorter than the deadline, longer than the drip's gap.
IDLE_S = 1.0


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def _rss_mb() -> float:
    """Current resident set size."""
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: the kernel carries ru_maxrss across fork and exec, so a
    # child of a large pytest process would report the parent's peak as its own.
    return _status_mb("VmHWM")


def _options(address: str, deadline_s: float) -> SoapOptions:
    return SoapOptions(address=address, deadline_s=deadline_s, read_timeout_s=IDLE_S,
                       calls_per_s=1000)


def _adapter(address: str, deadline_s: float) -> SoapAdapter:
    # A breaker that never opens, so each kind reports its own reason.
    return SoapAdapter(OTHER_MAPPING, options=_options(address, deadline_s),
                       breaker=CircuitBreaker(failures_max=10_000))


def main() -> None:
    base, deadline_s = sys.argv[1], float(sys.argv[2])
    _adapter(f"{base}/ok", deadline_s).authorize(sample_txn(1))  # warm: imports, zeep, WSDL
    baseline_mb = _rss_mb()
    kinds = []
    for number, (kind, path) in enumerate(KINDS.items()):
        address = f"{base}/{path}" if path else f"http://127.0.0.1:{closed_port()}/x"
        adapter = _adapter(address, deadline_s)
        started_s = time.monotonic()
        outcome = adapter.authorize(sample_txn(100 + number))
        kinds.append({"kind": kind, "path": path, "decision": outcome["legacy_decision"],
                      "reason": outcome["legacy_reason"], "detail": outcome.get("detail", ""),
                      "elapsed_s": round(time.monotonic() - started_s, 3),
                      "peak_growth_mb": round(_peak_mb() - baseline_mb, 1)})
        adapter.close()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "huge.yaml"
        started_s = time.monotonic()
        outcomes = record_calls(OTHER_MAPPING, [sample_txn(200)], out, b"probe-key",
                                options=_options(f"{base}/huge", deadline_s))
        record = {"reason": outcomes[0]["legacy_reason"], "cassette_written": out.exists(),
                  "elapsed_s": round(time.monotonic() - started_s, 3),
                  "peak_growth_mb": round(_peak_mb() - baseline_mb, 1)}
    print(json.dumps({"baseline_mb": round(baseline_mb, 1), "kinds": kinds, "record": record}))


if __name__ == "__main__":
    main()
