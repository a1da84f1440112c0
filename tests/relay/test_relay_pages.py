"""The office's review queue, the head's list of unapproved attempts, the sender's start."""

import threading

from tests.relay.scenario import SCHOOL_PHONE, e164
from tripcomms.relay.models import Kind


def test_office_reviews_texts_that_reached_no_trip(scenario, app, factory):
    scenario.text(e164(500), "Who is this?")
    scenario.text(e164(1), "hello", to="+441234000099")
    office = factory.user("office")
    client = app.test_client()
    client.login(office.email)
    page = client.get("/relay/review").get_data(as_text=True)
    assert "Who is this?" in page and "unknown number; not relayed" in page
    assert "07400 000500" in page  # the office sees numbers
    assert "2</strong> texts reached no trip" in client.get("/").get_data(as_text=True)
    first = scenario.inbound()[0]
    response = client.post_form(f"/relay/review/{first.id}", follow_redirects=True)
    assert "Marked as dealt with" in response.get_data(as_text=True)
    assert "Who is this?" not in client.get("/relay/review").get_data(as_text=True)
    # A relayed message is not in the queue, so it cannot be marked.
    scenario.text(e164(1), "normal")
    relayed = scenario.inbound()[-1]
    assert relayed.kind == Kind.FROM_CONTACT
    assert client.post_form(f"/relay/review/{relayed.id}").status_code == 404


def test_leaders_cannot_see_the_review_queue(scenario, app):
    client = app.test_client()
    client.login(scenario.leader.email)
    assert client.get("/relay/review").status_code == 403


def test_script_in_a_parent_text_is_shown_as_text(scenario, app, factory):
    scenario.text(e164(500), "<script>alert('x')</script>")
    office = factory.user("office")
    client = app.test_client()
    client.login(office.email)
    page = client.get("/relay/review").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_head_sees_unapproved_personal_phone_attempts(scenario, app, factory):
    scenario.text(e164(900), "#1 from my own phone")
    head = factory.user("head")
    client = app.test_client()
    client.login(head.email)
    page = client.get("/").get_data(as_text=True)
    assert "Texts from unapproved staff phones (policy 50)" in page
    assert "Liam Leader, Science Museum: not relayed" in page


def test_in_process_sender_starts_with_the_first_request_and_sends(scenario, app, monkeypatch):
    from tripcomms.relay import outbox

    app.config.update(SEND_IN_PROCESS=True, SENDER_POLL_SECONDS=0.05)
    sent = threading.Event()

    class Gateway(type(scenario.gateway)):
        def send(self, *args):
            result = super().send(*args)
            sent.set()
            return result

    gateway = Gateway()
    monkeypatch.setattr(outbox, "gateway_from_config", lambda config: gateway)
    try:
        assert not outbox.in_process_sender_alive(app)
        scenario.text(e164(1), "hello")  # the first request starts the sender
        assert outbox.in_process_sender_alive(app)
        assert sent.wait(5)
        assert gateway.sent[0][0] == SCHOOL_PHONE
    finally:
        outbox.stop_in_process(app)


def test_worker_once(scenario, app, runner, monkeypatch):
    from tripcomms.relay import outbox

    monkeypatch.setattr(outbox, "gateway_from_config", lambda config: scenario.gateway)
    scenario.text(e164(1), "hello")
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0
    assert result.output.strip() == "1 messages handled"
    assert scenario.gateway.sent[0][0] == SCHOOL_PHONE
