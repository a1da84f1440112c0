"""SQLite writers queue on a lock file and checkpoint after their commit (tripcomms.sqlite_writes).

These run on SQLite files of their own, whichever database the rest of the suite uses.
"""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tripcomms import create_app, sqlite_writes
from tripcomms.extensions import db
from tripcomms.sqlite_writes import QueuedWriterConnection, is_sqlite_file


def connect(path: Path) -> QueuedWriterConnection:
    connection = sqlite3.connect(
        path, factory=QueuedWriterConnection, check_same_thread=False, timeout=15
    )
    assert isinstance(connection, QueuedWriterConnection)
    return connection


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "queue.sqlite"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT UNIQUE)")
    setup.commit()
    setup.close()
    return path


def count(path: Path) -> int:
    reader = sqlite3.connect(path)
    try:
        return reader.execute("SELECT count(*) FROM notes").fetchone()[0]
    finally:
        reader.close()


class Writer(threading.Thread):
    """Inserts one note on its own connection and commits; records when it got through."""

    def __init__(self, path: Path, text: str) -> None:
        super().__init__(daemon=True)
        self.connection = connect(path)
        self.text = text
        self.error: BaseException | None = None
        self.done_at: float | None = None

    def run(self) -> None:
        try:
            self.connection.execute("INSERT INTO notes (text) VALUES (?)", (self.text,))
            self.connection.commit()
            self.done_at = time.monotonic()
        except BaseException as error:
            self.error = error


def test_a_second_writer_waits_in_line_and_goes_when_the_first_commits(database):
    first = connect(database)
    first.execute("INSERT INTO notes (text) VALUES ('first')")
    assert first.in_transaction and first._writer.held

    second = Writer(database, "second")
    second.start()
    time.sleep(0.3)
    # Still waiting for the lock file, not inside SQLite: it has not even begun a transaction.
    assert second.is_alive() and second.done_at is None
    assert not second.connection.in_transaction

    first.commit()
    committed_at = time.monotonic()
    assert not first._writer.held
    second.join(10)
    assert second.error is None and second.done_at is not None
    # It was polling the lock file every 0.2 ms at most, not sleeping in SQLite's busy handler.
    assert second.done_at - committed_at < 1.0
    assert count(database) == 2
    assert not second.connection._writer.held


def test_readers_do_not_wait_for_a_writer(database):
    writer = connect(database)
    writer.execute("INSERT INTO notes (text) VALUES ('held')")
    reader = connect(database)
    started = time.monotonic()
    assert reader.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    assert time.monotonic() - started < 1.0
    assert not reader._writer.held and not reader.in_transaction
    writer.rollback()


def test_a_writer_that_cannot_get_in_fails_as_sqlite_would(database, monkeypatch):
    monkeypatch.setattr(sqlite_writes, "BUSY_TIMEOUT", 0.2)
    holder = connect(database)
    holder.execute("INSERT INTO notes (text) VALUES ('held')")
    late = connect(database)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        late.execute("INSERT INTO notes (text) VALUES ('late')")
    assert 0.2 <= time.monotonic() - started < 5
    assert not late._writer.held and not late.in_transaction
    holder.commit()
    # Once the line is clear it writes as usual.
    late.execute("INSERT INTO notes (text) VALUES ('late')")
    late.commit()
    assert count(database) == 2


@pytest.mark.parametrize("ending", ["rollback", "close", "failed statement then rollback"])
def test_every_end_of_a_transaction_lets_the_next_writer_in(database, ending, monkeypatch):
    monkeypatch.setattr(sqlite_writes, "BUSY_TIMEOUT", 2.0)
    seed = connect(database)
    seed.execute("INSERT INTO notes (text) VALUES ('taken')")
    seed.commit()

    first = connect(database)
    first.execute("INSERT INTO notes (text) VALUES ('first')")
    if ending == "rollback":
        first.rollback()
    elif ending == "close":
        first.close()
    else:
        with pytest.raises(sqlite3.IntegrityError):
            first.execute("INSERT INTO notes (text) VALUES ('taken')")
        assert first._writer.held  # the transaction is still open after a failed statement
        first.rollback()

    second = Writer(database, "second")
    second.start()
    second.join(10)
    assert second.error is None, second.error
    assert count(database) == 2  # 'taken' and 'second'; 'first' was never committed


