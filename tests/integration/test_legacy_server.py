"""Integration tests of the simulated legacy SOAP core over real HTTP on 127.0.0.1 (zeep)."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree

from cutover.sim.legacy_soap import CORE_NS, REQUEST_BYTES_MAX, SOAP_ENV_NS

HTTP_TIMEOUT_S = 10
CONCURRENT_CLIENTS = 8
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _pan() -> str:
    """A Luhn-valid 16-digit test card number, made in memory only."""
    digits = [4] + [random.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def _uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def client(legacy_core) -> zeep.Client:
    """A zeep client built from the served WSDL."""
    return zeep.Client(legacy_core.wsdl_url)


def auth(client: zeep.Client, **changes):
    """AuthorizePayment with a plain approvable request, overridden by ``changes``."""
    req = dict(TxnId=_uid("T"), CardNumber=_uid("tok_"), CardBin="400000", Amount=1000,
               Currency="USD", MerchantId=_uid("M"), Mcc="5999", MerchantCountry="US",
               Channel="ecom", CustomerId="C1", RequestTime=T0)
    req.update(changes)
    return client.service.AuthorizePayment(**req)


def raw_post(core, body: bytes) -> requests.Response:
    return requests.post(core.url, data=body, timeout=HTTP_TIMEOUT_S,
                         headers={"Content-Type": "text/xml; charset=utf-8"})


def fault_of(response: requests.Response) -> tuple[str, str]:
    """(faultcode, faultstring) of a SOAP 1.1 fault reply."""
    root = etree.fromstring(response.content)
    node = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
    return node.findtext("faultcode"), node.findtext("faultstring")


def test_approve_has_code_auth_route_fee(client) -> None:
    """A plain US card in USD is approved 00 with a 6-char auth code, GW_ATLAS and fee 43."""
    out = auth(client, Amount=1000)
    assert out.ResponseCode == "00"
    assert re.fullmatch(r"[A-Z0-9]{6}", out.AuthCode)
    assert (out.RouteCode, out.FeeAmount) == ("GW_ATLAS", 43)
    assert out.ResponseTime.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("changes", "code", "route"),
    [
        ({"CardBin": "999999"}, "14", "GW_ATLAS"),
        ({"CardBin": "550000", "MerchantCountry": "NG", "Currency": "NGN"}, "62", "GW_ATLAS"),
        ({"Currency": "CHF"}, "57", "GW_ATLAS"),
        ({"Mcc": "7995", "Amount": 50_001}, "61", "GW_ATLAS"),
        ({"Channel": "moto", "Amount": 100_001}, "59", "GW_ATLAS"),
        ({"CardBin": "410000", "Amount": 50_001}, "01", "GW_ATLAS"),
        ({"CardBin": "510000", "Amount": 600_000}, "61", "GW_CORAL"),
    ],
)
def test_decline_codes_follow_the_rules(client, changes, code, route) -> None:
    """Crafted requests get the rule's code, the table's route, fee 0 and no auth code."""
    out = auth(client, **changes)
    assert (out.ResponseCode, out.RouteCode, out.FeeAmount, out.AuthCode or "") == (
        code, route, 0, "")


def test_velocity_sixth_in_an_hour_is_65(client) -> None:
    """Five transactions of one card in an hour approve; the sixth is declined 65."""
    card = _pan()
    codes = [auth(client, CardNumber=card, RequestTime=T0 + timedelta(minutes=i)).ResponseCode
             for i in range(6)]
    assert codes == ["00"] * 5 + ["65"]
    later = auth(client, CardNumber=card, RequestTime=T0 + timedelta(minutes=70))
    assert later.ResponseCode == "00"


def test_repeated_txn_id_same_outcome_new_noise(client, legacy_core) -> None:
    """A repeated TxnId gets the same code, route and fee; trace id differs; balance counts once."""
    same = dict(TxnId=_uid("T"), MerchantId=_uid("M"), CardNumber=_pan(), Amount=2000)
    first, second = auth(client, **same), auth(client, **same)
    assert (first.ResponseCode, first.RouteCode, first.FeeAmount) == (
        second.ResponseCode, second.RouteCode, second.FeeAmount) == ("00", "GW_ATLAS", 61)
    assert first.TraceId != second.TraceId
    bal = client.service.GetBalance(AccountId=f"MERCHANT_PAYABLE:{same['MerchantId']}",
                                    Currency="USD")
    assert bal.Balance == 2000


def test_txn_id_reused_for_other_request_is_client_fault(client) -> None:
    """Reusing a TxnId with a different amount is a soap:Client fault naming the TxnId."""
    txn, card, merchant = _uid("T"), _uid("tok_"), _uid("M")
    auth(client, TxnId=txn, CardNumber=card, MerchantId=merchant, Amount=1000)
    with pytest.raises(zeep.exceptions.Fault) as info:
        auth(client, TxnId=txn, CardNumber=card, MerchantId=merchant, Amount=1001)
    assert info.value.code == "soap:Client" and txn in info.value.message


def test_balance_sums_approvals_only(client) -> None:
    """GetBalance is the sum of approved amounts of the merchant and currency; declines excluded."""
    merchant = _uid("M")
    for amount in (1000, 2500, 600_000):
        auth(client, MerchantId=merchant, Amount=amount)
    usd = client.service.GetBalance(AccountId=f"MERCHANT_PAYABLE:{merchant}", Currency="USD")
    eur = client.service.GetBalance(AccountId=f"MERCHANT_PAYABLE:{merchant}", Currency="EUR")
    assert (usd.Balance, eur.Balance) == (3500, 0)


def test_pan_never_kept_or_echoed(client, legacy_core) -> None:
    """A PAN used as CardNumber appears nowhere in the server's memory or replies."""
    pan = _pan()
    auth(client, CardNumber=pan)
    state = legacy_core.state
    kept = repr(state.velocity._by_card) + repr(state.velocity._seen) + repr(state.outcomes)
    assert pan not in kept
    with pytest.raises(zeep.exceptions.Fault) as info:
        auth(client, CardNumber=pan + "!", TxnId=_uid("T"))
    assert pan not in info.value.message and "CardNumber" in info.value.message


