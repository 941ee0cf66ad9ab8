"""Rasa's conversation locks in a SQLite file, so that several server processes can share them.

Rasa handles the messages of one conversation one at a time, in order, by giving each a
ticket. Its default lock store keeps the tickets in the memory of one process, which
is why Rasa refuses to start more than one Sanic worker without Redis. This store keeps
the same tickets in a small SQLite file; each read-modify-write runs in one `BEGIN
IMMEDIATE` transaction, so the workers of one machine (`SANIC_WORKERS`) never both
take a ticket or a turn. Several machines need Rasa's Redis lock store instead.

Rasa's lock store calls are synchronous, and a worker that waits for another worker's
transaction would stall its whole event loop (every conversation it serves) for up to
the 30 s busy timeout. So `lock()` runs each SQLite call on the store's own thread.

A message waiting for its turn looks again every TURN_POLL seconds, not every second as
Rasa's default does: someone who sends two lines in a row would otherwise wait up to a
second for the second answer, and a reading of the small table costs far less.
"""
import asyncio
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncIterator, Callable, Iterator, Optional, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from stores.sql import create_private, use_wal

TURN_POLL = 0.05  # seconds between looks at whose turn it is


class SQLiteLockStore(LockStore):
    """Ticket locks for the worker processes of one server, in a SQLite file."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        self.db = str((endpoint_config.kwargs or {}).get("db", "locks.db"))
        create_private(self.db)
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = 0
        self._thread: Optional[ThreadPoolExecutor] = None
        self._db().execute(
            "CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, data TEXT NOT NULL)"
        )
        super().__init__()

    def _this_process(self) -> None:
        """A forked worker opens its own connection and thread."""
        if self._pid != os.getpid():
            self._connection, self._thread, self._pid = None, None, os.getpid()

    def _db(self) -> sqlite3.Connection:
        self._this_process()
        if self._connection is None:
            self._connection = sqlite3.connect(self.db, timeout=30, isolation_level=None, check_same_thread=False)
            use_wal(self._connection)
        return self._connection

    async def _off_loop(self, call: Callable[..., Any], *args: Any) -> Any:
        """Runs one SQLite call on this process's store thread (one thread: the
        connection is never used by two threads at once)."""
        self._this_process()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lock-store")
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = TURN_POLL,
    ) -> AsyncIterator[TicketLock]:
        """Rasa's `LockStore.lock` (take a ticket, wait for its turn, give it back), with
        every database call off the event loop."""
        ticket = await self._off_loop(self.issue_ticket, conversation_id, lock_lifetime)
        try:
            yield await self._wait_for_turn(conversation_id, ticket, wait_time_in_seconds)
        finally:
            await self._off_loop(self.cleanup, conversation_id, ticket)

    async def _wait_for_turn(self, conversation_id: Text, ticket: int, wait_time_in_seconds: float) -> TicketLock:
        while True:
            lock = await self._off_loop(self.get_lock, conversation_id)
            if not lock:  # expired while waiting
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            if not lock.is_locked(ticket):
                return lock
            await asyncio.sleep(wait_time_in_seconds)
            await self._off_loop(self.update_lock, conversation_id)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        connection = self._db()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        row = self._db().execute(
            "SELECT data FROM locks WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        return TicketLock.from_dict(json.loads(row[0])) if row else None

    def delete_lock(self, conversation_id: Text) -> None:
        self._db().execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,))

    def save_lock(self, lock: TicketLock) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO locks (conversation_id, data) VALUES (?, ?)",
            (lock.conversation_id, lock.dumps()),
        )

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        with self._transaction():
            return super().issue_ticket(conversation_id, lock_lifetime)

    def update_lock(self, conversation_id: Text) -> None:
        with self._transaction():
            super().update_lock(conversation_id)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        with self._transaction():
            super().cleanup(conversation_id, ticket_number)
