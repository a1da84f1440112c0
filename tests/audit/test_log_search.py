"""The communication log: search by every filter, full-text search, paging, who sees what."""

import random
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from tests.record import ANN, MARY, SCHOOL_PHONE, TOM, bulk_messages
from tripcomms.audit import search
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.relay.models import Kind, Message
from tripcomms.types import utcnow


def chat(rec):
    """A morning on the trip: three parents text, the leader answers one of them."""
    s = rec.s
    s.text(MARY, "Has the coach left yet?")
    s.text(TOM, "Sam forgot his packed lunch")
    s.text(ANN, "Ella feels coach sick, please sit her at the front")
    s.text(SCHOOL_PHONE, "#1 The coach left at 9, all fine")


def found(app, user_id, **filters):
    with app.app_context():
        user = db.session.get(User, user_id)
        page = search.search_page(user, search.LogFilter(**filters))
        rows = [(m.direction, m.kind, m.body) for m in page.items]
        db.session.expunge_all()
        return page, rows


def test_text_search_uses_the_index_and_needs_every_word(rec):
    chat(rec)
    page, rows = found(rec.app, rec.head.id, text="coach", direction="in")
    assert [body for _, _, body in rows] == [
        "#1 The coach left at 9, all fine",
        "Ella feels coach sick, please sit her at the front",
        "Has the coach left yet?",
    ]
    assert page.total == 3
    _, rows = found(rec.app, rec.head.id, text="COACH sick", direction="in")
    assert [body for _, _, body in rows] == ["Ella feels coach sick, please sit her at the front"]


def test_results_are_newest_first_or_oldest_first(rec):
    chat(rec)
    _, newest = found(rec.app, rec.head.id, direction="in")
    _, oldest = found(rec.app, rec.head.id, direction="in", newest_first=False)
    assert [b for *_, b in oldest] == [b for *_, b in reversed(newest)]
    assert oldest[0][2] == "Has the coach left yet?"


def test_filters_by_trip_person_staff_direction_and_status(rec):
    chat(rec)
    app, head = rec.app, rec.head.id
    _, rows = found(app, head, person="ella", direction="in")
    assert [b for *_, b in rows] == ["Ella feels coach sick, please sit her at the front"]
    # A pupil's name finds both of Sam's parents.
    _, rows = found(app, head, person="Sam Jones", direction="in")
    assert sorted(b for *_, b in rows) == ["Has the coach left yet?", "Sam forgot his packed lunch"]
    _, rows = found(app, head, staff_id=rec.s.leader.id, direction="in")
    assert [k for _, k, _ in rows] == [Kind.COMMAND]
    _, rows = found(app, head, status="pending", text="coach left")
    assert {k for _, k, _ in rows} >= {Kind.TO_CONTACT, Kind.FORWARD}
    _, rows = found(app, head, trip_id=rec.other_trip_id)
    assert rows == []
    with app.app_context():
        mary = db.session.scalar(select(Message.contact_id).where(Message.from_number == MARY))
    _, rows = found(app, head, contact_id=mary, direction="in")
    assert [b for *_, b in rows] == ["Has the coach left yet?"]


def test_dates_are_uk_days_both_ends_included(rec):
    chat(rec)
    today = utcnow().date()
    _, rows = found(rec.app, rec.head.id, date_from=today - timedelta(days=1), date_to=today)
    assert len(rows) > 4
    _, rows = found(rec.app, rec.head.id, date_to=today - timedelta(days=2))
    assert rows == []


@pytest.mark.parametrize(
    "typed",
    [
        '"',
        '"coach',
        "coach*",
        "*",
        "OR",
        "coach OR",
        "NEAR",
        "NEAR(coach lunch)",
        "%",
        "%coach%",
        "'",
        "it's",
        "(",
        ")",
        "((coach",
        "coach)",
        "NOT coach",
        "AND",
        "-coach",
        "^coach",
        "body:coach",
        "col:{x}",
        "\\",
        "_",
        "\u0000",
        "🙂 coach",
        "x" * 500,
    ],
)
def test_search_text_of_any_kind_is_never_an_error(rec, typed):
    chat(rec)
    client = rec.login(rec.head)
    response = client.get("/log", query_string={"text": typed})
    assert response.status_code in (200, 422)
    if len(typed) <= 200:
        assert response.status_code == 200
        assert "No message matches" in response.get_data(as_text=True) or "message" in (
            response.get_data(as_text=True)
        )


def test_query_syntax_is_searched_as_words(rec):
    s = rec.s
    s.text(MARY, "Is it this OR that?")
    s.text(TOM, "NEAR the museum shop")
    s.text(ANN, "price 100% sure")
    app, head = rec.app, rec.head.id
    assert [b for *_, b in found(app, head, text="OR", direction="in")[1]] == [
        "Is it this OR that?"
    ]
    assert [b for *_, b in found(app, head, text='"NEAR"', direction="in")[1]] == [
        "NEAR the museum shop"
    ]
    assert [b for *_, b in found(app, head, text="100%", direction="in")[1]] == ["price 100% sure"]
    # Punctuation alone holds no word: nothing matches, nothing fails.
    page, rows = found(app, head, text='"*()%')
    assert rows == [] and page.total == 0


