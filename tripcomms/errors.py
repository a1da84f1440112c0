"""Domain errors raised by operations; views turn them into form errors or flashes, CLI
commands into a one-line message and a non-zero exit."""

from __future__ import annotations


class DomainError(Exception):
    """Base for every refusal an operation makes. ``str(err)`` is shown to the user."""

    # True when what the operation wrote before refusing is to be committed all the same:
    # a text that a content rule blocked is kept as evidence (policy 61, 70).
    keeps_written = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PolicyError(DomainError):
    """Refused by the school's policy; the message cites the clause, e.g. "(policy 50)"."""


class NotFound(DomainError):
    """The thing does not exist, or the acting user may not see it."""


class Conflict(DomainError):
    """The change clashes with the current state (already on loan, decided twice, ...)."""


class InvalidInput(DomainError):
    """The input itself is wrong (an unparsable number, a window that ends before it starts)."""
