"""The outbox sender: claims pending messages, hands them to Twilio, records what happened.

Claiming is one UPDATE (on PostgreSQL over ``FOR UPDATE SKIP LOCKED``), so any number of
senders in any number of processes never take the same row. A claimed row carries a lease; if
the process dies before recording the result, the row is claimed again when the lease runs
out. So a text is never lost.

Nor is it sent twice when an attempt's outcome is unknown. Twilio's Messages create has no
idempotency key: a send that timed out, or whose connection dropped after the request went, or
whose sender died holding the lease, may have been taken. Such a row remembers when that
attempt started (``unknown_outcome_at``); before sending it again the outbox asks Twilio for a
text from the same number to the same recipient with exactly the same body, created since then
(less ``UNKNOWN_OUTCOME_SKEW``), whose sid no other row holds. Found: its sid and status are
recorded and nothing is sent. Not found: the text is sent. The look-up failing: the row backs
off and looks again, within the same attempts and age limits as a send. A 429 or 5xx answer
means Twilio created nothing, so those are retried without a look-up.

Runs as a thread inside the app (started by the first request, or by ``demo``) or as
``flask --app tripcomms worker`` processes.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from tripcomms.extensions import db
from tripcomms.mobile import mask_number
from tripcomms.relay.gateway import (
    ErrorKind,
    GatewayError,
    SendResult,
    SentMessage,
    gateway_from_config,
)
from tripcomms.relay.models import DeliveryEvent, Direction, Message, OptOut, Status
from tripcomms.relay.operations import apply_events, apply_pending_events
from tripcomms.types import utcnow

log = logging.getLogger(__name__)

# Statuses only tripcomms gives a row; from Twilio they mean it has the text.
OUR_OWN_STATUSES = frozenset({Status.PENDING, Status.SENDING, Status.BLOCKED, Status.RECEIVED})

# How much earlier than our attempt Twilio's clock may date the text it created: clock drift
# and Twilio's whole-second dates.
UNKNOWN_OUTCOME_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class Claimed:
    id: int
    to_number: str
    from_number: str
    body: str
    attempts: int
    created_at: datetime
    started_at: datetime
    # When the earliest attempt with an unknown outcome started; None when there was none.
    unknown_outcome_at: datetime | None = None


def backoff(app: Flask, attempts: int) -> timedelta:
    """Exponential, capped, with jitter so that many retries do not arrive together."""
    base = app.config["SEND_BACKOFF_SECONDS"] * (2 ** max(attempts - 1, 0))
    capped = min(base, app.config["SEND_BACKOFF_MAX_SECONDS"])
    return timedelta(seconds=capped * random.uniform(0.5, 1.0))  # noqa: S311 (not security)


class OutboxSender:
    """Sends what is pending. ``run_once`` is one pass; ``run_forever`` loops until stopped."""

    def __init__(self, app: Flask, gateway=None) -> None:
        self.app = app
        self.gateway = gateway
        self.wakeup = threading.Event()
        self.stopping = threading.Event()

    def _gateway(self):
        """A gateway for one pass (a test may hand in its own)."""
        if self.gateway is not None:
            return nullcontext(self.gateway)
        return gateway_from_config(self.app.config)

    # -- claiming ---------------------------------------------------------------------------

    def claim(self, limit: int) -> list[Claimed]:
        """Take up to ``limit`` due messages (or ones whose lease ran out) and commit the claim."""
        now = utcnow()
        due = (
            select(Message.id)
            .where(
                Message.direction == Direction.OUT,
                or_(
                    and_(Message.status == Status.PENDING, Message.next_attempt_at <= now),
                    and_(Message.status == Status.SENDING, Message.lease_expires_at <= now),
                ),
            )
            .order_by(Message.next_attempt_at, Message.id)
            .limit(limit)
        )
        if db.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        lease = timedelta(seconds=self.app.config["SEND_LEASE_SECONDS"])
        stmt = (
            update(Message)
            .where(Message.id.in_(due.scalar_subquery()))
            .values(
                status=Status.SENDING,
                lease_expires_at=now + lease,
                attempts=Message.attempts + 1,
                attempt_started_at=now,
                # A row still "sending" lost its sender mid-attempt: that attempt's outcome is
                # unknown too. (SET expressions read the row as it was.)
                unknown_outcome_at=case(
                    (
                        Message.status == Status.SENDING,
                        func.coalesce(Message.unknown_outcome_at, Message.attempt_started_at),
                    ),
                    else_=Message.unknown_outcome_at,
                ),
            )
            .returning(
                Message.id,
                Message.to_number,
                Message.from_number,
                Message.body,
                Message.attempts,
                Message.created_at,
                Message.attempt_started_at,
                Message.unknown_outcome_at,
            )
            .execution_options(synchronize_session=False)
        )
        rows = [Claimed(*row) for row in db.session.execute(stmt)]
        db.session.commit()
        return rows

    # -- sending ----------------------------------------------------------------------------

    def run_once(self, limit: int | None = None) -> int:
        """Claim one batch, send it concurrently, record each result. Returns how many.

        Rows whose last attempt had an unknown outcome are looked for at Twilio first, all of
        them before any of the batch is sent, so that a text this pass sends is never taken
        for another row's earlier one.
        """
        with self.app.app_context():
            apply_orphan_events()
            db.session.commit()
            claimed = self.claim(limit or self.app.config["SEND_BATCH"])
            if not claimed:
                return 0
            callback = self.app.config["PUBLIC_BASE_URL"] + "/twilio/status"
            workers = min(self.app.config["SEND_CONCURRENCY"], len(claimed))
            with (
                self._gateway() as gateway,
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sms-send") as pool,
            ):
                unsure = [c for c in claimed if c.unknown_outcome_at is not None]
                to_send = [c for c in claimed if c.unknown_outcome_at is None]
                to_send += self._look_up(gateway, pool, unsure)
                futures = {
                    pool.submit(gateway.send, c.to_number, c.from_number, c.body, callback): c
                    for c in to_send
                }
                for future in as_completed(futures):
                    item = futures[future]
                    try:
                        self._record_success(item, future.result())
                    except GatewayError as err:
                        self._record_failure(item, err)
                    except Exception:
                        # A bug, an unexpected library error or a database error while
                        # recording: the row goes back to pending (with backoff) rather than
                        # being lost in "sending". The rollback first, as a failed flush leaves
                        # the session unusable until then, and the rest of the batch with it.
                        # The request may have gone, so the next attempt looks for it first.
                        log.exception("sending message %s failed unexpectedly", item.id)
                        db.session.rollback()
                        self._record_failure(
                            item,
                            GatewayError(
                                ErrorKind.RETRYABLE, "unexpected error", outcome_unknown=True
                            ),
                        )
            return len(claimed)

    # -- unknown outcomes -----------------------------------------------------------------

    def _look_up(self, gateway, pool: ThreadPoolExecutor, unsure: list[Claimed]) -> list[Claimed]:
        """Look for each row's text at Twilio; record the ones found or not looked up.

        Returns the rows to send: those for which Twilio has no unclaimed matching text.
        """
        futures = {
            pool.submit(
                gateway.find_sent,
                c.to_number,
                c.from_number,
                c.body,
                c.unknown_outcome_at - UNKNOWN_OUTCOME_SKEW,
            ): c
            for c in unsure
        }
        to_send = []
        for future in as_completed(futures):
            item = futures[future]
            try:
                found = future.result()
            except GatewayError as err:
                self._record_failure(item, _look_up_failed(str(err), err.code, err.http_status))
                continue
            except Exception:
                log.exception("looking for message %s at Twilio failed unexpectedly", item.id)
                self._record_failure(item, _look_up_failed("unexpected error"))
                continue
            if not self._adopt(item, found):
                to_send.append(item)
        return to_send

    def _adopt(self, item: Claimed, found: list[SentMessage]) -> bool:
        """Record the oldest of ``found`` whose sid no other row holds; False when there is none.

        Two rows may hold the same text to the same parent (the same broadcast sent twice): a
        sid already recorded on the other row is that row's text, not this one's.
        """
        if not found:
            return False
        taken = set(
            db.session.scalars(
                select(Message.twilio_sid).where(
                    Message.twilio_sid.in_([m.sid for m in found]), Message.id != item.id
                )
            )
        )
        free = next((m for m in found if m.sid not in taken), None)
        if free is None:
            return False
        log.info(
            "message %s to %s: Twilio already had it as %s; not sent again",
            item.id,
            mask_number(item.to_number),
            free.sid,
        )
        self._record_success(item, SendResult(free.sid, free.status))
        return True

    # -- recording --------------------------------------------------------------------------

    def _record_success(self, item: Claimed, result: SendResult) -> None:
        message = db.session.get(Message, item.id)
        message.twilio_sid = result.sid
        try:
            status = Status(result.status)
        except ValueError:
            status = Status.QUEUED
        if status in OUR_OWN_STATUSES:
            # Twilio's "sending" (a found text on its way) is not our claim of the row.
            status = Status.QUEUED
        message.status = status
        message.status_at = message.sent_at = utcnow()
        message.lease_expires_at = None
        message.unknown_outcome_at = None
        message.error_code = None
        message.error_message = ""
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            self._sid_taken(item, result.sid)
            return
        apply_pending_events(message)
        db.session.commit()

    def _sid_taken(self, item: Claimed, sid: str) -> None:
        """Another row holds the sid Twilio just gave this one.

        Only a look-up by another sender, racing this send, can have done that: the other row
        took this text for its own uncertain one. Both texts are alike, so the other row keeps
        it and this one takes over the other's uncertainty: it looks, from the other row's
        creation on, for the other's text before sending again.
        """
        other_created = db.session.scalar(
            select(Message.created_at).where(Message.twilio_sid == sid)
        )
        since = _earliest(
            item.unknown_outcome_at, min(item.started_at, other_created or item.started_at)
        )
        log.warning("message %s: its sid %s was taken by another message", item.id, sid)
        self._record_failure(
            replace(item, unknown_outcome_at=since),
            GatewayError(
                ErrorKind.RETRYABLE,
                "Twilio's answer was claimed by another message",
                outcome_unknown=True,
            ),
        )

    def _record_failure(self, item: Claimed, err: GatewayError) -> None:
        message = db.session.get(Message, item.id)
        message.lease_expires_at = None
        message.error_code = err.code
        message.error_message = str(err)[:300]
        if err.outcome_unknown:
            message.unknown_outcome_at = _earliest(item.unknown_outcome_at, item.started_at)
        now = utcnow()
        if err.kind == ErrorKind.RETRYABLE:
            too_old = now - item.created_at > timedelta(
                minutes=self.app.config["SEND_MAX_AGE_MINUTES"]
            )
            if item.attempts >= self.app.config["SEND_MAX_ATTEMPTS"] or too_old:
                message.status = Status.FAILED
                maybe = " (Twilio may have it)" if message.unknown_outcome_at else ""
                gave_up = f"gave up after {item.attempts} attempts{maybe}: {err}"
                message.error_message = gave_up[:300]
            else:
                message.status = Status.PENDING
                message.next_attempt_at = now + backoff(self.app, item.attempts)
        else:
            message.status = Status.FAILED
            if err.kind == ErrorKind.OPTED_OUT:
                _remember_opt_out(item.to_number, item.from_number)
        message.status_at = now
        log.info(
            "message %s to %s: %s (%s)",
            item.id,
            mask_number(item.to_number),
            err.kind,
            err.code,
        )
        db.session.commit()

    # -- looping ----------------------------------------------------------------------------

    def run_forever(self) -> None:
        poll = self.app.config["SENDER_POLL_SECONDS"]
        while not self.stopping.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
                busy = 0
            if not busy:
                self.wakeup.wait(poll)
                self.wakeup.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()


def _look_up_failed(
    reason: str, code: int | None = None, http_status: int | None = None
) -> GatewayError:
    """A failed look-up for an earlier send: always retried (never a blind send), and the
    earlier attempt's outcome stays unknown."""
    return GatewayError(
        ErrorKind.RETRYABLE,
        f"could not check whether Twilio already has it: {reason}",
        code=code,
        http_status=http_status,
        outcome_unknown=True,
    )


