"""Test helpers: a client that fills in CSRF tokens, factories for rows, a login helper."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask.testing import FlaskClient

from tripcomms.audit.operations import SystemActor
from tripcomms.auth import operations as auth_ops
from tripcomms.extensions import db
from tripcomms.types import utcnow

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
PASSWORD = "correct horse battery"
FACTORY = SystemActor("test")


class TripcommsClient(FlaskClient):
    def csrf_token(self) -> str:
        """The CSRF token of this client's session, read from a page as a browser would."""
        page = self.get("/login", follow_redirects=True).get_data(as_text=True)
        match = CSRF_META.search(page)
        assert match, "no csrf-token meta tag on the page"
        return match.group(1)

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        """POST a form with a valid CSRF token, as the browser would send it."""
        payload = {"csrf_token": self.csrf_token(), **(data or {})}
        return self.post(url, data=payload, **kwargs)

    def login(self, email: str, password: str = PASSWORD, **kwargs):
        return self.post_form("/login", {"email": email, "password": password}, **kwargs)

    def logout(self):
        return self.post_form("/logout")


@dataclass
class UserRef:
    """What a test needs of a user made by the factory, usable outside an app context."""

    id: int
    email: str
    name: str
    password: str = PASSWORD


class Factory:
    """Creates rows through the operations, so that tests see the same rules as users."""

    _seq = itertools.count(1)

    def __init__(self, app) -> None:
        self.app = app

    def user(
        self,
        *roles: str,
        email: str | None = None,
        name: str | None = None,
        password: str = PASSWORD,
        personal_numbers: tuple[str, ...] = (),
        active: bool = True,
    ) -> UserRef:
        n = next(self._seq)
        roles = roles or ("office",)
        email = email or f"{roles[0]}{n}@school.test"
        name = name or f"{roles[0].title()} Person {n}"
        with self.app.app_context():
            user = auth_ops.create_user(
                FACTORY,
                email=email,
                name=name,
                roles=roles,
                password=password,
                personal_numbers=personal_numbers,
            )
            if not active:
                user.active = False
            db.session.commit()
            return UserRef(user.id, user.email, user.name, password)

    def trip(
        self,
        leader: UserRef | None = None,
        *,
        title: str | None = None,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        staff: tuple[UserRef, ...] = (),
        destination: str = "Science Museum",
    ) -> int:
        """A trip (in progress now unless times are given); returns its id."""
        from tripcomms.auth.models import User
        from tripcomms.trips import operations as trip_ops

        leader = leader or self.user("leader")
        starts_at = starts_at or utcnow() - timedelta(hours=1)
        ends_at = ends_at or starts_at + timedelta(hours=8)
        with self.app.app_context():
            trip = trip_ops.create_trip(
                FACTORY,
                title=title or f"Trip {next(self._seq)}",
                starts_at=starts_at,
                ends_at=ends_at,
                leader=db.session.get(User, leader.id),
                staff=[db.session.get(User, s.id) for s in staff],
                destination=destination,
            )
            db.session.commit()
            return trip.id


def local(text: str):
    """A London wall-clock time as stored (UTC)."""
    from tripcomms.localtime import parse_local

    return parse_local(text)


def meanwhile(monkeypatch, app, owner: object, name: str, other) -> list[bool]:
    """Make another request save ``other()`` right after ``owner.name`` (a check an operation
    makes before it writes) first returns: as if two people pressed Save at the same moment and
    the other one's commit landed between this one's check and its write.

    ``other`` runs in an app context of its own (its own session and connection), and is
    committed there before the operation goes on. Returns a list that holds True once it ran.
    On SQLite the operation must not have written yet when ``owner.name`` returns: a second
    writer from the same thread would wait for the first (see tripcomms/sqlite_writes.py).
    """
    original = getattr(owner, name)
    ran: list[bool] = []

    def patched(*args, **kwargs):
        result = original(*args, **kwargs)
        if not ran:
            ran.append(True)
            with app.app_context():
                other()
                db.session.commit()
        return result

    monkeypatch.setattr(owner, name, patched)
    return ran


def at_once(app, requests: dict[str, Callable[[], Callable[[], object]]]) -> dict[str, object]:
    """Run requests at the same moment, as two people pressing a button together would.

    Each runs in a thread with an app context of its own (its own session and connection, as
    in two worker processes). Each value of ``requests`` is called first, to load what the
    request needs, and returns its action; when every load has committed, the actions start
    together, and each is committed (or rolled back) after. Returns, by name, what each action
    returned or the exception it raised.
    """
    barrier = threading.Barrier(len(requests), timeout=30)
    results: dict[str, object] = {}

    def run(name: str, load: Callable[[], Callable[[], object]]) -> None:
        with app.app_context():
            try:
                action = load()
                db.session.commit()  # each request starts its own transaction
                barrier.wait()
                result = action()
                db.session.commit()
                results[name] = result
            except Exception as err:  # a Conflict, or anything else for the assertion to show
                db.session.rollback()
                results[name] = err
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=item) for item in requests.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results
