"""Screenshots of the web inbox for the README, at 360 px and 1280 px wide.

Not part of the test run. It makes a throwaway demo (its own database in a temporary folder),
serves it, texts the day so far through the simulator, sends one broadcast with one failure,
and photographs the inbox, a thread and the broadcast's progress with Chromium:

    .venv/bin/python docs/screenshots/take.py
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("TRIPCOMMS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = {"360": (360, 780), "1280": (1280, 860)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    from flask_migrate import upgrade
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import select

    from tripcomms import create_app
    from tripcomms.demo import DEMO_PASSWORD, demo_config, seed, seed_history, start_serving
    from tripcomms.extensions import db
    from tripcomms.relay.inbox import people
    from tripcomms.trips.models import Trip, TripState

    folder = Path(tempfile.mkdtemp(prefix="tripcomms-shots-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app({**demo_config(folder, "127.0.0.1", port), "INBOX_POLL_SECONDS": 1})
    with app.app_context():
        upgrade()
        seed(app)
    server = start_serving(app, "127.0.0.1", port)
    try:
        seed_history(app)
        with app.app_context():
            trip = next(
                t for t in db.session.scalars(select(Trip)) if t.state == TripState.IN_PROGRESS
            )
            trip_id = trip.id
            unreachable = [p for p in people(trip).values() if p.can_receive][7]
            app.extensions["simulator"].make_undeliverable(unreachable.contact.mobile, 30003)
            db.session.remove()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(base + "/login")
            page.get_by_label("Email").fill("leader@demo.school")
            page.get_by_label("Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()

            # A broadcast with one recipient who cannot be reached.
            page.goto(f"{base}/trips/{trip_id}/broadcast")
            page.get_by_label("Start from a template").select_option(label="Coach delayed")
            page.get_by_role("button", name="Use template").click()
            page.keyboard.type("15")
            page.get_by_role("button", name="Check before sending").click()
            page.get_by_role("button", name="Send to").click()
            expect(page.locator("#progress-summary")).to_contain_text(
                "1 not delivered", timeout=60_000
            )
            progress_url = page.url

            threads_url = f"{base}/trips/{trip_id}/inbox"
            page.goto(threads_url)
            thread_url = page.locator("li.thread a").nth(1).get_attribute("href")
            context = page.context
            for name, (width, height) in WIDTHS.items():
                shot = browser.new_page(
                    viewport={"width": width, "height": height},
                    storage_state=context.storage_state(),
                )
                for label, url in (
                    ("inbox", threads_url),
                    ("thread", base + thread_url),
                    ("broadcast", progress_url),
                ):
                    shot.goto(url)
                    shot.wait_for_load_state("networkidle")
                    time.sleep(0.5)
                    shot.screenshot(path=str(HERE / f"{label}-{name}.png"), full_page=True)
                shot.close()
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"Screenshots written to {HERE}")


if __name__ == "__main__":
    sys.exit(main())
