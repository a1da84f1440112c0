"""CSV exports of the log: the columns, masked numbers, streaming in constant memory, the CLI."""

import csv
import io
import tracemalloc
from datetime import timedelta

from sqlalchemy import select

from tests.record import MARY, SCHOOL_PHONE, TRIP_NUMBER, bulk_messages
from tripcomms.audit.export import COLUMNS
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.localtime import LONDON
from tripcomms.relay.models import Message
from tripcomms.types import utcnow


def parse(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_of_a_search_has_every_column(rec):
    rec.s.text(MARY, "Has the coach left yet?")
    rec.s.text(SCHOOL_PHONE, "#1 The coach left at 9")
    response = rec.login(rec.head).get("/log/export.csv", query_string={"text": "coach"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    rows = parse(text)
    parent = next(r for r in rows if r["kind"] == "from_contact")
    assert (parent["direction"], parent["from_role"], parent["from_name"]) == (
        "in",
        "parent or carer",
        "Mary Jones",
    )
    assert (parent["from_number"], parent["to_role"], parent["to_number"]) == (
        MARY,
        "trip number",
        TRIP_NUMBER,
    )
    assert parent["body"] == "Has the coach left yet?" and parent["status"] == "received"
    assert parent["twilio_sid"].startswith("SM")
    with rec.app.app_context():
        message = db.session.get(Message, int(parent["message_id"]))
        assert parent["time_utc"] == message.created_at.strftime("%Y-%m-%d %H:%M:%S")
        local = message.created_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M:%S")
        assert parent["time_local"] == local
    reply = next(r for r in rows if r["kind"] == "to_contact")
    assert (reply["from_role"], reply["to_role"], reply["to_name"]) == (
        "trip number",
        "parent or carer",
        "Mary Jones",
    )
    forward = next(r for r in rows if r["kind"] == "forward")
    assert (forward["to_role"], forward["to_name"], forward["to_number"]) == (
        "staff",
        "Liam Leader",
        SCHOOL_PHONE,
    )


def test_numbers_are_masked_for_leaders_and_whole_for_head_dsl_auditor(rec):
    rec.s.text(MARY, "Hello")
    leader = parse(rec.login(rec.s.leader).get("/log/export.csv").get_data(as_text=True))
    numbers = {r[k] for r in leader for k in ("from_number", "to_number")}
    assert numbers and all(n.startswith("•••") and len(n) == 6 for n in numbers)
    for user in (rec.head, rec.dsl, rec.auditor):
        rows = parse(rec.login(user).get("/log/export.csv").get_data(as_text=True))
        assert MARY in {r["from_number"] for r in rows}, user.name


def test_an_export_is_itself_recorded(rec):
    rec.s.text(MARY, "Hello")
    rec.login(rec.auditor).get("/log/export.csv", query_string={"text": "hello"})
    with rec.app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "log.exported"))
        assert event.actor_id == rec.auditor.id
        assert event.data["words"] == 1 and "hello" not in str(event.data).lower()


def test_formulas_in_texts_are_neutralised_for_spreadsheets(rec):
    rec.s.text(MARY, '=HYPERLINK("http://evil.example","click")')
    rows = parse(rec.login(rec.head).get("/log/export.csv").get_data(as_text=True))
    inbound = next(r for r in rows if r["kind"] == "from_contact")
    assert inbound["body"] == '\'=HYPERLINK("http://evil.example","click")'


def test_a_bad_export_request_is_refused_with_the_form(rec):
    response = rec.login(rec.head).get("/log/export.csv", query_string={"date_from": "2026-02-30"})
    assert response.status_code == 422
    assert "text/html" in response.content_type


def streamed_peak(client, url: str) -> tuple[int, int]:
    """Read a streamed response chunk by chunk; (peak traced memory, bytes received)."""
    tracemalloc.start()
    try:
        response = client.get(url, buffered=False)
        assert response.is_streamed
        received = 0
        for chunk in response.response:
            received += len(chunk)
        response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, received


def test_export_streams_in_constant_memory(rec):
    """Ten times the rows, about the same memory: rows are never all held at once."""
    bulk_messages(rec.app, 2_000, trip_id=rec.s.trip_id, body=lambda i: f"short {i} " * 8)
    client = rec.login(rec.head)
    small_peak, small_size = streamed_peak(client, "/log/export.csv")
    bulk_messages(
        rec.app,
        18_000,
        trip_id=rec.s.trip_id,
        start=utcnow() - timedelta(days=30),
        body=lambda i: f"short {i} " * 8,
    )
    big_peak, big_size = streamed_peak(client, "/log/export.csv")
    assert big_size > 9 * small_size
    # What grows with the rows is the output, which is never held: the peak stays put.
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak)
    assert big_peak < big_size, (big_peak, big_size)


# --- The command line -------------------------------------------------------------------------


def test_cli_export_to_standard_output_with_full_numbers(rec, runner):
    rec.s.text(MARY, "Has the coach left yet?")
    result = runner.invoke(args=["audit", "export"])
    assert result.exit_code == 0, result.output
    rows = parse(result.stdout)
    assert rows[0]["body"] == "Has the coach left yet?" and rows[0]["from_number"] == MARY
    assert result.stderr == ""  # progress only on a terminal


def test_cli_export_to_a_file_by_trip_and_dates(rec, runner, tmp_path):
    rec.s.text(MARY, "Hello")
    target = tmp_path / "exports" / "out.csv"
    target.parent.mkdir()
    today = utcnow().astimezone(LONDON).date()
    result = runner.invoke(
        args=[
            "audit",
            "export",
            "--trip",
            str(rec.s.trip_id),
            "--from",
            (today - timedelta(days=1)).isoformat(),
            "--to",
            today.isoformat(),
            "--output",
            str(target),
        ]
    )
    assert result.exit_code == 0, result.output
    rows = parse(target.read_text(encoding="utf-8"))
    assert len(rows) == 2 and {r["trip_id"] for r in rows} == {str(rec.s.trip_id)}
    assert result.stdout.strip() == f"2 messages exported to {target}"
    other = runner.invoke(args=["audit", "export", "--trip", str(rec.other_trip_id)])
    assert parse(other.stdout) == []
    before = runner.invoke(
        args=["audit", "export", "--to", (today - timedelta(days=3)).isoformat()]
    )
    assert parse(before.stdout) == []
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]  # no temporary file left


def test_cli_export_refuses_bad_input_in_one_line(rec, runner, tmp_path):
    cases = [
        (["--from", "14/03/2026"], "--from must be a date like 2026-03-14"),
        (["--from", "2026-03-14", "--to", "2026-03-01"], "--to is before --from"),
        (["--trip", "999"], "there is no trip 999"),
        (["--to", "1900-01-01"], "--to must be a date from 2000 to 2099"),
        (["--output", str(tmp_path / "missing" / "x.csv")], "there is no folder"),
    ]
    for args, message in cases:
        result = runner.invoke(args=["audit", "export", *args])
        assert result.exit_code == 1, args
        assert message in result.output and len(result.output.strip().splitlines()) == 1