def test_ten_years_of_dates_and_bad_dates(rec):
    chat(rec)
    client = rec.login(rec.auditor)
    ten_years = {"date_from": "2016-09-01", "date_to": "2026-12-31"}
    response = client.get("/log", query_string=ten_years)
    assert response.status_code == 200
    assert "Has the coach left yet?" in response.get_data(as_text=True)
    bad = [
        {"date_from": "2026-13-45"},
        {"date_from": "2026-05-01", "date_to": "2026-04-01"},
        {"date_to": "1066-10-14"},
        {"date_to": "9999-12-31"},
        {"trip": "99999"},
        {"contact": "1e9999"},
        {"contact": "9" * 40},
    ]
    for query in bad:
        response = client.get("/log", query_string=query)
        assert response.status_code == 422, query
    assert "the end date is before the start date" in client.get(
        "/log", query_string=bad[1]
    ).get_data(as_text=True)
    # A page far past the end is simply empty.
    assert client.get("/log", query_string={"page": "99999999999999999999"}).status_code == 200


def test_paging_is_by_time_and_counts_stop_at_a_thousand(rec):
    bulk_messages(rec.app, 1200, trip_id=rec.s.trip_id)
    page, _ = found(rec.app, rec.head.id, text="coach")
    assert page.more_than_total and page.total_text == "more than 1,000" and page.has_next
    with rec.app.app_context():
        user = db.session.get(User, rec.head.id)
        second = search.search_page(user, search.LogFilter(text="coach"), page=2)
        assert second.items[0].body == "message number 1174 about the coach"


def exact_order(app, user_id, flt, page, per_page=25):
    with app.app_context():
        user = db.session.get(User, user_id)
        query = search.search_query(user, flt).offset((page - 1) * per_page).limit(per_page)
        return [m.id for m in db.session.scalars(query)]


def page_ids(app, user_id, flt, page):
    with app.app_context():
        user = db.session.get(User, user_id)
        return [m.id for m in search.search_page(user, flt, page).items]


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_page_is_exactly_the_time_order_even_when_ids_do_not_follow_time(rec, shuffle):
    """SQLite looks for the page among the newest matches by id; it must never be wrong."""
    bulk_messages(rec.app, 2500, trip_id=rec.s.trip_id)
    if shuffle:
        with rec.app.app_context():
            rows = db.session.execute(select(Message.id, Message.created_at)).all()
            times = [at for _, at in rows]
            random.Random(7).shuffle(times)
            for (mid, _), at in zip(rows, times, strict=True):
                db.session.execute(
                    sa.update(Message).where(Message.id == mid).values(created_at=at)
                )
            db.session.commit()
    bulk_messages(rec.app, 300, trip_id=rec.other_trip_id)
    filters = (
        search.LogFilter(text="coach"),
        search.LogFilter(text="coach", newest_first=False),
        search.LogFilter(text="coach", trip_id=rec.s.trip_id),
    )
    for user in (rec.head, rec.s.leader, rec.other_leader):
        for flt in filters:
            for page in (1, 2, 40):
                assert page_ids(rec.app, user.id, flt, page) == exact_order(
                    rec.app, user.id, flt, page
                ), (user.name, flt, page)


def test_leaders_search_only_their_trips_and_never_see_numbers(rec):
    chat(rec)
    rec.s.text(MARY, "To a number with no trip", to="+441234000099")
    app = rec.app
    _, leader_rows = found(app, rec.s.leader.id)
    _, head_rows = found(app, rec.head.id)
    assert len(leader_rows) == len(head_rows) - 2  # not the no-trip text nor its auto-reply
    assert found(app, rec.other_leader.id)[1] == []
    assert found(app, rec.other_leader.id, text="coach")[1] == []
    assert (
        found(app, rec.s.leader.id, text="coach")[1]
        == found(app, rec.head.id, text="coach", trip_id=rec.s.trip_id)[1]
    )
    client = rec.login(rec.s.leader)
    page = client.get("/log", query_string={"text": "coach"}).get_data(as_text=True)
    assert "Has the coach left yet?" in page
    for number in (MARY, ANN, SCHOOL_PHONE):
        assert number not in page and number[-9:] not in page
    assert "•••" + MARY[-3:] in page
    head_page = rec.login(rec.head).get("/log", query_string={"text": "coach"})
    assert MARY in head_page.get_data(as_text=True)


def test_who_may_open_the_log(rec):
    chat(rec)
    for user, code in [
        (rec.office, 403),
        (rec.s.leader, 200),
        (rec.dsl, 200),
        (rec.auditor, 200),
        (rec.head, 200),
    ]:
        assert rec.login(user).get("/log").status_code == code, user.name


