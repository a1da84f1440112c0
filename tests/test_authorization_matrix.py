"""Who may do what: every route, every method, against every role, on real rows.

The table below is the rule book. Each row is one route and method (by endpoint), each column
a user: nobody signed in, the office, the leader of trip A (the trip every address points at),
the leader of another trip, the Headteacher, the safeguarding lead, an auditor and an
administrator. A cell is what that user gets:

    200, 303, 400, 401, 403, 404, 422 ...  that HTTP status
    login   a redirect (302) to the sign-in page, to come back after signing in
    home    a redirect to the home page (the sign-in page, for someone signed in)
    sig     403 for a webhook without Twilio's signature, which is itself audited

A route added to the app without a row here fails the first test, and so does a row whose
route is gone. Refused requests (login, 401, 403, 404, sig) must change nothing: the rows of
every table are counted around each one, and compared in full around them all. CSRF is off
so that the role and object checks are what answer, not the form's token (the pages' own
tests cover CSRF). The world behind the addresses is tests/authorization_world.py.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import pytest
from sqlalchemy import func, literal, select, union_all

from tests.authorization_world import ROLES, build_world
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db

# Signing in and out: GET /login when signed in goes home; POST /logout signs out (and the
# test signs in again). Auditors change nothing, so every POST of theirs but /logout is 403.
# Trips are seen by the office, the head and auditors (all) and leaders (their own); the rest
# get 404, as if the trip did not exist. The inbox is for the trip's own leaders and the head.
# Approvals are seen by their owner, whoever filed them, the head and auditors. Messages in
# the log: the head, DSL and auditors all; leaders their trips'; the office its review queue.
# The simulator's pages (/sim) exist only with the simulator backend, for any signed-in user;
# its fake Twilio API wants HTTP Basic auth, which a browser user does not send (401).
# Allowed POSTs are sent empty and run in the table's order: most answer with the form's
# errors (200 or 422); the head's approve goes through, so the deny after it is a form error.
MATRIX = """
# method endpoint                             anon  office leader other head  dsl   audit admin
GET    static                                 200   200   200   200   200   200   200   200
GET    health.healthz                         200   200   200   200   200   200   200   200
GET    main.home                              login 200   200   200   200   200   200   200
GET    auth.login                             200   home  home  home  home  home  home  home
POST   auth.login                             200   home  home  home  home  home  403   home
POST   auth.logout                            login 303   303   303   303   303   303   303
GET    auth.change_password                   login 200   200   200   200   200   200   200
POST   auth.change_password                   login 200   200   200   200   200   403   200
GET    auth.users                             login 403   403   403   403   403   403   200
GET    auth.new_user                          login 403   403   403   403   403   403   200
POST   auth.new_user                          login 403   403   403   403   403   403   200
GET    auth.edit_user                         login 403   403   403   403   403   403   200
POST   auth.edit_user                         login 403   403   403   403   403   403   200
POST   auth.set_active                        login 403   403   403   403   403   403   303
POST   auth.reset_password                    login 403   403   403   403   403   403   303
GET    trips.index                            login 200   200   200   200   200   200   200
GET    trips.new                              login 200   403   403   200   403   403   403
POST   trips.new                              login 200   403   403   200   403   403   403
GET    trips.show                             login 200   200   404   200   404   200   404
GET    trips.edit                             login 200   403   403   200   403   403   403
POST   trips.edit                             login 200   403   403   200   403   403   403
POST   trips.cancel                           login 303   403   403   303   403   403   403
GET    trips.roster                           login 200   403   403   200   403   403   403
POST   trips.roster                           login 422   403   403   422   403   403   403
GET    phones.phones                          login 200   403   403   200   403   403   403
GET    phones.new_phone                       login 200   403   403   200   403   403   403
POST   phones.new_phone                       login 200   403   403   200   403   403   403
GET    phones.import_phones                   login 200   403   403   200   403   403   403
POST   phones.import_phones                   login 200   403   403   200   403   403   403
GET    phones.phone_calendar                  login 200   403   403   200   403   403   403
GET    phones.phone                           login 200   403   403   200   403   403   403
GET    phones.edit_phone                      login 200   403   403   200   403   403   403
POST   phones.edit_phone                      login 200   403   403   200   403   403   403
POST   phones.set_status                      login 200   403   403   200   403   403   403
POST   phones.retire                          login 303   403   403   303   403   403   403
GET    phones.loans                           login 200   403   403   200   403   403   403
GET    phones.trip_phones                     login 200   200   404   200   404   200   404
POST   phones.book                            login 200   403   403   200   403   403   403
POST   phones.cancel_booking                  login 303   403   403   303   403   403   403
POST   phones.issue                           login 200   403   403   200   403   403   403
GET    phones.return_loan                     login 200   403   403   200   403   403   403
POST   phones.return_loan                     login 303   403   403   303   403   403   403
GET    relay.review                           login 200   403   403   200   403   403   403
POST   relay.mark_reviewed                    login 303   403   403   303   403   403   403
POST   relay.allocate                         login 303   403   403   303   403   403   403
GET    relay.number_admin                     login 403   403   403   403   403   403   200
POST   relay.number_admin                     login 403   403   403   403   403   403   200
POST   relay.number_sync                      login 403   403   403   403   403   403   303
GET    inbox.index                            login 403   200   404   200   403   403   403
GET    inbox.index_json                       login 403   200   404   200   403   403   403
GET    inbox.open_thread                      login 403   303   404   303   403   403   403
GET    inbox.thread                           login 403   200   404   200   403   403   403
POST   inbox.thread                           login 403   422   404   422   403   403   403
GET    inbox.thread_json                      login 403   200   404   200   403   403   403
POST   inbox.mark_read                        login 403   200   404   200   403   403   403
POST   inbox.retry                            login 403   303   404   303   403   403   403
GET    inbox.broadcast                        login 403   200   404   200   403   403   403
POST   inbox.broadcast                        login 403   422   404   422   403   403   403
POST   inbox.broadcast_send                   login 403   422   404   422   403   403   403
GET    inbox.broadcast_progress               login 403   200   404   200   403   403   403
GET    inbox.broadcast_json                   login 403   200   404   200   403   403   403
GET    inbox.templates                        login 200   403   403   200   403   403   403
POST   inbox.templates                        login 422   403   403   422   403   403   403
GET    inbox.edit_template                    login 200   403   403   200   403   403   403
POST   inbox.edit_template                    login 422   403   403   422   403   403   403
POST   inbox.retire_template                  login 303   403   403   303   403   403   403
GET    approvals.ask                          login 200   200   404   200   403   403   403
POST   approvals.ask                          login 200   200   404   200   403   403   403
GET    approvals.queue                        login 403   403   403   200   403   403   403
GET    approvals.mine                         login 403   200   200   200   403   403   403
GET    approvals.report                       login 403   403   403   200   403   200   403
GET    approvals.show                         login 404   200   404   200   404   200   404
GET    approvals.decide                       login 403   403   403   200   403   403   403
POST   approvals.approve                      login 403   403   403   303   403   403   403
POST   approvals.deny                         login 403   403   403   200   403   403   403
POST   approvals.revoke                       login 403   403   403   303   403   403   403
GET    audit.log                              login 403   200   200   200   200   200   403
GET    audit.export                           login 403   200   200   200   200   200   403
GET    audit.message                          login 404   200   404   200   200   200   403
GET    audit.trip_report                      login 403   200   404   200   200   200   403
GET    audit.events                           login 403   403   403   200   403   200   403
GET    audit.verify                           login 403   403   403   200   403   200   403
GET    safeguarding.new_concern               login 404   200   404   200   200   403   403
POST   safeguarding.new_concern               login 404   422   404   422   422   403   403
GET    safeguarding.concerns                  login 403   403   403   200   200   403   403
GET    safeguarding.concern                   login 403   403   403   200   200   403   403
POST   safeguarding.investigate               login 403   403   403   422   422   403   403
POST   safeguarding.close                     login 403   403   403   422   422   403   403
POST   safeguarding.reopen                    login 403   403   403   422   422   403   403
GET    safeguarding.subject_access            login 403   403   403   200   200   403   403
GET    safeguarding.subject_access_export     login 403   403   403   200   200   403   403
POST   twilio.sms                             sig   sig   sig   sig   sig   sig   403   sig
POST   twilio.status                          sig   sig   sig   sig   sig   sig   403   sig
GET    handsets.index                         login 200   200   200   200   200   200   200
GET    handsets.phone                         login 200   200   200   200   200   200   200
POST   handsets.phone                         login 200   200   200   200   200   403   200
POST   handsets.power                         login 303   303   303   303   303   403   303
GET    handsets.texts                         login 200   200   200   200   200   200   200
POST   simulator.create_message               401   401   401   401   401   401   403   401
GET    simulator.list_messages                401   401   401   401   401   401   401   401
GET    simulator.fetch_message                401   401   401   401   401   401   401   401
GET    simulator.media                        401   401   401   401   401   401   401   401
GET    simulator.list_numbers                 401   401   401   401   401   401   401   401
GET    simulator.fetch_number                 401   401   401   401   401   401   401   401
POST   simulator.update_number                401   401   401   401   401   401   403   401
POST   simulator.control_faults               401   401   401   401   401   401   403   401
GET    simulator.control_report               401   401   401   401   401   401   401   401
POST   simulator.control_wait_idle            401   401   401   401   401   401   403   401
"""

# Where each endpoint is asked, filled from the world's ids.
SIM_ACCOUNT = "/sim/twilio/2010-04-01/Accounts/{account}"
URLS = {
    "static": "/static/app.css",
    "health.healthz": "/healthz",
    "main.home": "/",
    "auth.login": "/login",
    "auth.logout": "/logout",
    "auth.change_password": "/account/password",
    "auth.users": "/admin/users",
    "auth.new_user": "/admin/users/new",
    "auth.edit_user": "/admin/users/{user}",
    "auth.set_active": "/admin/users/{user}/active",
    "auth.reset_password": "/admin/users/{user}/password",
    "trips.index": "/trips/?show=all",
    "trips.new": "/trips/new",
    "trips.show": "/trips/{trip}",
    "trips.edit": "/trips/{trip}/edit",
    "trips.cancel": "/trips/{trip}/cancel",
    "trips.roster": "/trips/{trip}/roster",
    "phones.phones": "/phones",
    "phones.new_phone": "/phones/new",
    "phones.import_phones": "/phones/import",
    "phones.phone_calendar": "/phones/calendar",
    "phones.phone": "/phones/{phone}",
    "phones.edit_phone": "/phones/{phone}/edit",
    "phones.set_status": "/phones/{phone}/status",
    "phones.retire": "/phones/{phone}/retire",
    "phones.loans": "/loans",
    "phones.trip_phones": "/trips/{trip}/phones",
    "phones.book": "/trips/{trip}/phones/book",
    "phones.cancel_booking": "/trips/{trip}/phones/bookings/{booking}/cancel",
    "phones.issue": "/trips/{trip}/phones/issue",
    "phones.return_loan": "/trips/{trip}/phones/loans/{loan}/return",
    "relay.review": "/relay/review",
    "relay.mark_reviewed": "/relay/review/{review_message}",
    "relay.allocate": "/trips/{trip}/number",
    "relay.number_admin": "/admin/numbers",
    "relay.number_sync": "/admin/numbers/sync",
    "inbox.index": "/trips/{trip}/inbox",
    "inbox.index_json": "/trips/{trip}/inbox.json",
    "inbox.open_thread": "/trips/{trip}/inbox/open?code={code}",
    "inbox.thread": "/trips/{trip}/inbox/{code}",
    "inbox.thread_json": "/trips/{trip}/inbox/{code}.json",
    "inbox.mark_read": "/trips/{trip}/inbox/{code}/read",
    "inbox.retry": "/trips/{trip}/messages/{failed}/retry",
    "inbox.broadcast": "/trips/{trip}/broadcast",
    "inbox.broadcast_send": "/trips/{trip}/broadcast/send",
    "inbox.broadcast_progress": "/trips/{trip}/broadcasts/{broadcast}",
    "inbox.broadcast_json": "/trips/{trip}/broadcasts/{broadcast}.json",
    "inbox.templates": "/message-templates",
    "inbox.edit_template": "/message-templates/{template}",
    "inbox.retire_template": "/message-templates/{template}/retire",
    "approvals.ask": "/trips/{trip}/personal-phone",
    "approvals.queue": "/approvals",
    "approvals.mine": "/approvals/mine",
    "approvals.report": "/approvals/report",
    "approvals.show": "/approvals/{approval}",
    "approvals.decide": "/approvals/{approval}/decide",
    "approvals.approve": "/approvals/{approval}/approve",
    "approvals.deny": "/approvals/{approval}/deny",
    "approvals.revoke": "/approvals/{approval}/revoke",
    "audit.log": "/log",
    "audit.export": "/log/export.csv",
    "audit.message": "/log/messages/{parent_message}",
    "audit.trip_report": "/log/trips/{trip}/report",
    "audit.events": "/audit",
    "audit.verify": "/audit/verify",
    "safeguarding.new_concern": "/concerns/new?message={parent_message}",
    "safeguarding.concerns": "/concerns",
    "safeguarding.concern": "/concerns/{concern}",
    "safeguarding.investigate": "/concerns/{concern}/investigate",
    "safeguarding.close": "/concerns/{concern}/close",
    "safeguarding.reopen": "/concerns/{concern}/reopen",
    "safeguarding.subject_access": "/subject-access?q=Jones",
    "safeguarding.subject_access_export": "/subject-access/{contact}.csv",
    "twilio.sms": "/twilio/sms",
    "twilio.status": "/twilio/status",
    "handsets.index": "/sim/phones",
    "handsets.phone": "/sim/phones/{handset}",
    "handsets.power": "/sim/phones/{handset}/power",
    "handsets.texts": "/sim/phones/{handset}/texts.json",
    "simulator.create_message": SIM_ACCOUNT + "/Messages.json",
    "simulator.list_messages": SIM_ACCOUNT + "/Messages.json",
    "simulator.fetch_message": SIM_ACCOUNT + "/Messages/{sid}.json",
    "simulator.media": SIM_ACCOUNT + "/Messages/{sid}/Media/{media_sid}",
    "simulator.list_numbers": SIM_ACCOUNT + "/IncomingPhoneNumbers.json",
    "simulator.fetch_number": SIM_ACCOUNT + "/IncomingPhoneNumbers/{number_sid}.json",
    "simulator.update_number": SIM_ACCOUNT + "/IncomingPhoneNumbers/{number_sid}.json",
    "simulator.control_faults": "/sim/twilio/control/{account}/faults",
    "simulator.control_report": "/sim/twilio/control/{account}/report",
    "simulator.control_wait_idle": "/sim/twilio/control/{account}/wait-idle",
}

# A POST's form, where an empty one would not reach what the route does.
POST_DATA = {
    "inbox.mark_read": {"up_to": "{parent_message}"},
}

REFUSED = {"login", "sig", "401", "403", "404"}


def parse_matrix(text: str = MATRIX) -> dict[tuple[str, str], dict[str, str]]:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in text.strip().splitlines():
        if line.startswith("#"):
            continue
        method, endpoint, *cells = line.split()
        assert len(cells) == len(ROLES), f"{line!r}: {len(cells)} cells for {len(ROLES)} roles"
        assert (method, endpoint) not in rows, f"{method} {endpoint} is in the table twice"
        rows[method, endpoint] = dict(zip(ROLES, cells, strict=True))
    return rows


ROWS = parse_matrix()


def app_routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every table, the audit chain aside (see audit_actions)."""
    with app.app_context():
        found = {}
        for table in db.metadata.sorted_tables:
            if table.name in ("audit_events", "audit_head"):
                continue
            query = select(table).order_by(*table.primary_key.columns)
            found[table.name] = [tuple(row) for row in db.session.execute(query)]
        db.session.remove()
        return found


