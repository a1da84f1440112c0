"""Paging and sorting for every list page, driven by the query string (``?sort=``, ``?page=``).

Two ways to sort, each keeping its pages' addresses:

- by a column, either way: ``sorted_by`` (a query) and ``page_of`` (a list in memory) take
  ``?sort=title`` or ``?sort=-title`` (descending); the headers flip the direction.
- by named orders with headings (the phone pages): ``listing`` takes ``?sort=due``, one of a
  fixed set of orders, and may use other argument names when a page has several lists.

An unknown sort key falls back to the default; a page number that is not one gives page 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import request, url_for
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

from tripcomms.extensions import db
from tripcomms.web import db_int

PER_PAGE = 25
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Sort:
    key: str  # as in the URL, e.g. "starts" or "-starts"
    allowed: Mapping[str, Any]

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


def chosen_sort(
    allowed: Mapping[str, Any], default: str, *, arg: str = "sort", directions: bool = True
) -> Sort:
    """The sort the ``arg`` request argument names if ``allowed`` has it, else ``default``.
    With ``directions``, a leading "-" asks for the other direction."""
    key = request.args.get(arg, default)
    if (key.lstrip("-") if directions else key) not in allowed:
        key = default
    return Sort(key, allowed)


def page_number(arg: str = "page") -> int:
    """The page the ``arg`` request argument asks for: 1 unless it is a number above 1 (and
    one the database can take: a bigger one is the last page, or an empty one)."""
    return max(request.args.get(arg, 1, type=db_int) or 1, 1)


def sorted_by(query: Select, allowed: dict[str, Any], default: str) -> tuple[Select, Sort]:
    """Order ``query`` by the ``sort`` request argument if it names an allowed column."""
    sort = chosen_sort(allowed, default)
    column = allowed[sort.name]
    ordered = query.order_by(column.desc() if sort.descending else column.asc())
    return ordered, sort


def paged(
    query: Select, per_page: int = PER_PAGE, *, arg: str = "page", last_if_past_end: bool = False
) -> Pagination:
    """The page of results named by the ``arg`` request argument. A page past the end is
    empty, or with ``last_if_past_end`` the last page."""
    pagination = db.paginate(
        query,
        page=page_number(arg),
        per_page=per_page,
        max_per_page=MAX_PER_PAGE,
        error_out=False,
    )
    if last_if_past_end and pagination.page > 1 and not pagination.items and pagination.pages:
        pagination = db.paginate(
            query, page=pagination.pages, per_page=per_page, max_per_page=MAX_PER_PAGE
        )
    return pagination


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
    sort = chosen_sort(allowed, default)
    ordered = sorted(items, key=allowed[sort.name], reverse=sort.descending)
    last = max((len(ordered) + per_page - 1) // per_page, 1)
    page = min(page_number(), last)
    start = (page - 1) * per_page
    return ListPage(ordered[start : start + per_page], page, per_page, len(ordered)), sort


# --- Named orders with headings -----------------------------------------------------------


@dataclass
class Listing:
    """One page of a list in one of its named orders, with what the template needs to link
    to the others."""

    pagination: Pagination
    sort: str
    sorts: Mapping[str, str]  # key -> heading, for the sort links

    @property
    def items(self) -> list[Any]:
        return list(self.pagination.items)


def listing(
    query: Select,
    sorts: Mapping[str, tuple[str, Sequence[Any]]],
    default: str,
    *,
    per_page: int = PER_PAGE,
    page_arg: str = "page",
    sort_arg: str = "sort",
) -> Listing:
    """Page ``query`` in the order the ``sort_arg`` argument picks from ``sorts`` (key ->
    (heading, order_by clauses)); an unknown key gives the default order, a page past the end
    the last page."""
    sort = chosen_sort(sorts, default, arg=sort_arg, directions=False)
    ordered = query.order_by(None).order_by(*sorts[sort.key][1])
    return Listing(
        paged(ordered, per_page, arg=page_arg, last_if_past_end=True),
        sort.key,
        {key: heading for key, (heading, _) in sorts.items()},
    )


def listing_url(**changes: object) -> str:
    """This page's address with some query arguments changed (None removes one)."""
    args: dict[str, object] = {**request.args.to_dict(), **changes}
    kept = {key: value for key, value in args.items() if value not in (None, "")}
    # The path's own arguments win over any of the same name in the query string.
    return url_for(request.endpoint, **{**kept, **(request.view_args or {})})
