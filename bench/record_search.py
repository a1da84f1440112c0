"""Benchmark: full-text search of the communication log over 1,000,000 messages (SQLite).

    .venv/bin/python bench/record_search.py [--messages N] [--fresh] [--output BENCHMARKS.md]

Builds (or reuses) a migrated SQLite database of N messages over 400 trips, loaded in bulk
(executemany; the full-text index is filled by its triggers, as in use). Then times the log's
first page of a text search (``search_page``: the page of 25 newest and the capped count) for
words from very common to rare, as the Headteacher and as a leader, and the log page itself
over HTTP; and, in the same run, the same first page found with ``body LIKE '%word%'``
instead of the index: the page and a count of every match, which must scan the table.

Passes when the page's p95 is under 150 ms and the index is at least 10 times faster than
the LIKE scan (median over the same words). Appends its results to the output file.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import large_db

sys.path.insert(0, str(large_db.ROOT))

from sqlalchemy import func, literal_column, select

from tripcomms import create_app
from tripcomms.audit import search
from tripcomms.audit.access import message_conditions
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.relay.models import Message

TRIPS = 400
CONTACTS_PER_TRIP = 30
# Nobody signs in with a password here: the bench puts the user in the session itself.
UNUSABLE_HASH = "!"

# Words as they turn up in trip texts: from very common to rare.
SENTENCES = [
    "Has the coach left school yet?",
    "The coach is running about 20 minutes late, back at school by 15:45",
    "Thanks for letting us know",
    "We are at the museum now, all fine",
    "Lunch was eaten in the park, everyone happy",
    "Please can you remind Sam to take his inhaler before lunch",
    "Is there time to buy something from the gift shop?",
    "Back at school in ten minutes",
    "The bus is stuck in traffic on the motorway",
    "Did she remember her packed lunch?",
    "Ok thank you",
    "Where should we collect them from?",
    "Collection from the school gate at 16:00",
    "He forgot his raincoat, is that ok?",
    "Everyone is having a great time",
    "Can you tell him his grandad will collect him",
    "Running late, the coach will be back at 17:00",
    "She has a nut allergy, please check the snacks",
    "Lost property: a blue water bottle",
    "Passport and tickets are with the leader",
    "All children accounted for, setting off home now",
    "Please make sure he drinks some water",
    "Arrived safely",
    "What time will the coach be back?",
]
NAME_SYLLABLES = ["ba", "ko", "ri", "ten", "mar", "lo", "vi", "san", "del", "qua", "jo", "nu"]
NAMES = sorted(
    {
        (a + b + c).capitalize()
        for a in NAME_SYLLABLES
        for b in NAME_SYLLABLES
        for c in NAME_SYLLABLES
        if a != b != c
    }
)

KINDS = [  # (direction, kind, share)
    ("in", "from_contact", 0.32),
    ("out", "forward", 0.34),
    ("out", "to_contact", 0.16),
    ("out", "broadcast", 0.08),
    ("out", "receipt", 0.05),
    ("in", "command", 0.05),
]
STATUSES = ["delivered"] * 8 + ["sent", "undelivered"]


def config(path: Path) -> dict:
    return {
        **large_db.app_settings(path),
        "TESTING": True,
        "SEND_IN_PROCESS": False,
        "RATELIMIT_ENABLED": False,
    }


def stamp(moment: dt.datetime) -> str:
    """As SQLAlchemy stores a UTC datetime in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, messages: int) -> None:
    """A migrated database with users, trips, contacts and ``messages`` messages."""
    from flask_migrate import upgrade

    app = create_app(config(path))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    with large_db.bulk_load(path) as con:
        con.execute("PRAGMA journal_mode=WAL")
        fill(con, messages)
        con.execute("ANALYZE")


