"""Attacks on the workbench, over plain HTTP against the running app: no session, wrong
passwords, forged form posts, another Host, and what is stored about accounts."""
import re
import sqlite3
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import ROOT
from workbench.accounts import FAILURES_PER_ACCOUNT
from workbench_server import USER, Client, hold, workbench  # noqa: F401 - fixtures

PRIVATE_TEXT = "my son Tyler relapsed last night"


@pytest.fixture(scope="module")
def conversation(servers):
    return hold(servers, f"wb-security-{uuid.uuid4().hex[:8]}", [PRIVATE_TEXT, "vorple quant drizzik"])


def app_routes():
    """Every route of the app, so a new page cannot be left out of these tests."""
    from workbench.app import Settings, create_app

    app = create_app(Settings(None, None, Path(), Path(), Path(), Path(), []), name=f"routes{uuid.uuid4().hex}")
    return sorted((method, "/" + route.path) for route in app.router.routes for method in route.methods)


def test_no_page_or_api_answers_without_a_session(workbench, conversation):  # noqa: F811
    client = Client(workbench.url)
    routes = app_routes()
    assert len(routes) >= 12
    checked = 0
    for method, path in routes:
        if path in ("/signin", "/static/workbench.css"):
            continue
        path = path.replace("<cid:str>", conversation)
        response = client.request(method, path, data={"csrf": "x", "turn": "0", "label": "greet"})
        if method == "GET" and not path.startswith("/api/"):
            assert response.status_code == 302 and response.headers["Location"] == "/signin", path
        else:
            assert response.status_code == 401, (method, path)
        assert conversation not in response.text and "Tyler" not in response.text and "[NAME]" not in response.text
        checked += 1
    assert checked >= 10
    # A made-up session cookie is no session.
    client.cookies["__Host-workbench"] = "forged-" + uuid.uuid4().hex
    assert client.get("/").status_code == 302
    assert client.get("/api/candidate").status_code == 401


def test_cookies_are_secure_http_only_strict_and_host_only(workbench):  # noqa: F811
    client = Client(workbench.url)
    client.get("/signin")
    response = client.post("/signin", data={"csrf": client.cookies["__Host-workbench-signin"], "name": USER,
                                            "password": workbench.password})
    assert response.status_code == 302
    session = next(h for h in response.raw.headers.getlist("Set-Cookie") if h.startswith("__Host-workbench="))
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= {p.strip() for p in session.split(";")}
    assert "Domain" not in session
    for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"):
        assert header in client.get("/").headers
    assert "script-src" not in client.get("/").headers["Content-Security-Policy"]  # default-src 'none'


def test_a_wrong_password_is_refused_and_sign_ins_are_rate_limited(workbench):  # noqa: F811
    name, password = "ratelimited", "a long enough password " + uuid.uuid4().hex
    assert workbench.add_user(name, password).returncode == 0
    client = Client(workbench.url)
    for _ in range(FAILURES_PER_ACCOUNT):
        response = client.sign_in(name, "not the password")
        assert response.status_code == 401
        assert "do not match" in response.text and "__Host-workbench" not in response.headers.get("Set-Cookie", "")
    refused = client.sign_in(name, password)  # even the right password, until the window passes
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    assert "__Host-workbench=" not in refused.headers.get("Set-Cookie", "")
    assert client.get("/").status_code == 302
    # Another account is not locked out by it.
    assert workbench.client().get("/").status_code == 200


def test_an_unknown_account_is_refused_like_a_wrong_password(workbench):  # noqa: F811
    response = Client(workbench.url).sign_in("nobody", "whatever it may be")
    assert response.status_code == 401 and "do not match" in response.text


