import pytest
from sqlalchemy import func, select

from tests.helpers import PASSWORD
from tripcomms.audit.models import AuditEvent
from tripcomms.auth.models import Role, StaffNumber, User
from tripcomms.extensions import db


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def admin_client(client, factory):
    admin = factory.user("admin", name="Ada Admin")
    client.login(admin.email)
    client.admin = admin
    return client


def new_user_form(**overrides):
    data = {
        "name": "Tom Teacher",
        "email": "tom@school.test",
        "roles": ["leader", "office"],
        "personal_numbers": "07911 123456\n+44 7922 234567",
        "password": "a long first password",
    }
    data.update(overrides)
    return data


def test_admin_creates_user_with_roles_and_numbers(app, admin_client):
    response = admin_client.post_form("/admin/users/new", new_user_form())
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "tom@school.test"))
        assert user.roles == {Role.LEADER, Role.OFFICE}
        assert [n.number for n in user.personal_numbers] == ["+447911123456", "+447922234567"]
        assert user.password_hash.startswith("scrypt:")
        event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
        assert event.action == "user.created"
        assert event.actor_id == admin_client.admin.id
        assert "+447911123456" not in str(event.data)  # counts, not numbers
    assert app.test_client().login("tom@school.test", "a long first password").status_code == 303


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"personal_numbers": "01234 567890"}, "is not a mobile number"),
        ({"personal_numbers": "07700 900123"}, "is not a valid phone number"),
        ({"personal_numbers": "call me"}, "is not a phone number"),
        ({"email": "not-an-email"}, "is not an email address"),
        ({"name": "x" * 121}, "Field cannot be longer than 120 characters"),
        ({"roles": []}, "choose at least one role"),
        ({"roles": ["leader", "janitor"]}, "&#39;janitor&#39; is not a valid choice"),
        ({"password": "short"}, "at least 10 characters"),
        ({"personal_numbers": "0" * 500}, "Field cannot be longer than 400 characters"),
    ],
)
def test_bad_user_input_gets_a_clear_error_and_changes_nothing(
    app, admin_client, overrides, message
):
    users_before, events_before = count(app, User), count(app, AuditEvent)
    response = admin_client.post_form("/admin/users/new", new_user_form(**overrides))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(app, User) == users_before
    assert count(app, AuditEvent) == events_before


def test_duplicate_email_and_number_are_refused(app, admin_client, factory):
    other = factory.user("leader", email="taken@school.test", personal_numbers=("07911123456",))
    response = admin_client.post_form("/admin/users/new", new_user_form(email="TAKEN@school.test"))
    assert "already an account for taken@school.test" in response.get_data(as_text=True)
    response = admin_client.post_form("/admin/users/new", new_user_form())
    page = response.get_data(as_text=True)
    assert f"already registered to {other.name}" in page
    assert count(app, StaffNumber) == 1


def test_admin_edits_roles_and_numbers(app, admin_client, factory):
    user = factory.user("leader", personal_numbers=("07911123456",))
    response = admin_client.post_form(
        f"/admin/users/{user.id}",
        {
            "name": "Renamed",
            "email": user.email,
            "roles": ["leader", "dsl"],
            "personal_numbers": "07922 234567",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row.name == "Renamed"
        assert row.roles == {Role.LEADER, Role.DSL}
        assert [n.number for n in row.personal_numbers] == ["+447922234567"]
        event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
        assert event.action == "user.updated"
        assert event.data["roles"] == ["dsl", "leader"]
        assert event.data["personal_numbers"] == {"added": 1, "removed": 1}


def test_edit_page_shows_current_values(admin_client, factory):
    user = factory.user("leader", personal_numbers=("07911123456",))
    page = admin_client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert user.email in page
    assert "+447911123456" in page
    assert 'value="leader" checked' in page or 'checked id="roles-1"' in page


def test_admin_cannot_remove_own_admin_role_or_deactivate_self(app, admin_client):
    admin = admin_client.admin
    response = admin_client.post_form(
        f"/admin/users/{admin.id}",
        {"name": admin.name, "email": admin.email, "roles": ["office"], "personal_numbers": ""},
    )
    assert "cannot remove your own administrator role" in response.get_data(as_text=True)
    response = admin_client.post_form(
        f"/admin/users/{admin.id}/active", {"active": "0"}, follow_redirects=True
    )
    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, admin.id).active


def test_deactivation_ends_the_users_sessions(app, admin_client, factory):
    user = factory.user("office")
    theirs = app.test_client()
    theirs.login(user.email)
    assert theirs.get("/").status_code == 200
    response = admin_client.post_form(f"/admin/users/{user.id}/active", {"active": "0"})
    assert response.status_code == 303
    assert theirs.get("/").status_code == 302
    assert app.test_client().login(user.email).status_code == 200  # refused
    admin_client.post_form(f"/admin/users/{user.id}/active", {"active": "1"})
    assert app.test_client().login(user.email).status_code == 303


def test_password_reset_by_admin(app, admin_client, factory):
    user = factory.user("office")
    response = admin_client.post_form(
        f"/admin/users/{user.id}/password",
        {"password": "reset by the admin"},
        follow_redirects=True,
    )
    assert "Password reset for" in response.get_data(as_text=True)
    assert app.test_client().login(user.email, PASSWORD).status_code == 200
    assert app.test_client().login(user.email, "reset by the admin").status_code == 303
    response = admin_client.post_form(
        f"/admin/users/{user.id}/password", {"password": "short"}, follow_redirects=True
    )
    assert "Password not changed: a password needs at least 10 characters" in (
        response.get_data(as_text=True)
    )


def test_unknown_user_is_404(admin_client):
    assert admin_client.get("/admin/users/9999").status_code == 404


@pytest.mark.parametrize("role", ["office", "leader", "head", "dsl", "auditor"])
def test_only_admins_manage_users(client, factory, role):
    user = factory.user(role)
    client.login(user.email)
    assert client.get("/admin/users").status_code == 403
    assert client.post_form("/admin/users/new", new_user_form()).status_code == 403
    assert client.post_form(f"/admin/users/{user.id}/active", {"active": "0"}).status_code == 403
