"""Helpers for CLI commands: one commit per command, domain errors as one line and exit 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from tripcomms.errors import DomainError
from tripcomms.extensions import db

T = TypeVar("T")


def run_operation(operation: Callable[[], T]) -> T:
    """Run an operation and commit; on a DomainError roll back and exit 1 with its message."""
    try:
        result = operation()
    except DomainError as err:
        db.session.rollback()
        raise click.ClickException(err.message) from None
    db.session.commit()
    return result
