"""CPU per parent's text on ``POST /twilio/sms``, in one process, with a profile.

Not a benchmark with a target: a steady figure for comparing changes to the webhook path
(``time.process_time`` moves much less with the machine's load than wall time does). It serves
the same seeded trip as ``webhook_throughput.py`` through Flask's test client (no HTTP server,
signatures checked), posts ``--texts`` parents' texts after a warm-up, and prints the CPU per
text; ``--profile`` prints the top of a cProfile by cumulative time as well.

    .venv/bin/python bench/webhook_cpu.py [--texts 500] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import subprocess
import tempfile
import time
from pathlib import Path

from common import (
    bench_config,
    inbound_form,
    median,
    migrate_fresh,
    new_message_sid,
    quiet_app,
    seed_trip,
    sqlite_url,
)
from twilio.request_validator import RequestValidator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="run under callgrind (--instr-atstart=no) to count the instructions of the texts",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        config = bench_config(sqlite_url(Path(directory)))
        app = quiet_app(config)
        migrate_fresh(app)
        seeded = seed_trip(app, pupils=250)
        url = config["PUBLIC_BASE_URL"] + "/twilio/sms"
        validator = RequestValidator(config["TWILIO_AUTH_TOKEN"])
        client = app.test_client()
        rng = random.Random(1)

        def post(n: int) -> None:
            for i in range(n):
                form = inbound_form(
                    new_message_sid(), rng.choice(seeded.parents), seeded.trip_number, f"Hi {i}"
                )
                response = client.post(
                    "/twilio/sms",
                    data=form,
                    headers={"X-Twilio-Signature": validator.compute_signature(url, form)},
                )
                assert response.status_code == 200, response.status_code

        post(50)  # warm-up: caches, the first statements
        if args.callgrind:
            # Under valgrind --tool=callgrind --instr-atstart=no: count only the texts.
            subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True)
            post(args.texts)
            subprocess.run(["callgrind_control", "--instr=off", str(os.getpid())], check=True)
            return 0
        figures = []
        for _ in range(args.rounds):
            start = time.process_time()
            post(args.texts)
            figures.append((time.process_time() - start) / args.texts)
        print(
            "CPU per text: "
            + ", ".join(f"{f * 1000:.2f} ms" for f in figures)
            + f" (median {median(figures) * 1000:.2f} ms, least {min(figures) * 1000:.2f} ms)"
        )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            post(args.texts)
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative"))
            stats.print_stats(int(os.environ.get("TOP", "45")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