def audit_actions(app) -> list[str]:
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
        db.session.remove()
        return actions


@cache
def _counting_query():
    return union_all(
        *(
            select(literal(t.name).label("name"), func.count().label("n")).select_from(t)
            for t in db.metadata.sorted_tables
        )
    )


def row_counts(app) -> dict[str, int]:
    """Rows in each table, in one query."""
    with app.app_context():
        found = dict(db.session.execute(_counting_query()).all())
        db.session.remove()
        return found


def describe(response) -> str:
    """What a response amounts to, in the table's words."""
    code = response.status_code
    if code in (301, 302, 303, 307, 308):
        target = response.location
        if code == 302 and target.startswith("/login?"):
            return "login"
        if code == 302 and target == "/":
            return "home"
    return str(code)


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(name for name in before if before[name] != after[name])


# --- The table names every route ------------------------------------------------------------


def test_the_table_names_every_route_and_nothing_else(app):
    routes = app_routes(app)
    missing = sorted(routes - ROWS.keys())
    stale = sorted(ROWS.keys() - routes)
    assert not missing, f"routes with no row in the authorization table: {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"
    assert set(URLS) == {endpoint for _, endpoint in routes}


def test_every_address_reaches_the_route_of_its_row(app):
    adapter = app.url_map.bind("localhost")
    ids = defaultdict(lambda: "1")  # any id will do: this is about routing, not rows
    for method, endpoint in ROWS:
        path = URLS[endpoint].format_map(ids).partition("?")[0]
        reached, _ = adapter.match(path, method=method)
        assert reached == endpoint, f"{method} {path} reaches {reached}, not {endpoint}"


