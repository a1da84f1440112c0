"""Script in anything people write is shown as text, everywhere it is shown.

The authorization world is built with script payloads in every field a person writes: trip
titles, destinations and notes, pupils' and parents' names, phone labels and notes, texts from
parents (through the signed webhook and a simulated handset) and from staff (through the
compose form), broadcasts, message templates, a concern and its notes, a personal-phone
request's reason and conditions, and staff names. Then every page of the authorization table
is fetched as every role that may open it: each must answer 200, carry no markup from the
payloads, and (on the pages that show a field) show the field's words, escaped. The JSON
endpoints give the words back as plain JSON strings, which the static scripts only ever put
into text nodes; the CSV exports are attachments a browser does not render, with formulas
defused.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from tests.authorization_world import PARENT_1, PAYLOAD, TRIP_NUMBER, build_world, with_payload
from tests.relay.scenario import Scenario
from tests.simulator.fixtures import live_sim, sim
from tests.test_authorization_matrix import ROWS, URLS
from tripcomms.approvals import operations as approval_ops
from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.safeguarding import operations as concern_ops
from tripcomms.safeguarding.models import Concern

__all__ = ["live_sim", "sim"]

# Markup that must never reach a page as markup.
RAW = ("<script>", "<img src=x")


class Page(HTMLParser):
    """The elements and attributes of a page, as a browser's parser would see them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict, str]] = []
        self.problems: list[str] = []
        self._in_script: dict | None = None
        self._script_text = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag}> has an event handler {name}={value!r}")
            if name in ("href", "src", "action", "formaction") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag}> has {name}={value!r}")
        if tag == "img" and named.get("src") == "x":
            self.problems.append("an <img src=x> element")
        if tag == "script":
            self._in_script = named
            self._script_text = ""

    def handle_data(self, data):
        if self._in_script is not None:
            self._script_text += data

    def handle_endtag(self, tag):
        if tag == "script" and self._in_script is not None:
            self.scripts.append((self._in_script, self._script_text))
            self._in_script = None


def markup_problems(text: str) -> list[str]:
    problems = [f"raw {raw!r}" for raw in RAW if raw in text]
    page = Page(text)
    problems += page.problems
    for attrs, body in page.scripts:
        src = attrs.get("src") or ""
        if not src.startswith("/static/js/") or body.strip():
            problems.append(f"a script that is not one of the app's files: {attrs} {body[:60]!r}")
    return problems


@pytest.fixture
def world(app, factory, client, sim, live_sim):
    world = build_world(app, factory, client, texts=with_payload)
    users = world.users
    with app.app_context():
        approval = db.session.get(PersonalPhoneApproval, world.ids["approval"])
        head = db.session.get(User, users["head"].id)
        approval_ops.approve(head, approval, with_payload("conditions", "Only for the coach"))
        concern = db.session.get(Concern, world.ids["concern"])
        dsl = db.session.get(User, users["dsl"].id)
        concern_ops.start_investigating(dsl, concern, with_payload("update", "Called the parent"))
        db.session.commit()
    # A parent's text from a simulated handset, through the simulator's signed webhook.
    sim.add_number(TRIP_NUMBER)
    answer = sim.send_from_handset(PARENT_1, TRIP_NUMBER, with_payload("handset", "On our way"))
    assert answer.status == 200
    # A spreadsheet formula in a parent's text, for the CSV exports.
    Scenario(app, client, factory).text(PARENT_1, '=HYPERLINK("http://x.test","Sam")')
    # A leader writes a reply in the web inbox, through the form.
    client.login(users["leader"].email)
    thread = f"/trips/{world.ids['trip']}/inbox/{world.ids['code']}"
    page = client.get(thread).get_data(as_text=True)
    key = re.search(r'name="request_key" type="hidden" value="([^"]+)"', page)
    assert key, "no one-time key on the compose form"
    sent = client.post_form(
        thread, {"body": with_payload("composed", "See you at 3"), "request_key": key.group(1)}
    )
    assert sent.status_code == 303, sent.get_data(as_text=True)
    client.logout()
    return world


def words(kind: str, text: str) -> str:
    """The field as an HTML page must show it: escaped."""
    return str(escape(with_payload(kind, text)))


