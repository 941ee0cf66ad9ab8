"""The guard every channel shares: counts that several processes share, windows that end,
hashed keys, and a message let through when the counts are down."""
import asyncio
import sqlite3
import subprocess
import time
import uuid

import pytest
import redis
import requests
from rasa.core.channels.channel import OutputChannel

from channels import guard
from channels.guard import Guard, Limits, MemoryCounts, RedisCounts, SQLiteCounts, readable
from channels.messages import TOO_FAST, TOO_LONG
from conftest import ROOT, Servers, in_one_rate_window, load_yaml, texts_of
from tools.servers import free_port

PHONE = "+15551234567"


def test_two_processes_share_the_sqlite_counts_and_keys_are_hashed(tmp_path):
    db = tmp_path / "locks.db"
    worker_a, worker_b = SQLiteCounts(str(db)), SQLiteCounts(str(db))
    key = guard._hashed("c:", PHONE)
    assert [worker_a.add([key], 60), worker_b.add([key], 60), worker_a.add([key], 60)] == [[1], [2], [3]]
    assert worker_b.add([guard._hashed("c:", "someone else"), key], 60) == [1, 4]
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert PHONE.encode() not in raw and b"5551234567" not in raw


def test_a_window_that_ended_is_deleted(tmp_path, monkeypatch):
    counts = SQLiteCounts(str(tmp_path / "locks.db"))
    now = 1_000_000.0
    monkeypatch.setattr(guard.time, "time", lambda: now)
    for sender in range(500):  # invented ids, as a flood would send
        counts.add([f"c:{sender}"], 60)
    now += 60
    assert counts.add(["c:new"], 60) == [1]
    rows = counts._db().execute("SELECT COUNT(*) FROM rate_counts").fetchone()[0]
    assert rows == 1


def test_redis_counts_are_shared_and_expire():
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.StrictRedis(port=port)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        replica_a, replica_b = RedisCounts(client, "x:"), RedisCounts(redis.StrictRedis(port=port), "x:")
        assert [replica_a.add(["k", "j"], 2), replica_b.add(["k"], 2)] == [[1, 1], [2]]
        names = client.keys("x:rate:*")
        assert len(names) == 2 and all(0 < client.ttl(name) <= 3 for name in names)
    finally:
        server.terminate()
        server.wait()


def test_memory_counts_start_again_each_window(monkeypatch):
    counts, now = MemoryCounts(), [0.0]
    monkeypatch.setattr(guard.time, "time", lambda: now[0])
    assert [counts.add(["k"], 10), counts.add(["k"], 10)] == [[1], [2]]
    now[0] = 10.0
    assert counts.add(["k"], 10) == [1] and len(counts.hits) == 1


class BrokenCounts:
    def add(self, keys, window):
        raise OSError("disk full")


def refusal(checked: Guard, *args):
    return asyncio.run(checked.refusal(*args))


def test_limits_per_conversation_per_address_and_length():
    checked = Guard(Limits(per_conversation=2, per_address=3, max_chars=10))
    checked._counts = MemoryCounts()
    assert refusal(checked, "a", "10.0.0.1", "x" * 11) == TOO_LONG
    assert [refusal(checked, "a", "10.0.0.1", "hi") for _ in range(3)] == [None, None, TOO_FAST]
    # A new id from the same address: the address limit still holds.
    assert refusal(checked, "b", "10.0.0.1", "hi") == TOO_FAST
    assert refusal(checked, "c", "10.0.0.2", "hi") is None


def test_counts_that_fail_let_the_message_through(caplog):
    checked = Guard(Limits(per_conversation=0))
    checked._counts = BrokenCounts()
    assert refusal(checked, "a", "10.0.0.1", "i want to die") is None
    assert "disk full" not in caplog.text and "OSError" in caplog.text


@pytest.mark.parametrize("text, cleaned", [("hi\u0000there", "hi there"), ("\u0301hello", "hello"), ("é", "é")])
def test_text_is_made_readable(text, cleaned):
    assert readable(text) == cleaned


class RecordingOutput(OutputChannel):
    """An output channel that keeps what it was asked to send."""

    def __init__(self):
        self.sent = []

    async def send_text_message(self, recipient_id, text, **kwargs):
        self.sent.append((recipient_id, text))


def test_a_refused_or_failed_message_gets_the_kind_reply_on_channels_with_an_output_channel():
    """The callback channel and the messaging apps answer through an output channel: a
    refusal and a failure each reach the writer there, with the emergency numbers."""
    from rasa.core.channels.channel import UserMessage

    from channels.messages import CANNOT_ANSWER

    async def failing(message):
        raise RuntimeError("the assistant broke")

    checked = Guard(Limits(max_chars=10))
    checked._counts = MemoryCounts()
    output = RecordingOutput()
    for text in ("x" * 11, "hello"):
        asyncio.run(checked.wrap(failing)(UserMessage(text, output, "telegram:42", input_channel="telegram")))
    assert output.sent == [("telegram:42", TOO_LONG), ("telegram:42", CANNOT_ANSWER)]
    assert all("911" in text and "988" in text for _, text in output.sent)