def test_a_forged_form_post_is_refused(workbench, conversation):  # noqa: F811
    client = workbench.client()
    token = client.csrf(f"/conversations/{conversation}")
    path = f"/conversations/{conversation}/reviewed"
    for data, headers in [
        ({}, {}),  # no token
        ({"csrf": "guessed"}, {}),  # a wrong one
        ({"csrf": Client(workbench.url).csrf("/signin")}, {}),  # another browser's sign-in token
        ({"csrf": token}, {"Origin": "http://evil.example"}),  # the right one, from another site
        ({"csrf": token}, {"Origin": "null"}),
    ]:
        response = client.post(path, data=data, headers=headers)
        assert response.status_code == 403, (data, headers)
        assert "nothing" in response.text and "was changed" in response.text
    assert "not reviewed yet" in client.get(f"/conversations/{conversation}").text
    data = {p.name: p.read_bytes() for p in workbench.data_dir.glob("*.yml")}
    forged = client.post(f"/conversations/{conversation}/correct", data={"turn": "1", "label": "greet"})
    assert forged.status_code == 403
    assert {p.name: p.read_bytes() for p in workbench.data_dir.glob("*.yml")} == data
    # Signing in needs the sign-in form's own token too (no login CSRF).
    assert Client(workbench.url).post("/signin", data={"name": USER, "password": workbench.password}).status_code == 403
    # With the token, the same post works.
    assert client.post(path, data={"csrf": token}).status_code == 302
    assert "reviewed by alice" in client.get(f"/conversations/{conversation}").text


def test_another_host_name_gets_nothing(workbench):  # noqa: F811
    """A page on another site that points its own name at 127.0.0.1 (DNS rebinding)."""
    response = Client(workbench.url).get("/signin", headers={"Host": f"evil.example:{workbench.port}"})
    assert response.status_code == 421 and "Sign in" not in response.text


def test_signing_out_ends_the_session_on_the_server(workbench):  # noqa: F811
    client = workbench.client()
    stolen = dict(client.cookies)
    assert client.post("/signout", data={"csrf": client.csrf("/")}).status_code == 302
    thief = Client(workbench.url)
    thief.cookies.update(stolen)
    assert thief.get("/").status_code == 302


def test_bad_input_gets_a_kind_answer(workbench, conversation):  # noqa: F811
    client = workbench.client()
    token = client.csrf("/")
    missing = client.get("/conversations/conv-0000000000")
    assert missing.status_code == 404 and "no such page or conversation" in missing.text
    assert client.get("/conversations/not-an-id").status_code == 404
    assert client.get("/?since=yesterday&until=2026-13-45&flag=bogus&state=%3Cx%3E").status_code == 200
    charts = client.get("/charts?since=2026-12-31&until=2026-01-01")
    assert charts.status_code == 200 and "Please choose a first day before the last one" in charts.text
    for data in [{"turn": "99", "label": "greet"}, {"turn": "x", "label": "greet"}, {"turn": "0", "label": " "}]:
        response = client.post(f"/conversations/{conversation}/correct", data={"csrf": token, **data})
        assert response.status_code == 400 and "Not done" in response.text, data
    huge = client.post(f"/conversations/{conversation}/correct", data={"csrf": token, "label": "x" * 200_000})
    assert huge.status_code == 413
    assert "Traceback" not in workbench.log.read_text()


def test_user_text_is_masked_in_the_transcript(workbench, conversation):  # noqa: F811
    page = workbench.client().get(f"/conversations/{conversation}").text
    assert "my son [NAME] relapsed last night" in page and "Tyler" not in page


def test_passwords_are_stored_only_as_argon2_hashes_in_a_private_file(workbench):  # noqa: F811
    assert stat.S_IMODE(workbench.db.stat().st_mode) == 0o600
    assert workbench.password.encode() not in workbench.db.read_bytes()
    with sqlite3.connect(workbench.db) as db:
        hashes = [h for (h,) in db.execute("SELECT hash FROM users")]
        tokens = [t for (t,) in db.execute("SELECT token_hash FROM sessions")]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert all(re.fullmatch(r"[0-9a-f]{64}", t) for t in tokens)


def run_workbench(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], input=stdin, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_accounts_need_a_real_password_and_there_is_no_default_one(tmp_path):
    db = tmp_path / "accounts.db"
    short = run_workbench("user", "bob", "--password-stdin", "--db", str(db), stdin="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    bad_name = run_workbench("user", "Bob Smith", "--password-stdin", "--db", str(db), stdin="x" * 20 + "\n")
    assert bad_name.returncode == 2 and "user name" in bad_name.stderr
    # With no account, the workbench does not start (nobody could sign in, and no default exists).
    started = run_workbench("serve", "--db", str(db), "--port", "1")
    assert started.returncode == 2 and "make workbench-user" in started.stderr
    made = run_workbench("user", "bob", "--password-stdin", "--db", str(db), stdin="a fine long password\n")
    assert made.returncode == 0, made.stderr
    again = run_workbench("user", "bob", "--password-stdin", "--db", str(db), stdin="a fine long password\n")
    assert again.returncode == 2 and "already an account" in again.stderr
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
