"""A trip's endpoints at a moment: the phones that parents' texts are forwarded to.

They are the school phones on loan to the trip, plus personal numbers with the Headteacher's
approval in force. Packages that own such phones register a provider here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tripcomms.trips.models import Trip

if TYPE_CHECKING:
    from tripcomms.relay.models import Message


@dataclass(frozen=True)
class Endpoint:
    number: str  # E.164
    user_id: int | None  # who holds it
    label: str  # "Trip phone 3", "Liam Leader's own phone"
    personal: bool = False
    source_id: int | None = None  # the loan or approval behind it


EndpointProvider = Callable[[Trip, datetime], Iterable[Endpoint]]
PROVIDERS: list[EndpointProvider] = []


def endpoint_provider(fn: EndpointProvider) -> EndpointProvider:
    PROVIDERS.append(fn)
    return fn


def endpoints_for(trip: Trip, at: datetime) -> dict[str, Endpoint]:
    """Every endpoint of ``trip`` at ``at``, by number."""
    found: dict[str, Endpoint] = {}
    for provider in PROVIDERS:
        for endpoint in provider(trip, at):
            found.setdefault(endpoint.number, endpoint)
    return found


# Told when the relay uses a personal endpoint (a text from it, or one queued to it), so that the
# package behind it can note the first use. Called inside the inbound text's transaction.
EndpointUseListener = Callable[[Endpoint, "Message"], None]
USE_LISTENERS: list[EndpointUseListener] = []


def endpoint_use_listener(fn: EndpointUseListener) -> EndpointUseListener:
    USE_LISTENERS.append(fn)
    return fn


def note_personal_use(
    endpoints: dict[str, Endpoint], inbound: Message, caused: Sequence[Message]
) -> None:
    """Tell the listeners about each personal endpoint that ``inbound`` used: its sender, if
    the text was a command from one, and each one a resulting message goes to."""
    used: dict[str, Message] = {}
    if inbound.endpoint:
        used[inbound.endpoint] = inbound
    for message in caused:
        used.setdefault(message.to_number, message)
    for number, message in used.items():
        endpoint = endpoints.get(number)
        if endpoint is not None and endpoint.personal:
            for listener in USE_LISTENERS:
                listener(endpoint, message)


SchoolNumberSource = Callable[[], set[str]]
SCHOOL_NUMBER_SOURCES: list[SchoolNumberSource] = []


def school_number_source(fn: SchoolNumberSource) -> SchoolNumberSource:
    SCHOOL_NUMBER_SOURCES.append(fn)
    return fn


def school_numbers() -> set[str]:
    """Every school phone's own number (a SIM that must never reach a parent)."""
    found: set[str] = set()
    for source in SCHOOL_NUMBER_SOURCES:
        found |= source()
    return found
