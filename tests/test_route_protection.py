"""Every route refuses anonymous users, except the few listed here by name."""

import pytest
from werkzeug.routing.converters import NumberConverter

PUBLIC_ENDPOINTS = {
    "static",  # stylesheets and scripts
    "auth.login",  # the sign-in page itself
    "health.healthz",  # monitoring: counts and ages only
}


def sample_url(rule) -> str:
    values = {}
    for name in rule.arguments:
        values[name] = 1 if isinstance(rule._converters[name], NumberConverter) else "x"
    return rule.build(values, append_unknown=False)[1]


@pytest.fixture
def app_config(app_config):
    # CSRF would refuse anonymous POSTs first; switch it off so the login check is what answers.
    return {**app_config, "WTF_CSRF_ENABLED": False}


def test_every_route_refuses_anonymous_users(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = sample_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            refused = response.status_code in (401, 403) or (
                response.status_code in (302, 303) and response.location.startswith("/login")
            )
            assert refused, f"{method} {url} ({rule.endpoint}) answered {response.status_code}"
            checked += 1
    assert checked >= 8


def test_public_endpoints_exist(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints >= PUBLIC_ENDPOINTS
