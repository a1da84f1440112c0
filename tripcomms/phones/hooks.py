"""What the phone pool adds to other packages: relay endpoints, and trip-page parts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tripcomms.auth.models import User
from tripcomms.phones.queries import (
    all_school_phone_numbers,
    phones_in_force,
    trip_phone_summary,
)
from tripcomms.relay.endpoints import (
    Endpoint,
    endpoint_provider,
    endpoints_for,
    school_number_source,
)
from tripcomms.trips.models import Trip
from tripcomms.trips.panels import ReadinessItem, readiness_check, trip_panel
from tripcomms.types import utcnow


@endpoint_provider
def school_phone_endpoints(trip: Trip, at: datetime) -> Iterable[Endpoint]:
    """School phones on loan to the trip: parents' texts go to them; their texts are commands."""
    return [
        Endpoint(number, holder_id, label, personal=False, source_id=loan_id)
        for number, holder_id, label, loan_id in phones_in_force(trip.id, at)
    ]


school_number_source(all_school_phone_numbers)


@trip_panel("phones/_trip_summary.html", order=20)
def _phones_panel(trip: Trip, user: User) -> dict[str, Any]:
    return {}  # the template asks trip_phone_summary(trip) itself


@readiness_check(order=20)
def _phones_ready(trip: Trip) -> ReadinessItem:
    """Phones issued (or booked, before the day). A personal phone with the Headteacher's
    approval in force counts too: it is an endpoint of the trip like a school phone."""
    summary = trip_phone_summary(trip)
    counts = summary["counts"]
    personal = sum(1 for e in endpoints_for(trip, utcnow()).values() if e.personal)
    approved = f"{personal} personal phone{'s' if personal != 1 else ''} approved"
    if counts["on_loan"]:
        detail = f"{counts['on_loan']} on loan" + (f"; {approved}" if personal else "")
        return ReadinessItem("School phones issued", True, detail)
    if personal:
        return ReadinessItem("School phones issued", True, f"none on loan; {approved}")
    if counts["booked"]:
        return ReadinessItem(
            "School phones issued", False, f"{counts['booked']} booked, none issued"
        )
    return ReadinessItem("School phones issued", False, "none booked or issued")