# What each page must show, escaped: (role, endpoint) -> the fields' words.
SHOWN = {
    ("leader", "trips.show"): [
        ("title", "Science Museum"),
        ("destination", "South Kensington"),
        ("notes", "Packed lunches"),
        ("contact", "Mary Jones"),
        ("pupil", "Sam"),
        ("user", "Liam Leader"),
    ],
    ("office", "trips.index"): [("title", "Science Museum"), ("title", "Farm visit")],
    ("office", "trips.edit"): [("title", "Science Museum"), ("notes", "Packed lunches")],
    ("leader", "inbox.index"): [("contact", "Mary Jones"), ("pupil", "Sam")],
    ("leader", "inbox.thread"): [
        ("inbound", "Is Sam OK?"),
        ("reply", "Sam is fine"),
        ("composed", "See you at 3"),
        ("handset", "On our way"),
        ("contact", "Mary Jones"),
        ("template", "Running late"),
    ],
    ("leader", "inbox.broadcast"): [("template", "Running late")],
    ("leader", "inbox.broadcast_progress"): [("broadcast", "Back at 3pm")],
    ("office", "inbox.templates"): [("template", "Running late"), ("template", "We are late")],
    ("office", "inbox.edit_template"): [("template", "Running late"), ("template", "We are late")],
    ("office", "phones.phones"): [("label", "Trip phone 1"), ("user", "Liam Leader")],
    ("office", "phones.phone"): [("label", "Trip phone 1"), ("notes", "Cracked case")],
    ("office", "phones.edit_phone"): [("label", "Trip phone 1"), ("notes", "Cracked case")],
    ("office", "phones.loans"): [("label", "Trip phone 1"), ("title", "Science Museum")],
    ("office", "phones.phone_calendar"): [("label", "Trip phone 2")],
    ("office", "phones.trip_phones"): [("label", "Trip phone 1"), ("user", "Liam Leader")],
    ("office", "relay.review"): [("inbound", "Who is this?")],
    ("head", "approvals.queue"): [("title", "Science Museum"), ("user", "Liam Leader")],
    ("head", "approvals.show"): [
        ("reason", "The school phone has no signal"),
        ("conditions", "Only for the coach"),
    ],
    ("head", "approvals.decide"): [("reason", "The school phone has no signal")],
    ("head", "audit.log"): [("inbound", "Is Sam OK?"), ("contact", "Mary Jones")],
    ("head", "audit.message"): [
        ("inbound", "Is Sam OK?"),
        ("contact", "Mary Jones"),
    ],
    ("head", "audit.trip_report"): [
        ("title", "Science Museum"),
        ("inbound", "Is Sam OK?"),
        ("composed", "See you at 3"),
        ("label", "Trip phone 1"),
        ("user", "Liam Leader"),
    ],
    ("dsl", "safeguarding.concerns"): [("title", "Science Museum"), ("user", "Liam Leader")],
    ("dsl", "safeguarding.concern"): [
        ("concern", "The parent sounded worried"),
        ("update", "Called the parent"),
        ("title", "Science Museum"),
    ],
    ("dsl", "safeguarding.subject_access"): [("contact", "Mary Jones")],
    ("admin", "auth.users"): [("user", "Olive Office"), ("user", "Vic Spare")],
    ("admin", "auth.edit_user"): [("user", "Vic Spare")],
    ("leader", "main.home"): [("title", "Science Museum")],
}

JSON_SHOWN = {
    ("leader", "inbox.index_json"): [("contact", "Mary Jones"), ("pupil", "Sam")],
    ("leader", "inbox.thread_json"): [
        ("inbound", "Is Sam OK?"),
        ("composed", "See you at 3"),
        ("contact", "Mary Jones"),
    ],
    ("leader", "inbox.broadcast_json"): [("contact", "Mary Jones")],
    ("leader", "handsets.texts"): [("handset", "On our way")],
}


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def test_every_page_shows_the_payloads_as_text(app, world):
    client = app.test_client()
    fetched, problems, missing = 0, [], []
    for role in ("anon", "office", "leader", "other", "head", "dsl", "auditor", "admin"):
        user = world.user(role)
        if user is not None:
            assert client.login(user.email).status_code == 303
        for (method, endpoint), cells in ROWS.items():
            if method != "GET" or cells[role] != "200" or endpoint == "static":
                continue
            url = URLS[endpoint].format(**world.ids)
            response = client.get(url)
            text = response.get_data(as_text=True)
            response.close()
            fetched += 1
            if response.status_code != 200:
                problems.append(f"{role} {url}: {response.status_code}")
                continue
            kind = response.mimetype
            if kind == "text/html":
                problems += [f"{role} {url}: {p}" for p in markup_problems(text)]
                for field in SHOWN.get((role, endpoint), []):
                    if words(*field) not in text:
                        missing.append(f"{role} {url}: {field}")
            elif kind == "application/json":
                found = strings_in(json.loads(text))
                for field in JSON_SHOWN.get((role, endpoint), []):
                    if not any(with_payload(*field) in s for s in found):
                        missing.append(f"{role} {url} (JSON): {field}")
            elif kind == "text/csv":
                assert response.headers["Content-Disposition"].startswith("attachment;")
            else:
                assert endpoint == "health.healthz", (url, kind)
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        if user is not None:
            client.logout()
    assert not problems, "\n".join(problems)
    assert not missing, "fields not shown where expected:\n" + "\n".join(missing)
    # Every listed page was fetched, as the role named.
    listed = [*SHOWN, *JSON_SHOWN]
    assert all(ROWS["GET", endpoint][role] == "200" for role, endpoint in listed)
    assert fetched > 100


