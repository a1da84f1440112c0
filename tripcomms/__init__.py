"""tripcomms: school-trip communications inside the school's social media policy."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from tripcomms.config import load_config
from tripcomms.extensions import csrf, db, limiter, login_manager, migrate
from tripcomms.paths import MIGRATIONS_DIR, STATIC_DIR, TEMPLATES_DIR


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints, CLI and error pages.

    It has no side effects: it creates no tables, starts no threads and calls no network.
    Raises ConfigError when a required setting is missing outside demo and test mode.
    """
    app = Flask(
        __name__,
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(STATIC_DIR),
        instance_relative_config=True,
    )
    load_config(app, config)
    register_extensions(app)
    register_url_converters(app)
    register_blueprints(app)
    register_cli(app)
    register_request_handling(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see that page."
    login_manager.login_message_category = "info"

    # Every model module is imported so that the metadata (and Alembic) sees all tables.
    from tripcomms import models  # noqa: F401
    from tripcomms.auth.models import User

    @login_manager.user_loader
    def load_user(token: str) -> User | None:
        user_id, _, session_token = token.partition(":")
        if not user_id.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active or user.session_token != session_token:
            return None
        return user


def register_url_converters(app: Flask) -> None:
    from tripcomms import web

    web.register_url_converters(app)


def register_blueprints(app: Flask) -> None:
    from tripcomms import health, main
    from tripcomms.approvals.views import bp as approvals_bp
    from tripcomms.audit.views import bp as audit_bp
    from tripcomms.auth.views import bp as auth_bp
    from tripcomms.phones.views import bp as phones_bp
    from tripcomms.relay.inbox_views import bp as inbox_bp
    from tripcomms.relay.views import bp as relay_bp
    from tripcomms.relay.views import start_sender_on_first_request
    from tripcomms.relay.webhooks import bp as twilio_bp
    from tripcomms.safeguarding.views import bp as safeguarding_bp
    from tripcomms.simulator import register_simulator
    from tripcomms.trips.views import bp as trips_bp

    app.register_blueprint(main.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(trips_bp)
    app.register_blueprint(phones_bp)
    app.register_blueprint(relay_bp)
    app.register_blueprint(inbox_bp)
    app.register_blueprint(approvals_bp)
    app.register_blueprint(twilio_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(safeguarding_bp)
    register_simulator(app)
    start_sender_on_first_request(app)


def register_cli(app: Flask) -> None:
    from tripcomms.approvals.cli import approvals_cli
    from tripcomms.audit.cli import audit_cli
    from tripcomms.auth.cli import users_cli
    from tripcomms.backup import backup_command
    from tripcomms.phones.cli import loans_cli, phones_cli
    from tripcomms.relay.cli import numbers_cli, worker_command
    from tripcomms.safeguarding.cli import retention_cli, safeguarding_cli
    from tripcomms.trips.cli import trips_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(trips_cli)
    app.cli.add_command(numbers_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(audit_cli)
    app.cli.add_command(phones_cli)
    app.cli.add_command(loans_cli)
    app.cli.add_command(approvals_cli)
    app.cli.add_command(backup_command)
    app.cli.add_command(retention_cli)
    app.cli.add_command(safeguarding_cli)


def register_request_handling(app: Flask) -> None:
    from tripcomms.logs import register_request_id
    from tripcomms.web import (
        register_error_pages,
        register_security_headers,
        register_template_helpers,
    )

    if app.config["TRUSTED_PROXIES"]:
        count = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    register_request_id(app)
    register_security_headers(app)
    register_error_pages(app)
    register_template_helpers(app)