HOLD_A_WRITE = """
import sqlite3, sys
from tripcomms.sqlite_writes import QueuedWriterConnection
connection = sqlite3.connect(sys.argv[1], factory=QueuedWriterConnection)
connection.execute("INSERT INTO notes (text) VALUES ('other process')")
print("holding", flush=True)
sys.stdin.readline()
connection.commit()
"""


def test_a_connection_dropped_without_closing_lets_the_next_writer_in(database, monkeypatch):
    monkeypatch.setattr(sqlite_writes, "BUSY_TIMEOUT", 2.0)
    dropped = connect(database)
    dropped.execute("INSERT INTO notes (text) VALUES ('never committed')")
    assert dropped._writer.held
    del dropped
    gc.collect()
    second = Writer(database, "next")
    second.start()
    second.join(10)
    assert second.error is None, second.error
    assert count(database) == 1


def test_a_write_outside_a_transaction_lets_the_lock_go_at_once(database):
    autocommit = sqlite3.connect(database, factory=QueuedWriterConnection, isolation_level=None)
    autocommit.execute("INSERT INTO notes (text) VALUES ('at once')")
    assert not autocommit.in_transaction and not autocommit._writer.held
    with pytest.raises(sqlite3.IntegrityError):
        autocommit.execute("INSERT INTO notes (text) VALUES ('at once')")
    assert not autocommit._writer.held
    second = Writer(database, "next")
    second.start()
    second.join(10)
    assert second.error is None and count(database) == 2
    autocommit.close()


def test_a_writer_in_another_process_waits_in_the_same_line(database):
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_A_WRITE, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout.readline().strip() == "holding"
            waiting = Writer(database, "this process")
            waiting.start()
            time.sleep(0.3)
            assert waiting.is_alive() and not waiting.connection.in_transaction
            holder.stdin.write("commit\n")
            holder.stdin.flush()
            assert holder.wait(10) == 0
        finally:
            if holder.poll() is None:
                holder.kill()
    waiting.join(10)
    assert waiting.error is None and waiting.done_at is not None
    assert count(database) == 2


def test_the_log_is_checkpointed_after_commits_with_the_lock_let_go(database, monkeypatch):
    monkeypatch.setattr(sqlite_writes, "CHECKPOINT_EVERY", 3)
    checkpoints: list[bool] = []

    class Watched(QueuedWriterConnection):
        def _checkpoint_if_due(self) -> None:
            if self._writes % sqlite_writes.CHECKPOINT_EVERY == sqlite_writes.CHECKPOINT_EVERY - 1:
                checkpoints.append(self._writer.held)
            super()._checkpoint_if_due()

    writer = sqlite3.connect(database, factory=Watched)
    assert writer.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)

    def in_the_file_itself() -> int:
        # "immutable" reads the database file and ignores the log: it shows what a checkpoint
        # has copied back.
        raw = sqlite3.connect(f"file:{database}?immutable=1", uri=True)
        try:
            return raw.execute("SELECT count(*) FROM notes").fetchone()[0]
        finally:
            raw.close()

    for n in range(2):
        writer.execute("INSERT INTO notes (text) VALUES (?)", (f"note {n}",))
        writer.commit()
    writer.execute("SELECT count(*) FROM notes").fetchall()
    writer.commit()  # a commit with nothing written does not count
    assert in_the_file_itself() == 0 and count(database) == 2
    writer.execute("INSERT INTO notes (text) VALUES ('note 2')")
    writer.commit()
    assert in_the_file_itself() == 3
    assert checkpoints == [False]  # run once, after the lock was let go
    writer.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////srv/tripcomms/tripcomms.sqlite", True),
        ("sqlite:///relative.sqlite", True),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", False),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/test", False),
    ],
)
def test_which_databases_queue_their_writers(url, expected):
    assert is_sqlite_file(url) is expected


def test_the_app_connects_to_a_file_database_through_the_queue(tmp_path):
    queued = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/app.sqlite"})
    plain = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/plain.sqlite",
            "SQLITE_QUEUE_WRITERS": False,
        }
    )
    for app, kind in ((queued, QueuedWriterConnection), (plain, sqlite3.Connection)):
        with app.app_context():
            raw = db.engine.raw_connection()
            try:
                assert type(raw.dbapi_connection) is kind
                pragma = raw.dbapi_connection.execute
                assert pragma("PRAGMA journal_mode").fetchone() == ("wal",)
                assert pragma("PRAGMA temp_store").fetchone() == (2,)  # memory
            finally:
                raw.close()
            db.engine.dispose()
