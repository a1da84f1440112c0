"""Every form in the app, sent with generated values by someone allowed to send it.

Each POST route (found in the app's url_map: a new one fails ``test_every_post_route_is_fuzzed``
until it has a case here or a reasoned exclusion) and each search form is sent values made of
plausible ones and rubbish: odd unicode, NUL, bytes that are not UTF-8, huge strings, numbers
too big for any column, dates that do not exist or happen twice, missing and repeated fields,
files of random bytes. CSRF is off for the fuzz. Whatever comes, the answer is never a 500.
"""

from __future__ import annotations

import io
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.support import examples
from tests.fuzz.values import Long, huge, numbers_oddly, odd_text, value
from tests.fuzz.world import HEAD_OWN, LEADER_OWN, LOANED_PHONE, TRIP_NUMBER, build_world
from tests.fuzz.world import close_world as close
from tests.helpers import PASSWORD
from tests.trips.rosters import HEADER, mobile
from tripcomms.forms import Form
from tripcomms.localtime import LONDON
from tripcomms.types import utcnow

SETTINGS = settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def world(tmp_path_factory, migrated_database):
    w = build_world(tmp_path_factory, migrated_database)
    yield w
    close(w)


# --- Values ----------------------------------------------------------------------------------

Values = st.SearchStrategy


@dataclass(frozen=True)
class Field:
    """A field's values: ``good`` ones a person might send, ``bad`` ones nobody should. An
    example sends all good values, a few bad ones among good, or all bad, so that the fuzz
    reaches what happens after the form validates as well as its refusals."""

    good: Values
    bad: Values
    many: bool = False  # checkboxes: the field repeated, once per value ticked


def text(*plausible: str, long: int = 20_000) -> Field:
    return Field(st.sampled_from(plausible or ("Coach late",)), st.one_of(odd_text, huge(1, long)))


def _near(hours: int, fmt: str) -> str:
    return (utcnow().astimezone(LONDON) + timedelta(hours=hours)).strftime(fmt)


ODD_TIMES = [
    "2026-03-29T01:30",  # does not exist in London (clocks go forward)
    "2026-10-25T01:30",  # happens twice in London
    "2026-02-30T10:00",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "1970-01-01T00:00",
    "2026-13-01T10:00",
    "2026-06-01T24:00",
    "2026-06-01T10:00:59.999999",
    "2026-06-01T10:00Z",
    "2026-06-01T10:00+14:00",
    "+275760-09-13T00:00",
    "now",
    "",
]
# Wall-clock times as a browser's datetime-local sends them, and many it never would.
local_times = Field(
    st.builds(_near, st.integers(-48, 24 * 30), st.sampled_from(["%Y-%m-%dT%H:%M"])),
    st.one_of(
        st.builds(
            _near,
            st.integers(-24 * 4000, 24 * 4000),
            st.sampled_from(["%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d", "%H:%M"]),
        ),
        st.sampled_from(ODD_TIMES),
        odd_text,
    ),
)
dates = Field(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)).map(str),
    st.one_of(
        st.dates().map(str),
        st.sampled_from(
            ["2026-02-30", "24/11/2026", "0000-01-01", "9999-12-31", "2026-1-1", "20261124"]
        ),
        odd_text,
    ),
)
NUMBERS = st.one_of(
    st.sampled_from(["0", "-1", "2147483647", "2147483648", "9223372036854775808", "1" * 30]),
    numbers_oddly,
)
integers = Field(st.sampled_from(["1", "2", "3"]), NUMBERS)
phone_numbers = Field(
    st.one_of(
        st.builds(lambda n: mobile(n), st.integers(200, 999)),
        st.sampled_from(["+447400123499", "07400 123 498", "+44 7400 123497"]),
    ),
    st.one_of(
        st.sampled_from(
            [
                LOANED_PHONE,  # a school phone
                LEADER_OWN,  # a staff member's own
                HEAD_OWN,
                TRIP_NUMBER,
                "+1 415 555 0100",
                "07700 900123",  # Ofcom's drama range: not a valid number
                "020 7946 0000",  # a landline
                "0" * 40,
            ]
        ),
        odd_text,
        NUMBERS,
    ),
)
emails = Field(
    st.builds("new{}@school.test".format, st.integers(0, 10**6)),
    st.one_of(
        st.emails().map(str),
        st.sampled_from(["admin1@school.test", "a@b", "@", "x" * 300 + "@school.test"]),
        odd_text,
    ),
)


