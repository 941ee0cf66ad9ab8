"""Conversation ids that only the server issues: signed, shared by every worker, and
the REST channel's use of them on the real server."""
import os
import sqlite3

import requests

from channels.sessions import ID_PREFIX, SessionIds, session_secret
from conftest import texts_of


def test_issued_ids_are_recognised_and_forged_ones_are_not():
    ids, other = SessionIds(b"secret"), SessionIds(b"another secret")
    issued = ids.issue()
    assert issued.startswith(ID_PREFIX) and issued != ids.issue()
    assert ids.issued(issued) and not other.issued(issued)
    for forged in [issued[:-1] + ("0" if issued[-1] != "0" else "1"), "web-abc", "web-", "+15551234567", None, 5]:
        assert not ids.issued(forged), forged
    assert ids.may_use("my-app-user-7", issued_only=False) and not ids.may_use("my-app-user-7", issued_only=True)
    assert not ids.may_use("web-1234.5678", issued_only=False) and ids.may_use(issued, issued_only=True)


def test_every_worker_reads_the_same_secret_file_readable_by_the_server_only(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAT_SESSION_SECRET", raising=False)
    path = tmp_path / "session.secret"
    first, second = session_secret(path), session_secret(path)
    assert first == second and len(first) == 64
    assert os.stat(path).st_mode & 0o077 == 0
    monkeypatch.setenv("CHAT_SESSION_SECRET", "from the environment")
    assert session_secret(path) == b"from the environment"


def rest(servers, **body):
    return requests.post(servers.url + "/webhooks/rest/webhook", json=body, timeout=60)


def test_a_rest_conversation_without_a_sender_gets_an_issued_id(servers):
    """Never Rasa's shared "default" conversation, which mixes strangers' messages."""
    first = rest(servers, message="what is cold turkey")
    assert first.status_code == 200
    issued = first.json()[0]["recipient_id"]
    assert issued.startswith(ID_PREFIX)
    assert rest(servers, message="hello").json()[0]["recipient_id"] not in (issued, "default")
    with sqlite3.connect(servers.db) as db:
        assert not db.execute("SELECT 1 FROM events WHERE sender_id = 'default'").fetchall()
    again = rest(servers, sender=issued, message="thanks")
    assert again.status_code == 200 and again.json()[0]["recipient_id"] == issued


def test_a_forged_issued_id_is_refused(servers):
    issued = rest(servers, message="hello").json()[0]["recipient_id"]
    forged = issued[:-2] + ("00" if not issued.endswith("00") else "11")
    refused = rest(servers, sender=forged, message="hello")
    assert refused.status_code == 403 and "without a sender" in refused.json()["error"]
    assert texts_of(rest(servers, sender=issued, message="hello").json())


def test_a_rest_conversation_can_be_deleted_by_its_holder_only(servers):
    issued = rest(servers, message="my son is using again").json()[0]["recipient_id"]
    forged = issued[:-2] + ("00" if not issued.endswith("00") else "11")
    assert requests.post(servers.url + "/webhooks/rest/forget", json={"sender": forged}, timeout=30).status_code == 403
    assert requests.post(servers.url + "/webhooks/rest/forget", json={}, timeout=30).status_code == 400
    deleted = requests.post(servers.url + "/webhooks/rest/forget", json={"sender": issued}, timeout=60)
    assert deleted.status_code == 200 and deleted.json() == {"forgotten": True}
    with sqlite3.connect(servers.db) as db:
        assert not db.execute("SELECT 1 FROM events WHERE sender_id = ?", (issued,)).fetchall()
