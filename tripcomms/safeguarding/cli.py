"""`flask --app tripcomms retention run` and `flask --app tripcomms safeguarding escalate`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from tripcomms.audit.operations import CLI
from tripcomms.cli_support import run_operation
from tripcomms.extensions import db
from tripcomms.safeguarding import operations as ops

retention_cli = AppGroup("retention", help="Remove what the school no longer needs to keep.")
safeguarding_cli = AppGroup("safeguarding", help="Concerns and response times.")


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be redacted; change nothing.")
def retention_command(dry_run: bool) -> None:
    """Redact message bodies and parents' numbers RETENTION_DAYS after a trip's window
    closed, except messages a concern holds; one audit event with the counts."""
    if dry_run:
        result = ops.run_retention(CLI)
        db.session.rollback()
        verb = "would redact"
    else:
        result = run_operation(lambda: ops.run_retention(CLI))
        verb = "redacted"
    click.echo(
        f"{verb} {result.messages} messages, {result.broadcasts} broadcasts and "
        f"{result.contacts} contact numbers (trips whose window closed before "
        f"{result.cutoff:%Y-%m-%d}); {result.held} messages held by concerns kept whole"
    )


@safeguarding_cli.command("escalate")
def escalate_command() -> None:
    """Escalate parents' texts unanswered for twice RESPONSE_TARGET_MINUTES, each once.
    Safe to run as often as you like (from cron, say every five minutes)."""
    result = run_operation(lambda: ops.escalate_late_replies(CLI))
    click.echo(
        f"{len(result.escalated)} texts escalated; {result.texted} texts to the office queued"
    )