form_keys = Field(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=16, max_size=64), value
)


def mixed(spec: Field) -> Values:
    """Good values mostly, bad ones too: for a value in an address."""
    return st.one_of(spec.good, spec.good, spec.bad)


def choice(*good: str, many: bool = False) -> Field:
    return Field(st.sampled_from(good), value, many)


def ids(w, *names: str, many: bool = False) -> Field:
    """Ids of the world's rows (as a form sends them), or rubbish."""
    known = sorted({str(i) for name in names for i in w.ids[name]})
    return Field(st.sampled_from(known), NUMBERS, many)


def csv_file(header: str, row: Values) -> Values:
    """A CSV file: the header (or not) and generated rows, in one of the ways a spreadsheet
    might save it; or just bytes."""

    def build(with_header, rows, newline, encoding):
        lines = ([header] if with_header else []) + rows
        data = newline.join(lines) + newline
        if encoding == "utf-16":
            return data.encode("utf-16")
        if encoding == "utf-8-sig":
            return data.encode("utf-8-sig")
        return data.encode("utf-8", "surrogatepass")

    return st.one_of(
        st.builds(
            build,
            st.booleans(),
            st.lists(row, max_size=30),
            st.sampled_from(["\n", "\r\n", "\r"]),
            st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
        ),
        st.binary(max_size=4000),
        st.builds(lambda n: (header + "\n" + "a,b,c,d,e,f\n" * n).encode(), st.integers(0, 20_000)),
        st.just(b""),
    )


roster_rows = st.builds(
    ",".join,
    st.lists(
        st.one_of(
            st.sampled_from(["Sam", "Jones", "Year 6", "Mary Jones", "mother", "yes", "no"]),
            st.sampled_from([mobile(n) for n in range(1, 9)]),
            odd_text.map(lambda t: t.replace(",", " ")),
            st.just('"quoted, with comma"'),
        ),
        min_size=0,
        max_size=10,
    ),
)
phone_rows = st.builds(
    ",".join,
    st.lists(
        st.one_of(
            st.builds("Phone {}".format, st.integers(0, 50)),
            st.sampled_from([mobile(n) for n in range(100, 110)] + [LOANED_PHONE]),
            odd_text.map(lambda t: t.replace(",", " ")),
        ),
        max_size=5,
    ),
)


# --- Cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    """How to fuzz one route: who sends it, its address, and its fields' values."""

    role: str
    url: str | Callable[[object], Values]  # a path, or world -> strategy of the address
    fields: Callable[[object], dict[str, Field]] | None = None  # None: no fields at all
    files: Callable[[object], dict[str, Values]] = lambda w: {}
    also: frozenset[int] = field(default_factory=frozenset)  # answers >= 500 that are right

    def fields_of(self, w) -> dict[str, Field]:
        return self.fields(w) if self.fields is not None else {}


def at(template: str, **names: str) -> Callable[[object], Values]:
    """An address with the world's ids (or, sometimes, ids of nothing) filled in."""

    def build(w) -> Values:
        parts = {
            key: st.one_of(
                st.sampled_from(w.ids[name]),
                st.sampled_from(w.ids[name]),
                st.sampled_from(w.ids[name]),
                st.integers(0, 2**31 - 1),
            )
            for key, name in names.items()
        }
        return st.fixed_dictionaries(parts).map(lambda d: template.format(**d))

    return build


