"""The socket.io channel (the web widget's) on the real server: it answers, owns its
conversations, checks the page's site and answers a flood kindly."""
import asyncio
import sqlite3
import uuid

import pytest
import socketio

from channels.messages import CANNOT_ANSWER, TOO_FAST
from channels.socketio import NOT_TEXT
from conftest import ROOT, SOCKETIO, Servers, eventually, in_one_rate_window, load_yaml, variation

SITE = "http://allowed.example"


async def ask_over_socketio(url, text):
    client = socketio.AsyncClient()
    answers = asyncio.Queue()
    session = str(uuid.uuid4())

    @client.on("bot_uttered")
    async def on_bot(message):
        await answers.put(message)

    await client.connect(url, transports=["websocket"])
    await client.emit("session_request", {"session_id": session})
    await client.emit("user_uttered", {"message": text, "session_id": session})
    try:
        return await asyncio.wait_for(answers.get(), timeout=60)
    finally:
        await client.disconnect()


def test_socketio_answers_a_question(servers, responses):
    answer = asyncio.run(ask_over_socketio(servers.url, "what is cold turkey"))
    assert answer["text"] == variation(responses, "utter_faq/cold_turkey")
    assert [reply["title"] for reply in answer["quick_replies"]]


class Client:
    """A socket.io client that collects the session ids it is given and the replies."""

    def __init__(self, url, origin=None):
        self.url, self.origin = url, origin
        self.sio = socketio.AsyncClient()
        self.confirmed, self.replies = asyncio.Queue(), asyncio.Queue()
        self.sio.on("session_confirm", self.confirmed.put)
        self.sio.on("bot_uttered", self.replies.put)

    async def __aenter__(self):
        headers = {"Origin": self.origin} if self.origin else {}
        await self.sio.connect(self.url, transports=["websocket"], headers=headers)
        return self

    async def __aexit__(self, *exc):
        await self.sio.disconnect()

    async def session(self, requested):
        await self.sio.emit("session_request", {"session_id": requested})
        return await asyncio.wait_for(self.confirmed.get(), timeout=30)

    async def say(self, message, session_id="ignored"):
        await self.sio.emit("user_uttered", {"message": message, "session_id": session_id})
        return await asyncio.wait_for(self.replies.get(), timeout=60)


def senders(servers):
    """The conversations in the store. A reply goes out before its turn is saved, so a
    test that has just had one reads this with `eventually`."""
    with sqlite3.connect(servers.db) as db:
        return {sender for (sender,) in db.execute("SELECT DISTINCT sender_id FROM events")}


def test_only_ids_the_server_issued_resume_a_conversation(servers):
    async def run():
        async with Client(servers.url) as first:
            chosen = await first.session("my-own-id")
            assert chosen.startswith("web-") and chosen != "my-own-id"
            forged = chosen[:-4] + ("0000" if not chosen.endswith("0000") else "1111")
            assert await first.session(forged) not in (forged, chosen)
        async with Client(servers.url) as again:
            assert await again.session(chosen) == chosen
    asyncio.run(run())


def test_a_socket_writes_only_into_the_conversation_it_was_given(servers):
    async def run():
        async with Client(servers.url) as client:
            own = await client.session(None)
            await client.say("what is cold turkey", session_id="+15551234567")
            return own
    own = asyncio.run(run())
    stored = eventually(lambda: senders(servers), lambda found: own in found)
    assert own in stored and "+15551234567" not in stored


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A server that allows one site and one message a minute per conversation."""
    credentials = load_yaml(ROOT / "credentials.yml")
    credentials[SOCKETIO] = {**credentials[SOCKETIO], "rate_limit": 1}
    running = Servers(tmp_path_factory.mktemp("strict"), credentials=credentials, origins=[SITE])
    yield running
    running.stop()


def test_pages_of_other_sites_cannot_connect(strict):
    async def connect(origin):
        async with Client(strict.url, origin) as client:
            return await client.session(None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        asyncio.run(connect("https://evil.example"))
    assert asyncio.run(connect(SITE)).startswith("web-")


def test_flooding_and_odd_messages_get_kind_replies(strict, responses):
    in_one_rate_window(20)

    async def run():
        async with Client(strict.url, SITE) as client:
            await client.session(None)
            not_text = await client.say({"a": 1})
            answered = await client.say("what is cold turkey")
            refused = await client.say("what is cold turkey")
            return not_text, answered, refused
    not_text, answered, refused = asyncio.run(run())
    assert not_text["text"] == NOT_TEXT and "911" in not_text["text"]
    assert answered["text"] == variation(responses, "utter_faq/cold_turkey")
    assert refused["text"] == TOO_FAST


def test_a_message_that_cannot_be_answered_gets_the_kind_reply(servers, responses):
    """The lock store fails while a person writes: they still hear where help is, and the
    conversation goes on once the store is back."""
    async def run():
        async with Client(servers.url) as client:
            await client.session(None)
            with servers.lock_store_broken():
                failed = await client.say("i took a whole bottle of pills")
            answered = await client.say("what is cold turkey")
            return failed, answered
    failed, answered = asyncio.run(run())
    assert failed["text"] == CANNOT_ANSWER and "911" in CANNOT_ANSWER and "988" in CANNOT_ANSWER
    assert answered["text"] == variation(responses, "utter_faq/cold_turkey")


def test_starting_over_deletes_the_conversation_on_the_server(servers):
    secret = f"my brother relapsed {uuid.uuid4().hex}"

    async def run():
        async with Client(servers.url) as client:
            old = await client.session(None)
            await client.say(secret)
            await client.sio.emit("session_forget", {})
            new = await asyncio.wait_for(client.confirmed.get(), timeout=30)
            await client.say("what is cold turkey")
            return old, new
    old, new = asyncio.run(run())
    assert new != old and new.startswith("web-")
    # The old conversation was deleted under its lock, after its last turn was saved.
    stored = eventually(lambda: senders(servers), lambda found: new in found)
    assert old not in stored and new in stored
    raw = b"".join(path.read_bytes() for path in servers.db.parent.glob("tracker.db*"))
    assert secret.split()[-1].encode() not in raw


def test_every_tab_of_a_conversation_sees_every_reply_whichever_worker_it_reached(servers, responses):
    """Eight tabs of one conversation on a server with two worker processes: each
    connection lands on either worker, and every tab gets the reply."""
    async def run():
        tabs = [Client(servers.url) for _ in range(8)]
        for tab in tabs:
            await tab.__aenter__()
        try:
            conversation = await tabs[0].session(None)
            assert [await tab.session(conversation) for tab in tabs[1:]] == [conversation] * 7
            first = await tabs[0].say("what is cold turkey")
            others = [await asyncio.wait_for(tab.replies.get(), timeout=30) for tab in tabs[1:]]
            return first, others
        finally:
            for tab in tabs:
                await tab.__aexit__()
    first, others = asyncio.run(run())
    answer = variation(responses, "utter_faq/cold_turkey")
    assert [reply["text"] for reply in [first, *others]] == [answer] * 8


def test_a_poll_for_a_session_that_just_closed_gets_400_not_a_traceback():
    from channels.socketio import answers_websockets_itself

    async def engineio_handle_request(request):
        raise KeyError("Session is disconnected")

    reply = asyncio.run(answers_websockets_itself(engineio_handle_request)(None))
    assert reply.status == 400
