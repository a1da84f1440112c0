def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_inline_script_in_pages(client, factory):
    admin = factory.user("admin")
    client.login(admin.email)
    for url in ("/", "/admin/users", "/admin/users/new", f"/admin/users/{admin.id}"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>" not in page
        assert " onclick=" not in page


def test_not_found_page(client, factory):
    user = factory.user("office")
    client.login(user.email)
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


def test_forbidden_page_for_missing_role(client, factory):
    user = factory.user("leader")
    client.login(user.email)
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "does not have the role" in response.get_data(as_text=True)


def test_server_error_page(app, client, factory):
    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom")
    assert response.status_code == 500
    assert "Nothing you entered was saved" in response.get_data(as_text=True)


def test_pages_are_mobile_ready(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<label for="email">' in page
    assert 'href="#main"' in page


def test_home_shows_a_section_per_role(client, factory):
    admin = factory.user("admin", name="Ada Admin")
    client.login(admin.email)
    page = client.get("/").get_data(as_text=True)
    assert "Hello, Ada Admin" in page
    assert "Manage staff accounts" in page
    office = factory.user("office")
    client.logout()
    client.login(office.email)
    page = client.get("/").get_data(as_text=True)
    assert "Manage staff accounts" not in page
