"""The conversation store of `make run` (SQLite) and of `deploy/` (PostgreSQL): Rasa's SQL
tracker store, row for row, with a reply cost that does not grow with the conversation,
that rides out a database restart, and that never loses or duplicates an event.

Rasa's SQLTrackerStore reads and decodes every event of a conversation for every
message, and the dialogue policies then rebuild the state of every past turn, so turn
100 costs several times turn 1. Its pooled connections die when PostgreSQL restarts. And
its save appends the tracker's events past the number of rows stored: a retry after a
commit whose reply was lost stores them twice, and a fresh tracker (Rasa starts one when
a read failed) has its events counted against an older conversation's rows.

Layers, bottom up:

- connections are checked before use (PostgreSQL: `pool_pre_ping`, a 5 s connect
  timeout), and a read or save that meets a broken connection or an absent database
  (`OperationalError`, `InterfaceError`) is tried again for up to RETRY_SECONDS
  (`TRACKER_STORE_RETRY_SECONDS`, default 30), each try in a new transaction;
- the last tracker of each recent conversation stays in memory and is used as long as
  the database holds exactly the rows it was read or saved with: one statement per
  message compares the conversation's row count and highest row id, so several replicas
  (or workers) sharing one database stay correct, and a deleted conversation is gone;
- the tracker handed to Rasa, and the rows read for it, hold only the recent turns (at
  least `recent_events` events, cut just before a user message), preceded by the
  earlier events that carry state (slots, resets, pauses, active loops). The policies
  look at the last few turns only (`max_history`, rules of one or two turns), so their
  predictions do not change. The full conversation stays in the database:
  `retrieve_full_tracker` (the review tools) reads it as before.

Saving, one rule. Every tracker this store reads or saves carries a mark: the
conversation's row count and highest row id at that moment, and how many of the
tracker's events those rows account for (a tracker Rasa starts itself has the mark of an
empty conversation). A save takes the tracker's events after the mark and, in one
transaction, re-reads the rows stored after the mark's id and leaves out every event
whose row is already among them, compared by the row's JSON (type, content and the
event's own timestamp to the last digit: no other event writes that row). Only events
that are not stored yet are appended, after whatever is stored. So a retry after a lost
commit reply adds nothing twice, and what another replica stored meanwhile stays, before
this message's events. The conversation changed underneath when a row after the mark is
not this tracker's, or the count of rows up to the mark differs (a conversation deleted
or purged meanwhile): that is logged, and the tracker leaves the memory cache, so that
the next message reads what is stored.

With SQLite the store switches the database to write-ahead logging with `synchronous =
NORMAL`: one small write per message instead of several flushes to disk. A crash of
the server loses nothing; a power cut can lose the last messages, never corrupt the
file (https://www.sqlite.org/wal.html). And it turns on `secure_delete`, so that what
is deleted is overwritten in the file rather than left in free space.

Retention: with `retention_days` set (both endpoints files), the store deletes the
sessions that started longer ago than that, at most once an hour, in a worker thread
started from `save` (tools.conversations.purge does the deleting, as for `make review
ARGS="purge ..."`: on SQLite overwritten, the write-ahead log emptied; on PostgreSQL
VACUUM reclaims the rows). A failed purge is logged and tried again an hour later.
"""
import asyncio
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, TypeVar, Union

import sqlalchemy as sa
import sqlalchemy.exc
import sqlalchemy.orm
import sqlalchemy.pool
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    AllSlotsReset,
    ConversationPaused,
    ConversationResumed,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from tools.conversations import purge
from tools.privacy import mask_sender

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long a read or save waits for the database to come back (a restart takes seconds).
RETRY_SECONDS = float(os.environ.get("TRACKER_STORE_RETRY_SECONDS", 30))
RETRY_PAUSE = 0.5
# Seconds between two retention purges of one store (one server worker).
PURGE_INTERVAL = 3600
# libpq's sslmodes that always encrypt. The others (disable, allow, and prefer, libpq's
# default) may send conversations in the clear, so PostgreSQL is refused with them.
TLS_SSLMODES = ("require", "verify-ca", "verify-full")
# Events whose effect outlasts their turn: kept, in order, ahead of the recent turns.
CARRIED = (SlotSet, AllSlotsReset, Restarted, ActiveLoop, ConversationPaused, ConversationResumed)


