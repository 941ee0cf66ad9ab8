"""Rasa's socket.io channel (the web widget's), with the protections of the REST channel.

Rasa's own channel turns engine.io's Origin check off, lets a socket join whatever
conversation it names, and passes every message on unchecked. This one

* accepts browsers only from the sites in `cors_allowed_origins` (credentials.yml);
  without that setting, only pages served by the assistant's own address;
* owns its conversations: the server issues each new conversation an unguessable id
  signed with a server secret, and a socket can only join an id the server issued.
  Ids start with `web-`, so they never collide with another channel's (a Twilio
  sender is a phone number). Whoever holds an id can resume it; the widget keeps it
  only for the tab's session;
* deletes the conversation for real on `session_forget` ("Start over") and starts a
  new one;
* sends each message through the guard (channels/guard.py) and answers kindly, with the
  emergency numbers, when it cannot answer;
* reaches every tab of a conversation, whichever worker process each tab is connected
  to (`WorkerRelay`): python-socketio keeps rooms per process.

The handlers are replaced through python-socketio's public `on()`; its `manager`
(the client manager its constructor would take) and engine.io's `eio` with its
`handle_request` route are set before the server starts. tests/security/test_socketio.py pins
all three (eight tabs on two workers; no traceback in the server's log at stop).
"""
import asyncio
import json
import logging
import sqlite3
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Text

from socketio.asyncio_pubsub_manager import AsyncPubSubManager

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic

from channels.guard import Guard, client_address, readable
from channels.messages import CANNOT_ANSWER, EMERGENCY
from channels.rest import MAX_BODY_BYTES
from channels.sessions import SessionIds, forget_conversation
from stores.locks import SQLiteLockStore
from stores.sql import use_wal

logger = logging.getLogger(__name__)

NOT_TEXT = f"I can only read text messages. Please type your question. {EMERGENCY}"


class WorkerRelay(AsyncPubSubManager):
    """python-socketio's client manager for several worker processes of one server.

    Rooms live in each process, so a reply sent by the worker that handled a message
    reached only that worker's sockets: a second tab of the conversation, connected to
    the other worker, never showed it. Every emit goes through a table in the SQLite
    lock store's file (`make run`), which each worker reads every POLL seconds and
    delivers to its own sockets in the room. With another lock store (the replicas of
    deploy/ run one worker each) emits stay in the process.
    """

    name = "worker-relay"
    POLL = 0.05
    KEEP_SECONDS = 60.0

    def __init__(self) -> None:
        super().__init__(channel="socketio")
        self._db: Optional[sqlite3.Connection] = None
        self._local: "asyncio.Queue[Dict[Text, Any]]" = asyncio.Queue()
        self._last = 0  # the newest row this process has delivered or may skip

    def initialize(self) -> None:
        """On this process's first connection, before anything is sent to it: rows
        written earlier are for sockets of other processes only."""
        db = self._connection()
        if db is not None:
            self._last = db.execute("SELECT COALESCE(MAX(id), 0) FROM socketio_relay").fetchone()[0]
        super().initialize()

    def _connection(self) -> Optional[sqlite3.Connection]:
        """The lock store's SQLite file, opened once per process; None without one."""
        if self._db is None:
            store = getattr(Sanic.get_app().ctx.agent, "lock_store", None)
            if not isinstance(store, SQLiteLockStore):
                return None
            self._db = sqlite3.connect(store.db, timeout=30, isolation_level=None, check_same_thread=False)
            use_wal(self._db)
            self._db.execute("CREATE TABLE IF NOT EXISTS socketio_relay"
                             " (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, data TEXT NOT NULL)")
        return self._db

    async def _publish(self, data: Dict[Text, Any]) -> None:
        db = self._connection()
        if db is None:
            return await self._local.put(data)
        now = time.time()
        await asyncio.get_running_loop().run_in_executor(None, self._write, db, json.dumps(data), now)

    def _write(self, db: sqlite3.Connection, data: Text, now: float) -> None:
        with db:
            db.execute("INSERT INTO socketio_relay (at, data) VALUES (?, ?)", (now, data))
            db.execute("DELETE FROM socketio_relay WHERE at < ?", (now - self.KEEP_SECONDS,))

    async def _listen(self) -> AsyncIterator[Dict[Text, Any]]:
        db = self._connection()
        if db is None:
            while True:
                yield await self._local.get()
        loop = asyncio.get_running_loop()
        while True:
            rows = await loop.run_in_executor(
                None, self._read, db, "SELECT id, data FROM socketio_relay WHERE id > ? ORDER BY id", (self._last,))
            for row_id, data in rows:
                self._last = row_id
                yield json.loads(data)
            if not rows:
                await asyncio.sleep(self.POLL)

    @staticmethod
    def _read(db: sqlite3.Connection, query: Text, parameters: tuple = ()) -> List[Any]:
        return db.execute(query, parameters).fetchall()


