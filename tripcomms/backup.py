"""`flask --app tripcomms backup PATH`: a consistent copy of the SQLite database while it runs.

PostgreSQL has its own tool for this (pg_dump; see the README).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
from flask.cli import with_appcontext

from tripcomms.extensions import db


def backup_sqlite(destination: Path) -> int:
    """Copy the live SQLite database to ``destination`` with SQLite's online backup API.

    Returns the size in bytes. Raises click.ClickException for PostgreSQL or an unusable path.
    """
    if db.engine.dialect.name != "sqlite":
        raise click.ClickException(
            "this database is PostgreSQL: back it up with pg_dump (see the README)"
        )
    if destination.exists():
        raise click.ClickException(f"{destination} exists; choose a new file name")
    if not destination.parent.is_dir():
        raise click.ClickException(f"there is no folder {destination.parent}")
    raw = db.engine.raw_connection()
    try:
        target = sqlite3.connect(destination)
        try:
            raw.driver_connection.backup(target)
        finally:
            target.close()
    finally:
        raw.close()
    return destination.stat().st_size


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path) -> None:
    """Write a consistent copy of the SQLite database to PATH (a new file)."""
    size = backup_sqlite(path)
    click.echo(f"backed up {size:,} bytes to {path}")
