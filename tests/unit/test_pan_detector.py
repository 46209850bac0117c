"""The one PAN detector: formatted card numbers (spaces, dashes, dots) are found, masked and
tokenised wherever they sit; ids, dates and tokens are not mistaken for them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.adapters.cassette import request_hook
from cutover.adapters.tokenize import tokenize_pan, tokenize_text
from cutover.pan import find_pans, has_pan, luhn_ok, mask_pans, mask_value

KEY = b"pan-property-key"
#: How card numbers are printed: (digits, groups).
FORMATS = ((16, (4, 4, 4, 4)), (15, (4, 6, 5)), (14, (4, 6, 4)), (19, (4, 4, 4, 4, 3)),
           (13, (4, 4, 4, 1)), (16, (16,)), (13, (13,)), (19, (19,)))


def _with_check_digit(body: str) -> str:
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


@st.composite
def formatted_pans(draw) -> tuple[str, str]:
    """(digits, the card number as written): Luhn-valid, in a printed grouping, with one
    separator kind (space, dash, dot, or two spaces) between groups."""
    length, groups = draw(st.sampled_from(FORMATS))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    digits = _with_check_digit(body)
    separator = draw(st.sampled_from([" ", "-", ".", "  "]))
    pieces, at = [], 0
    for size in groups:
        pieces.append(digits[at:at + size])
        at += size
    return digits, separator.join(pieces)


#: Text around a card number: anything but digits and separators touching it.
SURROUND = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="0123456789 .-"),
                   max_size=20)


@settings(max_examples=300, deadline=None)
@given(formatted_pans(), SURROUND, SURROUND)
def test_formatted_pan_is_found_masked_and_tokenised(pan, before, after):
    """Any printed form of a Luhn-valid number inside text: found with its digits; masking
    and tokenising leave no card number behind; the token is the plain number's token."""
    digits, written = pan
    text = f"{before}{written}{after}"
    assert find_pans(text) == [digits]
    assert not has_pan(mask_pans(text)) and digits[-4:] in mask_pans(text)
    tokenised = tokenize_text(text, KEY)
    assert not has_pan(tokenised) and tokenize_pan(digits, KEY) in tokenised
    assert tokenize_pan(written, KEY) == tokenize_pan(digits, KEY)


@settings(max_examples=200, deadline=None)
@given(formatted_pans())
def test_pan_in_any_cassette_field_is_tokenised_before_writing(pan):
    """record's hook replaces a formatted PAN in the body, the URI and a header."""
    digits, written = pan

    class Request:
        body = f"<CustomerId>{written}</CustomerId>".encode()
        uri = f"http://core/soap?ref={written}"
        headers = {"X-Ref": written, "Authorization": "secret"}

    request = request_hook(KEY)(Request())
    assert not has_pan(request.body.decode()) and not has_pan(request.uri)
    assert not has_pan(request.headers["X-Ref"]) and "Authorization" not in request.headers


@settings(max_examples=200, deadline=None)
@given(formatted_pans())
def test_mask_value_masks_nested_json(pan):
    """A report-like nested dict keeps no card number in any string or number."""
    digits, written = pan
    masked = mask_value({"segments": [{"value": written}], "n": int(digits)})
    assert not has_pan(str(masked))


def test_ids_dates_and_tokens_are_not_card_numbers():
    """Simulator ids, timestamps, dates with dots and tokens are never read as PANs."""
    texts = ["T20260921-0000180", "2026-09-28 12:00:00", "28.09.2026 12.34.56",
             tokenize_pan("4111111111111111", KEY), "1 2 3 4 5 6 7 8 9 0 1 2 3 4",
             "4111111111111111 is not 41111111111111112"]
    assert [find_pans(t) for t in texts[:5]] == [[]] * 5
    assert find_pans(texts[5]) == ["4111111111111111"]


def test_longer_run_is_searched_at_group_boundaries():
    """A card number followed by another group (a year) is still found; too long alone is not."""
    assert find_pans("4111 1111 1111 1111 2026") == ["4111111111111111"]
    assert find_pans("41111111111111111111") == []
