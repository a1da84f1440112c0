"""Paging and sorting for every list page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

from tripcomms.extensions import db

PER_PAGE = 25


@dataclass(frozen=True)
class Sort:
    key: str  # as in the URL, e.g. "starts" or "-starts"
    allowed: dict[str, Any]

    @property
    def name(self) -> str:
        return self.key.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.key.startswith("-")

    def toggled(self, name: str) -> str:
        """The sort key a column header links to: flip the direction on the current column."""
        if name == self.name:
            return name if self.descending else f"-{name}"
        return name


def sorted_by(query: Select, allowed: dict[str, Any], default: str) -> tuple[Select, Sort]:
    """Order ``query`` by the ``sort`` request argument if it names an allowed column."""
    key = request.args.get("sort", default)
    if key.lstrip("-") not in allowed:
        key = default
    sort = Sort(key, allowed)
    column = allowed[sort.name]
    ordered = query.order_by(column.desc() if sort.descending else column.asc())
    return ordered, sort


def paged(query: Select, per_page: int = PER_PAGE) -> Pagination:
    """The page of results named by the ``page`` argument; a page past the end is empty."""
    return db.paginate(query, per_page=per_page, max_per_page=100, error_out=False)