trip_fields = lambda w: {  # noqa: E731
    "title": text("Science Museum", "Y6 residential", long=500),
    "destination": text("London", long=500),
    "starts_at": local_times,
    "ends_at": local_times,
    "leader_id": ids(w, "leader_ids"),
    "staff_ids": ids(w, "leader_ids", "user", many=True),
    "notes": text("Packed lunch", long=10_000),
}
user_fields = lambda w: {  # noqa: E731
    "name": text("Nia New", long=300),
    "email": emails,
    "roles": choice("admin", "office", "head", "dsl", "auditor", "leader", many=True),
    "personal_numbers": Field(
        st.lists(phone_numbers.good, max_size=3).map("\n".join),
        st.one_of(
            phone_numbers.bad,
            st.lists(st.one_of(phone_numbers.good, phone_numbers.bad), max_size=5).map("\n".join),
            huge(1, 2000),
        ),
    ),
}
phone_fields = lambda w: {  # noqa: E731
    "label": Field(
        st.builds("Trip phone {}".format, st.integers(4, 10**6)),
        st.one_of(st.just("Trip phone 1"), text(long=300).bad),
    ),
    "number": phone_numbers,
    "serial": text("IMEI 3569", long=300),
    "notes": text("Cracked case", long=5000),
}

POST_CASES: dict[str, Case] = {
    # --- auth
    "auth.login": Case(
        "anonymous",
        lambda w: st.sampled_from(["/login", "/login?next=/trips", "/login?next=//evil.test"]),
        lambda w: {"email": emails, "password": text("correct horse battery", long=1000)},
    ),
    "auth.change_password": Case(
        "self",
        "/account/password",
        lambda w: {
            "current": text(PASSWORD, "a wrong password"),
            "password": text("a new password here", "short"),
        },
    ),
    "auth.new_user": Case(
        "admin",
        "/admin/users/new",
        lambda w: {**user_fields(w), "password": text("a first password", long=1000)},
    ),
    "auth.edit_user": Case("admin", at("/admin/users/{u}", u="target_user"), user_fields),
    "auth.reset_password": Case(
        "admin",
        at("/admin/users/{u}/password", u="target_user"),
        lambda w: {"password": text("short", "a long enough password", long=1000)},
    ),
    "auth.set_active": Case(
        "admin",
        at("/admin/users/{u}/active", u="target_user"),
        lambda w: {"active": choice("0", "1")},
    ),
    # --- trips
    "trips.new": Case("office", "/trips/new", trip_fields),
    "trips.edit": Case("office", at("/trips/{t}/edit", t="spare_trip"), trip_fields),
    "trips.cancel": Case(
        "office",
        at("/trips/{t}/cancel", t="spare_trip"),
        lambda w: {"reason": text("Coach broke down", long=2000)},
    ),
    "trips.roster": Case(
        "office",
        at("/trips/{t}/roster", t="spare_trip"),
        files=lambda w: {
            "roster": csv_file(f"{HEADER},image_restricted,no_contact,pupil_mobile", roster_rows)
        },
    ),
    # --- phones
    "phones.new_phone": Case("office", "/phones/new", phone_fields),
    "phones.edit_phone": Case("office", at("/phones/{p}/edit", p="phone"), phone_fields),
    "phones.set_status": Case(
        "office",
        at("/phones/{p}/status", p="phone"),
        lambda w: {
            "status": choice("available", "repair", "lost", "retired", "on_loan"),
            "note": text("Screen cracked", long=2000),
        },
    ),
    "phones.retire": Case(
        "office", at("/phones/{p}/retire", p="phone"), lambda w: {"note": text(long=2000)}
    ),
    "phones.import_phones": Case(
        "office",
        "/phones/import",
        files=lambda w: {"file": csv_file("label,number,serial", phone_rows)},
    ),
    "phones.book": Case(
        "office",
        at("/trips/{t}/phones/book", t="trip"),
        lambda w: {
            "count": integers,
            "phones": ids(w, "all_phones", many=True),
            "starts_at": local_times,
            "ends_at": local_times,
        },
    ),
    "phones.cancel_booking": Case(
        "office", at("/trips/{t}/phones/bookings/{b}/cancel", t="trip", b="booking")
    ),
    "phones.issue": Case(
        "office",
        at("/trips/{t}/phones/issue", t="trip"),
        lambda w: {
            "phone_id": ids(w, "all_phones"),
            "holder_id": ids(w, "user"),
            "due_at": local_times,
            "condition_out": text("Scratched", long=2000),
        },
    ),
    "phones.return_loan": Case(
        "office",
        at("/trips/{t}/phones/loans/{loan}/return", t="trip", loan="loan"),
        lambda w: {
            "condition": choice("ok", "damaged", "lost"),
            "charger_returned": choice("y", "on", "false", ""),
            "texts_deleted": choice("y", "on", "false", ""),
            "notes": text("Fine", long=2000),
        },
    ),
    # --- relay: numbers, review queue
    "relay.number_admin": Case("admin", "/admin/numbers", lambda w: {"number": phone_numbers}),
    "relay.number_sync": Case("admin", "/admin/numbers/sync"),
    "relay.allocate": Case("office", at("/trips/{t}/number", t="spare_trip")),
    "relay.mark_reviewed": Case("office", at("/relay/review/{m}", m="review_message")),
    # --- the inbox, broadcasts, templates
    "inbox.thread": Case(
        "leader",
        lambda w: st.builds(
            "/trips/{}/inbox/{}".format,
            st.sampled_from(w.ids["trip"]),
            st.one_of(st.sampled_from([1, 2, 3]), st.integers(0, 2**31 - 1)),
        ),
        lambda w: {
            "body": text("We are back at 3", "#1 hi", "call 07400 900123", long=5000),
            "request_key": form_keys,
        },
    ),
    "inbox.mark_read": Case(
        "leader",
        lambda w: st.builds("/trips/{}/inbox/{}/read".format, st.just(w.id("trip")), st.just(1)),
        lambda w: {"up_to": ids(w, "message")},
    ),
    "inbox.retry": Case(
        "leader", at("/trips/{t}/messages/{m}/retry", t="trip", m="failed_message")
    ),
    "inbox.broadcast": Case(
        "leader",
        at("/trips/{t}/broadcast", t="trip"),
        lambda w: {"body": text("Back at 3", long=5000), "action": choice("edit", "check")},
    ),
    "inbox.broadcast_send": Case(
        "leader",
        at("/trips/{t}/broadcast/send", t="trip"),
        lambda w: {
            "body": text("Back at 3", "The coach is {minutes} late", long=5000),
            "request_key": form_keys,
        },
    ),
    "inbox.templates": Case(
        "office",
        "/message-templates",
        lambda w: {
            "name": Field(
                st.builds("Back in {} minutes".format, st.integers(0, 10**6)),
                st.one_of(st.just("Coach late"), text(long=500).bad),
            ),
            "body": text("Back in {minutes}", "a {b", "{x}}", long=3000),
        },
    ),
    "inbox.edit_template": Case(
        "office",
        at("/message-templates/{t}", t="template"),
        lambda w: {
            "name": text("Coach late", long=500),
            "body": text("Back in {minutes}", long=3000),
        },
    ),
    "inbox.retire_template": Case("office", at("/message-templates/{t}/retire", t="template")),
    # --- approvals
    "approvals.ask": Case(
        "leader",
        at("/trips/{t}/personal-phone", t="trip"),
        lambda w: {
            "number": ids(w, "staff_number"),
            "reason": text("No school phone left", long=3000),
            "starts_at": local_times,
            "ends_at": local_times,
            "check": choice("Check school phones"),
            "send": choice("Ask the Headteacher"),
        },
    ),
    "approvals.approve": Case(
        "head",
        at("/approvals/{a}/approve", a="approval"),
        lambda w: {"conditions": text("Until the coach is back", long=3000)},
    ),
    "approvals.deny": Case(
        "head",
        at("/approvals/{a}/deny", a="approval"),
        lambda w: {"reason": text("Use Trip phone 3", long=3000)},
    ),
    "approvals.revoke": Case(
        "head",
        at("/approvals/{a}/revoke", a="approval"),
        lambda w: {"reason": text("Phone 3 is back", long=3000)},
    ),
    # --- concerns
    "safeguarding.new_concern": Case(
        "leader",
        lambda w: st.one_of(
            st.builds("/concerns/new?message={}".format, mixed(ids(w, "message"))),
            st.builds(
                "/concerns/new?trip={}&contact={}".format,
                mixed(ids(w, "trip")),
                mixed(ids(w, "contact")),
            ),
        ),
        lambda w: {
            "category": choice("misuse", "bullying", "safeguarding", "picture", "other", ""),
            "description": text("The parent said something worrying", long=20_000),
        },
    ),
    "safeguarding.investigate": Case(
        "dsl",
        at("/concerns/{c}/investigate", c="concern"),
        lambda w: {"investigate-reason": text("Looking into it", long=20_000)},
    ),
    "safeguarding.close": Case(
        "dsl",
        at("/concerns/{c}/close", c="concern"),
        lambda w: {
            "close-reason": text("Spoke to the parent", long=20_000),
            "close-outcome": choice("no_further_action", "referred", "unfounded", ""),
        },
    ),
    "safeguarding.reopen": Case(
        "dsl",
        at("/concerns/{c}/reopen", c="concern"),
        lambda w: {"reopen-reason": text("More came in", long=20_000)},
    ),
    # --- the simulated handsets (demo and tests): a person playing a parent or a leader
    "handsets.phone": Case(
        "office",
        lambda w: st.sampled_from(
            [
                "/sim/phones/contact-1",
                f"/sim/phones/phone-{w.ids['phones'][0]}",
                "/sim/phones/number-447400000099",
                "/sim/phones/staff-1",
                "/sim/phones/number-x",
            ]
        ),
        lambda w: {
            "to": choice(TRIP_NUMBER),
            "body": text("Hello", long=5000),
            "photo": choice("y", ""),
        },
        # The simulated handset posts a real webhook to PUBLIC_BASE_URL, where nothing listens
        # in this test: the page answers 502 and says the app did not answer.
        also=frozenset({502}),
    ),
    "handsets.power": Case(
        "office",
        lambda w: st.sampled_from(["/sim/phones/contact-1", "/sim/phones/number-447400000099"]).map(
            lambda u: u + "/power"
        ),
        lambda w: {"state": choice("off", "on")},
    ),
}