def test_pages_with_the_payload_in_their_address_and_forms(app, world):
    """Search terms, chosen templates, and forms sent back with errors."""
    ids = world.ids
    client = app.test_client()
    client.login(world.user("head").email)
    trip, code, template = ids["trip"], ids["code"], ids["template"]
    pages = [
        ("/log", {"text": "Sam"}, [("inbound", "Is Sam OK?")]),
        ("/log", {"person": PAYLOAD}, []),
        ("/log", {"text": PAYLOAD}, []),
        ("/subject-access", {"q": PAYLOAD}, []),
        ("/sim/phones", {"number": PAYLOAD}, []),
        (f"/trips/{trip}/inbox/{code}", {"template": template}, [("template", "We are late")]),
        (f"/trips/{trip}/broadcast", {"template": template}, [("template", "We are late")]),
        (f"/sim/phones/{ids['handset']}", {}, [("handset", "On our way")]),
        ("/sim/phones", {}, [("contact", "Mary Jones"), ("label", "Trip phone 1")]),
    ]
    for path, query, fields in pages:
        response = client.get(path, query_string=query)
        text = response.get_data(as_text=True)
        assert response.status_code in (200, 422), (path, query, response.status_code)
        assert markup_problems(text) == [], (path, query)
        for field in fields:
            assert words(*field) in text, (path, query, field)
    # A broadcast to confirm, and a reply refused for a staff number: both show the words back.
    body = with_payload("broadcast", "Coach is here")
    confirm = client.post_form(f"/trips/{ids['trip']}/broadcast", {"body": body})
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and str(escape(body)) in text
    assert markup_problems(text) == []
    blocked_body = with_payload("reply", "Ring me on 07911 100001")
    page = client.get(f"/trips/{ids['trip']}/inbox/{ids['code']}").get_data(as_text=True)
    key = re.search(r'name="request_key" type="hidden" value="([^"]+)"', page).group(1)
    refused = client.post_form(
        f"/trips/{ids['trip']}/inbox/{ids['code']}", {"body": blocked_body, "request_key": key}
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and str(escape(blocked_body)) in text
    assert markup_problems(text) == []


def test_the_exports_are_attachments_with_formulas_defused(app, world):
    client = app.test_client()
    client.login(world.user("head").email)
    for url in ("/log/export.csv", f"/subject-access/{world.ids['contact']}.csv"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        bodies = [row["body"] for row in rows]
        # The words as written (a CSV file is not HTML), and a formula that will not run.
        assert with_payload("inbound", "Is Sam OK?") in bodies
        assert '\'=HYPERLINK("http://x.test","Sam")' in bodies
        assert not any(b.startswith(("=", "+", "-", "@")) for b in bodies)


def test_the_json_endpoints_give_the_words_as_json_strings(app, world):
    client = app.test_client()
    client.login(world.user("leader").email)
    ids = world.ids
    thread = client.get(f"/trips/{ids['trip']}/inbox/{ids['code']}.json")
    assert thread.mimetype == "application/json"
    assert thread.headers["X-Content-Type-Options"] == "nosniff"
    data = thread.get_json()
    assert data["name"] == with_payload("contact", "Mary Jones")
    assert with_payload("inbound", "Is Sam OK?") in [m["body"] for m in data["messages"]]
    inbox = client.get(f"/trips/{ids['trip']}/inbox.json").get_json()
    assert inbox["threads"][0]["name"] == with_payload("contact", "Mary Jones")


STATIC_JS = Path(__file__).resolve().parent.parent / "static" / "js"
# Ways a script could turn text into markup or code.
HTML_SINKS = re.compile(
    r"\binnerHTML\b|\bouterHTML\b|\binsertAdjacentHTML\b|\bdocument\.write|\beval\s*\("
    r"|\bnew\s+Function\b|\bcreateContextualFragment\b|\bsetAttribute\(\s*['\"]on"
)


def test_the_static_scripts_put_server_text_into_text_nodes_only():
    scripts = sorted(STATIC_JS.glob("*.js"))
    assert len(scripts) >= 5
    for path in scripts:
        source = path.read_text()
        assert not HTML_SINKS.search(source), f"{path.name}: {HTML_SINKS.search(source)[0]}"
    common = (STATIC_JS / "common.js").read_text()
    # The one element builder: attributes by setAttribute, children as text nodes.
    assert "document.createTextNode(String(child))" in common
    assert "node.setAttribute(name" in common
