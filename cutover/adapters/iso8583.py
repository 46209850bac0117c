"""ISO 8583 authorisation logs (0100/0110, 0200/0210, 0400/0410) into the traffic store.

Card switches log the messages they exchange. Each switch speaks its own dialect of ISO 8583
(field encodings, bitmaps, framing), so the dialect is data: a switch spec in
``fixtures/iso8583/<switch>.toml`` (validated here, then handed to ``pyiso8583``). A request and
its response (same STAN, terminal and transmission time) become one traffic record; field 39 is
translated through ``fixtures/codes/iso8583_39.toml``; a reversal (0400/0410) is a record of its
own with the amount negated. The PAN (field 2) is tokenised with ``cutover.adapters.tokenize``
the moment a message is decoded; track 2 and ICC data are never kept.

Every message read ends in exactly one place: paired into a record, or quarantined with its
offset and reason (undecodable, unknown MTI, no partner before the end of the log).
"""

from __future__ import annotations

import datetime as dt
import struct
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

import iso8583
import numpy as np
import pyarrow as pa
from pydantic import Field

from cutover.adapters.codes import CodeTable
from cutover.adapters.importer import assemble_traffic, commit
from cutover.adapters.tokenize import tokenize_pan
from cutover.config import StrictModel, config_model, load
from cutover.errors import ConfigError, InputError
from cutover.paths import fixtures_dir

#: Request MTI -> response MTI, and the kind of record each pair becomes.
PAIRS: Final = {"0100": ("0110", "auth"), "0200": ("0210", "financial"),
                "0400": ("0410", "reversal")}
RESPONSES: Final = {resp: req for req, (resp, _) in PAIRS.items()}
#: A log message is at most this long (ISO 8583 messages are well under 2 KiB).
MESSAGE_BYTES_MAX: Final = 8192
#: Requests waiting for their response at once; beyond this the oldest is quarantined.
PENDING_MAX: Final = 100_000
BIN_DIGITS: Final = 6
BUILTIN_SWITCHES: Final = ("ascii_switch", "binary_switch")


@config_model("iso8583_switch", "cutover/fixtures/iso8583/*.toml")
class SwitchSpec(StrictModel):
    """A switch's ISO 8583 dialect: framing, field encodings, where each datum lives."""

    class Switch(StrictModel):
        name: str
        description: str = ""
        framing: Literal["length2"] = "length2"

    class FieldSpec(StrictModel):
        len_type: int = Field(ge=0, le=4)
        max_len: int = Field(ge=0, le=9999)
        desc: str = ""
        data_enc: str | None = None
        len_enc: str | None = None

    class Mapping(StrictModel):
        pan: str
        amount: str
        transmitted: str
        stan: str
        mcc: str
        entry_mode: str
        rrn: str
        response: str
        terminal: str
        merchant: str
        acceptor_location: str
        currency: str

    switch: Switch
    defaults: dict[str, str] = {}
    fields: dict[str, FieldSpec]
    mapping: Mapping
    channels: dict[str, Literal["ecom", "pos", "moto", "recurring"]] = {}

    def pyiso8583(self) -> dict[str, dict[str, Any]]:
        """The spec in pyiso8583's form: every field with its encodings."""
        out = {}
        for key, spec in self.fields.items():
            values = {**self.defaults, **spec.model_dump(exclude_none=True)}
            out[key] = values
        out.setdefault("h", {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0,
                             "max_len": 0, "desc": "Message Header"})
        return out


def load_switch(name_or_path: str | Path) -> SwitchSpec:
    """A built-in switch spec by name, or a switch spec TOML by path (ConfigError if invalid)."""
    text = str(name_or_path)
    path = fixtures_dir() / "iso8583" / f"{text}.toml" if text in BUILTIN_SWITCHES else Path(text)
    if not path.is_file():
        raise ConfigError(f"switch spec {text!r}: no such built-in or file (built-ins:"
                          f" {', '.join(BUILTIN_SWITCHES)})")
    spec = load(SwitchSpec, path)
    for key in ("t", "p", *spec.mapping.model_dump().values()):
        if key not in spec.fields:
            raise ConfigError(f"{path}: [fields] has no field {key!r}, which [mapping] or the"
                              " message type and bitmap need")
    return spec


