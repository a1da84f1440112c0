"""`flask --app tripcomms numbers ...` and `flask --app tripcomms worker`."""

from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from tripcomms.audit.operations import CLI
from tripcomms.cli_support import run_operation
from tripcomms.extensions import db
from tripcomms.relay import numbers
from tripcomms.relay.gateway import GatewayError, gateway_from_config
from tripcomms.relay.models import NumberAllocation, ProxyNumber
from tripcomms.relay.outbox import OutboxSender

numbers_cli = AppGroup("numbers", help="The school's Twilio numbers for trips.")


@numbers_cli.command("add")
@click.argument("number")
def add_command(number: str) -> None:
    """Register a Twilio number for trips; prints its id last."""
    proxy = run_operation(lambda: numbers.add_number(CLI, number))
    click.echo(f"added {proxy.number}")
    click.echo(proxy.id)


@numbers_cli.command("list")
def list_command() -> None:
    """Every trip number, with the trip it serves or last served."""
    for proxy in db.session.scalars(select(ProxyNumber).order_by(ProxyNumber.number)):
        allocation = db.session.scalar(
            select(NumberAllocation)
            .where(NumberAllocation.proxy_number_id == proxy.id)
            .order_by(NumberAllocation.allocated_at.desc())
        )
        where = f"trip {allocation.trip_id} {allocation.trip.title!r}" if allocation else "unused"
        state = "" if proxy.configured_at else " (not yet pointed at tripcomms: run numbers sync)"
        click.echo(f"{proxy.number}  {where}{state}")


@numbers_cli.command("sync")
def sync_command() -> None:
    """Read the account's numbers from Twilio and point their webhooks at this app."""
    try:
        with gateway_from_config(current_app.config) as gateway:
            lines = run_operation(
                lambda: numbers.sync_numbers(CLI, gateway, current_app.config["PUBLIC_BASE_URL"])
            )
    except GatewayError as err:
        db.session.rollback()
        raise click.ClickException(f"could not reach Twilio: {err}") from None
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} numbers synced")


@click.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@with_appcontext
def worker_command(once: bool) -> None:
    """Send pending texts until stopped (SIGTERM or Ctrl+C finish the current batch)."""
    sender = OutboxSender(current_app._get_current_object())
    if once:
        click.echo(f"{sender.run_once()} messages handled")
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sender.stop())
    click.echo("outbox worker running")
    sender.run_forever()
    click.echo("outbox worker stopped")
