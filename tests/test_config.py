import threading
from datetime import timedelta

import pytest

from tripcomms import create_app
from tripcomms.config import ConfigError, parse_duration


def test_missing_secret_key_stops_startup_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"})


def test_missing_twilio_credentials_with_twilio_backend_stop_startup(tmp_path):
    config = {"SECRET_KEY": "s", "SMS_BACKEND": "twilio", "DATABASE_URL": "sqlite://"}
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID is not set"):
        create_app(config)
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN is not set"):
        create_app({**config, "TWILIO_ACCOUNT_SID": "AC123"})


def test_production_config_with_everything_set_starts():
    app = create_app(
        {
            "SECRET_KEY": "s",
            "TWILIO_ACCOUNT_SID": "AC1",
            "TWILIO_AUTH_TOKEN": "t",
            "DATABASE_URL": "sqlite://",
        }
    )
    assert app.config["SMS_BACKEND"] == "twilio"


def test_unknown_sms_backend_is_refused():
    with pytest.raises(ConfigError, match="SMS_BACKEND must be"):
        create_app({"TESTING": True, "SMS_BACKEND": "carrier-pigeon"})


def test_cli_reports_missing_secret_on_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from flask.cli import FlaskGroup

    monkeypatch.setenv("TRIPCOMMS_DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite")
    result = CliRunner().invoke(FlaskGroup(create_app=create_app), ["users", "--help"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "Error: SECRET_KEY is not set: put it in instance/config.py or TRIPCOMMS_SECRET_KEY"
    ]


def test_environment_overrides_instance_config_which_overrides_defaults(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text(
        "SCHOOL_NAME = 'From Instance'\nOFFICE_PHONE = '+441234567890'\nTESTING = True\n"
    )
    monkeypatch.setenv("TRIPCOMMS_SCHOOL_NAME", "From Environment")
    monkeypatch.setenv("TRIPCOMMS_RESPONSE_TARGET_MINUTES", "45")
    monkeypatch.setenv("TRIPCOMMS_RELAY_OPEN_BEFORE", '"3h"')
    import flask

    monkeypatch.setattr(flask.Flask, "auto_find_instance_path", lambda self: str(instance))
    app = create_app()
    assert app.config["SCHOOL_NAME"] == "From Environment"
    assert app.config["OFFICE_PHONE"] == "+441234567890"
    assert app.config["RESPONSE_TARGET_MINUTES"] == 45
    assert app.config["RELAY_OPEN_BEFORE"] == timedelta(hours=3)
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance}/tripcomms.sqlite"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(hours=2), timedelta(hours=2)),
        (90, timedelta(minutes=90)),
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("30s", timedelta(seconds=30)),
    ],
)
def test_durations(value, expected):
    assert parse_duration("X", value) == expected


def test_bad_duration_names_the_setting():
    with pytest.raises(ConfigError, match="NUMBER_COOLDOWN must be a duration"):
        parse_duration("NUMBER_COOLDOWN", "a week")


def test_secure_cookies_follow_public_base_url():
    app = create_app({"TESTING": True, "PUBLIC_BASE_URL": "https://trips.school.example/"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["PUBLIC_BASE_URL"] == "https://trips.school.example"
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    app = create_app({"TESTING": True})
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_create_app_has_no_side_effects(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self))
    database = tmp_path / "never.sqlite"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}"})
    assert app.name == "tripcomms"
    assert not database.exists()
    # The rate limiter's in-memory store runs its own expiry timer; nothing of ours starts.
    ours = [t for t in started if not getattr(t, "function", None).__module__.startswith("limits")]
    assert ours == []