def _earliest(first: datetime | None, second: datetime) -> datetime:
    return second if first is None else min(first, second)


def _remember_opt_out(number: str, proxy: str) -> None:
    known = db.session.scalar(
        select(OptOut).where(OptOut.number == number, OptOut.proxy_number == proxy)
    )
    if known is None:
        db.session.add(OptOut(number=number, proxy_number=proxy))


def apply_orphan_events() -> int:
    """Apply status callbacks that arrived before their sid was recorded."""
    rows = db.session.execute(
        select(DeliveryEvent, Message)
        .join(Message, Message.twilio_sid == DeliveryEvent.twilio_sid)
        .where(DeliveryEvent.applied.is_(False))
        .order_by(DeliveryEvent.id)
        .limit(500)
    ).all()
    for event, message in rows:
        apply_events(message, [event])
    return len(rows)


# --- The sender thread inside the web process -------------------------------------------------

_threads: dict[tuple[int, int], tuple[threading.Thread, OutboxSender]] = {}
_threads_lock = threading.Lock()


def start_in_process(app: Flask) -> OutboxSender:
    """Start this process's sender thread for ``app`` once (again after a fork)."""
    key = (id(app), os.getpid())
    with _threads_lock:
        running = _threads.get(key)
        if running is not None and running[0].is_alive():
            return running[1]
        sender = OutboxSender(app)
        thread = threading.Thread(target=sender.run_forever, name="outbox-sender", daemon=True)
        thread.start()
        _threads[key] = (thread, sender)
        return sender


def wake(app: Flask) -> None:
    """Tell this process's sender that there is something to send."""
    running = _threads.get((id(app), os.getpid()))
    if running is not None:
        running[1].wakeup.set()


def stop_in_process(app: Flask) -> None:
    with _threads_lock:
        running = _threads.pop((id(app), os.getpid()), None)
    if running is not None:
        running[1].stop()
        running[0].join(timeout=15)


def in_process_sender_alive(app: Flask) -> bool:
    running = _threads.get((id(app), os.getpid()))
    return running is not None and running[0].is_alive()
