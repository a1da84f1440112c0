"""How a view carries out one operation: commit and redirect, or roll back and say why."""

import pytest
from flask import get_flashed_messages
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from wtforms import StringField

from tripcomms.errors import Conflict, InvalidInput, PolicyError
from tripcomms.extensions import db
from tripcomms.forms import carry_out
from tripcomms.relay.models import MessageTemplate


class NameForm(FlaskForm):
    name = StringField("Name")
    body = StringField("Body")


class Kept(PolicyError):
    keeps_written = True


def templates() -> list[str]:
    return list(db.session.scalars(select(MessageTemplate.name).order_by(MessageTemplate.id)))


def add(name: str, error: Exception | None = None):
    """An operation: writes a row and flushes, then refuses if told to."""

    def operation() -> MessageTemplate:
        template = MessageTemplate(name=name, body="Coach delayed")
        db.session.add(template)
        db.session.flush()
        if error is not None:
            raise error
        return template

    return operation


@pytest.fixture
def request_context(app):
    app.config["WTF_CSRF_ENABLED"] = False
    with app.test_request_context("/", method="POST"):
        yield


def test_done_commits_runs_then_flashes_and_redirects(request_context):
    seen = []
    response = carry_out(
        add("Late"),
        form=NameForm(),
        then=seen.append,
        success=lambda t: f"Added {t.name}.",
        redirect_to=lambda t: f"/templates/{t.id}",
    )
    assert (response.status_code, response.location) == (303, f"/templates/{seen[0].id}")
    assert get_flashed_messages(with_categories=True) == [("success", "Added Late.")]
    db.session.rollback()  # nothing left to roll back: it was committed
    assert templates() == ["Late"]


def test_refused_with_a_form_rolls_back_and_shows_the_error_on_its_field(request_context):
    form = NameForm()
    response = carry_out(
        add("Late", InvalidInput("too long")),
        form=form,
        field="body",
        success="Added.",
        redirect_to="/templates",
    )
    assert response is None
    assert form.body.errors == ["too long"] and form.form_errors == []
    assert get_flashed_messages() == [] and templates() == []
    # An error that names its own field goes there; one naming none and no field: the form.
    carry_out(add("x", InvalidInput("taken", field="name")), form=form, success="", redirect_to="/")
    carry_out(add("y", InvalidInput("no")), form=form, success="", redirect_to="/")
    assert form.name.errors == ["taken"] and form.form_errors == ["no"]


def test_refused_without_a_form_flashes_and_goes_back(request_context):
    response = carry_out(
        add("Late", Conflict("it is in use")),
        refused="Not retired",
        success="Retired.",
        redirect_to="/templates",
    )
    assert (response.status_code, response.location) == (303, "/templates")
    response = carry_out(add("Late", Conflict("it is in use")), success="", redirect_to="/t")
    assert get_flashed_messages(with_categories=True) == [
        ("error", "Not retired: it is in use."),
        ("error", "It is in use."),
    ]
    assert templates() == []


def test_a_flashed_kind_of_refusal_is_flashed_even_with_a_form(request_context):
    form = NameForm()
    kw = {"form": form, "flashed": (Conflict,), "refused": "Nothing changed"}
    response = carry_out(add("a", Conflict("decided already")), success="", redirect_to="/a", **kw)
    assert (response.status_code, response.location) == (303, "/a")
    assert carry_out(add("b", InvalidInput("too long")), success="", redirect_to="/a", **kw) is None
    assert get_flashed_messages() == ["Nothing changed: decided already."]
    assert form.form_errors == ["too long"]
    with pytest.raises(TypeError):
        carry_out(add("c"), success="", redirect_to=lambda t: "/", **kw)


def test_a_refusal_that_keeps_what_was_written_is_committed(request_context):
    form = NameForm()
    assert (
        carry_out(add("Blocked", Kept("not sent")), form=form, success="", redirect_to="/") is None
    )
    db.session.rollback()
    assert templates() == ["Blocked"] and form.form_errors == ["not sent"]
    assert db.session.scalar(select(func.count()).select_from(MessageTemplate)) == 1


CLASH = "someone else saved a change here at the same moment. Check the page and try again."


def saved(name: str) -> None:
    db.session.add(MessageTemplate(name=name, body="Saved first"))
    db.session.commit()


def test_a_clash_at_the_write_with_a_form_is_shown_on_it(request_context, caplog):
    saved("Late")
    form = NameForm()
    assert carry_out(add("Late"), form=form, success="", redirect_to="/t") is None
    assert form.form_errors == [f"Not saved: {CLASH}"]
    assert carry_out(add("Late"), form=form, field="body", success="", redirect_to="/t") is None
    assert form.body.errors == [f"Not saved: {CLASH}"]
    assert templates() == ["Late"] and get_flashed_messages() == []
    assert [r.levelname for r in caplog.records if r.name == "tripcomms.forms"] == ["WARNING"] * 2


def test_a_clash_without_a_form_is_flashed_after_refused(request_context):
    saved("Late")
    response = carry_out(add("Late"), refused="Not renamed", success="", redirect_to="/t")
    assert (response.status_code, response.location) == (303, "/t")
    carry_out(add("Late"), success="", redirect_to="/t")
    assert get_flashed_messages(with_categories=True) == [
        ("error", f"Not renamed: {CLASH}"),
        ("error", f"Not saved: {CLASH}"),
    ]
    assert templates() == ["Late"]


def test_a_keyed_operation_that_clashes_is_carried_out_once_more(request_context):
    saved("Late")
    calls = []

    def operation() -> str:
        calls.append(len(calls))
        if len(calls) == 1:
            add("Late")()  # the first try meets the row another request saved
        return "found the first"

    response = carry_out(operation, success=str, redirect_to="/t", keyed=True)
    assert response.status_code == 303 and calls == [0, 1]
    # It goes once more only: a second clash is refused as any other.
    response = carry_out(add("Late"), success="", redirect_to="/t", keyed=True)
    assert get_flashed_messages() == ["found the first", f"Not saved: {CLASH}"]
    assert templates() == ["Late"]


def test_an_integrity_error_that_is_no_clash_is_not_hidden(request_context):
    def nameless() -> None:
        db.session.add(MessageTemplate(name=None, body="No name"))
        db.session.flush()

    with pytest.raises(IntegrityError):
        carry_out(nameless, form=NameForm(), success="", redirect_to="/t")
