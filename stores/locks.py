"""Rasa's conversation locks in a SQLite file, so that several server processes can share them.

Rasa handles the messages of one conversation one at a time, in order, by giving each a
ticket. Its default lock store keeps the tickets in the memory of one process, which
is why Rasa refuses to start more than one Sanic worker without Redis. This store keeps
the same tickets in a small SQLite file; each read-modify-write runs in one `BEGIN
IMMEDIATE` transaction, so the workers of one machine (`SANIC_WORKERS`) never both
take a ticket or a turn. Several machines need Rasa's Redis lock store instead.
"""
import json
import os
import sqlite3
from contextlib import contextmanager
from typing import Iterator, Optional, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockStore
from rasa.utils.endpoints import EndpointConfig

from stores.sql import use_wal


class SQLiteLockStore(LockStore):
    """Ticket locks for the worker processes of one server, in a SQLite file."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        self.db = str((endpoint_config.kwargs or {}).get("db", "locks.db"))
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = 0
        self._db().execute(
            "CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, data TEXT NOT NULL)"
        )
        super().__init__()

    def _db(self) -> sqlite3.Connection:
        """One connection per process (a forked worker opens its own)."""
        if self._connection is None or self._pid != os.getpid():
            self._connection = sqlite3.connect(self.db, timeout=30, isolation_level=None, check_same_thread=False)
            use_wal(self._connection)
            self._pid = os.getpid()
        return self._connection

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