@dataclass
class _Mark:
    """Kept on each tracker this store hands out or saves: what of it is in the database."""

    rows: int  # rows of the conversation (all sessions) at the time
    last_id: int  # the highest of their ids (0: none)
    length: int  # len(tracker.events) that those rows account for


MARK = "_saved_in_sql"
UNSAVED = _Mark(0, 0, 0)  # a tracker Rasa started itself


def _mark(tracker: DialogueStateTracker) -> Optional[_Mark]:
    return getattr(tracker, MARK, None)


@dataclass
class _Appended:
    rows: int
    last_id: int
    appended: int  # events written by this save
    foreign: int  # rows after the mark that are not this tracker's
    intact: bool  # the rows up to the mark are still there


def create_private(path: Text) -> None:
    """Creates a SQLite file that only its owner may read (0600), if there is none yet;
    its write-ahead log takes the same mode. Conversations hold health details that
    other accounts on the machine have no business reading."""
    if path and path != ":memory:":
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass


def use_wal(connection: Any, _record: Any = None) -> None:
    """Write-ahead logging, `synchronous=NORMAL`; retried while another worker switches it."""
    for attempt in range(50):
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:  # "database is locked": both workers start at once
            time.sleep(0.1 * (attempt + 1))
    connection.execute("PRAGMA synchronous=NORMAL")


def use_secure_delete(connection: Any, _record: Any = None) -> None:
    """Deleted rows are overwritten with zeros, not left readable in the file's free space."""
    connection.execute("PRAGMA secure_delete=ON")


def retryable(error: BaseException) -> bool:
    """A broken connection or a database that is away (or, on SQLite, locked)."""
    if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
        return True
    return isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated


