"""Rasa's SQL tracker store, with a reply cost that does not grow with the conversation.

Rasa's SQLTrackerStore reads and decodes every event of a conversation for every
message, and the dialogue policies then rebuild the state of every past turn, so
turn 100 of a conversation costs several times turn 1. This store keeps everything
the stock one writes, row for row, and changes two things on the way back:

- the last tracker of each recent conversation stays in memory, and is used as long
  as the database holds exactly the events it knows (a row count per message checks
  it, so several replicas sharing one database stay correct);
- the tracker handed to Rasa, and the rows read for it, hold only the recent turns (at
  least `recent_events` events, cut just before a user message), preceded by the
  earlier events that carry state (slots, resets, pauses, active loops). The policies
  look at the last few turns only (`max_history`, rules of one or two turns), so their
  predictions do not change; nor does a server that reads a conversation another
  server (or worker) held so far.

The full conversation stays in the database: `retrieve_full_tracker` (the review
tools, Rasa's HTTP API with all events) reads it as before.

With SQLite it also switches the database to write-ahead logging with `synchronous =
NORMAL`: one small write per message instead of several flushes to disk. A crash of
the server loses nothing; a power cut can lose the last messages, never corrupt the
file (https://www.sqlite.org/wal.html). And it turns on `secure_delete`, so that what
is deleted is overwritten in the file rather than left in free space.

Retention: with `retention_days` set (endpoints.yml), the store deletes the sessions
that started longer ago than that, at most once an hour, in a worker thread started
from `save` (tools.conversations.purge does the deleting, as for `make review ARGS=
"purge ..."`). A failed purge is logged and tried again an hour later.
"""
import asyncio
import itertools
import json
import logging
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Text, Union

from rasa.core.tracker_store import SQLTrackerStore
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
import sqlalchemy.orm
from sqlalchemy import event as sqlalchemy_event

from tools.conversations import purge

logger = logging.getLogger(__name__)

# Seconds between two retention purges of one store (one server worker).
PURGE_INTERVAL = 3600
# Events whose effect outlasts their turn: kept, in order, ahead of the recent turns.
CARRIED = (SlotSet, AllSlotsReset, Restarted, ActiveLoop, ConversationPaused, ConversationResumed)


@dataclass
class _Saved:
    """Kept on each tracker this store hands out: what of it is in the database."""

    rows: int  # rows in the database for the current session
    length: int  # len(tracker.events) at the time


BOOKKEEPING = "_saved_in_sql"


def _saved(tracker: DialogueStateTracker) -> Optional[_Saved]:
    return getattr(tracker, BOOKKEEPING, None)


def _new_events(tracker: DialogueStateTracker, saved: _Saved) -> List[Event]:
    return list(itertools.islice(tracker.events, saved.length, None))


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


class CachedSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore that keeps recent trackers in memory, trimmed to recent turns."""

    def __init__(
        self,
        *args: Any,
        recent_events: int = 40,
        cache_size: int = 2000,
        retention_days: Optional[Union[int, float]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.recent_events = int(recent_events)
        self.cache_size = int(cache_size)
        self._cache: "OrderedDict[Text, DialogueStateTracker]" = OrderedDict()
        # None keeps conversations for ever.
        self.retention_days = None if retention_days is None else float(retention_days)
        self._next_purge = 0.0  # time.monotonic() of the next purge: the first save
        self._purging: Optional[asyncio.Future] = None
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 gives SQLite files no connection pool: every session (three
            # a message) connected anew and set the pragmas again. Keep the connections.
            url = self.engine.url
            self.engine.dispose()
            self.engine = sqlalchemy.create_engine(
                url, poolclass=sqlalchemy.pool.QueuePool, connect_args={"check_same_thread": False}
            )
            sqlalchemy_event.listen(self.engine, "connect", use_wal)
            sqlalchemy_event.listen(self.engine, "connect", use_secure_delete)
            self.sessionmaker = sqlalchemy.orm.sessionmaker(bind=self.engine)
        # The count of Rasa's own `_event_query(fetch_events_from_all_sessions=False)`, as
        # one plain statement (the ORM query cost about 2 ms to build, twice a message).
        table = self.SQLEvent.__tablename__
        self._count_current_session = sqlalchemy.text(
            f"SELECT COUNT(*) FROM {table} WHERE sender_id = :sender AND timestamp >= COALESCE("
            f"(SELECT MAX(timestamp) FROM {table} WHERE sender_id = :sender AND type_name = :started), "
            "timestamp)"
        )

    def _stored_count(self, session: Any, sender_id: Text) -> int:
        """Rows of the conversation's current session."""
        parameters = {"sender": sender_id, "started": SessionStarted.type_name}
        return session.execute(self._count_current_session, parameters).scalar()

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            rows = self._stored_count(session, sender_id)
        tracker = self._cache.get(sender_id)
        saved = _saved(tracker) if tracker else None
        if saved is None or saved.rows != rows or len(tracker.events) != saved.length:
            tracker = self._load_recent(sender_id)
            if tracker is None:
                self._cache.pop(sender_id, None)
                return None
            setattr(tracker, BOOKKEEPING, _Saved(rows, len(tracker.events)))
            self._cache[sender_id] = tracker
        self._cache.move_to_end(sender_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return tracker

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        saved = _saved(tracker)
        if saved is None:  # a tracker Rasa built itself (a new conversation): stock rule
            return super()._additional_events(session, tracker)
        if self._stored_count(session, tracker.sender_id) != saved.rows:
            logger.error(
                "Conversation %s changed in the database while a message was handled; "
                "appending this message's events after the others.", tracker.sender_id
            )
        return iter(_new_events(tracker, saved))

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        saved = _saved(tracker)
        if saved is None or self.event_broker is None:
            return await super().stream_events(tracker)
        await self._stream_new_events(self.event_broker, _new_events(tracker, saved), tracker.sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        saved = _saved(tracker)
        await super().save(tracker)
        if saved is None:
            self._cache.pop(tracker.sender_id, None)  # read back once, then cached
        else:
            saved.rows += len(_new_events(tracker, saved))
            if len(tracker.events) > 2 * self.recent_events:
                self._trim(tracker)
            saved.length = len(tracker.events)
        self._purge_when_due()

    def forget_cached(self, sender_id: Text) -> None:
        """Drops a deleted conversation from this process's memory too."""
        self._cache.pop(sender_id, None)

    def _purge_when_due(self) -> None:
        """Starts a retention purge in a worker thread, at most once per PURGE_INTERVAL:
        the reply does not wait for it."""
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        if self._purging is not None and not self._purging.done():
            return
        self._next_purge = time.monotonic() + PURGE_INTERVAL
        self._purging = asyncio.get_running_loop().run_in_executor(None, self._purge_expired)

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

    def _load_recent(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The recent rows of the current session, after the earlier rows that carry state."""
        with self.session_scope() as session:
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=False)
            window = 2 * self.recent_events
            recent = query.order_by(None).order_by(self.SQLEvent.id.desc()).limit(window).all()[::-1]
            if not recent:
                return None
            earlier = query.filter(
                self.SQLEvent.id < recent[0].id,
                self.SQLEvent.type_name.in_([kind.type_name for kind in CARRIED]),
            ).all()
            events = [json.loads(row.data) for row in earlier + recent]
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        self._trim(tracker)
        return tracker

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
