"""Benchmark: parents' texts into ``POST /twilio/sms`` under gunicorn, against a bare endpoint.

Measured: texts per second answered 200, and the latency of each POST as the sender sees it
(p50/p95/p99), with 16 senders posting back to back for a fixed time after a warm-up.

- tripcomms: ``tripcomms:create_app()`` under gunicorn (2 sync workers) on a fresh migrated
  SQLite file database (WAL), seeded with a trip in its relay window, its number, a roster of
  parents and a school phone on loan, so each text is stored, routed to a parent and makes
  one forward. Signatures are checked (PUBLIC_BASE_URL is the served URL; every request is
  signed with the auth token). SEND_IN_PROCESS is false, so only the webhook path runs.
- baseline: ``bench/bare_app.py`` under gunicorn with the same workers: it parses the same form
  and inserts one row into a SQLite table (WAL).

The two are measured in alternating windows in the same run (the machine is shared and
noisy), and the figures are the medians of the rounds. Afterwards every text answered 200 must
be stored exactly once (and have made its forward), and the audit chain must verify.

Targets: tripcomms throughput at least 25 % of the baseline's; tripcomms p99 under 100 ms.

    .venv/bin/python bench/webhook_throughput.py [--rounds 3] [--duration 10] [--warmup 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from bare_app import create_schema
from common import (
    REPO,
    bench_config,
    env_for,
    free_port,
    gunicorn,
    inbound_form,
    machine,
    median,
    ms,
    new_message_sid,
    percentile,
    process_tree_cpu,
    seeded_app,
    sqlite_url,
    stored_inbound,
    verdict,
)
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from tripcomms.audit.operations import verify_chain
from tripcomms.extensions import db
from tripcomms.relay.models import Kind, Message

RATIO_TARGET = 0.25
P99_TARGET = 0.100


@dataclass
class Window:
    """One measured stretch of load against one server."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    server_cpu: float = float("nan")  # CPU seconds of the gunicorn master and workers
    client_cpu: float = float("nan")  # CPU seconds of this process (the senders)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_text(self) -> float:
        return self.server_cpu / len(self.latencies) if self.latencies else float("nan")

    def pct(self, p: float) -> float:
        return percentile(self.latencies, p)


@dataclass
class Target:
    """A served endpoint and everything posted to it."""

    name: str
    url: str  # the full webhook URL
    sign: Callable[[str, dict[str, str]], str] | None
    pid: int = 0  # the gunicorn master
    posted: list[str] = field(default_factory=list)  # sids answered 200
    windows: list[Window] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)