EXCLUDED = {
    # Signing out takes no input but the CSRF token, and would end the client's session.
    "auth.logout": "no fields; tested in tests/auth",
    # Twilio's webhooks: fuzzed with valid signatures in test_webhooks_fuzz.py.
    "twilio.sms": "tests/fuzz/test_webhooks_fuzz.py",
    "twilio.status": "tests/fuzz/test_webhooks_fuzz.py",
    # The simulator's stand-in for Twilio's REST API: called by the twilio library, not by
    # people, behind Basic auth; checked against Twilio's contract in tests/simulator.
    "simulator.create_message": "tests/simulator/test_contract.py",
    "simulator.update_number": "tests/simulator/test_contract.py",
    # The simulator's control routes for long runs: JSON, not a form, behind the same Basic
    # auth; bad bodies are refused with a 400 that changes nothing in test_control.py.
    "simulator.control_faults": "tests/simulator/test_control.py",
    "simulator.control_wait_idle": "tests/simulator/test_control.py",
}

# Search and filter forms: GET, so their fields go in the query string.
GET_CASES: dict[str, Case] = {
    "log": Case(
        "head",
        "/log",
        lambda w: {
            "text": text("coach late", '"quoted" OR -not', "* NEAR(a b)", long=2000),
            "trip": ids(w, "trip", "spare_trip"),
            "date_from": dates,
            "date_to": dates,
            "person": text("Mary", "%", "_", long=500),
            "staff": ids(w, "user"),
            "direction": choice("in", "out", ""),
            "status": choice("received", "failed", "blocked", ""),
            "order": choice("newest", "oldest"),
            "contact": ids(w, "contact"),
            "pupil": integers,
            "page": integers,
        },
    ),
    "log export": Case(
        "auditor",
        "/log/export.csv",
        lambda w: {
            "text": text("coach", long=500),
            "date_from": dates,
            "date_to": dates,
            "trip": ids(w, "trip"),
        },
    ),
    "audit trail": Case(
        "auditor",
        "/audit",
        lambda w: {
            "action": choice("message.received", "concern.reported", ""),
            "actor": ids(w, "user"),
            "date_from": dates,
            "date_to": dates,
            "page": integers,
        },
    ),
    "subject access": Case(
        "dsl", "/subject-access", lambda w: {"q": text("Mary", "07400 000001", long=500)}
    ),
    "approvals report": Case(
        "auditor",
        "/approvals/report",
        lambda w: {"first_day": dates, "last_day": dates},
    ),
    "phones list": Case(
        "office",
        "/phones",
        lambda w: {
            "starts_at": local_times,
            "ends_at": local_times,
            "show": choice("all", ""),
            "sort": choice("label", "-label", "status"),
            "page": integers,
        },
    ),
    "phone calendar": Case(
        "office", "/phones/calendar", lambda w: {"from": dates, "page": integers}
    ),
    "loans": Case(
        "office",
        "/loans",
        lambda w: {"show": choice("open", "overdue", "all"), "page": integers},
    ),
    "trips list": Case(
        "office",
        "/trips/",
        lambda w: {
            "show": choice("upcoming", "past", "all"),
            "sort": choice("title", "-starts"),
            "page": integers,
        },
    ),
    "concerns list": Case(
        "dsl", "/concerns", lambda w: {"show": choice("active", "closed", "all")}
    ),
    "compose with a template": Case(
        "leader",
        lambda w: st.builds(
            "/trips/{}/inbox/1?template={}".format,
            st.just(w.id("trip")),
            mixed(ids(w, "template")),
        ),
    ),
    "text a parent": Case(
        "leader",
        lambda w: st.builds(
            "/trips/{}/inbox/open?code={}".format, st.just(w.id("trip")), mixed(integers)
        ),
    ),
    "simulated phones": Case("office", "/sim/phones", lambda w: {"number": phone_numbers}),
}