def _envelope(inner: str) -> bytes:
    return (f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body>{inner}'
            f"</soap:Body></soap:Envelope>").encode()


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)) * 10)
                     for i in range(1, 10)).replace(b"&lol0;", b"&lol;")
          + b"]>" + _envelope("&lol9;"))
XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       + _envelope(f'<a:GetBalanceRequest xmlns:a="{CORE_NS}"><a:AccountId>&xxe;</a:AccountId>'
                   f"<a:Currency>USD</a:Currency></a:GetBalanceRequest>"))
DTD = b'<?xml version="1.0"?><!DOCTYPE soap:Envelope SYSTEM "http://example.invalid/x.dtd">' + \
    _envelope("")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<soap:Envelope", "malformed XML"),
        (b"not xml at all", "malformed XML"),
        (DTD, "DTD"),
        (LAUGHS, "DTD"),
        (XXE, "DTD"),
        (b"<a>" + b"x" * (REQUEST_BYTES_MAX + 10) + b"</a>", "over"),
        (_envelope('<x:AuthorizePaymentRequest xmlns:x="urn:other"/>'), "unknown operation"),
        (_envelope(f'<x:Refund xmlns:x="{CORE_NS}"/>'), "unknown operation"),
        (_envelope(f'<x:GetBalanceRequest xmlns:x="{CORE_NS}"><x:AccountId>MERCHANT_PAYABLE:M1'
                   "</x:AccountId></x:GetBalanceRequest>"), "Currency"),
        (_envelope(f'<x:GetBalanceRequest xmlns:x="{CORE_NS}"><x:AccountId>MERCHANT_PAYABLE:M1'
                   "</x:AccountId><x:Currency>XXX</x:Currency></x:GetBalanceRequest>"),
         "unknown currency"),
        (b"<a>no envelope</a>", "not a SOAP 1.1 Envelope"),
    ],
)
def test_bad_bodies_get_client_fault_and_server_keeps_answering(legacy_core, client, body,
                                                               needle) -> None:
    """Malformed, unsafe, oversized or wrong requests get a 500 soap:Client; then a call works."""
    response = raw_post(legacy_core, body)
    assert response.status_code == 500
    code, message = fault_of(response)
    assert code == "soap:Client" and needle in message
    assert len(response.content) < 4096
    assert auth(client).ResponseCode == "00"


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"Amount": "12.50"}, "Amount"),
        ({"Amount": "-5"}, "Amount"),
        ({"Amount": "0"}, "Amount"),
        ({"Currency": "XXX"}, "unknown currency"),
        ({"CardBin": "4000"}, "CardBin"),
        ({"Channel": "fax"}, "Channel"),
        ({"RequestTime": "2026-11-22T12:00:00"}, "time zone"),
        ({"RequestTime": "yesterday"}, "RequestTime"),
        ({"Mcc": ""}, "Mcc"),
    ],
)
def test_invalid_elements_are_named_in_the_fault(legacy_core, changes, needle) -> None:
    """A bad or missing element of AuthorizePayment is a soap:Client fault naming it."""
    fields = dict(TxnId=_uid("T"), CardNumber="tok_x", CardBin="400000", Amount="100",
                  Currency="USD", MerchantId="M1", Mcc="5999", MerchantCountry="US",
                  Channel="ecom", CustomerId="C1", RequestTime="2026-11-22T12:00:00Z")
    fields.update(changes)
    inner = "".join(f"<x:{k}>{v}</x:{k}>" for k, v in fields.items())
    body = _envelope(f'<x:AuthorizePaymentRequest xmlns:x="{CORE_NS}">{inner}'
                     "</x:AuthorizePaymentRequest>")
    code, message = fault_of(raw_post(legacy_core, body))
    assert code == "soap:Client" and needle in message