async def _sender(
    session: aiohttp.ClientSession,
    target: Target,
    parents: list[str],
    to: str,
    deadline: float,
    window: Window,
    numbering: itertools.count,
) -> None:
    rng = random.Random()
    while time.perf_counter() < deadline:
        sid = new_message_sid()
        form = inbound_form(
            sid, rng.choice(parents), to, f"Is the coach on time? ({next(numbering)})"
        )
        headers = {"X-Twilio-Signature": target.sign(target.url, form)} if target.sign else {}
        start = time.perf_counter()
        try:
            async with session.post(target.url, data=form, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            window.errors[type(err).__name__] += 1
            continue
        elapsed = time.perf_counter() - start
        if status == 200:
            window.latencies.append(elapsed)
            target.posted.append(sid)
        else:
            window.errors[f"HTTP {status}"] += 1


async def _load(
    target: Target, parents: list[str], to: str, senders: int, seconds: float
) -> Window:
    window = Window()
    connector = aiohttp.TCPConnector(limit=senders)
    timeout = aiohttp.ClientTimeout(total=30)
    numbering = itertools.count()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(
            *(
                _sender(session, target, parents, to, deadline, window, numbering)
                for _ in range(senders)
            )
        )
        window.seconds = time.perf_counter() - start
    return window


def load(target: Target, parents: list[str], to: str, senders: int, seconds: float) -> Window:
    server, client = process_tree_cpu(target.pid), time.process_time()
    window = asyncio.run(_load(target, parents, to, senders, seconds))
    window.server_cpu = process_tree_cpu(target.pid) - server
    window.client_cpu = time.process_time() - client
    target.errors.update(window.errors)
    return window


def check_tripcomms(app, target: Target, phones: int) -> list[str]:
    """Every text answered 200 is stored exactly once, from a parent, with its forwards."""
    problems = []
    posted = Counter(target.posted)
    if any(n > 1 for n in posted.values()):
        problems.append("a MessageSid was posted twice (the load generator's fault)")
    with app.app_context():
        stored, kinds = stored_inbound()
        forwards = db.session.scalar(
            select(func.count()).select_from(Message).where(Message.kind == Kind.FORWARD)
        )
        chain = verify_chain()
        db.session.remove()
        db.engine.dispose()
    missing = set(posted) - set(stored)
    extra = set(stored) - set(posted)
    twice = [sid for sid, n in stored.items() if n > 1]
    if missing or extra or twice:
        problems.append(
            f"tripcomms: {len(missing)} answered texts not stored, {len(extra)} stored but "
            f"not answered 200, {len(twice)} stored more than once"
        )
    if kinds != {Kind.FROM_CONTACT: len(posted)}:
        problems.append(f"tripcomms: inbound kinds {kinds}, expected all from_contact")
    if forwards != len(posted) * phones:
        problems.append(f"tripcomms: {forwards} forwards for {len(posted)} texts")
    if not chain.ok:
        problems.append(f"tripcomms: the audit chain fails at {chain.bad_seq}: {chain.reason}")
    print(
        f"  check tripcomms: {len(posted)} texts answered 200, {sum(stored.values())} stored, "
        f"{forwards} forwards, audit chain of {chain.checked} events "
        f"{'verified' if chain.ok else 'BROKEN'}"
    )
    return problems


def check_bare(path: Path, target: Target) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT sid FROM inbound").fetchall()
    conn.close()
    stored = Counter(sid for (sid,) in rows)
    print(f"  check baseline: {len(target.posted)} answered 200, {sum(stored.values())} stored")
    if set(stored) != set(target.posted) or len(rows) != len(target.posted):
        return ["baseline: stored rows do not match the texts answered 200"]
    return []


def summarise(target: Target) -> dict[str, float]:
    windows = target.windows
    return {
        "throughput": median([w.throughput for w in windows]),
        "p50": median([w.pct(50) for w in windows]),
        "p95": median([w.pct(95) for w in windows]),
        "p99": median([w.pct(99) for w in windows]),
        "cpu": median([w.cpu_per_text for w in windows]),
        "client_cpu": median([w.client_cpu / w.seconds for w in windows]),
        "server_cpu": median([w.server_cpu / w.seconds for w in windows]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each window")
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pupils", type=int, default=250, help="x 2 parents on the roster")
    parser.add_argument("--phones", type=int, default=1, help="school phones on loan")
    parser.add_argument("--log", type=Path, help="append the servers' output to this file")
    args = parser.parse_args(argv)

    print(
        f"webhook throughput: {args.senders} senders, {args.rounds} rounds of "
        f"{args.duration:g} s (+{args.warmup:g} s warm-up), gunicorn {args.workers} "
        f"{args.worker_class} workers"
    )
    print(f"  machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="tripcomms-bench-") as tmp_name:
        tmp = Path(tmp_name)
        trip_port, bare_port = free_port(), free_port()
        base = f"http://127.0.0.1:{trip_port}"
        config = bench_config(sqlite_url(tmp), PUBLIC_BASE_URL=base, SEND_IN_PROCESS=False)
        app, seeded = seeded_app(config, pupils=args.pupils, phones=args.phones)
        bare_db = tmp / "bare.sqlite"
        create_schema(str(bare_db))

        validator = RequestValidator(config["TWILIO_AUTH_TOKEN"])
        tripcomms = Target("tripcomms", f"{base}/twilio/sms", validator.compute_signature)
        bare = Target("baseline", f"http://127.0.0.1:{bare_port}/twilio/sms", None)
        serving = {
            "workers": args.workers,
            "worker_class": args.worker_class,
            "threads": args.threads,
        }
        with contextlib.ExitStack() as stack:
            tripcomms.pid = stack.enter_context(
                gunicorn(
                    "tripcomms:create_app()",
                    trip_port,
                    env_for(config),
                    log_file=args.log,
                    **serving,
                )
            ).pid
            bare.pid = stack.enter_context(
                gunicorn(
                    "bare_app:create_app()",
                    bare_port,
                    {**env_for({}), "BENCH_BARE_DB": str(bare_db)},
                    pythonpath=str(REPO / "bench"),
                    log_file=args.log,
                    **serving,
                )
            ).pid
            for round_ in range(args.rounds):
                # Alternate which goes first, so neither always meets the same background.
                order = [tripcomms, bare] if round_ % 2 == 0 else [bare, tripcomms]
                for target in order:
                    load(target, seeded.parents, seeded.trip_number, args.senders, args.warmup)
                    window = load(
                        target, seeded.parents, seeded.trip_number, args.senders, args.duration
                    )
                    target.windows.append(window)
                    print(
                        f"  round {round_ + 1} {target.name:<9} {window.throughput:7.1f} /s  "
                        f"p50 {ms(window.pct(50))}  p95 {ms(window.pct(95))}  "
                        f"p99 {ms(window.pct(99))}  server CPU {ms(window.cpu_per_text)}/text"
                        + (f"  errors {dict(window.errors)}" if window.errors else "")
                    )
        problems = check_tripcomms(app, tripcomms, args.phones) + check_bare(bare_db, bare)

    ours, theirs = summarise(tripcomms), summarise(bare)
    ratio = ours["throughput"] / theirs["throughput"] if theirs["throughput"] else 0.0
    print("  medians of the rounds:")
    for name, figures in (("tripcomms", ours), ("baseline", theirs)):
        print(
            f"    {name:<9} {figures['throughput']:7.1f} texts/s  p50 {ms(figures['p50'])}  "
            f"p95 {ms(figures['p95'])}  p99 {ms(figures['p99'])}  "
            f"server CPU {ms(figures['cpu'])}/text ({figures['server_cpu']:.2f} cores busy; "
            f"senders {figures['client_cpu']:.2f})"
        )
    print(f"    ratio tripcomms/baseline: {ratio:.1%}")
    for name, target in (("tripcomms", tripcomms), ("baseline", bare)):
        if target.errors:
            problems.append(f"{name}: failed requests {dict(target.errors)}")
    for problem in problems:
        print(f"  problem: {problem}")
    passed_ratio = ratio >= RATIO_TARGET
    passed_p99 = ours["p99"] < P99_TARGET
    print(f"  {'PASS' if passed_ratio else 'FAIL'} throughput ratio >= {RATIO_TARGET:.0%}")
    print(f"  {'PASS' if passed_p99 else 'FAIL'} p99 < {ms(P99_TARGET)}")
    print(f"  {'PASS' if not problems else 'FAIL'} every text stored exactly once")
    return verdict(
        passed_ratio and passed_p99 and not problems,
        f"throughput {ratio:.1%} of baseline (target >= {RATIO_TARGET:.0%}), "
        f"p99 {ms(ours['p99'])} (target < {ms(P99_TARGET)}), "
        f"{'all stored once' if not problems else 'PROBLEMS'}",
    )


if __name__ == "__main__":
    sys.exit(main())
