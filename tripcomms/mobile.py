"""Phone numbers: parsed with ``phonenumbers`` (default region GB), stored as E.164."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from tripcomms.errors import InvalidInput

MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalise_number(text: str, *, region: str = "GB", mobile: bool = True) -> str:
    """Return ``text`` as an E.164 number.

    Raises InvalidInput with a message a person can act on when the text is not a valid
    number, or (with ``mobile``) not a mobile number.
    """
    shown = (text or "").strip()
    if not shown:
        raise InvalidInput("a phone number is required")
    if len(shown) > 40:
        raise InvalidInput("that is too long to be a phone number")
    try:
        parsed = phonenumbers.parse(shown, region)
    except NumberParseException:
        raise InvalidInput(f"{shown!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"{shown!r} is not a valid phone number")
    if mobile and phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        raise InvalidInput(f"{shown!r} is not a mobile number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def display_number(e164: str) -> str:
    """A number as people write it: national form for UK numbers, international otherwise."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except NumberParseException:
        return e164
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, fmt)


def mask_number(e164: str | None) -> str:
    """Only the last three digits, for logs and for people who do not need the number."""
    if not e164:
        return ""
    return "•••" + e164[-3:]
