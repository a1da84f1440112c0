"""Roster files for tests: valid UK mobiles made from a counter, never the 07700 900 range."""

from __future__ import annotations

HEADER = "pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile"


def mobile(n: int) -> str:
    """A distinct valid UK mobile in national form for each n < 1,000,000."""
    return f"07400 {n:06d}"


def roster_csv(rows: list[str], header: str = HEADER, newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode()


def big_roster(pupils: int, contacts_per_pupil: int = 2) -> bytes:
    rows = []
    for p in range(pupils):
        for c in range(contacts_per_pupil):
            rows.append(
                f"Pupil{p},Family{p},Year {p % 6 + 1},Parent{c} Family{p},"
                f"{'mother' if c == 0 else 'father'},{mobile(p * contacts_per_pupil + c)}"
            )
    return roster_csv(rows)