def test_a_message_record_has_its_history_causes_and_sender(rec):
    chat(rec)
    s = rec.s
    s.send_all()
    reply = next(m for m in s.outbound(kind=Kind.TO_CONTACT))
    s.status(reply.twilio_sid, "sent")
    s.status(reply.twilio_sid, "delivered")
    command = next(m for m in s.inbound() if m.kind == Kind.COMMAND)
    client = rec.login(rec.auditor)
    page = client.get(f"/log/messages/{reply.id}").get_data(as_text=True)
    assert "Twilio: sent" in page and "Twilio: delivered" in page
    assert "Liam Leader" in page and SCHOOL_PHONE in page  # who sent it, from which phone
    assert "The coach left at 9, all fine" in page
    assert f"/log/messages/{command.id}" in page  # what it answered
    command_page = client.get(f"/log/messages/{command.id}").get_data(as_text=True)
    assert f"/log/messages/{reply.id}" in command_page  # what it caused
    assert "receipt" in command_page
    assert "Report a concern" not in command_page  # auditors report nothing


def test_a_failed_text_and_its_re_send_link_to_each_other(rec):
    chat(rec)
    s = rec.s
    s.send_all()
    failed = next(m for m in s.outbound(kind=Kind.TO_CONTACT))
    s.status(failed.twilio_sid, "undelivered", 30003)
    again = s.send_again(failed.id)
    command = next(m for m in s.inbound() if m.kind == Kind.COMMAND)
    for user in (rec.auditor, rec.s.leader):
        client = rec.login(user)
        page = client.get(f"/log/messages/{failed.id}").get_data(as_text=True)
        assert f'Sent again as <a href="/log/messages/{again}">message {again}</a>' in page
        assert "by Liam Leader" in page
        assert "It caused:" not in page  # a text sent again is no reply to the failed one
        page = client.get(f"/log/messages/{again}").get_data(as_text=True)
        assert f'A re-send of <a href="/log/messages/{failed.id}">message {failed.id}</a>' in page
        assert f'In answer to <a href="/log/messages/{command.id}">' in page
        page = client.get(f"/log/messages/{command.id}").get_data(as_text=True)
        assert f"/log/messages/{again}" in page and f"/log/messages/{failed.id}" in page
    # The links show only what the reader may open. The office opens texts in its review
    # queue: with the failed text put there, it sees that text but not the one sent again.
    with rec.app.app_context():
        db.session.get(Message, failed.id).needs_review = True
        db.session.commit()
    client = rec.login(rec.office)
    page = client.get(f"/log/messages/{failed.id}").get_data(as_text=True)
    assert "Sent again as" not in page and f"/log/messages/{again}" not in page
    assert client.get(f"/log/messages/{again}").status_code == 404
    with rec.app.app_context():
        db.session.get(Message, failed.id).needs_review = False
        db.session.get(Message, again).needs_review = True
        db.session.commit()
    page = client.get(f"/log/messages/{again}").get_data(as_text=True)
    assert "A re-send of" not in page and f"/log/messages/{failed.id}" not in page


def test_a_message_of_another_trip_is_not_found(rec):
    chat(rec)
    message = rec.s.inbound()[0]
    client = rec.login(rec.other_leader)
    assert client.get(f"/log/messages/{message.id}").status_code == 404
    assert client.get("/log/messages/999999").status_code == 404
    # The office opens texts in its review queue, and nothing else.
    rec.s.text("+447400123123", "who is this")
    stranger = rec.s.inbound()[-1]
    client = rec.login(rec.office)
    assert client.get(f"/log/messages/{stranger.id}").status_code == 200
    assert client.get(f"/log/messages/{message.id}").status_code == 404


def test_the_index_stays_current_and_is_in_place(rec):
    chat(rec)
    app = rec.app
    with app.app_context():
        message = db.session.scalar(select(Message).where(Message.body.like("%packed lunch%")))
        message.body = "replaced words"
        db.session.commit()
        if db.engine.dialect.name == "sqlite":
            names = set(
                db.session.scalars(
                    sa.text("SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'")
                )
            )
            assert {
                "messages_fts",
                "messages_fts_insert",
                "messages_fts_update",
                "messages_fts_delete",
            } <= names
        else:
            assert db.session.scalar(
                sa.text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_messages_body_fts'")
            )
    assert found(app, rec.head.id, text="packed lunch", direction="in")[1] == []
    assert [b for *_, b in found(app, rec.head.id, text="replaced")[1]] == ["replaced words"]


def test_dates_before_2000_or_after_2099_are_refused_not_overflowed(rec):
    client = rec.login(rec.head)
    assert client.get("/log", query_string={"date_to": date.max.isoformat()}).status_code == 422


def test_the_search_goes_through_the_full_text_index(rec):
    """On PostgreSQL the search's expression is the GIN index's, so the planner uses it; on
    SQLite the words are looked up in the FTS5 table."""
    with rec.app.app_context():
        user = db.session.get(User, rec.head.id)
        query = search.search_query(user, search.LogFilter(text="coach late"))
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
            rows = db.session.execute(sa.text(f"EXPLAIN {compiled}"))
            plan = "\n".join(row[0] for row in rows)
            db.session.rollback()
            assert "ix_messages_body_fts" in plan
        else:
            rows = db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
            plan = "\n".join(str(row[-1]) for row in rows)
            assert "messages_fts VIRTUAL TABLE INDEX" in plan, plan