# --- Every route for every role -------------------------------------------------------------


@pytest.fixture
def app_config(app_config):
    # CSRF would refuse the POSTs first; switch it off so the role and object checks answer.
    return {**app_config, "WTF_CSRF_ENABLED": False}


def _request(client, world, method: str, endpoint: str):
    url = URLS[endpoint].format(**world.ids)
    data = {k: v.format(**world.ids) for k, v in POST_DATA.get(endpoint, {}).items()}
    response = client.open(url, method=method, data=data if method == "POST" else None)
    response.close()
    return url, response


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_as_the_table_says(app, factory, client, role):
    world = build_world(app, factory, client)
    user = world.user(role)
    if user is not None:
        assert client.login(user.email).status_code == 303

    def sign_in_again(endpoint: str) -> None:
        if endpoint == "auth.logout" and user is not None:
            assert client.login(user.email).status_code == 303

    wrong = []
    refused = [key for key, cells in ROWS.items() if cells[role] in REFUSED]
    allowed = [key for key in ROWS if key not in refused]

    # Refused first, each checked to have changed nothing, on a world no allowed request of
    # this role has touched yet.
    before_all = snapshot(app)
    audit_before = audit_actions(app)
    signature_refusals = 0
    counts = row_counts(app)
    for method, endpoint in refused:
        expected = ROWS[method, endpoint][role]
        url, response = _request(client, world, method, endpoint)
        got = describe(response)
        if expected == "sig" and got == "403":
            got = "sig"
            signature_refusals += 1
            counts["audit_events"] += 1  # the refusal is audited
        if got != expected:
            wrong.append(f"{method} {url} ({endpoint}): expected {expected}, got {got}")
        after = row_counts(app)
        if after != counts:
            moved = {
                name: (counts[name], after[name]) for name in after if after[name] != counts[name]
            }
            wrong.append(f"{method} {url} ({endpoint}) was refused but changed rows: {moved}")
        counts = after
    if changed := changed_tables(before_all, snapshot(app)):
        wrong.append(f"the refused requests changed the tables {changed}")
    new_events = audit_actions(app)[len(audit_before) :]
    if new_events != ["webhook.bad_signature"] * signature_refusals:
        wrong.append(f"the refused requests wrote to the audit trail: {new_events}")

    for method, endpoint in allowed:
        expected = ROWS[method, endpoint][role]
        url, response = _request(client, world, method, endpoint)
        got = describe(response)
        if got != expected:
            wrong.append(f"{method} {url} ({endpoint}): expected {expected}, got {got}")
        sign_in_again(endpoint)

    assert not wrong, f"as {role}:\n" + "\n".join(wrong)


