"""SQLite: writers wait in line for the database's write lock, and checkpoint outside it.

SQLite lets one connection write at a time. A connection that finds the write lock taken
waits in SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and more between tries, however
soon the lock comes free. Under gunicorn's workers a webhook holds the lock for well under a
millisecond, so the next worker's webhook slept several times longer than it needed to: under
load, workers spent about an eighth of their time asleep there.

So each connection to a database file takes an advisory lock (``flock``) on a file beside the
database before the first write of a transaction, and lets it go when the transaction ends.
A writer that finds it taken tries again after 20 microseconds, doubling up to 0.2 ms. SQLite's
own locking is still what keeps the database consistent; this lock only orders the writers,
and a connection that cannot get it within the busy timeout fails as SQLite would ("database
is locked"). Readers never touch it. It works across processes and threads: each connection
has its own open file, and ``flock`` locks belong to the open file; within a process, threads
wait for each other on a thread lock first, which wakes the next one at once.

Checkpoints (copying the write-ahead log back into the database) are the other half. SQLite
runs one inside the commit that takes the log past 1,000 pages, a few milliseconds every few
dozen commits, and while that commit has not returned its writer still holds the line. Here
the connections turn SQLite's automatic checkpoint off and, after a commit has let the lock go,
run a passive checkpoint (one that never waits for, nor holds up, other connections) after
every ``CHECKPOINT_EVERY`` of their write transactions. Connections made without this class
(another program's) keep SQLite's own checkpoints.

Used for database files only (an in-memory database has one connection). Where the lock file
cannot be opened (a read-only directory), the connection works as a plain one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 15.0  # seconds; the same as the connection's PRAGMA busy_timeout
FIRST_PAUSE = 0.00002
LONGEST_PAUSE = 0.0002
# A connection checkpoints after this many of its own write transactions. A parent's text
# writes about 30 pages of log, so one writer alone checkpoints about every 1,000 pages, as
# SQLite's own default would; several writers checkpoint more often, in smaller pieces.
CHECKPOINT_EVERY = 32
# The statements that start a write transaction in the sqlite3 module's default mode (it
# begins one implicitly before each of them), and an explicit BEGIN.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")


def is_sqlite_file(url: str) -> bool:
    """Whether a database URL names an SQLite database in a file (not in memory)."""
    parsed = make_url(url)
    database = parsed.database or ""
    return (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")  # a URI: left to SQLite's own waiting
    )


def lock_path(database: str) -> str:
    return f"{database}-writer"


_in_process: dict[str, threading.Lock] = {}
_in_process_guard = threading.Lock()


def _process_lock(path: str) -> threading.Lock:
    """The lock that this process's threads take, in turn, before the lock file."""
    with _in_process_guard:
        return _in_process.setdefault(os.path.realpath(path), threading.Lock())


class _WriterLock:
    """One connection's handle on the writers' lock file.

    Threads of one process first wait for each other on a thread lock (woken at once when it
    is let go); only the thread holding it tries the file, polling while another process
    writes.
    """

    def __init__(self, path: str) -> None:
        self.held = False
        self.local = _process_lock(path)
        try:
            # flock needs no write permission: whoever can read the file can queue.
            self.fd: int | None = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            log.warning("writers to %s will not queue: %s", path, error.strerror)
            self.fd = None

    def acquire(self, timeout: float) -> None:
        if self.fd is None or self.held:
            return
        deadline = time.monotonic() + timeout
        if not self.local.acquire(timeout=timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                self._wait(deadline)
            except BaseException:
                self.local.release()
                raise
        self.held = True

    def _wait(self, deadline: float) -> None:
        pause = FIRST_PAUSE
        while True:
            time.sleep(pause)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                pause = min(pause * 2, LONGEST_PAUSE)

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                self.local.release()

    def close(self) -> None:
        self.release()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        # A connection dropped without close() (never through the pool) must not keep the
        # line waiting.
        self.close()


class QueuedWriterCursor(sqlite3.Cursor):
    connection: QueuedWriterConnection

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.connection._run(super().execute, sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        return self.connection._run(super().executemany, sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        # A script commits what is pending first and may write anything: take the lock for it.
        connection = self.connection
        connection._writer.acquire(BUSY_TIMEOUT)
        try:
            return super().executescript(sql_script)
        finally:
            connection._after()


class QueuedWriterConnection(sqlite3.Connection):
    """A connection that takes the writers' lock before it starts writing (see the module).

    Made by ``sqlite3.connect(..., factory=QueuedWriterConnection)``; the lock file is named
    after the database file.
    """

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        path = os.fspath(database)
        self._writer = _WriterLock(lock_path(path))
        self._writes = 0
        if self._writer.fd is not None:
            super().execute("PRAGMA wal_autocheckpoint=0")

    def _run(self, execute: Callable[[str, Any], sqlite3.Cursor], sql: str, parameters: Any):
        """Run one statement, taking the lock first if it starts a write transaction."""
        if self.in_transaction:
            return execute(sql, parameters)
        self._before(sql)
        try:
            return execute(sql, parameters)
        finally:
            self._after()

    def _before(self, sql: str) -> None:
        """Before a statement run outside a transaction: a write takes the lock first."""
        writer = self._writer
        if writer.held:
            # The transaction ended without commit() or rollback() (a RELEASE, a COMMIT
            # statement): the lock goes with it.
            writer.release()
        if sql.lstrip()[:7].upper().startswith(_WRITES):
            writer.acquire(BUSY_TIMEOUT)

    def _after(self) -> None:
        """After a statement: a write that left no transaction open (in autocommit mode, or
        one that failed and was rolled back) lets the lock go at once."""
        if self._writer.held and not self.in_transaction:
            self._writer.release()

    def cursor(self, factory: Any = QueuedWriterCursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        return self.cursor().executescript(sql_script)

    def commit(self) -> None:
        wrote = self._writer.held
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._writer.release()
        if wrote:
            self._checkpoint_if_due()

    def _checkpoint_if_due(self) -> None:
        self._writes += 1
        if self._writes % CHECKPOINT_EVERY:
            return
        try:
            super().execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        except sqlite3.Error:  # housekeeping: the commit has happened, the next one tries again
            log.warning("could not checkpoint the SQLite log", exc_info=True)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._writer.release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._writer.close()
