"""Benchmark: from a parent's webhook to its forward being handed to the Twilio API.

Measured: for each text, the time from just before the signed ``POST /twilio/sms`` is sent
to the moment the simulator accepts the Messages create of that text's forward to the school
phone. The app runs with SEND_IN_PROCESS true: its outbox thread starts on the first request
and is woken after each webhook's commit. The app and simulator are served over real HTTP on
127.0.0.1 (werkzeug, threaded); the simulator adds no latency of its own unless asked, and
its status callbacks come back to the app as they would from Twilio.

Two phases over a fresh migrated SQLite database with a trip, a roster and a school phone:
- one at a time: each text after the previous forward was handed over (plus a random pause
  of up to 50 ms, so texts do not fall in step with anything);
- under load: texts posted at a steady rate (``--rate`` per second, from several threads)
  whatever happens to earlier ones.

Reference in the same run: the webhook's own round trip (the POST until its 200), which the
relay latency includes.

Target: in the one-at-a-time phase p99 under 500 ms, half the sender's poll interval
(SENDER_POLL_SECONDS, 1 s): every forward left because the webhook woke the sender. With the
wake-up broken every text waits for the poll, about 1 s (checked once by hand: p50 987 ms).

    .venv/bin/python bench/relay_latency.py [--texts 300] [--rate 20] [--latency 0]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from common import inbound_form, machine, ms, new_message_sid, percentile, served_trip, verdict
from twilio.request_validator import RequestValidator

from tripcomms.relay.outbox import stop_in_process

P99_TARGET = 0.5
FORWARD_TIMEOUT = 10.0
TAG = re.compile(r"\[text (\d+)\]")


class Texter:
    """Posts signed texts from parents and notes when each forward reached the API."""

    def __init__(self, url: str, auth_token: str, parents: list[str], trip_number: str, clock):
        self.url = url + "/twilio/sms"
        self.validator = RequestValidator(auth_token)
        self.parents = parents
        self.trip_number = trip_number
        self.clock = clock
        self.local = threading.local()
        self.numbers = iter(range(1, 10**9))
        self.lock = threading.Lock()
        self.failures = 0

    def _session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def text(self) -> tuple[float, float] | None:
        """Post one text; return (webhook round trip, time to the forward's create)."""
        with self.lock:
            n = next(self.numbers)
        form = inbound_form(
            new_message_sid(),
            random.choice(self.parents),
            self.trip_number,
            f"Has the coach left yet? [text {n}]",
        )
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.url, form)}
        mark = self.clock.count()
        start = time.perf_counter()
        response = self._session().post(self.url, data=form, headers=headers, timeout=30)
        answered = time.perf_counter()
        if response.status_code != 200:
            with self.lock:
                self.failures += 1
            return None
        tag = f"[text {n}]"
        created = self.clock.wait_for(mark, lambda body: tag in body, FORWARD_TIMEOUT)
        if created is None:
            with self.lock:
                self.failures += 1
            return None
        return answered - start, created - start


def one_at_a_time(texter: Texter, count: int) -> list[tuple[float, float]]:
    results = []
    for _ in range(count):
        result = texter.text()
        if result is not None:
            results.append(result)
        time.sleep(random.uniform(0, 0.05))
    return results


def steady_rate(texter: Texter, count: int, rate: float) -> list[tuple[float, float]]:
    """``count`` texts started every 1/rate s, each waited for on its own thread."""
    interval = 1.0 / rate
    with ThreadPoolExecutor(max_workers=max(4, int(rate * 2))) as pool:
        start = time.perf_counter()
        futures = []
        for i in range(count):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(texter.text))
        return [r for r in (f.result() for f in futures) if r is not None]


def report(label: str, results: list[tuple[float, float]]) -> dict[str, float]:
    webhook = [w for w, _ in results]
    relay = [r for _, r in results]
    figures = {
        "p50": percentile(relay, 50),
        "p99": percentile(relay, 99),
        "max": max(relay) if relay else float("nan"),
        "webhook_p50": percentile(webhook, 50),
        "webhook_p99": percentile(webhook, 99),
    }
    print(
        f"  {label}: {len(results)} texts; webhook to API p50 {ms(figures['p50'])}, "
        f"p99 {ms(figures['p99'])}, max {ms(figures['max'])}; the webhook alone answered in "
        f"p50 {ms(figures['webhook_p50'])}, p99 {ms(figures['webhook_p99'])}"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300, help="texts in each phase")
    parser.add_argument("--rate", type=float, default=20.0, help="texts/s under load (0: skip)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per API call")
    parser.add_argument("--pupils", type=int, default=250, help="x 2 parents on the roster")
    args = parser.parse_args(argv)

    print(f"relay latency: {args.texts} texts per phase, in-process sender")
    print(f"  machine: {machine()}")
    with served_trip(pupils=args.pupils, latency=args.latency, SEND_IN_PROCESS=True) as served:
        app, seeded = served.app, served.seeded
        texter = Texter(
            served.url,
            app.config["TWILIO_AUTH_TOKEN"],
            seeded.parents,
            seeded.trip_number,
            served.clock,
        )
        one_at_a_time(texter, 10)  # starts the sender thread; warms every cache
        idle = report("one at a time", one_at_a_time(texter, args.texts))
        if args.rate > 0:
            report(f"at {args.rate:g} texts/s", steady_rate(texter, args.texts, args.rate))
        stop_in_process(app)
        served.sim.wait_idle(timeout=30)
    if texter.failures:
        print(f"  problem: {texter.failures} texts failed or their forward never reached the API")
    return verdict(
        idle["p99"] < P99_TARGET and not texter.failures,
        f"one at a time: p50 {ms(idle['p50'])}, p99 {ms(idle['p99'])} "
        f"(target p99 < {ms(P99_TARGET)}: woken, not polled)",
    )


if __name__ == "__main__":
    sys.exit(main())