def answers_websockets_itself(handle_request: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """engine.io's Sanic route: it answers a WebSocket over the connection itself and
    returns None, which Sanic takes for a broken handler (a traceback at every close)
    unless the handler is marked as a WebSocket's, as Sanic's own are."""

    async def route(request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await handle_request(request, *args, **kwargs)
        except KeyError as error:
            # A long-poll that arrives just after its session closed (a tab that left):
            # engine.io raises instead of answering; the client only needs a 400.
            if "disconnected" not in str(error):
                raise
            from sanic import response

            return response.text("Session is disconnected", status=400)

    route.is_websocket = True  # type: ignore[attr-defined]
    return route


class CheckedSocketIOInput(SocketIOInput):
    """socket.io channel with checked origins, owned conversations and the guard."""

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        channel = super().from_credentials(credentials)
        channel.allowed_origins = credentials.get("cors_allowed_origins")
        channel.guard = Guard.from_credentials(credentials)
        channel.ids = SessionIds.from_credentials(credentials)
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        # Set before any socket connects; python-socketio initialises it on the first.
        sio.manager = WorkerRelay()
        sio.manager.set_server(sio)
        sio.eio.handle_request = answers_websockets_itself(sio.eio.handle_request)
        # None: engine.io allows only the server's own origin; [] would turn the check off.
        sio.eio.cors_allowed_origins = self.allowed_origins or None
        sio.eio.max_http_buffer_size = MAX_BODY_BYTES
        conversations: Dict[Text, Text] = {}  # socket id -> the conversation it joined

        async def reply(sid: Text, text: Text) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid, namespace=self.namespace)

        async def join(sid: Text, requested: Any) -> Text:
            session_id = requested if self.ids.issued(requested) else self.ids.issue()
            previous = conversations.get(sid)
            if previous and previous != session_id:
                sio.leave_room(sid, previous, namespace=self.namespace)
            conversations[sid] = session_id
            sio.enter_room(sid, session_id, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
            return session_id

        async def session_request(sid: Text, data: Any) -> None:
            await join(sid, data.get("session_id") if isinstance(data, dict) else None)

        async def user_message(sid: Text, data: Any) -> None:
            data = data if isinstance(data, dict) else {}
            # A socket writes only into the conversation it was confirmed for; one that
            # never asked gets a new conversation rather than losing its message.
            session_id = conversations.get(sid) or await join(sid, None)
            text = data.get("message")
            if not isinstance(text, str):
                return await reply(sid, NOT_TEXT)
            text = readable(text)
            environ = sio.get_environ(sid, namespace=self.namespace) or {}
            request = environ.get("sanic.request")
            address = client_address(request) if request is not None else environ.get("REMOTE_ADDR")
            refusal = await self.guard.refusal(session_id, address, text)
            if refusal:
                return await reply(sid, refusal)
            metadata = data.get(self.metadata_key)
            message = UserMessage(
                text, SocketIOOutput(sio, self.bot_message_evt), session_id,
                input_channel=self.name(), metadata=metadata if isinstance(metadata, dict) else None,
            )
            try:
                await on_new_message(message)
            except Exception as error:
                # Only the error's type: its text may quote the message.
                logger.error("Could not answer a socket.io message: %s", type(error).__name__)
                await reply(sid, CANNOT_ANSWER)

        async def session_forget(sid: Text, _: Any = None) -> None:
            """"Start over": the conversation is deleted and a new one begins."""
            session_id = conversations.get(sid)
            await join(sid, None)  # first, so that the next message goes to the new one
            if session_id:
                try:
                    await forget_conversation(Sanic.get_app().ctx.agent, session_id)
                except Exception as error:
                    logger.error("Could not delete a conversation: %s", type(error).__name__)

        async def disconnect(sid: Text) -> None:
            conversations.pop(sid, None)

        sio.on("session_request", session_request, namespace=self.namespace)
        sio.on(self.user_message_evt, user_message, namespace=self.namespace)
        sio.on("session_forget", session_forget, namespace=self.namespace)
        sio.on("disconnect", disconnect, namespace=self.namespace)
        return webhook
