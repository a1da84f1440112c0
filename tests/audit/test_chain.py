import importlib.util
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import select
from sqlalchemy.exc import DatabaseError

from tripcomms.audit.models import GENESIS_HASH, AuditEvent
from tripcomms.audit.operations import SYSTEM, record, verify_chain
from tripcomms.extensions import db


def write_events(app, n: int) -> None:
    with app.app_context():
        for i in range(n):
            record(SYSTEM, "test.event", number=i, note="ünïcode ✓")
        db.session.commit()


def run_in_migration(app, function_name: str) -> None:
    """Call a helper of the first migration, as Alembic would, on the test database."""
    path = Path(__file__).resolve().parents[2] / "migrations/versions/0001_users_audit.py"
    spec = importlib.util.spec_from_file_location("migration_0001", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with app.app_context(), db.engine.begin() as conn:
        context = MigrationContext.configure(conn)
        with Operations.context(context):
            getattr(module, function_name)()


@pytest.fixture
def triggers_dropped(app):
    """What someone with database access could do; put back afterwards (PostgreSQL keeps the
    schema between tests)."""
    run_in_migration(app, "drop_append_only_triggers")
    yield
    run_in_migration(app, "install_append_only_triggers")


def test_events_form_a_chain(app):
    write_events(app, 3)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[0].prev_hash == GENESIS_HASH
        assert events[1].prev_hash == events[0].hash
        assert events[2].prev_hash == events[1].hash
        assert events[2].data == {"number": 2, "note": "ünïcode ✓"}
        result = verify_chain()
        assert result.ok and result.checked == 3


def test_record_takes_a_subject_and_actor(app, factory):
    user = factory.user("admin")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
        assert (event.subject_type, event.subject_id) == ("users", str(user.id))
        assert event.actor == "test"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'forged' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
    ],
)
def test_plain_sql_cannot_change_the_log(app, statement):
    write_events(app, 2)
    with app.app_context():
        with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text(statement))
        assert verify_chain().ok


def test_truncate_is_refused_on_postgres(app):
    write_events(app, 1)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            # SQLite has no TRUNCATE; DELETE without WHERE is its equivalent.
            statement = "DELETE FROM audit_events"
        else:
            statement = "TRUNCATE audit_events"
        with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text(statement))


def test_verify_finds_an_altered_row(app, runner, triggers_dropped):
    write_events(app, 5)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET action = 'forged' WHERE seq = 3"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "audit chain broken at sequence 3" in result.output
    assert "do not match its hash" in result.output


def test_verify_finds_a_deleted_row_and_a_cut_tail(app, triggers_dropped):
    write_events(app, 5)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 5"))
        result = verify_chain()
        assert (result.bad_seq, result.checked) == (5, 4)
        assert "ends early" in result.reason
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 2"))
        result = verify_chain()
        assert result.bad_seq == 2
        assert "missing" in result.reason


def test_verify_finds_a_rewritten_chain_that_does_not_match_the_head(app, triggers_dropped):
    """Rehashing the tail by hand still leaves the head row pointing at the old hash."""
    write_events(app, 3)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE audit_events SET hash = :h WHERE seq = 3"), {"h": "f" * 64}
            )
        assert verify_chain().bad_seq == 3


def test_triggers_are_back_after_a_test_that_dropped_them(app):
    write_events(app, 1)
    with (
        app.app_context(),
        pytest.raises(DatabaseError, match="append-only"),
        db.engine.begin() as conn,
    ):
        conn.execute(sa.text("DELETE FROM audit_events"))


def test_verify_cli_success(app, runner):
    write_events(app, 4)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert result.output.strip() == "audit chain OK: 4 events checked"


def test_concurrent_writers_never_fork_the_chain(app):
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer():
        try:
            start.wait()
            for _ in range(10):
                write_events(app, 1)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        result = verify_chain()
        assert result.ok, result
        assert result.checked == 40
