"""Backups restore to a working relay; logs carry a request id and no phone numbers."""

import json
import logging

import pytest

from tests.relay.scenario import SCHOOL_PHONE, e164
from tripcomms import create_app
from tripcomms.extensions import db
from tripcomms.logs import JsonFormatter, RequestContextFilter, mask_numbers
from tripcomms.relay.models import Kind


def test_backup_restores_to_a_verified_chain_and_a_working_relay(
    scenario, app, app_config, runner, tmp_path
):
    if not app_config["DATABASE_URL"].startswith("sqlite"):
        result = runner.invoke(args=["backup", str(tmp_path / "b.sqlite")])
        assert result.exit_code == 1 and "back it up with pg_dump" in result.output
        return
    scenario.text(e164(1), "before the backup")
    copy = tmp_path / "backup.sqlite"
    result = runner.invoke(args=["backup", str(copy)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["backup", str(copy)]).exit_code == 1  # never overwrites

    restored = create_app({**app_config, "DATABASE_URL": f"sqlite:///{copy}"})
    assert restored.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0
    scenario.app, scenario.client = restored, restored.test_client()
    scenario.text(e164(1), "after the restore")
    bodies = [m.body for m in scenario.outbound(kind=Kind.FORWARD)]
    assert bodies[0].startswith("#1 Mary Jones (Sam J.): before the backup")
    assert bodies[1].startswith("#1 Mary Jones (Sam J.): after the restore")
    assert scenario.outbound(kind=Kind.FORWARD)[1].to_number == SCHOOL_PHONE
    with restored.app_context():
        db.engine.dispose()


def test_every_response_has_a_request_id(client):
    response = client.get("/login")
    assert len(response.headers["X-Request-ID"]) == 32
    response = client.get("/login", headers={"X-Request-ID": "from-proxy-123"})
    assert response.headers["X-Request-ID"] == "from-proxy-123"
    response = client.get("/login", headers={"X-Request-ID": "bad id <script>"})
    assert response.headers["X-Request-ID"] != "bad id <script>"


@pytest.mark.parametrize("text", ["+447911123456", "07911 123456", "07911-123-456"])
def test_log_lines_never_hold_a_full_number(text):
    assert mask_numbers(f"sent to {text} ok") == "sent to •••456 ok"


def test_json_log_lines(app):
    record = logging.LogRecord(
        "tripcomms", logging.INFO, __file__, 1, "to %s", ("+447911123456",), None
    )
    with app.test_request_context(headers={"X-Request-ID": "abc"}):
        from flask import g

        g.request_id = "abc"
        RequestContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "to •••456"
    assert line["request_id"] == "abc"
    assert line["level"] == "INFO"