# --- Object checks: one trip's rows under another trip's address ----------------------------

# Each is a real row of trip A, asked for under trip B's address (or about trip B), by users
# who may open trip B: only the check that the row belongs to that trip can refuse them.
CROSSED = [
    ("GET", "/trips/{other_trip}/phones/loans/{loan}/return", ("office", "head")),
    ("POST", "/trips/{other_trip}/phones/loans/{loan}/return", ("office", "head")),
    ("POST", "/trips/{other_trip}/phones/bookings/{booking}/cancel", ("office", "head")),
    ("POST", "/trips/{other_trip}/messages/{failed}/retry", ("other", "head")),
    ("GET", "/trips/{other_trip}/broadcasts/{broadcast}", ("other", "head")),
    ("GET", "/trips/{other_trip}/broadcasts/{broadcast}.json", ("other", "head")),
    ("GET", "/concerns/new?trip={other_trip}&contact={contact}", ("other", "head", "dsl")),
    ("POST", "/concerns/new?trip={other_trip}&contact={contact}", ("other", "head", "dsl")),
]


def test_a_row_of_one_trip_is_not_found_under_another_trips_address(app, factory, client):
    world = build_world(app, factory, client)
    before = snapshot(app)
    audit_before = audit_actions(app)
    wrong = []
    for role in ("office", "other", "head", "dsl"):
        assert client.login(world.user(role).email).status_code == 303
        for method, template, roles in CROSSED:
            if role not in roles:
                continue
            url = template.format(**world.ids)
            response = client.open(url, method=method, data={"reason": "x"})
            response.close()
            if response.status_code != 404:
                wrong.append(f"{role}: {method} {url} answered {response.status_code}")
        client.logout()
    assert not wrong, "\n".join(wrong)
    assert changed_tables(before, snapshot(app)) == []
    # Signing in and out are the only things written down.
    assert set(audit_actions(app)[len(audit_before) :]) <= {"login.succeeded", "logout"}


