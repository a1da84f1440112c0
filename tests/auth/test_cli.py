from sqlalchemy import select

from tripcomms.auth.models import Role, User
from tripcomms.extensions import db


def test_users_create_reads_password_from_stdin(app, runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Head@School.test",
            "--name",
            "Helen Head",
            "--role",
            "head",
            "--role",
            "dsl",
            "--personal-number",
            "07911 123456",
        ],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    last_line = result.output.strip().splitlines()[-1]
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "head@school.test"))
        assert str(user.id) == last_line
        assert user.roles == {Role.HEAD, Role.DSL}
        assert user.personal_numbers[0].number == "+447911123456"
    assert app.test_client().login("head@school.test", "a long enough password").status_code == 303


def test_users_create_bad_input_exits_non_zero_with_one_line(app, runner):
    cases = [
        (["--role", "leader", "--personal-number", "01234 567890"], "is not a mobile number"),
        (["--role", "janitor"], "Invalid value for '--role'"),
    ]
    for extra, message in cases:
        result = runner.invoke(
            args=["users", "create", "--email", "x@school.test", "--name", "X", *extra],
            input="a long enough password\n",
        )
        assert result.exit_code != 0
        assert message in result.output
    result = runner.invoke(
        args=["users", "create", "--email", "x@school.test", "--name", "X", "--role", "leader"],
        input="short\n",
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: a password needs at least 10 characters"
    with app.app_context():
        assert db.session.scalar(select(User)) is None
