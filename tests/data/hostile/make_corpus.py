"""Write the batch-file and cassette cases of the hostile corpus (run once; outputs committed).

``batch/base_authlog.txt`` is the simulated core's authorisation log of a 10-row store
(`cutover sim traffic --rows 10 --seed 3 --days 7`, then `cutover sim eod`). Each case
changes bytes of one detail record in place, in fields outside the control totals (count,
amount sum, BIN hash) unless the case is about the totals, so the file is refused or
quarantined for the one reason the case names. Cassettes are written from templates of the
simulated core's SOAP exchange. Run: .venv/bin/python tests/data/hostile/make_corpus.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).parent
#: Field positions (1-based start, length) in legacy_authlog.toml's detail record.
FIELDS = {"txn_id": (2, 40), "ts": (42, 20), "customer_id": (82, 20), "card_country": (146, 2),
          "channel": (168, 10), "device_hash": (178, 64), "currency": (163, 3),
          "card_token": (102, 36)}
#: Documented test card numbers (Visa 4111..., Mastercard 5555...), never real cards.
PAN_VISA = "4111111111111111"


def _put(line: bytes, field: str, value: bytes) -> bytes:
    start, length = FIELDS[field]
    return line[:start - 1] + value.ljust(length)[:length] + line[start - 1 + length:]


def _batch(name: str, change) -> None:
    lines = (HERE / "batch" / "base_authlog.txt").read_bytes().split(b"\n")
    (HERE / "batch" / name).write_bytes(b"\n".join(change(lines)))


def _detail(field: str, value: bytes, row: int = 1):
    def change(lines: list[bytes]) -> list[bytes]:
        lines[row] = _put(lines[row], field, value)
        return lines
    return change


def write_batches() -> None:
    _batch("feb30.txt", _detail("ts", b"20260230101010000000"))
    _batch("year0001.txt", _detail("ts", b"00010101000000000000"))
    _batch("year9999.txt", _detail("ts", b"99991231235959000000", row=2))
    _batch("pan_dashes_customer.txt", _detail("customer_id", b"4111-1111-1111-1111"))
    _batch("pan_spaces_device.txt", _detail("device_hash", b"dev 4111 1111 1111 1111"))
    _batch("pan_dots_device.txt", _detail("device_hash", b"4111.1111.1111.1111"))
    _batch("pan_in_card_field.txt", _detail("card_token", b"4111-1111-1111-1111"))
    _batch("bad_country.txt", _detail("card_country", b"QQ"))
    _batch("bad_channel.txt", _detail("channel", b"fax"))
    _batch("non_ascii.txt", _detail("customer_id", "C\u00e9\u00e9".encode("latin-1")))

    def same_id(lines: list[bytes]) -> list[bytes]:
        start, length = FIELDS["txn_id"]
        lines[2] = _put(lines[2], "txn_id", lines[1][start - 1:start - 1 + length].rstrip())
        return lines
    _batch("conflict.txt", same_id)

    def bad_count(lines: list[bytes]) -> list[bytes]:
        trailer = next(i for i, line in enumerate(lines) if line.startswith(b"T"))
        lines[trailer] = b"T000000000099" + lines[trailer][13:]
        return lines
    _batch("control_count.txt", bad_count)


REQUEST = ("<?xml version='1.0' encoding='utf-8'?>\n<soap-env:Envelope xmlns:soap-env="
           "\"http://schemas.xmlsoap.org/soap/envelope/\"><soap-env:Body>"
           "<ns0:AuthorizePaymentRequest xmlns:ns0=\"urn:cutover:legacy:auth:v1\">{txn}"
           "<ns0:CardNumber>{card}</ns0:CardNumber><ns0:CardBin>411111</ns0:CardBin>"
           "<ns0:Amount>{amount}</ns0:Amount><ns0:Currency>USD</ns0:Currency>"
           "<ns0:MerchantId>M00001</ns0:MerchantId><ns0:Mcc>5411</ns0:Mcc>"
           "<ns0:MerchantCountry>US</ns0:MerchantCountry><ns0:Channel>ecom</ns0:Channel>"
           "<ns0:CustomerId>{customer}</ns0:CustomerId><ns0:RequestTime>{when}</ns0:RequestTime>"
           "</ns0:AuthorizePaymentRequest></soap-env:Body></soap-env:Envelope>")
RESPONSE = ("<?xml version='1.0' encoding='utf-8'?>\n<soap:Envelope xmlns:soap="
            "\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
            "<tns:AuthorizePaymentResponse xmlns:tns=\"urn:cutover:legacy:auth:v1\">"
            "<tns:ResponseCode>00</tns:ResponseCode><tns:AuthCode>E7LQWC</tns:AuthCode>"
            "<tns:RouteCode>GW_ATLAS</tns:RouteCode><tns:FeeAmount>43</tns:FeeAmount>"
            "<tns:TraceId>7fbeb65393fb4a50</tns:TraceId>"
            "<tns:ResponseTime>2026-10-01T12:00:01+00:00</tns:ResponseTime>"
            "</tns:AuthorizePaymentResponse></soap:Body></soap:Envelope>")
FAULT = ("<?xml version='1.0' encoding='utf-8'?>\n<soap:Envelope xmlns:soap="
         "\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault>"
         "<faultcode>soap:Server</faultcode><faultstring>core busy</faultstring>"
         "</soap:Fault></soap:Body></soap:Envelope>")


def _interaction(number: int, status: int = 200, body: str = RESPONSE, **fields: str) -> dict:
    values = {"txn": f"<ns0:TxnId>HOSTILE{number:04d}</ns0:TxnId>",
              "card": f"tok_{'abcdefghijklmnop' * 2}", "amount": "1000",
              "customer": f"C{number:05d}", "when": f"2026-10-01T12:00:{number:02d}Z"} | fields
    return {"request": {"body": REQUEST.format(**values), "headers": {}, "method": "POST",
                        "uri": "http://127.0.0.1:8085/soap"},
            "response": {"body": {"string": body}, "headers": {},
                         "status": {"code": status, "message": "OK" if status == 200 else
                                    "Internal Server Error"}}}


def _cassette(name: str, special: dict) -> None:
    """Three good interactions plus one ``special`` one (the case)."""
    interactions = [_interaction(n) for n in range(1, 4)] + [special]
    (HERE / "cassette" / name).write_text(
        yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=True),
        encoding="utf-8")


def write_cassettes() -> None:
    _cassette("pan_in_customer.yaml", _interaction(9, customer="4111 1111 1111 1111"))
    _cassette("pan_dashed_card.yaml", _interaction(9, card="4111-1111-1111-1111"))
    _cassette("pan_in_response.yaml", _interaction(9, body=RESPONSE.replace(
        "E7LQWC", "4111.1111.1111.1111")))
    _cassette("no_txn_id.yaml", _interaction(9, txn=""))
    _cassette("legacy_fault.yaml", _interaction(9, status=500, body=FAULT))
    _cassette("feb30.yaml", _interaction(9, when="2026-02-30T12:00:00Z"))
    _cassette("negative_amount.yaml", _interaction(9, amount="-500"))
    _cassette("conflict.yaml", _interaction(1, amount="999999"))


if __name__ == "__main__":
    write_batches()
    write_cassettes()
