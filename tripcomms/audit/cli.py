"""`flask --app tripcomms audit ...`"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from tripcomms.audit.operations import verify_chain

audit_cli = AppGroup("audit", help="Check and export the audit trail.")


@audit_cli.command("verify")
def verify_command() -> None:
    """Recompute the hash chain; exit 1 naming the first bad event."""
    result = verify_chain()
    if not result.ok:
        click.echo(
            f"audit chain broken at sequence {result.bad_seq}: {result.reason} "
            f"({result.checked} events checked before it)",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"audit chain OK: {result.checked} events checked")
