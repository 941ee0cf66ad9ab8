"""A SQL tracker store that rides out a database restart and never writes a broken
conversation.

Rasa's `SQLTrackerStore` keeps pooled connections that die when PostgreSQL restarts,
and Rasa wraps every tracker store in a `FailSafeTrackerStore` that answers a failed read
with "no conversation yet". The next save then appends events counted against the
stored ones, which can file a new conversation's events after an old one's. This store
checks its connections before use, retries for a while when the database is away, and
refuses a save whose tracker does not continue what is stored.
"""
import asyncio
import logging
import os
from typing import Any, Awaitable, Callable, Optional, Text, TypeVar

import sqlalchemy as sa
import sqlalchemy.exc

from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long a read or save waits for the database to come back (a restart takes seconds).
RETRY_SECONDS = float(os.environ.get("TRACKER_STORE_RETRY_SECONDS", 30))
RETRY_PAUSE = 0.5


class ConversationOutOfSync(Exception):
    """The tracker to save does not continue the events already stored."""


class ResilientSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` with connection checks, bounded retries and a continuity check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        url = self.engine.url
        options = create_engine_kwargs(url)
        if url.get_backend_name() == "postgresql":
            options.setdefault("connect_args", {})["connect_timeout"] = 5
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **options)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        waited = 0.0
        while True:
            try:
                return await operation()
            except sqlalchemy.exc.OperationalError as error:
                if waited >= RETRY_SECONDS:
                    raise
                logger.warning("Tracker store unavailable (%s); retrying.", type(error).__name__)
                await asyncio.sleep(RETRY_PAUSE)
                waited += RETRY_PAUSE

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        parent = super()
        return await self._retrying(lambda: parent.retrieve(sender_id))

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        parent = super()
        return await self._retrying(lambda: parent.retrieve_full_tracker(conversation_id))

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Saves the new events; a retry after a lost connection adds nothing twice,
        because the events to add are counted against what is stored."""
        parent = super()
        await self._retrying(lambda: parent.save(tracker))

    def _additional_events(self, session: "sa.orm.Session", tracker: DialogueStateTracker) -> Any:
        stored = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False)
        count = stored.count()
        if count:
            last = stored.order_by(None).order_by(self.SQLEvent.id.desc()).first()
            if count > len(tracker.events) or not _same_event(last, tracker.events[count - 1]):
                raise ConversationOutOfSync(
                    f"Not saving conversation '{tracker.sender_id}': it does not continue the "
                    f"{count} stored events."
                )
        return super()._additional_events(session, tracker)


def _same_event(row: Any, event: Any) -> bool:
    return row.type_name == event.type_name and row.timestamp == event.timestamp