@lru_cache(maxsize=1)
def currency_by_numeric() -> dict[str, str]:
    """ISO 4217 numeric -> alphabetic code (fixtures/codes/iso4217_numeric.toml)."""
    path = fixtures_dir() / "codes" / "iso4217_numeric.toml"
    return dict(tomllib.loads(path.read_text(encoding="utf-8"))["numeric"])


def iter_frames(path: Path) -> Iterator[tuple[int, bytes]]:
    """(offset, message bytes) of each message after its 2-byte big-endian length."""
    with open(path, "rb") as handle:
        offset = 0
        while True:
            head = handle.read(2)
            if not head:
                return
            if len(head) < 2:
                raise InputError(f"{path}: offset {offset}: truncated length prefix")
            (length,) = struct.unpack(">H", head)
            if length == 0 or length > MESSAGE_BYTES_MAX:
                raise InputError(f"{path}: offset {offset}: message length {length} outside"
                                 f" 1..{MESSAGE_BYTES_MAX}; is this log framed as the switch"
                                 " spec says?")
            body = handle.read(length)
            if len(body) < length:
                raise InputError(f"{path}: offset {offset}: truncated message ({len(body)} of"
                                 f" {length} bytes)")
            yield offset, body
            offset += 2 + length


@dataclass
class Message:
    """The fields cutover keeps of one decoded message (the PAN already a token)."""

    offset: int
    mti: str
    key: tuple[str, str, str]
    values: dict[str, str]


@dataclass
class LogRead:
    """Records paired from a log, and the messages quarantined with why."""

    messages: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)


def decode_message(body: bytes, offset: int, switch: SwitchSpec, spec: dict[str, Any],
                   key: bytes) -> Message:
    """Decode one message and tokenise its PAN; InputError names the offset and the field."""
    try:
        decoded, _ = iso8583.decode(body, spec)
    except iso8583.DecodeError as exc:
        raise InputError(f"offset {offset}: field {exc.field}: {exc.msg}") from exc
    m = switch.mapping
    values = {name: decoded.get(number, "").strip() for name, number in m.model_dump().items()
              if name != "pan"}
    pan = decoded.get(m.pan, "")
    values["card_token"] = tokenize_pan(pan, key) if pan else ""
    values["card_bin"] = pan[:BIN_DIGITS]
    key_fields = (values["stan"], values["terminal"], values["transmitted"])
    return Message(offset, decoded.get("t", ""), key_fields, values)


def read_log(path: str | Path, switch: SwitchSpec, key: bytes, year: int) -> LogRead:
    """Pair requests with responses; quarantine what cannot be read or has no partner."""
    out = LogRead()
    for kind, item in iter_log(path, switch, key, year):
        if kind == "message":
            out.messages += 1
        elif kind == "record":
            out.records.append(item)
        else:
            out.quarantined.append(item)
    return out


def iter_log(path: str | Path, switch: SwitchSpec, key: bytes, year: int
             ) -> Iterator[tuple[str, Any]]:
    """Stream a log: ("message", None) per message read, then ("record", row) for each pair
    and ("quarantined", row) for what cannot be read or has no partner. Memory holds only the
    requests still waiting for their response (at most PENDING_MAX)."""
    path = Path(path)
    spec = switch.pyiso8583()
    pending: dict[tuple[str, str, str, str], Message] = {}
    for offset, body in iter_frames(path):
        yield "message", None
        try:
            msg = decode_message(body, offset, switch, spec, key)
        except InputError as exc:
            yield "quarantined", {"offset": offset, "reason": str(exc)}
            continue
        if msg.mti in PAIRS:
            slot = (msg.mti, *msg.key)
            if slot in pending:
                yield "quarantined", _orphan(pending.pop(slot), "request repeated before its"
                                                                " response")
            pending[slot] = msg
            if len(pending) > PENDING_MAX:
                oldest = next(iter(pending))
                yield "quarantined", _orphan(pending.pop(oldest), "no response within"
                                                                  f" {PENDING_MAX} messages")
        elif msg.mti in RESPONSES:
            request = pending.pop((RESPONSES[msg.mti], *msg.key), None)
            if request is None:
                yield "quarantined", _orphan(msg, "response without its request")
            else:
                yield "record", _record(switch, request, msg, year)
        else:
            yield "quarantined", _orphan(msg, f"MTI {msg.mti!r} is not one of"
                                              f" {sorted([*PAIRS, *RESPONSES])}")
    for msg in pending.values():
        yield "quarantined", _orphan(msg, "request without a response")


