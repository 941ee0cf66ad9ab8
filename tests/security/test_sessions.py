"""Conversation ids that only the server issues: signed, shared by every worker, and
the REST channel's use of them on the real server, where by default a client resumes
only a conversation it was given; and the site owner's weaker opt-out."""
import os
import sqlite3
import uuid

import pytest
import requests

from channels.rest import NOT_ISSUED, CheckedRestInput
from channels.sessions import ID_PREFIX, SessionIds, session_secret
from conftest import ROOT, Servers, load_yaml, texts_of

REST = "channels.rest.CheckedRestInput"


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


def test_rest_takes_issued_ids_only_unless_the_owner_says_false(monkeypatch):
    monkeypatch.setenv("CHAT_SESSION_SECRET", "test secret")
    assert CheckedRestInput().issued_ids_only
    assert CheckedRestInput.from_credentials(None).issued_ids_only
    assert CheckedRestInput.from_credentials(load_yaml(ROOT / "credentials.yml")[REST]).issued_ids_only
    for unclear in ["false", "no", 0, None]:  # anything but YAML's false keeps it on
        assert CheckedRestInput.from_credentials({"issued_ids_only": unclear}).issued_ids_only, unclear
    assert not CheckedRestInput.from_credentials({"issued_ids_only": False}).issued_ids_only


def stored(servers, sender):
    with sqlite3.connect(servers.db) as db:
        return db.execute("SELECT 1 FROM events WHERE sender_id = ?", (sender,)).fetchall()


def forget(servers, sender):
    return requests.post(servers.url + "/webhooks/rest/forget", json={"sender": sender}, timeout=60)


def forged_from(issued):
    return issued[:-2] + ("00" if not issued.endswith("00") else "11")


def test_a_conversation_id_the_client_chose_is_refused_by_default(servers):
    """Nobody can write into, or delete, a conversation by naming it: not a phone number,
    not a name, not a messaging app's conversation, not an id that only looks issued."""
    issued = rest(servers, message="hello").json()[0]["recipient_id"]
    for sender in ["+15551234567", "alice", "twilio:+15551234567", "web-abc", forged_from(issued)]:
        refused = rest(servers, sender=sender, message="what did i say before?")
        assert refused.status_code == 403 and refused.json() == {"error": NOT_ISSUED}, sender
        assert forget(servers, sender).status_code == 403, sender
        assert not stored(servers, sender), sender
    assert rest(servers, sender=issued, message="thanks").json()[0]["recipient_id"] == issued


@pytest.fixture(scope="module")
def own_names(tmp_path_factory):
    """A server whose owner turned `issued_ids_only` off (one worker is enough here)."""
    credentials = load_yaml(ROOT / "credentials.yml")
    credentials[REST] = {**(credentials[REST] or {}), "issued_ids_only": False}
    running = Servers(tmp_path_factory.mktemp("own-names"), credentials=credentials, env={"SANIC_WORKERS": "1"})
    yield running
    running.stop()


def test_with_issued_ids_only_off_a_client_may_name_its_conversations(own_names):
    name = f"my-app-user-{uuid.uuid4().hex[:8]}"
    first = own_names.say_as(name, "i'm asking for my son")
    assert first.status_code == 200 and first.json()[0]["recipient_id"] == name
    assert own_names.say_as(name, "thanks").status_code == 200 and stored(own_names, name)
    issued = rest(own_names, message="hello").json()[0]["recipient_id"]
    assert issued.startswith(ID_PREFIX) and rest(own_names, sender=issued, message="thanks").status_code == 200
    assert forget(own_names, name).json() == {"forgotten": True} and not stored(own_names, name)
    # A phone number is just a name here, never the SMS conversation of that number.
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    assert own_names.say_as(phone, "hello").status_code == 200
    assert stored(own_names, phone) and not stored(own_names, f"twilio:{phone}")


def test_with_issued_ids_only_off_app_ids_and_forged_ids_are_still_refused(own_names):
    issued = rest(own_names, message="hello").json()[0]["recipient_id"]
    for sender in ["twilio:+15551234567", "slack:U0123", "telegram:42", "facebook:99", "web-abc",
                   forged_from(issued)]:
        refused = own_names.say_as(sender, "hello")
        assert refused.status_code == 403 and refused.json() == {"error": NOT_ISSUED}, sender
        assert forget(own_names, sender).status_code == 403, sender
        assert not stored(own_names, sender), sender
