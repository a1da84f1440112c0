import pytest
from sqlalchemy import func, select

from tests.helpers import PASSWORD
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db

GENERIC = "That email and password do not match an active account."


def audit_actions(app) -> list[tuple[str, dict]]:
    with app.app_context():
        return [
            (e.action, e.data)
            for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]


def test_login_and_logout(app, client, factory):
    user = factory.user("office", name="Olive Office")
    response = client.login(user.email)
    assert response.status_code == 303
    assert response.location == "/"
    assert "Hello, Olive Office" in client.get("/").get_data(as_text=True)
    response = client.logout()
    assert response.status_code == 303
    assert client.get("/").status_code == 302
    actions = [a for a, _ in audit_actions(app)]
    assert actions[-2:] == ["login.succeeded", "logout"]


def test_email_is_case_insensitive(client, factory):
    factory.user("office", email="mixed@school.test")
    assert client.login("  MIXED@School.test ").status_code == 303


@pytest.mark.parametrize("case", ["wrong_password", "unknown_email", "inactive"])
def test_bad_credentials_get_one_generic_message_and_are_audited(app, client, factory, case):
    user = factory.user("office", active=case != "inactive")
    email = "nobody@school.test" if case == "unknown_email" else user.email
    password = "not the password" if case == "wrong_password" else PASSWORD
    response = client.login(email, password)
    assert response.status_code == 200
    assert GENERIC in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still signed out
    action, data = audit_actions(app)[-1]
    assert action == "login.failed"
    expected = {"wrong_password": "bad_password", "unknown_email": "unknown_email"}
    assert data["reason"] == expected.get(case, "inactive")
    assert "nobody@school.test" not in str(data)  # a digest, not the address typed


def test_failed_login_page_does_not_say_which_part_was_wrong(client, factory):
    user = factory.user("office")
    unknown = client.login("nobody@school.test").get_data(as_text=True)
    wrong = client.login(user.email, "nope nope nope").get_data(as_text=True)
    assert GENERIC in unknown and GENERIC in wrong
    assert "unknown" not in unknown.lower()


def test_missing_csrf_token_is_refused(app, client, factory):
    user = factory.user("office")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "nothing was saved" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 1  # created


def test_tampered_session_cookie_is_not_signed_in(client, factory):
    user = factory.user("office")
    client.login(user.email)
    cookie = client.get_cookie("session")
    assert cookie is not None
    value = cookie.value
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    client.set_cookie("session", tampered)
    response = client.get("/")
    assert response.status_code == 302
    assert response.location.startswith("/login")


def test_session_is_renewed_at_login(client, factory):
    user = factory.user("office")
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    client.login(user.email)
    with client.session_transaction() as session:
        assert "planted" not in session


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/admin/users", "/admin/users"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_redirect_only_goes_to_this_site(client, factory, next_url, expected):
    user = factory.user("admin")
    response = client.post_form(
        "/login?next=" + next_url, {"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.location == expected


def test_logins_are_throttled_per_account(app, client, factory):
    user = factory.user("office")
    for _ in range(5):
        assert client.login(user.email, "wrong password!").status_code == 200
    response = client.login(user.email)  # even the right password waits now
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    other = factory.user("office")
    assert client.login(other.email).status_code == 303


def test_logins_are_throttled_per_address(app, factory):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "3 per 15 minutes"
    client = app.test_client()
    users = [factory.user("office") for _ in range(4)]
    for user in users[:3]:
        assert client.login(user.email, "wrong password!").status_code == 200
    assert client.login(users[3].email).status_code == 429
    other_address = app.test_client()
    response = other_address.login(users[3].email, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 303


def test_successful_logins_do_not_count_towards_the_limit(client, factory):
    user = factory.user("office")
    for _ in range(7):
        assert client.login(user.email).status_code == 303
        client.logout()


def test_logout_needs_post_with_csrf(client, factory):
    user = factory.user("office")
    client.login(user.email)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_over_long_login_fields_change_nothing(app, client):
    response = client.login("a" * 300 + "@school.test", "x" * 500)
    assert response.status_code == 200
    assert "Field cannot be longer" in response.get_data(as_text=True) or GENERIC in (
        response.get_data(as_text=True)
    )


def test_change_own_password_ends_other_sessions(app, factory):
    user = factory.user("office")
    phone, laptop = app.test_client(), app.test_client()
    phone.login(user.email)
    laptop.login(user.email)
    response = laptop.post_form(
        "/account/password", {"current": PASSWORD, "password": "a brand new passphrase"}
    )
    assert response.status_code == 303
    assert laptop.get("/").status_code == 200
    assert phone.get("/").status_code == 302
    assert app.test_client().login(user.email, "a brand new passphrase").status_code == 303


def test_change_own_password_with_wrong_current_changes_nothing(app, client, factory):
    user = factory.user("office")
    client.login(user.email)
    response = client.post_form(
        "/account/password", {"current": "wrong wrong", "password": "a brand new passphrase"}
    )
    assert response.status_code == 200
    assert "current password is not right" in response.get_data(as_text=True)
    assert app.test_client().login(user.email).status_code == 303


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 10 characters"), ("password123", "commonly used passwords")],
)
def test_weak_new_passwords_are_refused(client, factory, password, message):
    user = factory.user("office")
    client.login(user.email)
    response = client.post_form("/account/password", {"current": PASSWORD, "password": password})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
