"""Paging and sorting for the phone pool's lists, driven by ``?page=`` and ``?sort=``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import request
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

from tripcomms.extensions import db
from tripcomms.web import db_int

PER_PAGE = 25


@dataclass
class Listing:
    """One page of a sorted list, with what the template needs to link to the others."""

    pagination: Pagination
    sort: str
    sorts: Mapping[str, str]  # key -> column heading, for the sort links

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
    """Page ``query`` ordered by the ``?sort=`` key chosen from ``sorts`` (key -> (heading,
    order_by clauses)); an unknown key or page number falls back to the default or the
    nearest page rather than failing."""
    sort = request.args.get(sort_arg, default)
    if sort not in sorts:
        sort = default
    page = request.args.get(page_arg, 1, type=db_int) or 1
    ordered = query.order_by(None).order_by(*sorts[sort][1])
    pagination = db.paginate(ordered, page=max(page, 1), per_page=per_page, error_out=False)
    if pagination.page > 1 and not pagination.items and pagination.pages:
        pagination = db.paginate(ordered, page=pagination.pages, per_page=per_page)
    return Listing(pagination, sort, {key: heading for key, (heading, _) in sorts.items()})