# --- Sending ---------------------------------------------------------------------------------


def pairs(fields: dict[str, Field]) -> Values:
    """(name, value) pairs: all good values, some bad among good, or all bad; a field now and
    then missing or twice, and now and then one nobody asked for."""

    @st.composite
    def build(draw):
        mode = draw(st.sampled_from(["good", "some bad", "bad"]))
        out: list[tuple[str, str | bytes]] = []
        for name, spec in fields.items():
            if spec.many:
                times = draw(st.integers(0, 3))
            elif mode == "good":
                times = 1
            else:
                times = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
            for _ in range(times):
                bad = mode == "bad" or (mode == "some bad" and draw(st.integers(0, 3)) == 0)
                out.append((name, draw(spec.bad if bad else spec.good)))
        if mode != "good":
            for _ in range(draw(st.integers(0, 2))):
                out.append((draw(odd_text), draw(value)))
        return out

    return build()


def encode(items) -> bytes:
    return "&".join(
        urllib.parse.quote_plus(name) + "=" + urllib.parse.quote_plus(v) for name, v in items
    ).encode("ascii")


def send(client, method: str, url: str, items, files: dict[str, bytes]):
    if method == "GET":
        return client.get(f"{url}?{encode(items).decode('ascii')}" if items else url)
    if not files:
        return client.post(
            url, data=encode(items), content_type="application/x-www-form-urlencoded"
        )
    data: dict[str, list] = {}
    for name, v in items:
        data.setdefault(name, []).append(v.decode("latin-1") if isinstance(v, bytes) else v)
    for name, content in files.items():
        data.setdefault(name, []).append((io.BytesIO(content), "upload.csv", "text/csv"))
    return client.post(url, data=data, content_type="multipart/form-data")


