"""Outbound content rules as properties: a phone number is caught however it is written, and
the times, dates, prices and counts of an ordinary trip text are never taken for one."""

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from tripcomms.safeguarding.content import check_outbound, phone_numbers_in

OFFICE = "+441234567890"


def rules(body: str, staff: set[str] = frozenset()):
    return check_outbound(
        body,
        staff_numbers=set(staff),
        school_sims=set(),
        allowed_numbers={OFFICE},
        email_domain="school.example",
    )


def _groups(nsn: str, *sizes: int) -> list[str]:
    parts, start = [], 0
    for size in sizes:
        parts.append(nsn[start : start + size])
        start += size
    return parts


# Twenty ways people write one UK mobile; ``n`` is its ten national digits, "7400123456".
WAYS = [
    lambda n: "+44" + n,
    lambda n: "0" + n,
    lambda n: "0" + n[:4] + " " + n[4:],
    lambda n: "0" + " ".join(_groups(n, 4, 3, 3)),
    lambda n: "0" + " ".join(_groups(n, 3, 3, 4)),
    lambda n: "(0" + n[:4] + ") " + n[4:],
    lambda n: "+44 " + " ".join(_groups(n, 4, 3, 3)),
    lambda n: "+44 (0)" + n[:4] + " " + n[4:],
    lambda n: "0044 " + n[:4] + " " + n[4:],
    lambda n: "0044" + n,
    lambda n: "0" + "-".join(_groups(n, 4, 3, 3)),
    lambda n: "0" + ".".join(_groups(n, 4, 3, 3)),
    lambda n: " ".join("0" + n),
    lambda n: "+44-" + n[:4] + "-" + n[4:],
    lambda n: "44" + n,
    lambda n: "0" + n[:4] + "/" + n[4:],
    lambda n: "0" + n[:4] + "\u00a0" + n[4:],
    lambda n: "0" + n[:4] + "\u2013" + n[4:],
    lambda n: "0" + " ".join(_groups(n, 4, 2, 2, 2)),
    lambda n: "tel:+44" + n,
]


def uk_mobiles():
    """Valid UK mobile numbers (E.164), outside the drama range that fails validation."""
    return (
        st.tuples(st.integers(4, 9), st.integers(0, 99_999_999))
        .map(lambda p: f"+447{p[0]}{p[1]:08d}")
        .filter(lambda e: phonenumbers.is_valid_number(phonenumbers.parse(e, None)))
    )


ORDINARY = st.sampled_from(
    [
        "Back at 15:30",
        "back at 3:30pm",
        "back at 15.30",
        "£12.50",
        "£1,250.00 in total",
        "£5 each",
        "year 6",
        "Year 5 and Year 6",
        "coach 2 of 3",
        "coaches 1, 2 and 3",
        "14/03/2026",
        "14/3/26",
        "14.03.2026",
        "2026-03-14",
        "on 14/03/2026 at 09:30",
        "30 children",
        "group 4",
        "room 12",
        "gate 7",
        "ages 9-11",
        "12 of 30",
        "1 in 10",
        "platform 9",
        "lunch at 12:15, tea at 16:00",
        "Sat 14 Mar",
        "100%",
        "2 hours 15 minutes",
        "3rd stop",
    ]
)

WORDS = st.sampled_from(["", "Hello.", "Please call", "Ring", "Text me on", "Thanks!", "ok"])


@settings(max_examples=300, deadline=None)
@given(number=uk_mobiles(), way=st.integers(0, len(WAYS) - 1), before=WORDS, after=ORDINARY)
def test_a_number_written_any_of_twenty_ways_is_caught(number, way, before, after):
    written = WAYS[way](number[3:])
    body = f"{before} {written}. {after}".strip()
    assert number in phone_numbers_in(body), (way, body)
    violation = rules(body, staff={number})
    assert violation is not None and violation.rule == "staff_number", body
    # Not a staff number, still a number that is not the school's: blocked.
    assert rules(body).rule == "phone_number"


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(ORDINARY, min_size=1, max_size=6), joiner=st.sampled_from([" ", ", ", ". "]))
def test_times_dates_prices_and_counts_are_not_numbers(parts, joiner):
    body = joiner.join(parts)
    assert phone_numbers_in(body) == set(), body
    assert rules(body) is None, body


def test_the_twenty_ways_are_twenty_different_spellings():
    n = "7400123456"
    assert len({way(n) for way in WAYS}) == 20


def test_the_school_office_number_may_be_given():
    assert rules("Call the office on 01234 567890") is None
