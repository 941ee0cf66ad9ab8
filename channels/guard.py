"""One guard for every input channel: cleaned text, a size limit, rate limits per
conversation and per client address, and a kind reply with the emergency numbers
whenever the assistant cannot answer.

The counts live where the conversation locks live, so every process that shares the
locks shares the limits: the SQLite file of stores/locks.py for the workers of one
machine, Rasa's Redis lock store for several replicas. A count belongs to one fixed
window and goes with it, so memory stays bounded whatever ids or addresses a client
invents, and it is kept under a hash of the id or address, never the phone number or
address itself. If the counts cannot be read the message goes through: a person in
crisis is never refused because a counter is down.

The request body's size is limited before it is read by Sanic's REQUEST_MAX_SIZE
(`SANIC_REQUEST_MAX_SIZE` in server.env); the guard limits the message text.
"""
import asyncio
import hashlib
import logging
import os
import sqlite3
import time
import unicodedata
from contextvars import ContextVar
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Protocol, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import LockStore, RedisLockStore
from sanic import Blueprint, Sanic
from sanic.request import Request

from channels.messages import CANNOT_ANSWER, TOO_FAST, TOO_LONG
from channels.sessions import in_app_namespace

logger = logging.getLogger(__name__)

RATE_LIMIT = 30  # messages per conversation ...
ADDRESS_RATE_LIMIT = 300  # ... and per client address (a clinic's shared network) ...
RATE_WINDOW = 60  # ... in this many seconds
MAX_MESSAGE_CHARS = 256 * 1024  # as long as a request body may be

# What a channel hands each message to (Rasa's `on_new_message`).
Handler = Callable[[UserMessage], Awaitable[Any]]

# The address of the client whose request is being handled (set by GuardedInput).
CLIENT_ADDRESS: ContextVar[Optional[Text]] = ContextVar("client_address", default=None)


def readable(text: Text) -> Text:
    """The text without the characters that crash the NLU pipeline's DIETClassifier.

    Control, format, private-use and unassigned characters become spaces, and combining
    marks that follow no letter or digit are dropped: the sentence model's tokenizer
    drops such tokens while the word tokenizer keeps them, and the two feature sequences
    no longer line up. No reader sees any of these characters.
    """
    kept: List[Text] = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category[0] == "C":
            kept.append(" ")
        elif category[0] != "M" or (kept and unicodedata.category(kept[-1])[0] in "LNM"):
            kept.append(char)
    return "".join(kept)


class Counts(Protocol):
    def add(self, keys: List[Text], window: float) -> List[int]:
        """Counts one more hit on each key in the current window; the windows' totals."""