def short(items) -> list:
    """The fields of a failing example, long values cut, for the assertion message."""
    return [(n, Long(v) if isinstance(v, str) and len(v) > 200 else v) for n, v in items]


def addresses(case: Case, w) -> Values:
    return st.just(case.url) if isinstance(case.url, str) else case.url(w)


def check(w, case: Case, method: str, url: str, items, uploads) -> None:
    # A sign-in that works must not leave the next example signed in.
    client = w.app.test_client() if case.role == "anonymous" else w.clients[case.role]
    response = send(client, method, url, items, uploads)
    assert response.status_code < 500 or response.status_code in case.also, (
        method,
        url[:300],
        short(items),
        response.status_code,
    )


# --- The tests -------------------------------------------------------------------------------


def post_routes(app) -> set[str]:
    return {r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods}


def test_every_post_route_is_fuzzed(world):
    routes = post_routes(world.app)
    missing = routes - set(POST_CASES) - set(EXCLUDED)
    assert not missing, f"POST routes with no fuzz case here and no reason to exclude: {missing}"
    assert not set(POST_CASES) & set(EXCLUDED)
    assert set(POST_CASES) | set(EXCLUDED) <= routes, "a case for a route that is gone"


def test_every_form_class_is_fuzzed(world):
    """Each form class of the app is sent by one of the cases, named in FORM_ROUTES."""

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    forms = {
        c.__name__
        for c in subclasses(FlaskForm)
        if c.__module__.startswith("tripcomms.") and c is not Form
    }
    assert set(FORM_ROUTES) == forms, "a form with no case that sends it, or a case for none"
    for name, case in FORM_ROUTES.items():
        assert case in POST_CASES or case in GET_CASES, (name, case)


