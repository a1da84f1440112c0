"""What other packages add to a trip page: readiness checks and panels.

Phones add "phones issued", the relay adds "number allocated", and so on, without the trips
package importing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tripcomms.auth.models import User
from tripcomms.trips.models import Trip


@dataclass(frozen=True)
class ReadinessItem:
    label: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class TripPanel:
    template: str
    context: Callable[[Trip, User], dict[str, Any] | None]
    order: int


READINESS_CHECKS: list[tuple[int, Callable[[Trip], ReadinessItem]]] = []
TRIP_PANELS: list[TripPanel] = []


def readiness_check(order: int):
    """Register a check; checks are listed by ``order`` (roster 10, phones 20, number 30)."""

    def decorator(fn: Callable[[Trip], ReadinessItem]) -> Callable[[Trip], ReadinessItem]:
        READINESS_CHECKS.append((order, fn))
        return fn

    return decorator


def trip_panel(template: str, order: int = 50):
    """Register a panel; its context function returns None to leave the panel out."""

    def decorator(fn: Callable[[Trip, User], dict[str, Any] | None]):
        TRIP_PANELS.append(TripPanel(template, fn, order))
        return fn

    return decorator


def readiness(trip: Trip) -> list[ReadinessItem]:
    return [check(trip) for _, check in sorted(READINESS_CHECKS, key=lambda c: c[0])]


def panels(trip: Trip, user: User) -> list[dict[str, Any]]:
    shown = []
    for panel in sorted(TRIP_PANELS, key=lambda p: p.order):
        context = panel.context(trip, user)
        if context is not None:
            shown.append({"template": panel.template, **context})
    return shown
