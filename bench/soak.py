"""Soak: parents texting in bursts, leaders broadcasting, Twilio failing, a sender killed.

For ``--seconds``, simulated parents text the trip number in bursts (``--burst`` texts at once
every ``--burst-every`` seconds, each from a different one of ``--parents`` parents: by default
50 every 5 s, 600 texts a minute from 200 parents) while the trip's leader,
signed in over HTTP, broadcasts ``--broadcasts`` times to all ``--contacts`` parents through
the web form and watches each broadcast's progress as the page does. The simulated Twilio, in
a process of its own (``tripcomms.simulator.standalone``), answers ``--rate-429`` of the sends
with 429 and ``--rate-500`` with 500, takes ``--api-latency`` per call, delivers every text it
accepts and posts signed status callbacks back. During the first broadcast a sender process is
killed with SIGKILL in the middle of sending and restarted (``--no-kill`` leaves it alone), so
the rows it held are recovered, and the new sender works, while the run goes on.

Two deployments:

- ``--database postgresql+psycopg://...``: gunicorn with 4 sync workers (no sender inside) and
  2 ``flask --app tripcomms worker`` processes; the process killed is one of the workers.
- ``--database sqlite``: the default deployment, one gunicorn process (1 worker, 8 threads) with
  the in-process sender, on a SQLite file; the process killed is that worker, which gunicorn's
  master starts again (as systemd would restart a service).

The parents' webhooks are posted as Twilio posts them (signed, 15 s timeout, one retry after a
connection failure, as Twilio's default connection override does; never after an answer).

Afterwards, with every process stopped, the checks are queries against the database and the
simulator's records:

- every text posted is stored exactly once, as a parent's text, with one forward per school
  phone; no webhook (inbound or status callback) was answered with a 5xx;
- every outbound message is delivered by our status, and the simulator delivered its sid once;
- each broadcast reached all its recipients, as the leader's progress page says too;
- a text delivered twice is counted; it must be one the killed sender held, whose first send
  Twilio had accepted before the kill (the one case the outbox allows), and every send Twilio
  accepted that we have no record of must be such a text;
- the kill happened: the process died by SIGKILL, a new one took over, the rows it held stayed
  claimed until their lease ran out and were then sent by another sender;
- nothing is left pending or sending (no stuck sender), no error was logged, and
  ``flask --app tripcomms audit verify`` passes.

The figures are printed, with PASS or FAIL; the exit status is 1 on FAIL. ``--report FILE``
writes them as JSON. A PostgreSQL database given is emptied and migrated afresh (never
``test``); SQLite uses a file in a temporary directory. Everything listens on 127.0.0.1.

    .venv/bin/python bench/soak.py --database postgresql+psycopg://postgres@127.0.0.1/soak_pg
    .venv/bin/python bench/soak.py --database sqlite

The lease (``--lease``), the send timeout and the retry backoff are shorter than in production
so that recovery and retries happen within the run; the rest is the production configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import requests
from common import (
    ACCOUNT_SID,
    PASSWORD,
    REPO,
    bench_config,
    check_postgres_url,
    env_for,
    free_port,
    gunicorn,
    inbound_form,
    machine,
    ms,
    new_message_sid,
    percentile,
    process_tree_cpu,
    quiet_app,
    seeded_app,
    sqlite_url,
    stop_process,
    stored_inbound,
    verdict,
    wait_for_port,
)
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from tripcomms.extensions import db
from tripcomms.relay.models import Broadcast, Direction, Kind, Message, Status

LEADER_EMAIL = "leader@bench.school"
TWILIO_TIMEOUT = 15.0  # Twilio's read timeout for a webhook
FINAL = (Status.DELIVERED, Status.UNDELIVERED, Status.FAILED)
SEND_TIMEOUT = 5.0  # TWILIO_TIMEOUT_SECONDS for our calls to the API (production: 10)
PROGRESS_POLL = 3.0  # INBOX_POLL_SECONDS: how often the progress page asks
ERROR_LINE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")

FULL = {"seconds": 60, "parents": 200, "burst": 50, "broadcasts": 3, "contacts": 500}
SQLITE = {"seconds": 60, "parents": 100, "burst": 25, "broadcasts": 2, "contacts": 200}


# --- Parents texting --------------------------------------------------------------------------


@dataclass
class Text:
    """One parent's text and what became of its webhook."""

    sid: str
    parent: str
    body: str
    status: int | None = None  # the final answer's HTTP status; None: no answer at all
    latency: float = 0.0  # of the answered attempt
    tries: int = 0
    failures: list[str] = field(default_factory=list)  # attempts that got no answer


