"""`flask --app tripcomms approvals ...`: the sweep that writes down ended approvals."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from tripcomms.approvals import operations as ops
from tripcomms.audit.operations import SYSTEM
from tripcomms.extensions import db

approvals_cli = AppGroup("approvals", help="Personal-phone approvals.")


@approvals_cli.command("expire")
def expire_command() -> None:
    """Record as expired every request whose window has ended or whose trip is cancelled.

    Safe to run as often as you like (from cron, say): each is recorded once.
    """
    expired = ops.expire_due(SYSTEM)
    db.session.commit()
    for approval in expired:
        click.echo(f"request {approval.id}: expired ({approval.expiry_reason})")
    click.echo(f"{len(expired)} expired")
