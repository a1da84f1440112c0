"""Outbound content rules: what may never be texted to a parent (policy 22d, 50).

A body is refused when it holds a phone number that is not the school's (a staff member's
personal number or a school SIM above all), or an email address outside the school's domain.
Numbers are found however they are written: spaces, dashes, dots, slashes and brackets between
the digits, with +44, 0044 or 0 in front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers

# What people put between the digits of a phone number: spaces (a no-break or thin one when
# pasted from a web page or document), brackets, dots, slashes and any kind of dash.
_SEPARATOR = "[ \t().\\-/\u00a0\u2009\u202f\u2010-\u2015]"
# A run of at least nine digits with separators between them, as people write numbers.
_DIGIT_RUN = re.compile(r"\+?\d(?:" + _SEPARATOR + r"{0,3}\d){8,}")
# Dates and clock times are removed first so that "14.03.2026 15.30" is never a number.
_DATE_OR_TIME = re.compile(
    r"\b(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|\d{1,2}[:.]\d{2}(?:[ap]m)?)\b",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+\-']+@([\w\-]+(?:\.[\w\-]+)+)", re.UNICODE)


@dataclass(frozen=True)
class Violation:
    rule: str  # "staff_number", "school_sim", "phone_number", "email"
    reason: str  # for the author: "a staff member's personal number (policy 50)"


def _candidates(digits: str) -> Iterable[str]:
    """Every E.164 number that a slice of ``digits`` could be written as."""
    for start in range(len(digits)):
        for length in (9, 10, 11, 12, 13, 14):
            piece = digits[start : start + length]
            if len(piece) < length:
                break
            if piece.startswith("0044"):
                yield "+44" + piece[4:]
            elif piece.startswith("44"):
                yield "+" + piece
            elif piece.startswith("0"):
                yield "+44" + piece[1:]
            elif piece[0] != "0" and start == 0:
                yield "+" + piece  # an international number without its 00


def phone_numbers_in(text: str) -> set[str]:
    """The valid phone numbers written anywhere in ``text``, as E.164."""
    cleaned = _DATE_OR_TIME.sub(" ", text)
    found: set[str] = set()
    for run in _DIGIT_RUN.findall(cleaned):
        digits = re.sub(r"\D", "", run)
        for candidate in _candidates(digits):
            try:
                parsed = phonenumbers.parse(candidate, None)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(parsed):
                found.add(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return found


def check_outbound(
    body: str,
    *,
    staff_numbers: set[str],
    school_sims: set[str],
    allowed_numbers: set[str],
    email_domain: str,
) -> Violation | None:
    """The first rule ``body`` breaks, or None when it may be sent to a parent."""
    numbers = phone_numbers_in(body)
    if numbers & staff_numbers:
        return Violation("staff_number", "a staff member's personal number (policy 50)")
    if numbers & school_sims:
        return Violation("school_sim", "a school phone's own number (policy 45, 50)")
    if numbers - allowed_numbers:
        return Violation(
            "phone_number",
            "a phone number that is not the school office or this trip's number (policy 50)",
        )
    domain = email_domain.lower().lstrip("@")
    for match in _EMAIL.finditer(body):
        if not domain or match.group(1).lower() != domain:
            return Violation("email", "an email address outside the school's own (policy 22d, 50)")
    return None
