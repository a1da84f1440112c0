"""The simulated REST API at the HTTP level: what the twilio library cannot be made to send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.simulator.fixtures import AUTH_TOKEN, OTHER_PARENT, PARENT, TWILIO_NUMBER

SID = "AC" + "1" * 32
AUTH = (SID, AUTH_TOKEN)
ERROR_KEYS = {"code", "message", "more_info", "status"}


@pytest.fixture
def api(live_sim) -> str:
    return f"{live_sim}/sim/twilio/2010-04-01/Accounts/{SID}"


def assert_twilio_error(response: requests.Response, status: int, code: int) -> None:
    assert response.status_code == status
    payload = response.json()
    assert set(payload) == ERROR_KEYS
    assert (payload["status"], payload["code"]) == (status, code)
    assert payload["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert payload["message"]


def test_every_route_needs_the_account_credentials(api):
    for method, path in [
        ("POST", "/Messages.json"),
        ("GET", "/Messages.json"),
        ("GET", "/Messages/SMx.json"),
        ("GET", "/IncomingPhoneNumbers.json"),
        ("GET", "/IncomingPhoneNumbers/PNx.json"),
        ("POST", "/IncomingPhoneNumbers/PNx.json"),
        ("GET", "/Messages/SMx/Media/MEx"),
    ]:
        for auth in (None, (SID, "wrong"), ("AC" + "2" * 32, AUTH_TOKEN)):
            response = requests.request(method, api + path, auth=auth, timeout=5)
            assert_twilio_error(response, 401, 20003)
            assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_the_account_in_the_path_must_be_the_callers(live_sim):
    other = f"{live_sim}/sim/twilio/2010-04-01/Accounts/AC{'2' * 32}/IncomingPhoneNumbers.json"
    assert_twilio_error(requests.get(other, auth=AUTH, timeout=5), 401, 20003)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": TWILIO_NUMBER, "Body": "hi"}, 21604),
        ({"To": "07812345678", "From": TWILIO_NUMBER, "Body": "hi"}, 21211),
        ({"To": "+4412", "From": TWILIO_NUMBER, "Body": "hi"}, 21211),
        ({"To": PARENT, "From": "+447922234567", "Body": "hi"}, 21606),
        ({"To": PARENT, "Body": "hi"}, 21606),
        ({"To": PARENT, "From": TWILIO_NUMBER}, 21602),
        ({"To": PARENT, "From": TWILIO_NUMBER, "Body": "x" * 1601}, 21617),
    ],
)
def test_messages_create_validates_like_twilio(api, sim, twilio_number, form, code):
    response = requests.post(api + "/Messages.json", data=form, auth=AUTH, timeout=5)

    assert_twilio_error(response, 400, code)
    assert sim.messages() == []
    assert [(c.http_status, c.code) for c in sim.create_calls()] == [(400, code)]


def test_messages_create_answers_201_with_the_message(api, sim, twilio_number):
    body = "Coach delayed: back at 3.40pm. " * 6  # 186 GSM characters: two segments
    form = {"To": PARENT, "From": TWILIO_NUMBER, "Body": body, "StatusCallback": "http://x/s"}

    response = requests.post(api + "/Messages.json", data=form, auth=AUTH, timeout=5)

    assert response.status_code == 201
    message = response.json()
    assert message["status"] == "queued"
    assert message["direction"] == "outbound-api"
    assert (message["to"], message["from"], message["body"]) == (PARENT, TWILIO_NUMBER, body)
    assert (message["num_segments"], message["num_media"]) == ("2", "0")
    assert message["error_code"] is None and message["error_message"] is None
    assert message["date_created"].endswith("+0000")
    assert message["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{message['sid']}.json"
    assert message["account_sid"] == SID
    assert sim.message(message["sid"]).status_callback == "http://x/s"


def test_unknown_resources_answer_20404(api):
    for method, path in [
        ("GET", "/Messages/SM" + "0" * 32 + ".json"),
        ("GET", "/IncomingPhoneNumbers/PN" + "0" * 32 + ".json"),
        ("POST", "/IncomingPhoneNumbers/PN" + "0" * 32 + ".json"),
    ]:
        response = requests.request(method, api + path, auth=AUTH, timeout=5)
        assert_twilio_error(response, 404, 20404)


def test_numbers_are_listed_in_pages(live_sim, api, sim):
    numbers = [f"+4477123456{n:02d}" for n in range(5)]
    for number in numbers:
        sim.add_number(number)

    seen = []
    url = api + "/IncomingPhoneNumbers.json?PageSize=2"
    pages = []
    while url:
        page = requests.get(url, auth=AUTH, timeout=5).json()
        pages.append(page)
        seen += [n["phone_number"] for n in page["incoming_phone_numbers"]]
        url = page["next_page_uri"] and f"{live_sim}/sim/twilio{page['next_page_uri']}"

    assert seen == numbers
    assert [(p["page"], p["page_size"], p["start"], p["end"]) for p in pages] == [
        (0, 2, 0, 1),
        (1, 2, 2, 3),
        (2, 2, 4, 4),
    ]
    assert pages[0]["previous_page_uri"] is None
    assert parse_qs(urlsplit(pages[2]["previous_page_uri"]).query)["Page"] == ["1"]
    assert pages[1]["first_page_uri"].startswith(f"/2010-04-01/Accounts/{SID}/")


def test_numbers_can_be_found_by_phone_number(api, sim):
    sim.add_number(TWILIO_NUMBER)
    sim.add_number("+447712345600")

    page = requests.get(
        api + "/IncomingPhoneNumbers.json",
        params={"PhoneNumber": TWILIO_NUMBER},
        auth=AUTH,
        timeout=5,
    ).json()

    assert [n["phone_number"] for n in page["incoming_phone_numbers"]] == [TWILIO_NUMBER]
    assert "PhoneNumber=%2B447401234567" in page["uri"]


def test_update_changes_only_the_fields_given(api, sim):
    sid = sim.add_number(TWILIO_NUMBER, friendly_name="Trips 1")
    url = f"{api}/IncomingPhoneNumbers/{sid}.json"

    first = requests.post(url, data={"SmsUrl": "https://t.example/sms"}, auth=AUTH, timeout=5)
    second = requests.post(
        url, data={"StatusCallback": "https://t.example/status"}, auth=AUTH, timeout=5
    )

    assert first.status_code == second.status_code == 200
    number = second.json()
    assert number["sms_url"] == "https://t.example/sms"
    assert number["status_callback"] == "https://t.example/status"
    assert number["friendly_name"] == "Trips 1"
    assert requests.get(url, auth=AUTH, timeout=5).json() == number


def test_add_number_is_idempotent_and_checks_the_number(sim):
    sid = sim.add_number(TWILIO_NUMBER)
    assert sim.add_number(TWILIO_NUMBER) == sid
    assert [n.sid for n in sim.numbers()] == [sid]
    with pytest.raises(ValueError, match=r"E\.164"):
        sim.add_number("07401 234567")


def create(api: str, to: str, body: str, from_: str = TWILIO_NUMBER) -> str:
    form = {"To": to, "From": from_, "Body": body}
    response = requests.post(api + "/Messages.json", data=form, auth=AUTH, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["sid"]


def read_all(live_sim: str, url: str) -> tuple[list[dict], list[dict]]:
    """Every message of a Messages list, following next_page_uri; and the pages."""
    pages = []
    while url:
        response = requests.get(url, auth=AUTH, timeout=5)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = pages[-1]["next_page_uri"] and f"{live_sim}/sim/twilio{pages[-1]['next_page_uri']}"
    return [m for page in pages for m in page["messages"]], pages


def test_messages_are_listed_newest_first_by_to_and_from_in_pages(live_sim, api, sim):
    sim.add_number(TWILIO_NUMBER)
    other_number = "+447712345600"
    sim.add_number(other_number)
    mine = [create(api, PARENT, f"text {n}") for n in range(5)]
    create(api, OTHER_PARENT, "text to someone else")
    create(api, PARENT, "text from the other number", from_=other_number)
    sim.wait_idle()

    query = "?To=%2B447812345678&From=%2B447401234567&PageSize=2"
    listed, pages = read_all(live_sim, api + "/Messages.json" + query)

    assert [m["sid"] for m in listed] == mine[::-1]
    assert [(p["page"], p["page_size"], p["start"], p["end"]) for p in pages] == [
        (0, 2, 0, 1),
        (1, 2, 2, 3),
        (2, 2, 4, 4),
    ]
    assert pages[0]["previous_page_uri"] is None and pages[2]["next_page_uri"] is None
    next_query = parse_qs(urlsplit(pages[0]["next_page_uri"]).query)
    assert next_query == {
        "To": [PARENT],
        "From": [TWILIO_NUMBER],
        "PageSize": ["2"],
        "Page": ["1"],
    }
    everything, _ = read_all(live_sim, api + "/Messages.json")
    assert len(everything) == 7


def test_messages_can_be_filtered_by_the_day_they_were_sent(api, sim, twilio_number):
    sent = create(api, PARENT, "Back at 3")
    sim.wait_idle()
    sim.configure(delivery_delay=30)  # the next text stays queued: it has no date sent
    queued = create(api, PARENT, "Back at 4")
    today = datetime.now(UTC).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)

    def sids(**filters: str) -> list[str]:
        response = requests.get(api + "/Messages.json", params=filters, auth=AUTH, timeout=5)
        assert response.status_code == 200, response.text
        return [m["sid"] for m in response.json()["messages"]]

    assert sids() == [queued, sent]
    assert sids(**{"DateSent>": today.isoformat()}) == [sent]
    assert sids(**{"DateSent>": yesterday.isoformat()}) == [sent]
    assert sids(**{"DateSent>": tomorrow.isoformat()}) == []
    assert sids(**{"DateSent<": today.isoformat()}) == [sent]
    assert sids(**{"DateSent<": yesterday.isoformat()}) == []
    assert sids(DateSent=today.isoformat()) == [sent]
    assert sids(DateSent=tomorrow.isoformat()) == []
    # The twilio library sends a datetime as an ISO time: its day counts.
    assert sids(**{"DateSent>": f"{today.isoformat()}T23:59:59Z"}) == [sent]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "26/11/2026"])
def test_a_date_sent_that_is_not_a_date_is_refused(api, value):
    response = requests.get(
        api + "/Messages.json", params={"DateSent>": value}, auth=AUTH, timeout=5
    )

    assert_twilio_error(response, 400, 20001)
    assert "DateSent>" in response.json()["message"]
