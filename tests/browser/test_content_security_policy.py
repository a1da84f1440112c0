"""The Content-Security-Policy in Chromium: script that reaches a page anyway does not run.

Escaping keeps script out of the pages (tests/test_escaping.py); the policy is the second
wall, for the day something slips through. On a real page of the app, with its own scripts
running, script put into the document (an inline <script>, an inline event handler, a
javascript: link) is refused and reported as a policy violation. The same injection on a page
without the policy does run, so the refusal is the policy's doing. And a page that prints a
payload unescaped (as a template marked "safe" would) runs none of it either.
"""

from __future__ import annotations

import re
import time

import pytest
from flask import render_template_string
from playwright.sync_api import expect

from tests.authorization_world import build_world, with_payload
from tests.browser.test_inbox import sign_in

LISTEN = """() => {
  window.violations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.violations.push({directive: e.effectiveDirective, sample: e.sample || ''});
  });
}"""

# Script put into the document three ways, each of which would set its own marker on <body>.
INJECT = """() => {
  const script = document.createElement('script');
  script.textContent = 'document.body.dataset.byScript = "ran";';
  document.body.append(script);

  const img = document.createElement('img');
  img.setAttribute('src', '/no-such-image.png');
  img.setAttribute('onerror', 'document.body.dataset.byHandler = "ran";');
  document.body.append(img);

  const link = document.createElement('a');
  link.href = 'javascript:void (document.body.dataset.byLink = "ran")';
  link.textContent = 'link';
  document.body.append(link);
  link.click();
}"""

MARKERS = "() => Object.keys(document.body.dataset).filter((k) => k.startsWith('by')).sort()"


def wait_until(page, predicate: str, timeout: float = 5) -> None:
    """Poll ``predicate`` with page.evaluate (wait_for_function compiles its predicate in the
    page, which the policy's script-src forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"still not true after {timeout}s: {predicate}"
        page.wait_for_timeout(50)


def violations(page) -> list[dict]:
    return page.evaluate("() => window.violations")


@pytest.fixture
def world(app, factory, client):
    app.config["INBOX_POLL_SECONDS"] = 0.5
    return build_world(app, factory, client, texts=with_payload)


def test_script_put_into_a_real_page_is_refused_while_the_apps_own_scripts_run(
    app, page, world, live_server
):
    console: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, live_server, world.user("leader").email)
    thread = f"{live_server}/trips/{world.ids['trip']}/inbox/{world.ids['code']}"
    with page.expect_request(re.compile(r"/inbox/\d+\.json$")):
        page.goto(thread)  # thread.js polls the conversation: the app's own script runs

    # The payloads in the parent's name and text are on the page as text, and ran nothing.
    expect(page.get_by_role("heading", level=1)).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("#conversation")).to_contain_text('"><img src=x onerror=alert(1)>')
    assert page.locator("img[src=x]").count() == 0
    # compose.js is running too: it shows the character count, hidden without script.
    page.get_by_label("Your message").fill("Hello")
    expect(page.locator("#body-count")).to_have_text("5 of 1,600 characters")

    page.evaluate(LISTEN)
    page.evaluate(INJECT)
    # Each of the three is either refused (a violation) or ran (a marker): wait for all three.
    wait_until(page, f"() => window.violations.length + ({MARKERS})().length >= 3")
    page.wait_for_timeout(200)  # time for anything else that was going to run
    assert page.evaluate(MARKERS) == []
    refused = violations(page)
    assert len(refused) >= 3 and all(v["directive"].startswith("script-src") for v in refused)
    assert any("Content Security Policy" in line for line in console), console
    assert dialogs == []
    # The page still works after the attempt: the app's script keeps counting.
    page.get_by_label("Your message").fill("Hello again")
    expect(page.locator("#body-count")).to_have_text("11 of 1,600 characters")


def test_the_same_injection_runs_on_a_page_without_the_policy(page):
    page.set_content("<!doctype html><html><body><p>No policy here.</p></body></html>")
    page.evaluate(LISTEN)
    page.evaluate(INJECT)
    wait_until(page, "() => Object.keys(document.body.dataset).length === 3")
    assert page.evaluate(MARKERS) == ["byHandler", "byLink", "byScript"]
    assert violations(page) == []


# compose.js shows the counter under the box: proof that the app's own script runs here.
UNSAFE_PAGE = """{% extends "base.html" %}
{% block content %}<h1>Unsafe</h1><p id="echo">{{ text|safe }}</p>
<textarea id="body"></textarea>
<p class="hint counter" id="body-count" data-counts="body" data-max="10" hidden></p>
{% endblock %}
{% block scripts %}
<script type="module" src="{{ url_for('static', filename='js/compose.js') }}"></script>
{% endblock %}"""


def test_a_payload_printed_unescaped_runs_nothing(app, page, live_server):
    payload = (
        '<script>document.body.dataset.byScript = "ran"</script>'
        '"><img src=x onerror="document.body.dataset.byHandler = \'ran\'">'
    )

    # A page as it would be if a template marked a user's words safe: for this test only.
    @app.route("/unsafe-echo")
    def unsafe_echo():
        return render_template_string(UNSAFE_PAGE, text=payload)

    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    response = page.goto(f"{live_server}/unsafe-echo")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("#echo img").count() == 1  # the markup really is on the page
    expect(page.locator("#body-count")).to_be_visible()  # the app's own script ran
    page.wait_for_timeout(200)
    assert page.evaluate(MARKERS) == []
    refusals = [line for line in console if "Content Security Policy" in line]
    assert len(refusals) >= 2, console
