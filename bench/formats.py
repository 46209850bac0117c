"""Format readers at scale: NACHA lines/s, camt.053 and ISO 8583 messages/s, peak memory.

Used by bench/files.py: each measurement runs in a child process so its peak RSS is its own;
run at two sizes, memory that does not grow with the file shows the reader streams. Files are
generated here from templates (fast), not through cutover's writers, so only reading is timed.
"""

from __future__ import annotations

import json
import resource
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENTRIES_PER_BATCH = 100
ROUTING = 23138010  # check digit 4
KEY = b"bench-key-not-secret-0123456789ab"


def write_nacha(path: Path, lines_wanted: int) -> int:
    """A valid PPD file of about ``lines_wanted`` lines (entries in batches of 100)."""
    batches = max(1, lines_wanted // (ENTRIES_PER_BATCH + 2))
    out = [f"101 231380104 121042882{'261001'}1200A094101{'DEST':<23}{'ORIGIN':<23}{'':<8}"]
    total = 0
    for b in range(1, batches + 1):
        out.append(f"5225{'Name on Account':<16}{'':<20}{'121042882':<10}PPD{'REG.SALARY':<10}"
                   f"{'':<6}261001   112104288{b:07d}")
        for i in range(ENTRIES_PER_BATCH):
            out.append(f"627{ROUTING:08d}4{'12345678':<17}{100 + i:010d}{'':<15}"
                       f"{'Receiver':<22}  0{121042880000000 + b * 1000 + i:015d}")
        amount = sum(100 + i for i in range(ENTRIES_PER_BATCH))
        total += amount
        out.append(f"8225{ENTRIES_PER_BATCH:06d}{ROUTING * ENTRIES_PER_BATCH % 10**10:010d}"
                   f"{amount:012d}{0:012d}{'121042882':<10}{'':<19}{'':<6}12104288{b:07d}")
    count = batches * ENTRIES_PER_BATCH
    lines = len(out) + 1
    out.append(f"9{batches:06d}{-(-lines // 10):06d}{count:08d}"
               f"{ROUTING * count % 10**10:010d}{total:012d}{0:012d}{'':<39}")
    out += ["9" * 94] * (-len(out) % 10)
    path.write_text("\n".join(out) + "\n", encoding="ascii")
    return len(out)


def write_camt053(path: Path, entries: int) -> int:
    """One statement of ``entries`` credits of 1.00 USD, valid against camt.053.001.02."""
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:'
            'tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>BENCH</MsgId><CreDtTm>'
            '2026-10-01T23:59:59</CreDtTm></GrpHdr><Stmt><Id>1</Id><CreDtTm>2026-10-01T23:59:59'
            '</CreDtTm><Acct><Id><Othr><Id>MERCHANT_PAYABLE:M1</Id></Othr></Id><Ccy>USD</Ccy>'
            '</Acct>')
    bal = ('<Bal><Tp><CdOrPrtry><Cd>{}</Cd></CdOrPrtry></Tp><Amt Ccy="USD">{}</Amt>'
           '<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-10-01</Dt></Dt></Bal>\n')
    entry = ('<Ntry><Amt Ccy="USD">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
             '<BookgDt><Dt>2026-10-01</Dt></BookgDt><AcctSvcrRef>T{:010d}</AcctSvcrRef><BkTxCd>'
             '<Prtry><Cd>CAPTURE</Cd></Prtry></BkTxCd></Ntry>\n')
    with open(path, "w", encoding="utf-8") as out:
        out.write(head + bal.format("OPBD", "0.00") + bal.format("CLBD", f"{entries}.00"))
        for i in range(entries):
            out.write(entry.format(i))
        out.write("</Stmt></BkToCstmrStmt></Document>\n")
    return entries


def write_iso8583(path: Path, messages: int) -> int:
    """``messages`` framed messages: 0100/0110 pairs with distinct STAN and RRN."""
    import datetime as dt

    import iso8583

    from cutover.adapters.iso8583 import load_switch
    from cutover.sim.switch_log import messages_for

    switch = load_switch("ascii_switch")
    spec = switch.pyiso8583()
    txn = {"ts": dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC), "amount_minor": 1234,
           "mcc": "5411", "merchant_id": "M00001", "merchant_country": "US",
           "currency": "USD", "legacy_decision": "approve"}
    req, resp = (bytes(iso8583.encode(dict(m), spec)[0])
                 for m in messages_for(switch, txn, 999_999))
    with open(path, "wb") as out:
        for i in range(messages // 2):
            stan, rrn = f"{i % 1_000_000:06d}".encode(), f"{i:012d}".encode()
            for body in (req, resp):
                body = body.replace(b"999999", stan, 1).replace(b"000000999999", rrn, 1)
                out.write(struct.pack(">H", len(body)) + body)
    return messages // 2 * 2


def read(kind: str, path: Path) -> dict:
    """Read one file with cutover's reader; seconds, records and peak RSS of this process."""
    from cutover.adapters.files import FileReader, load_layout
    from cutover.adapters.iso8583 import iter_log, load_switch
    from cutover.adapters.statements import open_statement

    began = time.perf_counter()
    if kind == "nacha":
        reader = FileReader(path, load_layout("nacha"))
        for _ in reader.batches():
            pass
        report = reader.report
        records = report.read
        ok = report.rejected == 0 and all(c.ok for c in report.checks) and not [
            f for f in report.findings if f.severity == "error"]
    elif kind == "camt053":
        statement = open_statement(path)
        for _ in statement.entries():
            pass
        records, ok = statement.read.entries, not statement.read.problems
    else:
        counts = {"message": 0, "record": 0, "quarantined": 0}
        for kind_, _ in iter_log(path, load_switch("ascii_switch"), KEY, 2026):
            counts[kind_] += 1
        records, ok = counts["message"], counts["quarantined"] == 0
    seconds = time.perf_counter() - began
    return {"kind": kind, "records": records, "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds), "ok": ok,
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's,
    which Linux carries across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1], Path(sys.argv[2]))))