# Which case sends each form of the app.
FORM_ROUTES = {
    "LoginForm": "auth.login",
    "UserForm": "auth.edit_user",
    "NewUserForm": "auth.new_user",
    "PasswordResetForm": "auth.reset_password",
    "ChangePasswordForm": "auth.change_password",
    "TripForm": "trips.new",
    "CancelTripForm": "trips.cancel",
    "RosterUploadForm": "trips.roster",
    "HandsetForm": "handsets.phone",
    "GetForm": "log",
    "LogSearchForm": "log",
    "AuditSearchForm": "audit trail",
    "ConcernForm": "safeguarding.new_concern",
    "ReasonForm": "safeguarding.investigate",
    "CloseForm": "safeguarding.close",
    "SubjectAccessForm": "subject access",
    "ComposeForm": "inbox.thread",
    "BroadcastForm": "inbox.broadcast",
    "ConfirmBroadcastForm": "inbox.broadcast_send",
    "TemplateForm": "inbox.templates",
    "NumberForm": "relay.number_admin",
    "RequestForm": "approvals.ask",
    "ApproveForm": "approvals.approve",
    "DenyForm": "approvals.deny",
    "RevokeForm": "approvals.revoke",
    "ReportForm": "approvals report",
    "PhoneForm": "phones.new_phone",
    "StatusForm": "phones.set_status",
    "RetireForm": "phones.retire",
    "ImportForm": "phones.import_phones",
    "BookingForm": "phones.book",
    "IssueForm": "phones.issue",
    "ReturnForm": "phones.return_loan",
    "PeriodForm": "phones list",
}

ALL_CASES = [("POST", name) for name in sorted(POST_CASES)] + [
    ("GET", name) for name in sorted(GET_CASES)
]


def case_of(method: str, name: str) -> Case:
    return (POST_CASES if method == "POST" else GET_CASES)[name]


@pytest.mark.parametrize(("method", "name"), ALL_CASES)
def test_form_never_fails(world, method, name):
    case = case_of(method, name)
    files = case.files(world)

    @SETTINGS
    @given(
        url=addresses(case, world),
        items=pairs(case.fields_of(world)),
        uploads=st.fixed_dictionaries(files) if files else st.just({}),
    )
    def run(url, items, uploads):
        check(world, case, method, url, items, uploads)

    run()


# Values every field gets in turn, the others good: the ones that broke forms before, so each
# is tried every run rather than when the generator happens on it.
EACH_FIELD = [
    "",
    " ",
    "0",
    "-1",
    "2147483648",  # one more than a 32-bit integer column holds
    "99999999999999999999",  # more than SQLite can bind
    "1e3",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
    "\x00",  # PostgreSQL stores no NUL
    b"\xed\xa0\x80\xff",  # an encoded surrogate and a byte that is never UTF-8
    "\u202e\u200d\ufeff" * 30,
    "2026-03-29T01:30",  # a London time that does not exist
    "9999-12-31T23:59",
    Long("x" * 100_000),
]


@pytest.mark.parametrize(
    ("method", "name"), [c for c in ALL_CASES if case_of(*c).fields is not None]
)
def test_form_field_by_field(world, method, name):
    case = case_of(method, name)
    fields, files = case.fields(world), case.files(world)

    # One pass of every value through every field; a failure names its field and value, so it
    # is not shrunk (each shrinking step would send them all again).
    @settings(SETTINGS, max_examples=1, phases=[Phase.generate])
    @given(
        url=addresses(case, world),
        good=st.fixed_dictionaries({n: spec.good for n, spec in fields.items()}),
        uploads=st.fixed_dictionaries(files) if files else st.just({}),
    )
    def run(url, good, uploads):
        for name in fields:
            for bad in EACH_FIELD:
                items = [(n, bad if n == name else v) for n, v in good.items()]
                check(world, case, method, url, items, uploads)

    run()
