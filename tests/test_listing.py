"""Paging and sorting from the query string: by a column either way, and by named orders."""

import pytest
from sqlalchemy import select

from tripcomms.extensions import db
from tripcomms.listing import listing, listing_url, page_of, paged, sorted_by
from tripcomms.relay.models import MessageTemplate

COLUMNS = {"name": MessageTemplate.name, "id": MessageTemplate.id}
ORDERS = {
    "name": ("Name", [MessageTemplate.name]),
    "newest": ("Newest first", [MessageTemplate.id.desc()]),
}


@pytest.fixture
def names(app):
    with app.app_context():
        for n in range(7):
            db.session.add(MessageTemplate(name=f"t{n}", body="Coach delayed"))
        db.session.commit()
    return [f"t{n}" for n in range(7)]


def by_column(app, query_string: str, per_page: int = 3):
    with app.test_request_context(f"/?{query_string}"):
        query, sort = sorted_by(select(MessageTemplate), COLUMNS, default="name")
        page = paged(query, per_page)
        return sort.key, page.page, [t.name for t in page.items]


def by_order(app, query_string: str, **kw):
    with app.test_request_context(f"/?{query_string}"):
        found = listing(select(MessageTemplate), ORDERS, "name", per_page=3, **kw)
        return found.sort, found.pagination.page, [t.name for t in found.items]


def test_a_column_sorts_either_way_and_a_page_past_the_end_is_empty(app, names):
    assert by_column(app, "") == ("name", 1, ["t0", "t1", "t2"])
    assert by_column(app, "sort=-name&page=2") == ("-name", 2, ["t3", "t2", "t1"])
    assert by_column(app, "sort=password&page=x") == ("name", 1, ["t0", "t1", "t2"])
    assert by_column(app, "page=9") == ("name", 9, [])
    assert by_column(app, "page=-3") == ("name", 1, ["t0", "t1", "t2"])
    assert by_column(app, "", per_page=500)[2] == names  # at most 100 a page, here all 7


def test_a_named_order_has_no_direction_and_a_page_past_the_end_is_the_last(app, names):
    assert by_order(app, "sort=newest") == ("newest", 1, ["t6", "t5", "t4"])
    assert by_order(app, "sort=-name") == ("name", 1, ["t0", "t1", "t2"])
    assert by_order(app, "page=9") == ("name", 3, ["t6"])
    # A page with two lists names its arguments for each.
    assert by_order(app, "sort=newest&loans_sort=newest&loans_page=2", sort_arg="loans_sort",
                    page_arg="loans_page") == ("newest", 2, ["t3", "t2", "t1"])  # fmt: skip


def test_a_list_in_memory_is_sorted_and_cut_the_same_way(app):
    items = [{"n": n} for n in range(5)]
    with app.test_request_context("/?sort=-n&page=9"):
        page, sort = page_of(items, {"n": lambda i: i["n"]}, "n", per_page=2)
    assert (sort.key, sort.name, sort.descending, sort.toggled("n")) == ("-n", "n", True, "n")
    assert (page.page, page.pages, page.items) == (3, 3, [{"n": 0}])
    assert (page.has_prev, page.has_next) == (True, False)


def test_links_keep_the_other_arguments_and_drop_emptied_ones(app):
    # The path's own phone id wins over one in the query string.
    with app.test_request_context("/phones/7?sort=status&page=3&show=all&phone_id=9"):
        url = listing_url(page=None, sort="number")
    assert url.startswith("/phones/7?")
    assert sorted(url.split("?")[1].split("&")) == ["show=all", "sort=number"]