# --- What a leader of another trip sees of this one -----------------------------------------

# Words that belong to trip A only: its title, a parent, a pupil, texts, the request's reason.
TRIP_A_WORDS = (
    "Science Museum",
    "South Kensington",
    "Mary Jones",
    "Is Sam OK?",
    "Sam is fine",
    "Back at 3pm",
    "The school phone has no signal",
)
# The simulated phones list every parent to anyone signed in: a demo tool, absent in production.
NOT_TRIP_SCOPED = {"static", "health.healthz", "handsets.index", "handsets.phone", "handsets.texts"}


def test_a_leader_of_another_trip_sees_nothing_of_this_trip(app, factory, client):
    world = build_world(app, factory, client)
    pages = [
        endpoint
        for (method, endpoint), cells in ROWS.items()
        if method == "GET" and cells["other"] == "200" and endpoint not in NOT_TRIP_SCOPED
    ]
    assert {"trips.index", "audit.log", "audit.export", "approvals.mine", "main.home"} <= set(pages)

    def seen_by(role: str) -> dict[str, str]:
        assert client.login(world.user(role).email).status_code == 303
        found = {}
        for endpoint in pages:
            response = client.get(URLS[endpoint].format(**world.ids))
            assert response.status_code == 200, (role, endpoint)
            found[endpoint] = response.get_data(as_text=True)
            response.close()
        client.logout()
        return found

    # The trip's own leader does see them on these pages: the words are the right ones.
    own = seen_by("leader")
    for endpoint in ("trips.index", "audit.log", "audit.export", "approvals.mine"):
        assert "Science Museum" in own[endpoint], endpoint
    assert "Is Sam OK?" in own["audit.log"]
    assert "Liam Leader" in own["approvals.mine"]

    other = seen_by("other")
    leaks = [
        f"{endpoint} shows {word!r}"
        for endpoint, page in other.items()
        for word in TRIP_A_WORDS
        if word in page
    ]
    assert not leaks, "\n".join(leaks)
    assert "Farm visit" in other["trips.index"]  # their own trip is there
