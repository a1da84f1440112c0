"""Benchmark: a broadcast to 500 parents through the simulator with 200 ms on every API call.

Measured: from the commit of a broadcast to 500 contacts until the simulated Twilio API has
accepted all 500 Messages creates, with ``OutboxSender.run_once`` called in a loop (the
default SEND_CONCURRENCY and SEND_BATCH). The app and its simulator are served over real HTTP
on 127.0.0.1 (werkzeug, threaded), so every send goes through the twilio library and every
status callback comes back signed to ``/twilio/status``; ``Simulator.set_latency(0.2)`` adds
200 ms to every API call. Reported: the time, sends per second, and the time until the outbox
has also recorded every result.

Baseline in the same run: the same 500 texts handed straight to a ``TwilioGateway`` by 16
threads (SEND_CONCURRENCY), with no database and no outbox: the floor that the API latency
sets at that concurrency (500 / 16 x 0.2 s = 6.4 s at best).

Checks: the simulator received exactly 500 creates for the broadcast, one per parent, and
every broadcast row ends with Twilio's sid.

Target: all 500 handed to the API in under 10 s (median of the runs).

    .venv/bin/python bench/broadcast.py [--runs 3] [--contacts 500] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import CreateClock, machine, median, served_trip, verdict
from sqlalchemy import func, select

from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.relay import operations as relay_ops
from tripcomms.relay.gateway import gateway_from_config
from tripcomms.relay.models import Kind, Message, Status
from tripcomms.relay.outbox import OutboxSender
from tripcomms.trips.models import Trip

TARGET_SECONDS = 10.0
TIME_LIMIT = 90.0  # a run that has not finished by then has failed
BODY = "The coach is running 20 minutes late; we will be back at about 15:50."


def direct_baseline(app, clock: CreateClock, parents: list[str], trip_number: str) -> float:
    """The same texts straight through the gateway by SEND_CONCURRENCY threads."""
    mark = clock.count()
    workers = app.config["SEND_CONCURRENCY"]
    with gateway_from_config(app.config) as gateway, ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(lambda to: gateway.send(to, trip_number, BODY, None), parents))
    created = clock.since(mark)
    if len(created) != len(parents):
        raise SystemExit(f"baseline: {len(created)} creates for {len(parents)} texts")
    return max(at for at, _, _ in created) - start


def one_run(args) -> dict[str, float]:
    with served_trip(pupils=args.contacts // 2, latency=args.latency) as served:
        app, sim, clock, seeded = served.app, served.sim, served.clock, served.seeded
        direct = direct_baseline(app, clock, seeded.parents, seeded.trip_number)
        figures = {"direct": direct}
        sim.wait_idle(timeout=30)
        figures.update(outbox_run(app, sim, clock, seeded))
        sim.wait_idle(timeout=60)
        figures.update(callbacks(app, sim))
    return figures


def outbox_run(app, sim, clock: CreateClock, seeded) -> dict[str, float]:
    with app.app_context():
        start = time.perf_counter()
        outcome = relay_ops.broadcast(
            db.session.get(User, seeded.leader_id), db.session.get(Trip, seeded.trip_id), BODY
        )
        db.session.commit()
        queued_at = time.perf_counter()
        db.session.remove()
    if outcome.sent != len(seeded.parents):
        raise SystemExit(f"the broadcast went to {outcome.sent} of {len(seeded.parents)}")

    mark = clock.count()
    sender = OutboxSender(app)
    while clock.count() - mark < outcome.sent and time.perf_counter() - queued_at < TIME_LIMIT:
        sender.run_once()
    recorded_at = time.perf_counter()
    created = clock.since(mark)
    handed = max(at for at, _, _ in created) - queued_at if created else float("inf")

    with app.app_context():
        rows = db.session.execute(
            select(Message.status, func.count(), func.count(Message.twilio_sid))
            .where(Message.kind == Kind.BROADCAST)
            .group_by(Message.status)
        ).all()
        db.session.remove()
    recipients = sorted(to for _, to, _ in created)
    if len(created) != outcome.sent or recipients != sorted(seeded.parents):
        raise SystemExit(
            f"the simulator got {len(created)} creates for {outcome.sent} parents "
            f"({len(set(recipients))} distinct recipients)"
        )
    with_sid = sum(n_sid for _, _, n_sid in rows)
    statuses = {status for status, _, _ in rows}
    if with_sid != outcome.sent or statuses & {Status.PENDING, Status.SENDING, Status.FAILED}:
        raise SystemExit(f"broadcast rows after sending: {rows}")
    return {
        "queue": queued_at - start,
        "handed": handed,
        "recorded": recorded_at - queued_at,
        "creates": len(created),
    }


def callbacks(app, sim) -> dict[str, float]:
    """Status callbacks (sent, delivered) posted back to the app during the outbox run."""
    records = sim.callbacks()
    with app.app_context():
        delivered = db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.kind == Kind.BROADCAST, Message.status == Status.DELIVERED)
        )
        db.session.remove()
    return {
        "callbacks": sum(1 for r in records if r.delivered),
        "dropped": sum(1 for r in records if not r.delivered),
        "delivered": delivered,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--contacts", type=int, default=500, help="parents on the roster (even)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added per API call")
    args = parser.parse_args(argv)

    print(
        f"broadcast: {args.contacts} parents, {args.latency * 1000:.0f} ms per API call, "
        f"{args.runs} runs"
    )
    print(f"  machine: {machine()}")
    runs = []
    for n in range(args.runs):
        figures = one_run(args)
        runs.append(figures)
        print(
            f"  run {n + 1}: outbox {figures['handed']:.2f} s to hand all "
            f"{figures['creates']:.0f} to the API ({figures['creates'] / figures['handed']:.0f}"
            f"/s), {figures['recorded']:.2f} s until all recorded; direct baseline "
            f"{figures['direct']:.2f} s; queueing the broadcast {figures['queue']:.2f} s"
        )
        print(
            f"         status callbacks: {figures['callbacks']:.0f} answered, "
            f"{figures['dropped']:.0f} dropped; {figures['delivered']:.0f} rows delivered"
        )
    handed = median([r["handed"] for r in runs])
    direct = median([r["direct"] for r in runs])
    recorded = median([r["recorded"] for r in runs])
    queue = median([r["queue"] for r in runs])
    print("  medians:")
    print(
        f"    outbox: {handed:.2f} s to hand {args.contacts} to the API = "
        f"{args.contacts / handed:.0f} sends/s; {recorded:.2f} s until all recorded"
    )
    print(f"    direct baseline: {direct:.2f} s = {args.contacts / direct:.0f} sends/s")
    print(f"    outbox / baseline: {handed / direct:.2f}x; queueing the broadcast {queue:.2f} s")
    print(f"    the simulator received exactly {args.contacts} creates in every run")
    dropped = sum(r["dropped"] for r in runs)
    if dropped:
        print(f"  problem: {dropped:.0f} status callbacks were dropped (the app did not take them)")
    return verdict(
        handed < TARGET_SECONDS and not dropped,
        f"{args.contacts} handed to the API in {handed:.2f} s (target < {TARGET_SECONDS:.0f} s)",
    )


if __name__ == "__main__":
    sys.exit(main())