def _row(sender_id: Text, event: Event) -> Dict[Text, Any]:
    """The row Rasa's SQLTrackerStore.save writes for `event`."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


class CachedSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore with connection checks and retries, recent trackers kept in memory
    and trimmed to recent turns, one append rule and automatic retention."""

    def __init__(
        self,
        *args: Any,
        recent_events: int = 40,
        cache_size: int = 2000,
        retention_days: Optional[Union[int, float, Text]] = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("dialect", "sqlite") == "sqlite":
            create_private(kwargs.get("db", "rasa.db"))
        elif str(kwargs.get("dialect")).startswith("postgresql"):
            sslmode = (kwargs.get("query") or {}).get("sslmode")
            if sslmode not in TLS_SSLMODES:
                raise RasaException(
                    f"PostgreSQL's sslmode (DB_SSLMODE) is {sslmode!r}: it must be one of {', '.join(TLS_SSLMODES)}, "
                    "or conversations may cross the network in the clear.")
        super().__init__(*args, **kwargs)
        self.recent_events = int(recent_events)
        self.cache_size = int(cache_size)
        self._cache: "OrderedDict[Text, DialogueStateTracker]" = OrderedDict()
        # None keeps conversations for ever.
        self.retention_days = None if retention_days in (None, "") else float(retention_days)
        # Set after each retention purge (tests wait on it).
        self.purged = threading.Event()
        url = self.engine.url
        self.engine.dispose()
        self.engine = self._create_engine(url)
        self.sessionmaker = sa.orm.sessionmaker(bind=self.engine)
        self._table = self.SQLEvent.__table__
        self._prepare_statements(self.SQLEvent.__tablename__)
        if self.retention_days is not None:
            self._start_retention()

    @staticmethod
    def _create_engine(url: Any) -> "sa.engine.Engine":
        if url.get_backend_name() == "sqlite":
            # SQLAlchemy 1.4 gives SQLite files no connection pool: every session (three
            # a message) connected anew and set the pragmas again. Keep the connections.
            engine = sa.create_engine(
                url, poolclass=sqlalchemy.pool.QueuePool, connect_args={"check_same_thread": False}
            )
            sa.event.listen(engine, "connect", use_wal)
            sa.event.listen(engine, "connect", use_secure_delete)
            return engine
        options = create_engine_kwargs(url)
        if url.get_backend_name() == "postgresql":
            options.setdefault("connect_args", {})["connect_timeout"] = 5
        # A pooled connection that died with a database restart is replaced, not used.
        return sa.create_engine(url, pool_pre_ping=True, **options)

    def _prepare_statements(self, table: Text) -> None:
        """Plain statements: an ORM query cost about 2 ms to build, several times a message."""
        self._state = sa.text(f"SELECT COUNT(*), COALESCE(MAX(id), 0) FROM {table} WHERE sender_id = :sender")
        self._rows_up_to = sa.text(f"SELECT COUNT(*) FROM {table} WHERE sender_id = :sender AND id <= :last")
        self._since = sa.text(f"SELECT data FROM {table} WHERE sender_id = :sender AND id > :last ORDER BY id")
        # Rasa's current session (`_event_query(fetch_events_from_all_sessions=False)`):
        # from the latest `session_started` on, by timestamp; here up to the mark's row id.
        current_session = (
            f"sender_id = :sender AND id <= :last AND timestamp >= COALESCE((SELECT MAX(timestamp) FROM "
            f"{table} WHERE sender_id = :sender AND id <= :last AND type_name = '{SessionStarted.type_name}'), "
            "timestamp)"
        )
        self._recent = sa.text(
            f"SELECT id, data FROM {table} WHERE {current_session} ORDER BY id DESC LIMIT :window"
        )
        carried = ", ".join(f"'{kind.type_name}'" for kind in CARRIED)
        self._carried = sa.text(
            f"SELECT id, data FROM {table} WHERE {current_session} AND id < :first "
            f"AND type_name IN ({carried}) ORDER BY id"
        )

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Runs `operation` (one transaction) again while the database is away: for up to
        RETRY_SECONDS of pauses, or of time if the tries themselves take long."""
        started, waited = time.monotonic(), 0.0
        while True:
            try:
                return await operation()
            except sqlalchemy.exc.SQLAlchemyError as error:
                if not retryable(error) or max(waited, time.monotonic() - started) >= RETRY_SECONDS:
                    raise
                logger.warning("Tracker store unavailable (%s); retrying.", type(error).__name__)
                await asyncio.sleep(RETRY_PAUSE)
                waited += RETRY_PAUSE

    async def keys(self) -> Any:
        parent = super()
        return await self._retrying(lambda: parent.keys())

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        parent = super()
        return await self._retrying(lambda: parent.retrieve_full_tracker(conversation_id))

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        return await self._retrying(lambda: self._retrieve_recent(sender_id))

    async def _retrieve_recent(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            rows, last_id = session.execute(self._state, {"sender": sender_id}).one()
            tracker = self._cache.get(sender_id)
            mark = _mark(tracker) if tracker is not None else None
            current = (rows, last_id, len(tracker.events)) if tracker is not None else None
            cached = mark is not None and (mark.rows, mark.last_id, mark.length) == current
            if rows and not cached:
                tracker = self._load_recent(session, sender_id, rows, last_id)
        if not rows or tracker is None:
            self._cache.pop(sender_id, None)
            return None
        self._remember(tracker)
        return tracker

    def _recent_rows(self, session: Any, sender_id: Text, last_id: int, window: int) -> List[Any]:
        """The last `window` rows of the current session up to `last_id`, oldest first."""
        parameters = {"sender": sender_id, "last": last_id, "window": window}
        return session.execute(self._recent, parameters).all()[::-1]

    def _load_recent(self, session: Any, sender_id: Text, rows: int, last_id: int) -> Optional[DialogueStateTracker]:
        """The recent rows of the current session, after the earlier rows that carry state."""
        recent = self._recent_rows(session, sender_id, last_id, 2 * self.recent_events)
        if not recent:
            return None
        parameters = {"sender": sender_id, "last": last_id, "first": recent[0].id}
        earlier = session.execute(self._carried, parameters).all()
        events = [json.loads(row.data) for row in earlier + recent]
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        self._trim(tracker)
        setattr(tracker, MARK, _Mark(rows, last_id, len(tracker.events)))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Appends the events not stored yet (the module's docstring has the rule)."""
        mark = _mark(tracker) or UNSAVED
        events = list(itertools.islice(tracker.events, mark.length, None))
        result = await self._retrying(lambda: self._append(tracker.sender_id, mark, events))
        setattr(tracker, MARK, _Mark(result.rows, result.last_id, len(tracker.events)))
        if result.foreign or not result.intact:
            logger.warning(
                "Conversation %s changed in the database while a message was handled "
                "(%d rows not known here%s); appended this message's %d new events after them.",
                mask_sender(tracker.sender_id), result.foreign,
                "" if result.intact else ", rows deleted", result.appended,
            )
            self._cache.pop(tracker.sender_id, None)
        else:
            if len(tracker.events) > 2 * self.recent_events:
                self._trim(tracker)
                _mark(tracker).length = len(tracker.events)
            self._remember(tracker)
        if self.event_broker is not None:
            for event in events:
                self.event_broker.publish({"sender_id": tracker.sender_id, **event.as_dict()})

    async def _append(self, sender_id: Text, mark: _Mark, events: List[Event]) -> _Appended:
        """One transaction: the rows after the mark re-read, the missing events appended."""
        rows = [_row(sender_id, event) for event in events]
        with self.session_scope() as session:
            intact = not mark.last_id or mark.rows == session.execute(
                self._rows_up_to, {"sender": sender_id, "last": mark.last_id}).scalar()
            stored = Counter(data for (data,) in session.execute(
                self._since, {"sender": sender_id, "last": mark.last_id}))
            missing = []
            for row in rows:
                if stored[row["data"]]:
                    stored[row["data"]] -= 1  # stored by an earlier try of this save
                else:
                    missing.append(row)
            if missing:
                session.execute(self._table.insert(), missing)
            count, last_id = session.execute(self._state, {"sender": sender_id}).one()
            session.commit()
        return _Appended(count, last_id, len(missing), sum(stored.values()), intact)

    def _remember(self, tracker: DialogueStateTracker) -> None:
        self._cache[tracker.sender_id] = tracker
        self._cache.move_to_end(tracker.sender_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def forget_cached(self, sender_id: Text) -> None:
        """Drops a deleted conversation from this process's memory at once (the other
        processes notice at their next read)."""
        self._cache.pop(sender_id, None)

    def _start_retention(self) -> None:
        """Purges now and every PURGE_INTERVAL seconds in a thread of this process, so
        that an idle server deletes expired conversations on time too; no reply waits
        for it."""

        def purge_regularly() -> None:
            while True:
                self._purge_expired()
                self.purged.set()
                time.sleep(PURGE_INTERVAL)

        threading.Thread(target=purge_regularly, name="retention", daemon=True).start()

    def _purge_expired(self) -> None:
        """Deletes the sessions older than `retention_days`; a failure is only logged, the
        server goes on and the next purge tries again."""
        try:
            purged = purge(self, self.retention_days)
        except Exception:
            logger.exception("Retention purge failed; trying again in %d s.", PURGE_INTERVAL)
            return
        if purged.sessions:
            logger.info(
                "Retention: deleted %d sessions older than %g days from %d conversations.",
                purged.sessions, self.retention_days, purged.conversations,
            )

    def _trim(self, tracker: DialogueStateTracker) -> None:
        """Keeps the recent turns, in place, after the earlier events that carry state."""
        events = list(tracker.events)
        # Cut at the `action_listen` before a user message, leaving at least `recent_events`.
        cut = next(
            (
                index
                for index in range(len(events) - self.recent_events, 0, -1)
                if isinstance(events[index + 1], UserUttered)
                and isinstance(events[index], ActionExecuted)
                and events[index].action_name == ACTION_LISTEN_NAME
            ),
            None,
        )
        if cut is None:
            return
        carried = [event for event in events[:cut] if isinstance(event, CARRIED)]
        tracker.events.clear()
        tracker.events.extend(carried + events[cut:])