@pytest.mark.parametrize("path", ["/webhooks/rest/webhook", "/webhooks/callback/webhook", "/socket.io/"])
def test_a_body_over_the_size_limit_is_refused_unread_with_the_emergency_numbers(servers, path):
    """Sanic refuses it before reading it (SANIC_REQUEST_MAX_SIZE), on any route, and says
    where help is, as the guard's own 413 does."""
    answer = requests.post(servers.url + path, data=b"x" * 300_000, timeout=60)
    assert answer.status_code == 413
    assert texts_of(answer.json()) == [TOO_LONG]


def test_a_messaging_apps_user_is_counted_in_the_apps_namespace():
    """A callback sender named like a Telegram chat cannot use up that person's messages."""
    from rasa.core.channels.channel import UserMessage

    from channels.guard import MessagingAppInput

    class App(MessagingAppInput):
        guard = Guard(Limits(per_conversation=1))

        @classmethod
        def name(cls):
            return "telegram"

    App.guard._counts = MemoryCounts()
    handled = []

    async def handle(message):
        handled.append(message.sender_id)

    other_channel = App.guard.wrap(handle)
    asyncio.run(other_channel(UserMessage("hi", RecordingOutput(), "42", input_channel="callback")))
    asyncio.run(other_channel(UserMessage("hi", RecordingOutput(), "42", input_channel="callback")))
    asyncio.run(App().guarded(handle)(UserMessage("help", RecordingOutput(), "42", input_channel="telegram")))
    assert handled == ["42", "telegram:42"]


def test_both_workers_share_one_conversations_count(servers):
    """The server runs two worker processes; 35 messages of one conversation, sent eight at
    a time so both workers take some, get 30 answers a minute between them, not 30 each.
    (The messages of one conversation are answered one after another, so all 35 take a
    while: the test starts with a whole window ahead of it.)"""
    from concurrent.futures import ThreadPoolExecutor

    in_one_rate_window(30)
    name = f"flood-{uuid.uuid4().hex}"
    statuses = [servers.say(name, "hi").status_code]
    with ThreadPoolExecutor(8) as pool:
        statuses += list(pool.map(lambda _: servers.say(name, "hi").status_code, range(34)))
    assert sorted(statuses) == [200] * 30 + [429] * 5


ADDRESS_LIMIT = 5  # messages a minute from one client address on the `one_address` server


@pytest.fixture(scope="module")
def one_address(tmp_path_factory):
    """A server whose REST channel takes ADDRESS_LIMIT messages a minute from one client
    address (the other test servers lift that limit: all their clients are 127.0.0.1)."""
    credentials = load_yaml(ROOT / "credentials.yml")
    credentials["channels.rest.CheckedRestInput"] = {"address_rate_limit": ADDRESS_LIMIT}
    running = Servers(tmp_path_factory.mktemp("one-address"), credentials=credentials)
    yield running
    running.stop()


def test_one_address_is_refused_whatever_new_conversations_it_starts(one_address):
    """A flood that starts a new conversation with every message (each id a new one the
    server issued) stays within the per-conversation limit: the address limit stops it,
    with the kind reply and the emergency numbers, and the refused id's conversation is
    not stored."""
    in_one_rate_window(30)
    answers = [requests.post(one_address.url + "/webhooks/rest/webhook", json={"message": "hi"}, timeout=60)
               for _ in range(ADDRESS_LIMIT + 2)]
    assert [answer.status_code for answer in answers] == [200] * ADDRESS_LIMIT + [429, 429]
    senders = [answer.json()[0]["recipient_id"] for answer in answers]
    assert len(set(senders)) == len(senders) and all(sender.startswith("web-") for sender in senders)
    refused = answers[-1].json()
    assert texts_of(refused) == [TOO_FAST] and "911" in TOO_FAST and "988" in TOO_FAST
    # An issued conversation of the same address is refused too: the count is the address's.
    assert one_address.say_as(senders[0], "hi").status_code == 429
    with sqlite3.connect(one_address.db) as db:
        stored = {sender for (sender,) in db.execute("SELECT DISTINCT sender_id FROM events")}
    assert set(senders[:ADDRESS_LIMIT]) <= stored and not stored & set(senders[ADDRESS_LIMIT:])


def test_signatures_and_secret_tokens_are_compared_in_constant_time(monkeypatch):
    from channels import messaging

    compared = []
    monkeypatch.setattr(messaging.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or a == b)
    assert messaging.valid_signature("secret", b"{}", "sha256=0") is False
    assert messaging.same_secret("token", "token") is True
    assert len(compared) == 2
