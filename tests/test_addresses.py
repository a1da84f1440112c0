"""Numbers in addresses: an id or a page number too big for the database's integer columns is
a 404 or the nearest page, never a failure in the database (SQLite: "Python int too large to
convert to SQLite INTEGER", PostgreSQL: "integer out of range")."""

import pytest
from werkzeug.routing.converters import NumberConverter

from tripcomms.auth.models import Role

TOO_BIG = [2**31, 2**63, 10**20]


@pytest.fixture
def everyone(factory, client):
    """Signed in with every role, so that no role check answers before the id is looked up."""
    user = factory.user(*[role.value for role in Role])
    client.login(user.email)
    return user


def int_rules(app):
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and rule.arguments:
            converters = [rule._converters[name] for name in rule.arguments]
            if all(isinstance(c, NumberConverter) for c in converters):
                yield rule


@pytest.mark.parametrize("number", TOO_BIG)
def test_an_id_too_big_for_the_database_is_not_found(app, client, everyone, number):
    rules = list(int_rules(app))
    assert len(rules) >= 10
    for rule in rules:
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", str(number))
        assert client.get(url).status_code == 404, url


def test_an_id_that_fits_still_reaches_its_page(app, client, everyone, factory):
    trip = factory.trip(title="Zoo")
    assert "Zoo" in client.get(f"/trips/{trip}").get_data(as_text=True)
    assert client.get(f"/trips/{2**31 - 1}").status_code == 404


@pytest.mark.parametrize("number", [str(n) for n in TOO_BIG] + ["-1", "\u0663", "1e3"])
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/concerns/new?message={}", 404),
        ("/concerns/new?trip={}&contact={}", 404),
        ("/relay/review?page={}", 200),
        ("/phones?page={}", 200),
        ("/log?page={}", 200),
        ("/admin/users?page={}", 200),
    ],
)
def test_numbers_in_query_arguments_too_big_for_the_database(
    client, everyone, path, status, number
):
    assert client.get(path.format(number, number)).status_code == status
