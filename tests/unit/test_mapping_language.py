"""The mapping language (issue 15): every key checked on load, value maps both ways, several
elements, constants, generated ids, major units by exponent, codes from several elements."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cutover.adapters.mapping import build_request, load_mapping, read_request, read_response
from cutover.adapters.valuemaps import resolve_map
from cutover.adapters.wsdl_tree import (
    check_mapping_paths,
    find_operation,
    open_wsdl,
    operation_trees,
    skeleton,
)
from cutover.domain import CURRENCY_EXPONENTS
from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

ROOT = Path(__file__).resolve().parents[2]
AWKWARD = ROOT / "cutover" / "fixtures" / "mappings" / "awkward_core.toml"
WSDL = ROOT / "cutover" / "fixtures" / "wsdl" / "awkward_core.wsdl"
TXN = {"txn_id": "T-1", "ts": datetime(2026, 10, 1, 12, 0, 5, tzinfo=UTC),
       "amount_minor": 150_000, "currency": "JPY", "channel": "moto", "mcc": "5411",
       "merchant_id": "M1", "merchant_country": "JP", "customer_id": "C1",
       "card_token": "tok_1", "card_bin": "400123"}


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    """The awkward mapping with one piece of text replaced, next to a copy of its WSDL path."""
    text = AWKWARD.read_text()
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new).replace('"../wsdl/awkward_core.wsdl"',
                                                   f'"{WSDL}"'))
    return path


def test_request_uses_maps_several_elements_constants_and_generated_ids():
    """USD/JP/moto go out as 392/392/M, txn_id fills two elements, MsgId is the same per txn."""
    mapping = load_mapping(AWKWARD)
    request = build_request(mapping, TXN)
    assert request["Payment"]["CcyNum"] == "392" and request["Merchant"]["CountryNum"] == "392"
    assert request["Payment"]["Channel"] == "M"
    assert request["Payment"]["TxnRef"] == request["Header"]["CorrelationRef"] == "T-1"
    assert request["Header"]["Version"] == "3.1"
    assert str(request["Payment"]["Amount"]) == "150000"  # JPY has no decimals
    again = build_request(mapping, TXN)
    assert request["Header"]["MsgId"] == again["Header"]["MsgId"]
    assert request["Header"]["MsgId"].startswith("AWK-")
    assert build_request(mapping, TXN | {"txn_id": "T-2"})["Header"]["MsgId"] != \
        request["Header"]["MsgId"]


def test_read_request_inverts_build_request():
    """A request read back (as a cassette import does) gives the canonical fields again."""
    mapping = load_mapping(AWKWARD)
    nested = build_request(mapping, TXN)
    nested["Payment"]["Amount"] = str(nested["Payment"]["Amount"])
    back = read_request(mapping, nested)
    assert back == {k: TXN[k] for k in back}
    assert set(back) == set(TXN)


def test_response_code_from_two_elements_and_major_units():
    """Status D + code 051 is the code "D-051"; a JPY fee of "12" is 12 minor units."""
    mapping = load_mapping(AWKWARD)
    reply = {"Header": {"MsgId": "x"}, "Outcome": {"Status": "D", "Code": "051", "Fee": "12"}}
    out = read_response(mapping, reply, "JPY")
    assert out["response_code"] == "D-051" and out["fee_minor"] == 12 and out["route"] is None
    with pytest.raises(ValueError, match="Outcome/Code is missing"):
        read_response(mapping, {"Outcome": {"Status": "A", "Fee": "1"}}, "USD")


def test_value_outside_a_map_names_the_allowed_values():
    """A channel the map does not hold is refused with the values it holds."""
    mapping = load_mapping(AWKWARD)
    with pytest.raises(ValueError, match="allowed: ecom, moto, pos, recurring"):
        build_request(mapping, TXN | {"channel": "fax"})


@pytest.mark.parametrize(("old", "new", "needles"), [
    ("idempotent = true", "idempotent = true\nretries = 3",
     ["unknown key 'retries'", "allowed:", "idempotent", "response_code"]),
    ("idempotent = true", 'idempotent = "yes"', ["idempotent", "bool"]),
    ('mcc = { element = "Payment/Mcc" }', 'mcc = { element = "Payment/Mcc", format = "cents" }',
     ["request.mcc", "format", "decimal_major"]),
    ('mcc = { element = "Payment/Mcc" }', 'mcc_code = { element = "Payment/Mcc" }',
     ["request.mcc_code", "unknown canonical field", "allowed:", "merchant_id"]),
    ('map = "channel"', 'map = "channels"', ["request.channel", "'channels'", "currency"]),
    ('country = "iso3166_numeric"', 'country = "iso3166"',
     ["maps.country", "iso3166_numeric", "iso4217_numeric"]),
    ('M = "moto"', 'M = "ecom"', ["value map 'channel'", "one to one"]),
    ('[codes."A-000"]', '[codes."' + "A" * 33 + '"]', ["1 to 32"]),
])
def test_a_bad_mapping_names_file_key_and_allowed_values(tmp_path, old, new, needles):
    """Unknown key, wrong type, unknown field, unknown map, ambiguous map: one clear error."""
    path = _variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_a_path_not_in_the_wsdl_is_refused_with_the_paths_that_exist(tmp_path):
    """Payment/Ccy instead of Payment/CcyNum: refused naming the key and the allowed paths."""
    path = _variant(tmp_path, '"Payment/CcyNum"', '"Payment/Ccy"')
    mapping = load_mapping(path)
    with pytest.raises(ConfigError) as info:
        check_mapping_paths(mapping, open_wsdl(str(WSDL)), str(WSDL))
    message = str(info.value)
    assert "request.currency" in message and "'Payment/Ccy'" in message
    assert "Payment/CcyNum" in message and str(path) in message


def test_sequence_and_uuid4_generated_values(tmp_path):
    """A sequence counts from its start; uuid4 differs on every call."""
    path = _variant(tmp_path, '"Header/MsgId" = { kind = "uuid5_txn_id", template = "AWK-{value}" }',
                    '"Header/MsgId" = { kind = "sequence", start = 7, template = "S{value}" }')
    mapping = load_mapping(path)
    ids = [build_request(mapping, TXN)["Header"]["MsgId"] for _ in range(3)]
    assert ids == ["S7", "S8", "S9"]
    path = _variant(tmp_path, '"Header/MsgId" = { kind = "uuid5_txn_id", template = "AWK-{value}" }',
                    '"Header/MsgId" = { kind = "uuid4" }')
    mapping = load_mapping(path)
    assert build_request(mapping, TXN)["Header"]["MsgId"] != build_request(
        mapping, TXN)["Header"]["MsgId"]


def test_shipped_iso_tables_cover_every_known_currency_one_to_one():
    """Every currency cutover knows has its ISO 4217 numeric code; both tables are 1:1."""
    currencies = resolve_map("c", "iso4217_numeric", fixtures_dir(), "test")
    countries = resolve_map("k", "iso3166_numeric", fixtures_dir(), "test")
    assert set(currencies.to_foreign) >= set(CURRENCY_EXPONENTS)
    assert currencies.foreign("USD") == "840" and currencies.canonical("978") == "EUR"
    assert countries.foreign("DE") == "276" and countries.canonical("392") == "JP"
    assert all(len(k) == 3 and k.isdigit() for k in (*currencies.to_canonical,
                                                    *countries.to_canonical))


def test_existing_mappings_still_load():
    """The two mappings from before the new language load unchanged and match their WSDLs."""
    for name in ("legacy_auth", "other_core"):
        mapping = load_mapping(ROOT / "cutover" / "fixtures" / "mappings" / f"{name}.toml")
        check_mapping_paths(mapping, open_wsdl(mapping.wsdl), mapping.wsdl)
        assert "txn_id" in {f.canonical for f in mapping.request}


def test_skeleton_of_other_core_loads(tmp_path):
    """The starter mapping of a flat WSDL loads, with txn_id on a text element."""
    wsdl = ROOT / "cutover" / "fixtures" / "wsdl" / "other_core.wsdl"
    client = open_wsdl(str(wsdl))
    tree = find_operation(operation_trees(client), "SubmitAuthorisation", str(wsdl))
    path = tmp_path / "starter.toml"
    path.write_text(skeleton(tree, str(wsdl), tree.response_namespace))
    mapping = load_mapping(path)
    check_mapping_paths(mapping, client, str(wsdl))
    assert mapping.namespace == "urn:othercore:payments:v2"
    assert mapping.element_of("txn_id") == "Reference"


def test_a_map_file_is_shared_between_mappings(tmp_path):
    """maps.channel names a TOML file next to the mapping: the same file serves any mapping."""
    (tmp_path / "channels.toml").write_text(
        'description = "our letters"\n[values]\nE = "ecom"\nP = "pos"\nM = "moto"\nR = "recurring"\n')
    path = _variant(tmp_path, 'channel = { E = "ecom", P = "pos", M = "moto", R = "recurring" }',
                    'channel = "channels.toml"')
    assert build_request(load_mapping(path), TXN)["Payment"]["Channel"] == "M"
    (tmp_path / "channels.toml").write_text('[values]\nE = "ecom"\nextra = 1\n')
    with pytest.raises(ConfigError, match="channels.toml"):
        load_mapping(path)