def test_wsdl_served_with_actual_address(legacy_core) -> None:
    """GET /soap?wsdl and /wsdl serve the WSDL whose soap:address is the server's URL."""
    for url in (legacy_core.wsdl_url, legacy_core.url.replace("/soap", "/wsdl")):
        response = requests.get(url, timeout=HTTP_TIMEOUT_S)
        assert response.status_code == 200
        root = etree.fromstring(response.content)
        address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert address.get("location") == legacy_core.url
    missing = requests.get(legacy_core.url.replace("/soap", "/nothing"), timeout=HTTP_TIMEOUT_S)
    assert missing.status_code == 404


def test_utf16_laughs_refused_too(legacy_core, client) -> None:
    """A billion-laughs body encoded as UTF-16 (hiding the DOCTYPE bytes) is still refused."""
    text = LAUGHS.decode().replace('version="1.0"?>', 'version="1.0" encoding="UTF-16"?>')
    response = raw_post(legacy_core, text.encode("utf-16"))
    code, message = fault_of(response)
    assert response.status_code == 500 and code == "soap:Client" and "refused" in message
    assert auth(client).ResponseCode == "00"


def test_concurrent_repeats_of_one_txn_count_once(legacy_core) -> None:
    """Eight threads sending one TxnId at once get one outcome, and the balance counts it once."""
    same = dict(TxnId=_uid("T"), MerchantId=_uid("M"), CardNumber=_uid("tok_"), Amount=700)
    clients = [zeep.Client(legacy_core.wsdl_url) for _ in range(CONCURRENT_CLIENTS)]
    with ThreadPoolExecutor(max_workers=CONCURRENT_CLIENTS) as pool:
        outs = list(pool.map(lambda c: auth(c, **same), clients))
    assert {(o.ResponseCode, o.FeeAmount) for o in outs} == {("00", 38)}
    assert len({o.TraceId for o in outs}) == CONCURRENT_CLIENTS
    bal = clients[0].service.GetBalance(AccountId=f"MERCHANT_PAYABLE:{same['MerchantId']}",
                                        Currency="USD")
    assert bal.Balance == 700


def test_cli_serves_and_refuses_remote_host() -> None:
    """`cutover sim legacy --port 0` prints a working WSDL URL; a non-loopback host exits 2."""
    exe = str(Path(sys.executable).with_name("cutover"))
    refused = subprocess.run([exe, "sim", "legacy", "--host", "0.0.0.0"], capture_output=True,
                             text=True, timeout=HTTP_TIMEOUT_S * 3)
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    proc = subprocess.Popen([exe, "sim", "legacy", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wsdl_url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/soap\?wsdl", wsdl_url)
        out = auth(zeep.Client(wsdl_url))
        assert (out.ResponseCode, out.FeeAmount) == ("00", 43)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=HTTP_TIMEOUT_S) == 0


def test_body_without_length_and_bad_account_are_faults(legacy_core, client) -> None:
    """A chunked body (no Content-Length) and a malformed AccountId get soap:Client faults."""
    chunked = requests.post(legacy_core.url, data=iter([b"<a/>"]), timeout=HTTP_TIMEOUT_S)
    assert chunked.status_code == 500 and "body missing" in fault_of(chunked)[1]
    with pytest.raises(zeep.exceptions.Fault) as info:
        client.service.GetBalance(AccountId="CASH:M1", Currency="USD")
    assert info.value.code == "soap:Client" and "MERCHANT_PAYABLE" in info.value.message