class Parents:
    """Posts bursts of signed inbound webhooks from a thread of its own (asyncio, aiohttp)."""

    def __init__(self, app_url: str, auth_token: str, trip_number: str, parents: list[str]):
        self.url = app_url + "/twilio/sms"
        self.validator = RequestValidator(auth_token)
        self.trip_number = trip_number
        self.parents = parents
        self.texts: list[Text] = []
        self._numbering = iter(range(1, 10**9))

    async def _attempt(self, session: aiohttp.ClientSession, text: Text, form: dict) -> bool:
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.url, form)}
        text.tries += 1
        started = time.perf_counter()
        try:
            async with session.post(self.url, data=form, headers=headers) as response:
                await response.read()
                text.status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            text.failures.append(type(err).__name__)
            return False
        text.latency = time.perf_counter() - started
        return True

    async def _text(self, session: aiohttp.ClientSession, parent: str) -> None:
        n = next(self._numbering)
        text = Text(new_message_sid(), parent, f"Soak text {n}: is the coach on time?")
        self.texts.append(text)
        form = inbound_form(text.sid, parent, self.trip_number, text.body)
        # Twilio tries again once when the connection fails or times out, never after an answer.
        if not await self._attempt(session, text, form):
            await asyncio.sleep(0.5)
            await self._attempt(session, text, form)

    async def _run(self, bursts: int, burst: int, every: float) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=TWILIO_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            start = time.monotonic()
            tasks = []
            for k in range(bursts):
                await asyncio.sleep(max(0.0, start + k * every - time.monotonic()))
                senders = random.sample(self.parents, min(burst, len(self.parents)))
                tasks += [asyncio.create_task(self._text(session, p)) for p in senders]
            await asyncio.gather(*tasks)

    def start(self, seconds: float, burst: int, every: float) -> threading.Thread:
        bursts = max(1, int(seconds // every))
        thread = threading.Thread(
            target=lambda: asyncio.run(self._run(bursts, burst, every)), name="parents"
        )
        thread.start()
        return thread


# --- The leader, in a browser -------------------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page: action -> {input name: value}."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1][1][values["name"]] = values.get("value", "")


def form_fields(html: str, action_suffix: str) -> dict[str, str]:
    parser = _Forms()
    parser.feed(html)
    for action, fields in parser.forms:
        if action.endswith(action_suffix):
            return fields
    raise RuntimeError(f"no form posting to ...{action_suffix} on the page")


class Leader:
    """The trip leader: signs in, broadcasts through the web form, watches the progress."""

    def __init__(self, app_url: str, trip_id: int):
        self.url = app_url
        self.trip_id = trip_id
        self.session = requests.Session()
        self.statuses: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        # A browser shows an error page and the person tries again: once, after a failed
        # connection (the SQLite deployment's one process may be restarting).
        for attempt in (1, 2):
            try:
                response = self.session.request(
                    method, self.url + path, timeout=30, allow_redirects=False, **kwargs
                )
            except requests.ConnectionError:
                with self.lock:
                    self.statuses["no answer"] += 1
                if attempt == 2:
                    raise
                time.sleep(1.0)
                continue
            with self.lock:
                self.statuses[str(response.status_code)] += 1
            return response
        raise AssertionError("unreachable")

    def sign_in(self) -> None:
        page = self._request("GET", "/login")
        fields = form_fields(page.text, "")  # the sign-in form posts to its own address
        fields.update(email=LEADER_EMAIL, password=PASSWORD)
        response = self._request("POST", "/login", data=fields)
        if response.status_code != 303:
            raise RuntimeError(f"the leader could not sign in (HTTP {response.status_code})")

    def broadcast(self, body: str, on_sent: Callable[[int], None] | None = None) -> int:
        """Write, check and send a broadcast as the pages do; return its id. ``on_sent`` is
        called with the id as soon as the send is answered, before the progress page."""
        path = f"/trips/{self.trip_id}/broadcast"
        page = self._request("GET", path)
        fields = form_fields(page.text, path)
        fields["body"] = body
        confirm = self._request("POST", path, data=fields)
        if confirm.status_code != 200:
            raise RuntimeError(f"the broadcast preview answered HTTP {confirm.status_code}")
        sent = self._request("POST", path + "/send", data=form_fields(confirm.text, "/send"))
        location = sent.headers.get("Location", "")
        match = re.search(r"/broadcasts/(\d+)$", location)
        if sent.status_code != 303 or not match:
            raise RuntimeError(f"the broadcast was not sent (HTTP {sent.status_code})")
        broadcast_id = int(match.group(1))
        if on_sent is not None:
            on_sent(broadcast_id)
        self._request("GET", location)  # the progress page the leader is taken to
        return broadcast_id

    def progress(self, broadcast_id: int) -> dict[str, Any]:
        response = self._request("GET", f"/trips/{self.trip_id}/broadcasts/{broadcast_id}.json")
        response.raise_for_status()
        return response.json()


# --- The simulated Twilio, in its own process ----------------------------------------------------


class SimulatorProcess:
    def __init__(self, port: int, env: dict[str, str], log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.control = f"{self.url}/sim/twilio/control/{ACCOUNT_SID}"
        self.auth = (ACCOUNT_SID, env["TRIPCOMMS_TWILIO_AUTH_TOKEN"])
        command = [sys.executable, "-m", "tripcomms.simulator.standalone", "--port", str(port)]
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=self._log, start_new_session=True
        )
        wait_for_port(port, self.process)

    def set_faults(self, rates: dict[str, float], latency: float, seed: int) -> None:
        payload = {"rates": rates, "latency": latency, "seed": seed}
        response = requests.post(self.control + "/faults", json=payload, auth=self.auth, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"the simulator refused the faults: {response.text}")

    def wait_idle(self, timeout: float) -> bool:
        response = requests.post(
            self.control + "/wait-idle", json={"timeout": timeout}, auth=self.auth, timeout=330
        )
        return response.status_code == 200

    def report(self) -> dict[str, Any]:
        response = requests.get(self.control + "/report", auth=self.auth, timeout=60)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


# --- Senders and the kill -----------------------------------------------------------------------


class Worker:
    """One ``flask --app tripcomms worker`` process."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 (closed in stop)
        flask = str(Path(sys.executable).parent / "flask")
        self.process = subprocess.Popen(
            [flask, "--app", "tripcomms", "worker"],
            env=env,
            stdout=self._out,
            stderr=self._out,
            start_new_session=True,
            cwd=REPO,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> int | None:
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(10)
        self._out.close()
        return code

    def stop(self) -> int | None:
        """SIGTERM: it finishes its batch and exits 0."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if not self._out.closed:
            self._out.close()
        return self.process.returncode


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def sending_rows(app) -> dict[int, tuple[datetime, int]]:
    """Rows claimed by a sender now: id -> (lease expiry, attempts)."""
    with app.app_context():
        rows = db.session.execute(
            select(Message.id, Message.lease_expires_at, Message.attempts).where(
                Message.direction == Direction.OUT, Message.status == Status.SENDING
            )
        ).all()
        db.session.remove()
    return {row.id: (row.lease_expires_at, row.attempts) for row in rows}


@dataclass
class Kill:
    """What the kill did: the rows the dead process held, found as described in ``watch``."""

    at: float = 0.0  # perf_counter
    killed_pid: int = 0
    exit_code: int | None = None
    restarted_pid: int = 0
    restart_seconds: float = float("nan")
    cpu_of_killed: float = 0.0
    claimed_at_kill: dict[int, tuple[datetime, int]] = field(default_factory=dict)
    orphans: dict[int, int] = field(default_factory=dict)  # id -> attempts at the kill
    decided: threading.Event = field(default_factory=threading.Event)

    def watch(self, app) -> None:
        """Decide which of the rows claimed at the kill the dead process held.

        Each claim gives its rows one lease expiry, and each sender holds one claim at a time,
        so the rows claimed at the kill form a group per living or dead sender. A living
        sender records each of its rows within the send timeout (well under the lease); the
        dead one's rows stay claimed, untouched, until their lease runs out. So a group still
        whole half a second before its lease ends was the dead process's.
        """
        groups: dict[datetime, set[int]] = defaultdict(set)
        for row_id, (lease, _) in self.claimed_at_kill.items():
            groups[lease].add(row_id)
        for lease in sorted(groups):
            wait = (lease - timedelta(seconds=0.5) - datetime.now(UTC)).total_seconds()
            time.sleep(max(0.0, wait))
            now = sending_rows(app)
            whole = all(now.get(i, (None,))[0] == lease for i in groups[lease])
            if whole:
                self.orphans.update({i: self.claimed_at_kill[i][1] for i in groups[lease]})
        self.decided.set()


def connections_to(pid: int, port: int) -> int:
    """How many TCP connections process ``pid`` has open to 127.0.0.1:``port`` (Linux /proc).

    A sender opens its connections to Twilio for one pass (claim, send, record) and closes
    them after it, so while it has any it holds claimed rows.
    """
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


def mid_pass(pids: list[int], sim_port: int, timeout: float = 15.0) -> int:
    """The first of ``pids`` seen in the middle of a pass (talking to Twilio); after
    ``timeout`` without one, the first pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            if connections_to(pid, sim_port):
                return pid
        time.sleep(0.01)
    return pids[0]


# --- The run ------------------------------------------------------------------------------------


@dataclass
class Options:
    database: str
    seconds: float
    parents: int
    burst: int
    burst_every: float
    broadcasts: int
    contacts: int
    kill: bool
    rate_429: float
    rate_500: float
    api_latency: float
    lease: float
    restart_after: float
    drain_timeout: float
    seed: int
    report: str | None
    logs: str | None

    @property
    def postgres(self) -> bool:
        return self.database != "sqlite"


@dataclass
class Run:
    """Everything the checks read, gathered while the processes run."""

    texts: list[Text] = field(default_factory=list)
    broadcast_ids: list[int] = field(default_factory=list)
    progress: dict[int, dict[str, Any]] = field(default_factory=dict)
    leader_statuses: Counter[str] = field(default_factory=Counter)
    kill: Kill | None = None
    sim: dict[str, Any] = field(default_factory=dict)
    setup_seconds: float = 0.0
    load_seconds: float = 0.0
    drain_seconds: float = 0.0
    stuck: dict[str, int] = field(default_factory=dict)
    worker_exits: list[int | None] = field(default_factory=list)
    restarted_ok: bool = False
    cpu: dict[str, float] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)
    audit: tuple[int, str] = (0, "")
    load_average: tuple[float, float] = (0.0, 0.0)
    phones: int = 0


def unfinished(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(
            select(Message.status, func.count())
            .where(Message.direction == Direction.OUT, Message.status.not_in(FINAL))
            .group_by(Message.status)
        ).all()
        db.session.remove()
    return {str(status): n for status, n in rows}


def ensure_postgres_database(url: str) -> None:
    """Create the database ``url`` names if the server does not have it yet."""
    target = make_url(url)
    server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            found = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            )
            if not found:
                name = target.database.replace('"', '""')
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        server.dispose()


def letters(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(n))


def soak(opts: Options, workdir: Path) -> Run:
    run = Run(load_average=(os.getloadavg()[0], 0.0))
    setup_started = time.perf_counter()
    app_port, sim_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    if opts.postgres:
        ensure_postgres_database(opts.database)
        database_url = opts.database
    else:
        database_url = sqlite_url(workdir, "soak.sqlite")
    config = bench_config(
        database_url,
        PUBLIC_BASE_URL=app_url,
        SMS_BACKEND="twilio",
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{sim_port}/sim/twilio",
        TWILIO_TIMEOUT_SECONDS=SEND_TIMEOUT,
        SEND_IN_PROCESS=not opts.postgres,
        SEND_LEASE_SECONDS=opts.lease,
        SEND_BACKOFF_SECONDS=0.5,
        SEND_BACKOFF_MAX_SECONDS=8.0,
    )
    app, seeded = seeded_app(config, pupils=opts.contacts // 2, contacts_per_pupil=2, phones=1)
    run.phones = len(seeded.school_phones)
    env = env_for(config)

    sim_env = env_for(
        {
            "TWILIO_ACCOUNT_SID": config["TWILIO_ACCOUNT_SID"],
            "TWILIO_AUTH_TOKEN": config["TWILIO_AUTH_TOKEN"],
            "PUBLIC_BASE_URL": app_url,
            "SIMULATOR_NUMBERS": json.dumps([seeded.trip_number]),
        }
    )
    sim = SimulatorProcess(sim_port, sim_env, workdir / "simulator.log")
    workers: list[Worker] = []
    try:
        sim.set_faults({"429": opts.rate_429, "500": opts.rate_500}, opts.api_latency, opts.seed)
        serving = gunicorn(
            "tripcomms.wsgi:app",
            app_port,
            env,
            workers=4 if opts.postgres else 1,
            worker_class="sync" if opts.postgres else "gthread",
            threads=1 if opts.postgres else 8,
            log_file=workdir / "gunicorn.log",
        )
        with serving as web:
            if opts.postgres:
                workers = [Worker(env, workdir / f"worker-{i + 1}.log") for i in range(2)]
            web_cpu_before = process_tree_cpu(web.pid)
            leader = Leader(app_url, seeded.trip_id)
            leader.sign_in()
            parents = Parents(
                app_url,
                config["TWILIO_AUTH_TOKEN"],
                seeded.trip_number,
                seeded.parents[: opts.parents],
            )
            started = time.perf_counter()
            run.setup_seconds = started - setup_started
            texting = parents.start(opts.seconds, opts.burst, opts.burst_every)
            killer = threading.Thread(
                target=lambda: setattr(
                    run, "kill", _kill(opts, app, web, workers, env, workdir, sim_port)
                ),
                name="killer",
            )
            token = letters(6)
            for i in range(opts.broadcasts):
                due = started + opts.seconds * (i + 0.5) / opts.broadcasts
                _watch_progress(leader, run, until=due)
                body = (
                    f"Soak broadcast {i + 1} of {opts.broadcasts} ({token}): coach leaves at four"
                )
                on_sent = (lambda _: killer.start()) if opts.kill and i == 0 else None
                run.broadcast_ids.append(leader.broadcast(body, on_sent))
            _watch_progress(leader, run, until=started + opts.seconds)
            texting.join()
            if killer.ident is not None:
                killer.join()
            run.texts = parents.texts
            run.load_seconds = time.perf_counter() - started

            # Drain: everything sent and every callback taken, within the time allowed.
            drain_started = time.perf_counter()
            deadline = time.monotonic() + opts.drain_timeout
            if run.kill is not None:
                run.kill.decided.wait(max(0.0, deadline - time.monotonic()))
            while unfinished(app) and time.monotonic() < deadline:
                _watch_progress(leader, run, until=time.perf_counter() + 1.0)
            sim.wait_idle(max(1.0, min(60.0, deadline - time.monotonic())))
            run.stuck = unfinished(app)
            run.drain_seconds = time.perf_counter() - drain_started
            for broadcast_id in run.broadcast_ids:
                run.progress[broadcast_id] = leader.progress(broadcast_id)
            run.leader_statuses = leader.statuses
            run.sim = sim.report()

            # CPU seconds of each part (the killed process's up to its death included).
            lost = run.kill.cpu_of_killed if run.kill else 0.0
            web_cpu = process_tree_cpu(web.pid) - web_cpu_before
            if opts.postgres:
                run.cpu["web"] = web_cpu
                run.cpu["senders"] = sum(process_tree_cpu(w.pid) for w in workers) + lost
            else:
                run.cpu["web and sender"] = web_cpu + lost
            run.cpu["simulator"] = process_tree_cpu(sim.process.pid)
            for worker in workers:
                run.worker_exits.append(worker.stop())
            if run.kill is not None and opts.postgres:
                restarted = workers[-1]
                run.restarted_ok = restarted.pid == run.kill.restarted_pid and (
                    "outbox worker stopped" in restarted.log.read_text(errors="replace")
                )
            elif run.kill is not None:
                run.restarted_ok = run.kill.restarted_pid in children(web.pid)
    finally:
        for worker in workers:
            worker.stop()
        sim.stop()
    run.cpu["this script"] = time.process_time()
    run.load_average = (run.load_average[0], os.getloadavg()[0])
    expected = ""
    if run.kill is not None and not opts.postgres:
        # gunicorn's master reports how its worker died: the proof that SIGKILL did it.
        expected = f"Worker (pid:{run.kill.killed_pid}) was sent SIGKILL!"
        if expected in (workdir / "gunicorn.log").read_text(errors="replace"):
            run.kill.exit_code = -signal.SIGKILL
    for log in sorted(workdir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        run.logs[log.name] = [
            line
            for line in lines
            if ERROR_LINE.search(line) and not (expected and expected in line)
        ]
    verify = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "tripcomms", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    run.audit = (verify.returncode, (verify.stdout + verify.stderr).strip())
    return run


def _watch_progress(leader: Leader, run: Run, until: float) -> None:
    """The leader's progress page polls the latest broadcast until ``until``."""
    while (left := until - time.perf_counter()) > 0:
        time.sleep(min(PROGRESS_POLL, left))
        if run.broadcast_ids and time.perf_counter() < until:
            leader.progress(run.broadcast_ids[-1])


def _kill(
    opts: Options, app, web, workers: list[Worker], env, workdir: Path, sim_port: int
) -> Kill:
    """SIGKILL a sender in the middle of a pass; start another; watch the rows it held."""
    kill = Kill()
    if opts.postgres:
        busy = mid_pass([w.pid for w in workers], sim_port)
        victim = next(w for w in workers if w.pid == busy)
        kill.cpu_of_killed = process_tree_cpu(victim.pid)
        kill.at = time.perf_counter()
        kill.killed_pid = victim.pid
        kill.exit_code = victim.kill()
        kill.claimed_at_kill = sending_rows(app)
        time.sleep(opts.restart_after)
        workers.append(Worker(env, workdir / "worker-restarted.log"))
        workers.remove(victim)
        kill.restarted_pid = workers[-1].pid
        kill.restart_seconds = time.perf_counter() - kill.at
    else:
        (victim_pid,) = children(web.pid)
        mid_pass([victim_pid], sim_port)
        kill.cpu_of_killed = process_tree_cpu(victim_pid)
        kill.at = time.perf_counter()
        kill.killed_pid = victim_pid
        os.kill(victim_pid, signal.SIGKILL)
        kill.claimed_at_kill = sending_rows(app)
        # gunicorn's master starts a new worker, as systemd would restart the service.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = children(web.pid) - {victim_pid}
            if new:
                kill.restarted_pid = new.pop()
                kill.restart_seconds = time.perf_counter() - kill.at
                break
            time.sleep(0.05)
    threading.Thread(target=kill.watch, args=(app,), name="kill-watch", daemon=True).start()
    return kill


# --- The checks ---------------------------------------------------------------------------------


def check(opts: Options, run: Run, app) -> tuple[dict[str, Any], list[str]]:
    """Query the database and the simulator's records; return the figures and the problems."""
    problems: list[str] = []
    figures: dict[str, Any] = {}
    phones = run.phones

    # Texts in.
    posted = Counter(t.sid for t in run.texts)
    answers = Counter(str(t.status) if t.status else "no answer" for t in run.texts)
    latencies = [t.latency for t in run.texts if t.status == 200]
    with app.app_context():
        stored, inbound_kinds = stored_inbound()
        forwards_per_text = Counter(
            n
            for (n,) in db.session.execute(
                select(func.count(Message.id))
                .select_from(Message)
                .where(Message.kind == Kind.FORWARD)
                .group_by(Message.caused_by_id)
            ).all()
        )
        forwarded_texts = db.session.scalar(
            select(func.count(func.distinct(Message.caused_by_id))).where(
                Message.kind == Kind.FORWARD
            )
        )
        outbound = db.session.execute(
            select(
                Message.id,
                Message.kind,
                Message.status,
                Message.twilio_sid,
                Message.to_number,
                Message.body,
                Message.attempts,
                Message.broadcast_id,
            ).where(Message.direction == Direction.OUT)
        ).all()
        broadcasts = {
            b.id: (b.recipients, b.skipped_opted_out, b.skipped_no_contact)
            for b in db.session.scalars(select(Broadcast))
        }
        # From the broadcast's commit to its last recipient's delivery report.
        took = {
            broadcast_id: (last - created).total_seconds()
            for broadcast_id, created, last in db.session.execute(
                select(Broadcast.id, Broadcast.created_at, func.max(Message.status_at))
                .join(Message, Message.broadcast_id == Broadcast.id)
                .group_by(Broadcast.id, Broadcast.created_at)
            ).all()
        }
        db.session.remove()
        db.engine.dispose()

    missing = [sid for sid in posted if sid not in stored]
    unexpected = [sid for sid in stored if sid not in posted]
    twice = [sid for sid, n in stored.items() if n > 1]
    retried = sum(1 for t in run.texts if t.tries > 1)
    figures["texts"] = {
        "posted": len(posted),
        "stored": sum(stored.values()),
        "missing": len(missing),
        "stored_twice": len(twice),
        "unexpected": len(unexpected),
        "answers": dict(answers),
        "retried_after_no_answer": retried,
        "latency_ms": {
            "p50": percentile(latencies, 50) * 1000,
            "p95": percentile(latencies, 95) * 1000,
            "p99": percentile(latencies, 99) * 1000,
            "max": max(latencies, default=float("nan")) * 1000,
        },
    }
    if missing or unexpected or twice:
        problems.append(
            f"texts in: {len(missing)} posted but not stored, {len(twice)} stored twice, "
            f"{len(unexpected)} stored but never posted"
        )
    if answers.get("200", 0) != len(run.texts):
        problems.append(f"texts in: webhook answers {dict(answers)}, expected all 200")
    if inbound_kinds != {Kind.FROM_CONTACT: len(posted)}:
        problems.append(f"texts in: kinds {inbound_kinds}, expected all from a parent")

    # Forwards and broadcasts, and every outbound row against the simulator.
    sim_by_sid = {m["sid"]: m for m in run.sim["outbound"]}
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    not_delivered = []
    for row in outbound:
        by_kind[str(row.kind)][str(row.status)] += 1
        sim_row = sim_by_sid.get(row.twilio_sid or "")
        if row.status != Status.DELIVERED or sim_row is None or sim_row["deliveries"] != 1:
            not_delivered.append(row.id)
    forwards = by_kind[Kind.FORWARD]
    figures["forwards"] = {
        "queued": sum(forwards.values()),
        "delivered": forwards[Status.DELIVERED],
        "per_text": dict(forwards_per_text),
    }
    if forwarded_texts != len(posted) or set(forwards_per_text) - {phones}:
        problems.append(
            f"forwards: {forwarded_texts} texts forwarded of {len(posted)}, forwards per text "
            f"{dict(forwards_per_text)}, expected {phones} each"
        )
    per_broadcast = Counter(row.broadcast_id for row in outbound if row.broadcast_id)
    figures["broadcasts"] = []
    for broadcast_id in run.broadcast_ids:
        recipients, opted_out, no_contact = broadcasts.get(broadcast_id, (0, 0, 0))
        shown = run.progress.get(broadcast_id, {})
        figures["broadcasts"].append(
            {
                "id": broadcast_id,
                "recipients": recipients,
                "messages": per_broadcast[broadcast_id],
                "seconds_to_all_delivered": took.get(broadcast_id),
                "progress_page": shown.get("counts"),
            }
        )
        if (recipients, opted_out, no_contact, per_broadcast[broadcast_id]) != (
            opts.contacts,
            0,
            0,
            opts.contacts,
        ):
            problems.append(
                f"broadcast {broadcast_id}: {per_broadcast[broadcast_id]} messages to "
                f"{recipients} recipients, expected {opts.contacts}"
            )
        if not shown.get("finished") or (shown.get("counts") or {}).get("delivered") != (
            opts.contacts
        ):
            problems.append(
                f"broadcast {broadcast_id}: the progress page shows {shown.get('counts')}"
            )
    if len(run.broadcast_ids) != opts.broadcasts or len(broadcasts) != opts.broadcasts:
        problems.append(f"broadcasts: {len(broadcasts)} stored, {opts.broadcasts} sent")
    figures["outbound"] = {
        "rows": len(outbound),
        "by_kind": {kind: dict(statuses) for kind, statuses in by_kind.items()},
        "delivered_once": len(outbound) - len(not_delivered),
    }
    if not_delivered:
        problems.append(
            f"outbound: {len(not_delivered)} messages not delivered exactly once by their sid "
            f"(ids {sorted(not_delivered)[:10]}...)"
        )
    if run.stuck:
        problems.append(f"stuck: after the drain, outbound messages still {run.stuck}")

    # Twilio's refusals and our retries.
    creates = run.sim["creates"]
    attempts = Counter(row.attempts for row in outbound)
    figures["twilio"] = {
        "creates": creates,
        "answered_429": creates.get("429", 0),
        "answered_500": creates.get("500", 0),
        "rows_sent_more_than_once": sum(n for a, n in attempts.items() if a > 1),
        "attempts": dict(sorted(attempts.items())),
    }
    if opts.rate_429 and not creates.get("429"):
        problems.append("twilio: no send was answered 429: the faults were not on")
    if opts.rate_500 and not creates.get("500"):
        problems.append("twilio: no send was answered 500: the faults were not on")

    # The kill, the rows it left claimed, and the duplicates it may cause.
    orphans = run.kill.orphans if run.kill else {}
    by_id = {row.id: row for row in outbound}
    orphan_keys = {(by_id[i].to_number, by_id[i].body) for i in orphans if i in by_id}
    ours = {row.twilio_sid for row in outbound if row.twilio_sid}
    unrecorded = [m for m in run.sim["outbound"] if m["sid"] not in ours]
    unexplained_unrecorded = [m for m in unrecorded if (m["to"], m["body"]) not in orphan_keys]
    duplicates = run.sim["duplicates"]
    duplicate_keys = {(d["to"], d["body"]) for d in duplicates}
    extra = sum(d["count"] - 1 for d in duplicates)
    unexplained = [d for d in duplicates if (d["to"], d["body"]) not in orphan_keys]
    figures["duplicates"] = {
        "extra_deliveries": extra,
        "explained_by_kill": extra - sum(d["count"] - 1 for d in unexplained),
        "unexplained": sum(d["count"] - 1 for d in unexplained),
        "accepted_but_unrecorded": len(unrecorded),
    }
    if unexplained:
        problems.append(
            f"duplicates: {len(unexplained)} texts delivered more than once that no killed "
            "sender held"
        )
    if unexplained_unrecorded:
        problems.append(
            f"twilio: {len(unexplained_unrecorded)} sends accepted that we have no record of, "
            "not held by the killed sender"
        )
    if opts.kill and run.kill is None:
        problems.append("kill: the sender was not killed (see the error above)")
    if run.kill is not None:
        kill = run.kill
        # Sent again only once the lease had run out: the create of the sid we kept came
        # after the lease's end (a sender that took a leased row early would be a bug).
        lease_end = {i: lease.timestamp() for i, (lease, _) in kill.claimed_at_kill.items()}
        recovered = [
            i
            for i, before in orphans.items()
            if i in by_id
            and by_id[i].status == Status.DELIVERED
            and by_id[i].attempts > before
            and i not in not_delivered
            and sim_by_sid[by_id[i].twilio_sid]["requested"] >= lease_end[i]
        ]
        # Or found at Twilio: the killed sender's create was accepted before it died, and the
        # sender that took the row after the lease looked before sending again (an attempt
        # with an unknown outcome) and recorded that sid, delivered once.
        found = [
            i
            for i in orphans
            if i in by_id
            and i not in recovered
            and by_id[i].status == Status.DELIVERED
            and i not in not_delivered
            and by_id[i].twilio_sid in sim_by_sid
            and sim_by_sid[by_id[i].twilio_sid]["requested"] < lease_end[i]
            and (by_id[i].to_number, by_id[i].body) not in duplicate_keys
        ]
        # A send Twilio accepted that we have no record of must have been asked for while its
        # row was still under the killed sender's lease: by the killed sender, not by another
        # sender that took the row later (that one would have recorded it).
        lease_by_key = {
            (by_id[i].to_number, by_id[i].body): lease_end[i] for i in orphans if i in by_id
        }
        late = [
            m
            for m in unrecorded
            if m["requested"] >= lease_by_key.get((m["to"], m["body"]), float("-inf"))
        ]
        figures["kill"] = {
            "killed_pid": kill.killed_pid,
            "exit": kill.exit_code,
            "restarted_pid": kill.restarted_pid,
            "restart_seconds": kill.restart_seconds,
            "claimed_at_kill": len(kill.claimed_at_kill),
            "held_by_killed": len(orphans),
            "recovered_after_lease": len(recovered),
            "found_at_twilio": len(found),
            "accepted_while_held": len(unrecorded) - len(late),
        }
        if late:
            problems.append(
                f"kill: {len(late)} sends we have no record of were asked for after the lease"
            )
        if kill.exit_code != -signal.SIGKILL:
            problems.append(f"kill: the sender's exit was {kill.exit_code}, not SIGKILL")
        if not run.restarted_ok:
            problems.append("kill: no new sender took over and stopped cleanly")
        if not kill.decided.is_set():
            problems.append("kill: the held rows' leases did not run out within the drain")
        if not orphans:
            problems.append("kill: the killed sender held no claimed rows: the kill tested nothing")
        if len(recovered) + len(found) != len(orphans):
            problems.append(
                f"kill: {len(orphans) - len(recovered) - len(found)} of {len(orphans)} rows the "
                "killed sender held were neither sent again after their lease nor found at "
                "Twilio, and delivered once"
            )
        if len(unrecorded) > len(orphans):
            problems.append("kill: more unrecorded sends than rows the killed sender held")

    # Status callbacks, the leader's requests, the processes, the logs and the audit chain.
    callbacks = run.sim["callbacks"]
    callback_5xx = sum(n for status, n in callbacks["attempts"].items() if status.startswith("5"))
    inbound_5xx = sum(n for status, n in answers.items() if status.startswith("5"))
    figures["callbacks"] = callbacks
    figures["webhook_5xx"] = inbound_5xx + callback_5xx
    if figures["webhook_5xx"]:
        problems.append(
            f"webhooks: {inbound_5xx} inbound and {callback_5xx} status callbacks answered 5xx"
        )
    if callbacks["dropped"]:
        problems.append(f"callbacks: {callbacks['dropped']} status callbacks dropped")
    leader_bad = {s: n for s, n in run.leader_statuses.items() if s not in ("200", "303")}
    figures["leader"] = dict(run.leader_statuses)
    if leader_bad and (opts.postgres or set(leader_bad) != {"no answer"}):
        problems.append(f"leader: requests answered {leader_bad}")
    figures["sender_exits"] = run.worker_exits
    if any(code != 0 for code in run.worker_exits):
        problems.append(f"senders: exit codes {run.worker_exits} on SIGTERM, expected 0")
    errors = {name: lines for name, lines in run.logs.items() if lines}
    figures["errors_logged"] = {name: len(lines) for name, lines in errors.items()}
    if errors:
        problems.append(f"logs: errors logged in {', '.join(errors)}")
    code, output = run.audit
    figures["audit"] = output.splitlines()[-1] if output else ""
    if code != 0 or "audit chain OK" not in output:
        problems.append(f"audit verify: exit {code}: {output[-300:]}")
    figures["setup_seconds"] = run.setup_seconds
    figures["load_seconds"] = run.load_seconds
    figures["drain_seconds"] = run.drain_seconds
    figures["cpu_seconds"] = run.cpu
    figures["load_average"] = run.load_average
    return figures, problems


def print_figures(opts: Options, figures: dict[str, Any]) -> None:
    texts = figures["texts"]
    lat = texts["latency_ms"]
    print(
        f"  texts in: {texts['posted']} posted, {texts['stored']} stored "
        f"({texts['missing']} missing, {texts['stored_twice']} twice), answers "
        f"{texts['answers']}, {texts['retried_after_no_answer']} retried after no answer"
    )
    print(
        f"  webhook latency: p50 {ms(lat['p50'] / 1000)}, p95 {ms(lat['p95'] / 1000)}, "
        f"p99 {ms(lat['p99'] / 1000)}, max {ms(lat['max'] / 1000)}"
    )
    fw = figures["forwards"]
    print(f"  forwards: {fw['queued']} queued, {fw['delivered']} delivered")
    for b in figures["broadcasts"]:
        print(
            f"  broadcast {b['id']}: {b['messages']} messages to {b['recipients']} recipients, "
            f"all delivered {b['seconds_to_all_delivered'] or float('nan'):.1f} s after it was "
            f"sent; the leader's page shows {b['progress_page']}"
        )
    out = figures["outbound"]
    print(f"  outbound: {out['rows']} messages, {out['delivered_once']} delivered exactly once")
    tw = figures["twilio"]
    print(
        f"  twilio: answered 429 x{tw['answered_429']} and 500 x{tw['answered_500']}; "
        f"{tw['rows_sent_more_than_once']} messages took more than one attempt "
        f"(attempts: {tw['attempts']})"
    )
    dup = figures["duplicates"]
    print(
        f"  duplicates: {dup['extra_deliveries']} extra deliveries "
        f"({dup['explained_by_kill']} of texts the killed sender held, {dup['unexplained']} "
        f"otherwise); {dup['accepted_but_unrecorded']} sends accepted but not recorded"
    )
    if "kill" in figures:
        k = figures["kill"]
        print(
            f"  kill: pid {k['killed_pid']} (exit {k['exit']}) held {k['held_by_killed']} of "
            f"{k['claimed_at_kill']} claimed rows; {k['recovered_after_lease']} sent again "
            f"after the lease and {k['found_at_twilio']} found at Twilio (accepted before the "
            f"kill), all delivered; new sender pid {k['restarted_pid']} after "
            f"{k['restart_seconds']:.1f} s"
        )
    cb = figures["callbacks"]
    print(
        f"  status callbacks: {cb['delivered']} taken, {cb['retried']} after a retry, "
        f"{cb['dropped']} dropped; attempts by answer {cb['attempts']}"
    )
    print(
        f"  webhooks answered 5xx: {figures['webhook_5xx']}; leader's requests {figures['leader']}"
    )
    print(f"  errors logged: {figures['errors_logged'] or 'none'}; audit: {figures['audit']}")
    cpu = ", ".join(f"{k} {v:.1f} s" for k, v in figures["cpu_seconds"].items())
    print(
        f"  time: {figures['setup_seconds']:.1f} s to set up, {figures['load_seconds']:.1f} s "
        f"of load, {figures['drain_seconds']:.1f} s "
        f"to drain; CPU {cpu}; load average {figures['load_average'][0]:.1f} before, "
        f"{figures['load_average'][1]:.1f} after"
    )


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        required=True,
        help="postgresql+psycopg://... (emptied; 4 web workers and 2 senders) or sqlite "
        "(one process with its sender)",
    )
    parser.add_argument("--seconds", type=float, help="how long parents text (60)")
    parser.add_argument("--parents", type=int, help="parents who text (200; SQLite 100)")
    parser.add_argument("--burst", type=int, help="texts posted at once (50; SQLite 25)")
    parser.add_argument("--burst-every", type=float, default=5.0, help="seconds between bursts (5)")
    parser.add_argument("--broadcasts", type=int, help="broadcasts by the leader (3; SQLite 2)")
    parser.add_argument("--contacts", type=int, help="parents on the roster (500; SQLite 200)")
    parser.add_argument("--kill", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rate-429", type=float, default=0.10)
    parser.add_argument("--rate-500", type=float, default=0.05)
    parser.add_argument("--api-latency", type=float, default=0.1, help="seconds per API call")
    parser.add_argument("--lease", type=float, default=15.0, help="SEND_LEASE_SECONDS")
    parser.add_argument("--restart-after", type=float, default=1.0)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1, help="for the simulator's faults")
    parser.add_argument("--report", help="write the figures as JSON to this file")
    parser.add_argument("--logs", help="keep the processes' logs in this directory")
    args = parser.parse_args(argv)
    defaults = SQLITE if args.database == "sqlite" else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.database != "sqlite":
        check_postgres_url(args.database)
    if args.contacts < 2 or args.contacts % 2:
        parser.error("--contacts must be an even number (two parents per pupil)")
    if not 1 <= args.parents <= args.contacts:
        parser.error("--parents must be between 1 and --contacts")
    if args.burst < 1 or args.broadcasts < 0 or args.seconds <= 0 or args.burst_every <= 0:
        parser.error("--burst, --seconds and --burst-every must be positive")
    if args.kill and args.broadcasts < 1:
        parser.error("--kill needs at least one broadcast (the kill comes during one)")
    if args.lease < SEND_TIMEOUT + 3:
        parser.error(f"--lease must be at least {SEND_TIMEOUT + 3:g} s (the send timeout + 3)")
    return Options(**vars(args))


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    mode = (
        "PostgreSQL: gunicorn 4 workers, 2 sender processes"
        if opts.postgres
        else "SQLite: one gunicorn process (8 threads) with its sender"
    )
    print(f"soak on {machine()}")
    print(
        f"  {mode}; the simulator in its own process; {opts.seconds:g} s, {opts.parents} "
        f"parents texting {opts.burst} at once every {opts.burst_every:g} s, "
        f"{opts.broadcasts} broadcasts to {opts.contacts}, Twilio 429 {opts.rate_429:.0%} / "
        f"500 {opts.rate_500:.0%}, {'a sender killed' if opts.kill else 'no kill'}"
    )
    with tempfile.TemporaryDirectory(prefix="tripcomms-soak-") as tmp:
        workdir = Path(tmp)
        run = soak(opts, workdir)
        database_url = opts.database if opts.postgres else sqlite_url(workdir, "soak.sqlite")
        app = quiet_app(bench_config(database_url, SMS_BACKEND="twilio"))
        figures, problems = check(opts, run, app)
        print_figures(opts, figures)
        for name, lines in run.logs.items():
            for line in lines[:5]:
                print(f"  {name}: {line[:200]}")
        if opts.logs:
            Path(opts.logs).mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                shutil.copy(log, Path(opts.logs) / log.name)
    figures["options"] = asdict(opts)
    figures["problems"] = problems
    figures["passed"] = not problems
    if opts.report:
        Path(opts.report).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    for problem in problems:
        print(f"  problem: {problem}")
    return verdict(
        not problems,
        "every text stored once, every message delivered, duplicates only from the kill, "
        "no 5xx, the audit chain verifies",
    )


if __name__ == "__main__":
    sys.exit(main())