def _slot(window: float) -> int:
    return int(time.time() // window)


class SQLiteCounts:
    """Counts in the lock store's SQLite file, shared by the workers of one machine."""

    def __init__(self, db: Text) -> None:
        self.db = db
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = 0
        self._swept = 0

    def _db(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            self._connection = sqlite3.connect(self.db, timeout=5, isolation_level=None, check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
            # Counts last a minute: a power cut may lose them, no message waits on the disk.
            self._connection.execute("PRAGMA synchronous=OFF")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS rate_counts "
                "(key TEXT NOT NULL, slot INTEGER NOT NULL, hits INTEGER NOT NULL, PRIMARY KEY (key, slot))"
            )
            self._connection.execute("CREATE INDEX IF NOT EXISTS rate_counts_slot ON rate_counts (slot)")
            self._pid = os.getpid()
        return self._connection

    def add(self, keys: List[Text], window: float) -> List[int]:
        db, slot = self._db(), _slot(window)
        db.execute("BEGIN IMMEDIATE")
        try:
            if slot != self._swept:  # the windows before this one are over
                db.execute("DELETE FROM rate_counts WHERE slot < ?", (slot,))
                self._swept = slot
            hits = [
                db.execute(
                    "INSERT INTO rate_counts (key, slot, hits) VALUES (?, ?, 1) "
                    "ON CONFLICT (key, slot) DO UPDATE SET hits = hits + 1 RETURNING hits",
                    (key, slot),
                ).fetchone()[0]
                for key in keys
            ]
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return hits


class RedisCounts:
    """Counts in the Redis of Rasa's lock store, shared by every replica."""

    def __init__(self, red: Any, prefix: Text) -> None:
        self.red, self.prefix = red, prefix

    def add(self, keys: List[Text], window: float) -> List[int]:
        pipeline, slot = self.red.pipeline(), _slot(window)
        for key in keys:
            name = f"{self.prefix}rate:{slot}:{key}"
            pipeline.incr(name).expire(name, int(window) + 1)
        return [int(hits) for hits in pipeline.execute()[::2]]


class MemoryCounts:
    """Counts of one process, for Rasa's in-memory lock store (which allows one worker)."""

    def __init__(self) -> None:
        self.slot, self.hits = 0, {}  # type: int, Dict[Text, int]

    def add(self, keys: List[Text], window: float) -> List[int]:
        slot = _slot(window)
        if slot != self.slot:
            self.slot, self.hits = slot, {}
        for key in keys:
            self.hits[key] = self.hits.get(key, 0) + 1
        return [self.hits[key] for key in keys]


def counts_for(lock_store: LockStore) -> Counts:
    """Counts kept beside the conversation locks, so they are shared as widely."""
    from stores.locks import SQLiteLockStore

    if isinstance(lock_store, RedisLockStore):
        return RedisCounts(lock_store.red, lock_store.key_prefix)
    if isinstance(lock_store, SQLiteLockStore):
        return SQLiteCounts(lock_store.db)
    return MemoryCounts()


@dataclass(frozen=True)
class Limits:
    per_conversation: int = RATE_LIMIT
    per_address: int = ADDRESS_RATE_LIMIT
    window: float = RATE_WINDOW
    max_chars: int = MAX_MESSAGE_CHARS

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "Limits":
        """The same keys under every channel of credentials.yml."""
        credentials = credentials or {}
        return cls(
            per_conversation=int(credentials.get("rate_limit", RATE_LIMIT)),
            per_address=int(credentials.get("address_rate_limit", ADDRESS_RATE_LIMIT)),
            window=float(credentials.get("rate_window", RATE_WINDOW)),
            max_chars=int(credentials.get("max_message_chars", MAX_MESSAGE_CHARS)),
        )


def _hashed(kind: Text, value: Text) -> Text:
    return kind + hashlib.sha256(value.encode("utf-8")).hexdigest()[:24]


async def say(message: UserMessage, text: Text) -> None:
    """Sends `text` to the writer of `message`, never raising: there is no one else to tell."""
    try:
        await message.output_channel.send_response(message.sender_id, {"text": text})
    except Exception as error:
        logger.error("Could not send a kind reply on %s: %s", message.input_channel, type(error).__name__)


class Guard:
    """Decides whether a message may reach the assistant, and answers kindly if not."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._counts: Optional[Counts] = None
        self._executor: Optional[ThreadPoolExecutor] = None
        self._pid = 0

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "Guard":
        return cls(Limits.from_credentials(credentials))

    def _store(self) -> Optional[Counts]:
        if self._counts is None:
            agent = getattr(Sanic.get_app().ctx, "agent", None)
            if agent is None or agent.lock_store is None:
                return None
            self._counts = counts_for(agent.lock_store)
        return self._counts

    async def _count(self, keys: List[Text]) -> List[int]:
        """The hits on each key in this window, counted off the event loop in one go; 0s
        if unknown."""
        try:
            counts = self._store()
            if counts is None:
                return [0] * len(keys)
            if self._executor is None or self._pid != os.getpid():
                # One thread: the counter's connection is used by one thread at a time.
                self._executor, self._pid = ThreadPoolExecutor(1, thread_name_prefix="guard"), os.getpid()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, counts.add, keys, self.limits.window)
        except Exception as error:
            logger.warning("Rate counts unavailable, message let through: %s", type(error).__name__)
            return [0] * len(keys)

    async def refusal(self, conversation: Text, address: Optional[Text], text: Text) -> Optional[Text]:
        """The kind reply that stands in for the assistant's, or None to let it through."""
        if len(text) > self.limits.max_chars:
            return TOO_LONG
        # Both counts grow with every attempt, refused or not.
        keys = [_hashed("c:", conversation)] + ([_hashed("a:", address)] if address else [])
        hits = await self._count(keys)
        from_address = hits[1] if address else 0
        if hits[0] > self.limits.per_conversation or from_address > self.limits.per_address:
            return TOO_FAST
        return None

    def wrap(self, on_new_message: Handler) -> Handler:
        """`on_new_message` behind the guard, for channels that reply through an output channel."""

        async def guarded(message: UserMessage) -> Any:
            message.text = readable(message.text or "")
            refusal = await self.refusal(message.sender_id, CLIENT_ADDRESS.get(), message.text)
            if refusal:
                return await say(message, refusal)
            try:
                return await on_new_message(message)
            except Exception as error:
                # Only the error's type: its text may quote the message.
                logger.error("Could not answer a %s message: %s", message.input_channel, type(error).__name__)
                return await say(message, CANNOT_ANSWER)

        return guarded


def client_address(request: Request) -> Text:
    """The client's address: from the proxy's headers when Sanic is told to trust them
    (`SANIC_PROXIES_COUNT` or `SANIC_REAL_IP_HEADER`), else the connection's."""
    return request.remote_addr or request.ip


class GuardedInput:
    """Mixin for a Rasa input channel: every message it receives passes one Guard.

    Put it first: `class CheckedCallbackInput(GuardedInput, CallbackInput)`. The
    channel's own blueprint is kept; only its `on_new_message` is wrapped. A channel with
    its own blueprint calls `guarded()` and `watch_addresses()` itself.
    """

    guard = Guard()

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> Any:
        channel = super().from_credentials(credentials)  # type: ignore[misc]
        channel.guard = Guard.from_credentials(credentials)
        return channel

    def guarded(self, on_new_message: Handler) -> Handler:
        return self.guard.wrap(on_new_message)

    @staticmethod
    def watch_addresses(webhook: Blueprint) -> Blueprint:
        """Notes each request's client address for the per-address limit."""

        @webhook.middleware("request")
        async def note_address(request: Request) -> None:
            CLIENT_ADDRESS.set(client_address(request))

        return webhook

    def blueprint(self, on_new_message: Handler) -> Blueprint:
        return self.watch_addresses(super().blueprint(self.guarded(on_new_message)))  # type: ignore[misc]


class MessagingAppInput(GuardedInput):
    """Mixin for a messaging app's channel: guarded, and its conversations stored as
    `<app>:<user id>` so that no other channel's id can ever name them.

    Its requests come, signed, from the app's servers, which carry every user's messages
    from a few addresses: a per-address limit would refuse all of the app's users at once,
    so only the per-conversation limit applies.
    """

    @staticmethod
    def watch_addresses(webhook: Blueprint) -> Blueprint:
        return webhook

    def guarded(self, on_new_message: Handler) -> Handler:
        """Moved into the app's conversations first, so that the guard counts
        `telegram:42`, which no other channel can send as."""
        checked = super().guarded(on_new_message)

        async def in_namespace(message: UserMessage) -> Any:
            return await checked(in_app_namespace(self.name(), message))  # type: ignore[attr-defined]

        return in_namespace