def fill(con: sqlite3.Connection, messages: int) -> None:
    """Users, trips, contacts and ``messages`` messages, written through ``con``."""
    rng = random.Random(2026)
    now = dt.datetime(2026, 6, 1, 12, 0)
    created = stamp(now)
    users = [(1, "head@bench.example", "Helen Head", "head")]
    users += [(i + 2, f"leader{i}@bench.example", f"Leader {i}", "leader") for i in range(40)]
    con.executemany(
        "INSERT INTO users (id, email, name, password_hash, active, session_token, created_at)"
        " VALUES (?, ?, ?, ?, 1, ?, ?)",
        [(i, e, n, UNUSABLE_HASH, secrets.token_hex(16), created) for i, e, n, _ in users],
    )
    con.executemany(
        "INSERT INTO user_roles (user_id, role) VALUES (?, ?)", [(i, r) for i, _, _, r in users]
    )
    first_day = now - dt.timedelta(days=2 * 365)
    trips = []
    for t in range(TRIPS):
        starts = first_day + dt.timedelta(days=t * 730 // TRIPS, hours=8)
        trips.append((t + 1, f"Trip {t + 1}", stamp(starts), stamp(starts + dt.timedelta(hours=9))))
    con.executemany(
        "INSERT INTO trips (id, title, destination, starts_at, ends_at, leader_id, notes,"
        " cancel_reason, created_at) VALUES (?, ?, '', ?, ?, ?, '', '', ?)",
        [(i, title, s, e, 2 + (i - 1) % 40, created) for i, title, s, e in trips],
    )
    contacts = []
    for c in range(TRIPS * CONTACTS_PER_TRIP):
        contacts.append((c + 1, f"Parent {rng.choice(NAMES)}", f"+44740{c:07d}", created))
    con.executemany(
        "INSERT INTO contacts (id, name, mobile, created_at) VALUES (?, ?, ?, ?)", contacts
    )
    con.executemany(
        "INSERT INTO trip_contacts (trip_id, contact_id, code, active) VALUES (?, ?, ?, 1)",
        [
            (c // CONTACTS_PER_TRIP + 1, c + 1, c % CONTACTS_PER_TRIP + 1)
            for c in range(len(contacts))
        ],
    )
    con.commit()

    kinds = [(d, k) for d, k, _ in KINDS]
    weights = [w for _, _, w in KINDS]
    per_trip = messages // TRIPS

    def rows():
        for i in range(messages):
            t = min(i // per_trip, TRIPS - 1)
            trip_id, _, starts, _ = trips[t]
            at = dt.datetime.strptime(starts, "%Y-%m-%d %H:%M:%S.%f") + dt.timedelta(
                seconds=(i % per_trip) * 30000 / per_trip + rng.random()
            )
            direction, kind = rng.choices(kinds, weights)[0]
            body = rng.choice(SENTENCES)
            if rng.random() < 0.3:
                body += f" ({rng.choice(NAMES)})"
            contact = trip_id * CONTACTS_PER_TRIP - rng.randrange(CONTACTS_PER_TRIP)
            staff = 2 + (trip_id - 1) % 40
            parent = f"+44740{contact - 1:07d}"
            if direction == "in" and kind == "from_contact":
                src, dst = parent, "+441234000001"
            elif direction == "in":
                src, dst = "+447500000001", "+441234000001"
            elif kind in ("to_contact", "broadcast"):
                src, dst = "+441234000001", parent
            else:
                src, dst = "+441234000001", "+447500000001"
            status = "received" if direction == "in" else rng.choice(STATUSES)
            yield (
                stamp(at),
                trip_id,
                direction,
                kind,
                src,
                dst,
                body,
                secrets.token_hex(16),
                status,
                30003 if status == "undelivered" else None,
                f"SM{i:032x}",
                contact if kind != "command" else None,
                staff if kind in ("forward", "receipt", "command", "to_contact") else None,
            )

    con.executemany(
        "INSERT INTO messages (created_at, trip_id, direction, kind, from_number, to_number,"
        " body, body_salt, num_media, media_types, status, error_code, error_message,"
        " twilio_sid, contact_id, staff_id, via, note, needs_review, flagged, attempts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, '[]', ?, ?, '', ?, ?, ?, 'sms', '', 0, '', 1)",
        rows(),
    )


def database(messages: int, fresh: bool) -> Path:
    """The cached database of ``messages`` messages, built if missing (or ``fresh``)."""
    return large_db.cached("record", messages, "messages", build, fresh)


def percentile(values: list[float], p: float) -> float:
    """The value ``p`` / 100 of the way along ``values`` in order, at the nearest rank. Not
    common.py's percentile (nearest rank of ``p`` / 100 x count), which picks a higher value
    for a p95 over a few runs: these figures stay comparable with those in BENCHMARKS.md."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm: the first run pays for compiling the statement
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def like_page(user: User, terms: list[str]) -> None:
    """The same first page without the index: the newest 25 whose body holds every word,
    and how many do, which scans the table."""
    conditions = [*message_conditions(user), *(Message.body.like(f"%{t}%") for t in terms)]
    page = select(Message).where(*conditions)
    page = page.order_by(Message.created_at.desc(), Message.id.desc()).limit(25)
    list(db.session.scalars(page))
    db.session.scalar(select(func.count()).select_from(Message).where(*conditions))


def like_page_capped(user: User, terms: list[str]) -> None:
    """The LIKE page with the count capped as the log caps it (for comparison only)."""
    conditions = [*message_conditions(user), *(Message.body.like(f"%{t}%") for t in terms)]
    page = select(Message).where(*conditions)
    list(db.session.scalars(page.order_by(Message.created_at.desc()).limit(25)))
    capped = select(literal_column("1")).select_from(Message).where(*conditions).limit(1001)
    db.session.scalar(select(func.count()).select_from(capped.subquery()))


def run(messages: int, fresh: bool, repeat: int) -> dict:
    path = database(messages, fresh)
    app = create_app(config(path))
    results: dict = {"messages": messages, "rows": []}
    rng = random.Random(7)
    names = rng.sample(NAMES, 6)
    words = [
        ("very common", "coach"),
        ("very common", "school"),
        ("common", "lunch"),
        ("common", "museum"),
        ("uncommon", "inhaler"),
        ("uncommon", "passport"),
        ("two words", "coach late"),
        ("two words", "museum fine"),
        *(("rare (a name)", n) for n in names),
    ]
    with app.app_context():
        head = db.session.get(User, 1)
        leader = db.session.get(User, 2)
        results["count_check"] = db.session.scalar(select(func.count()).select_from(Message))
        for who, user in (("head", head), ("leader", leader)):
            for band, text in words:
                if who == "leader" and band in ("two words",):
                    continue
                flt = search.LogFilter(text=text)
                page = search.search_page(user, flt)
                fts = timed(lambda u=user, f=flt: search.search_page(u, f), repeat)
                terms = search.search_terms(text)
                like_repeat = max(2, repeat // 10) if who == "head" else 1
                scan = timed(lambda u=user, t=terms: like_page(u, t), like_repeat)
                capped = timed(lambda u=user, t=terms: like_page_capped(u, t), like_repeat)
                results["rows"].append(
                    {
                        "who": who,
                        "band": band,
                        "text": text,
                        "matches": page.total_text,
                        "fts": fts,
                        "like": scan,
                        "like_capped": capped,
                    }
                )
                db.session.rollback()
    results["http"] = http_pages(app, words, repeat)
    return results


def http_pages(app, words, repeat) -> list[float]:
    """GET /log?text=... as the Headteacher: the whole page, rendering included."""
    client = app.test_client()
    with client.session_transaction() as session, app.app_context():
        session["_user_id"] = db.session.get(User, 1).get_id()
        session["_fresh"] = True
    out = []
    for _, text in words:
        out += timed(lambda t=text: _get(client, t), max(3, repeat // 4))
    return out


def _get(client, text: str) -> None:
    response = client.get("/log", query_string={"text": text})
    assert response.status_code == 200, response.status_code


def report(results: dict, output: Path | None) -> bool:
    fts_all = [v for r in results["rows"] for v in r["fts"]]
    p50, p95 = percentile(fts_all, 50), percentile(fts_all, 95)
    http_p95 = percentile(results["http"], 95)
    ratios = [statistics.median(r["like"]) / statistics.median(r["fts"]) for r in results["rows"]]
    # The criterion is about the whole log (1,000,000 rows): the Headteacher's searches. A
    # leader's searches are confined to their own trips by an index before any text is read.
    whole = [x for r, x in zip(results["rows"], ratios, strict=True) if r["who"] == "head"]
    ratio = statistics.median(whole)
    fast_enough = p95 < 150 and http_p95 < 150
    ten_times = ratio >= 10
    lines = [
        large_db.heading("Log text search", results["messages"], "messages"),
        "",
        f"{large_db.command_on_host('record_search.py', 'messages', results['messages'])} "
        f"(load average {os.getloadavg()[0]:.1f}, shared with other work). "
        f"First page of a search "
        "(25 newest and a count capped at 1,000), through `search_page`; LIKE: the same page "
        "found with `body LIKE '%word%'` and every match counted (a scan), in the same run.",
        "",
        "| who | words | matches | index p50 ms | index p95 ms | LIKE scan p50 ms "
        "| LIKE, capped count, p50 ms | scan / index |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r, x in zip(results["rows"], ratios, strict=True):
        lines.append(
            f"| {r['who']} | {r['band']}: `{r['text']}` | {r['matches']} "
            f"| {statistics.median(r['fts']):.1f} | {percentile(r['fts'], 95):.1f} "
            f"| {statistics.median(r['like']):.0f} | {statistics.median(r['like_capped']):.1f} "
            f"| {x:.0f}x |"
        )
    lines += [
        "",
        f"- Index, all searches: p50 {p50:.1f} ms, **p95 {p95:.1f} ms** (target < 150 ms); "
        f"the whole page over HTTP, rendering included: p95 {http_p95:.1f} ms. "
        f"{large_db.mark(fast_enough)}",
        f"- Searches of the whole log (the Headteacher's), LIKE scan / index: median "
        f"**{ratio:.0f}x**, smallest {min(whole):.0f}x (target >= 10x). {large_db.mark(ten_times)}",
        "- Without the index, the page itself is quick for very common words (the newest 25 "
        "are found early along the time index) but slow for rare ones, and counting the "
        "matches always reads the whole table; with it, every search costs a few "
        "milliseconds.",
        "- A leader sees only their own trips (here 10 of 400, 2.5% of the log). The trip "
        "index confines the LIKE to those rows before any text is read, so there the two "
        "are level: a few to tens of milliseconds either way. The index search reads only "
        "the stretches of each word's list that fall in those trips.",
        "",
    ]
    large_db.publish(lines, output)
    return fast_enough and ten_times


def main() -> None:
    args = large_db.arguments(__doc__, "messages", repeat=20)
    ok = report(run(args.messages, args.fresh, args.repeat), args.output)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