def _orphan(msg: Message, reason: str) -> dict[str, Any]:
    return {"offset": msg.offset, "mti": msg.mti, "stan": msg.key[0], "reason": reason}


def _record(switch: SwitchSpec, request: Message, response: Message, year: int
            ) -> dict[str, Any]:
    """One TRAFFIC row from a request and its response (pure)."""
    kind = PAIRS[request.mti][1]
    v = request.values
    reference = v["rrn"] or v["stan"]
    sent = v["transmitted"]
    try:
        ts = dt.datetime.strptime(f"{year}{sent}", "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        ts = None
    currency = currency_by_numeric().get(v["currency"])
    amount = int(v["amount"]) if v["amount"].isdigit() else None
    return {
        "txn_id": f"{switch.switch.name}:{reference}:{sent}" + (":rev" if kind == "reversal"
                                                                else ""),
        "ts": ts, "merchant_id": v["merchant"], "mcc": v["mcc"],
        "customer_id": v["card_token"], "card_token": v["card_token"],
        "card_bin": v["card_bin"], "card_country": "",
        "amount_minor": None if amount is None else (-amount if kind == "reversal" else amount),
        "currency": currency, "merchant_country": v["acceptor_location"][-2:],
        "channel": switch.channels.get(v["entry_mode"][:2], "pos"),
        "legacy_code": response.values["response"], "legacy_route": None,
        "legacy_fee_minor": 0, "legacy_latency_ms": 0, "_offset": request.offset,
    }


def import_iso8583(path: str | Path, store: str | Path, switch: str | Path, key: bytes,
                   year: int | None = None) -> Any:
    """Import an ISO 8583 log into ``store``; return the checked ImportCounts.

    ``year`` dates field 7 (MMDDhhmmss carries none); by default the current UTC year.
    """
    path, spec = Path(path), load_switch(switch)
    read = read_log(path, spec, key, year or dt.datetime.now(dt.UTC).year)
    n = len(read.records)
    types = {"ts": pa.timestamp("us", tz="UTC"), "amount_minor": pa.int64(),
             "legacy_fee_minor": pa.int64(), "legacy_latency_ms": pa.int32()}
    cols = {name: pa.array([r[name] for r in read.records], types.get(name, pa.string()))
            for name in (read.records[0] if read.records else {}) if name != "_offset"}
    reasons, fields = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    if n:
        table = CodeTable.load(fixtures_dir() / "codes" / "iso8583_39.toml")
        decisions, codes_reasons, _ = table.translate(cols["legacy_code"])
        cols["legacy_decision"] = pa.array(np.asarray(decisions, dtype=object), pa.string())
        cols["legacy_reason"] = pa.array(np.asarray(codes_reasons, dtype=object), pa.string())
        for name in ("ts", "amount_minor", "currency"):
            missing = cols[name].is_null().to_numpy(zero_copy_only=False) & (reasons == "")
            reasons[missing], fields[missing] = f"cannot read {name}", name
    mapped, reasons, fields = assemble_traffic(cols, n, reasons, fields)
    offsets = np.asarray([r["_offset"] for r in read.records], np.int64)
    extra = [{"file": str(path), "offset": q["offset"], "reason": q["reason"], "record": q}
             for q in read.quarantined]
    counts = commit(mapped, offsets, reasons, fields, None, path, Path(store), extra)
    return counts, read.messages
