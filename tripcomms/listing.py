"""Paging and sorting for every list page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

from tripcomms.extensions import db
from tripcomms.web import db_int

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
    page = max(request.args.get("page", 1, type=db_int) or 1, 1)
    return db.paginate(query, page=page, per_page=per_page, max_per_page=100, error_out=False)


@dataclass
class ListPage:
    """A page of a list already in memory, with the attributes of a Pagination."""

    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max((self.total + self.per_page - 1) // self.per_page, 1)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def page_of(
    items: list[Any], allowed: dict[str, Any], default: str, per_page: int = 100
) -> tuple[ListPage, Sort]:
    """Sort a list by the ``sort`` argument (``allowed`` maps names to key functions) and cut
    out the ``page`` asked for; a page past the end gives the last page."""
    key = request.args.get("sort", default)
    if key.lstrip("-") not in allowed:
        key = default
    sort = Sort(key, allowed)
    ordered = sorted(items, key=allowed[sort.name], reverse=sort.descending)
    page = max(request.args.get("page", 1, type=db_int) or 1, 1)
    last = max((len(ordered) + per_page - 1) // per_page, 1)
    page = min(page, last)
    start = (page - 1) * per_page
    return ListPage(ordered[start : start + per_page], page, per_page, len(ordered)), sort
