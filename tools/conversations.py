"""Stored conversations, read through Rasa's own tracker store, and what a reviewer wants
to know about them (turns, intents, outcome flags)."""
import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import class_from_module_path
from rasa.utils.endpoints import read_endpoint_config

from tools.heldout import response_key
from tools.privacy import MASKED_SENDER, mask_sender

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
FLAGS = ("fallback", "crisis", "low_confidence", "out_of_scope", "not_helpful")
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTIONS = {"utter_fallback", "utter_fallback_helpline"}
CRISIS_INTENT, CRISIS_ACTION = "crisis", "utter_crisis"
OUT_OF_SCOPE_INTENT, OUT_OF_SCOPE_ACTION = "out_of_scope", "utter_out_of_scope"
# A "no" right after one of these answers means the answer did not help.
ANSWER_ACTIONS = {"utter_faq", "utter_medication_info"}
# Bookkeeping actions, not something the assistant said.
SILENT_ACTIONS = {"action_listen", "action_session_start"}


class ReviewError(Exception):
    """A problem the user can fix (wrong path, unknown sender...): printed, not traced."""


def open_store(endpoints: Path) -> TrackerStore:
    """The tracker store that `endpoints` configures, as the Rasa server builds it.

    A relative SQLite path is read relative to the endpoints file (the server runs in
    the project folder), and a missing database is an error rather than a new empty one.
    """
    if not endpoints.is_file():
        raise ReviewError(f"no endpoints file at {endpoints}")
    config = read_endpoint_config(str(endpoints), "tracker_store")
    if config is None:
        raise ReviewError(f"{endpoints} configures no tracker_store")
    if _is_sql(config.type) and config.kwargs.get("dialect", "sqlite") == "sqlite":
        db = Path(config.kwargs.get("db", "rasa.db"))
        db = db if db.is_absolute() else endpoints.resolve().parent / db
        if not db.is_file():
            raise ReviewError(f"no conversation database at {db}")
        config.kwargs["db"] = str(db)
    # The server applies the retention period; a review command deletes only when told to.
    config.kwargs.pop("retention_days", None)
    return TrackerStore.create(config, Domain.load(str(ROOT / "domain")))


def _is_sql(store_type: Optional[str]) -> bool:
    """Rasa's SQL store ("sql"), or a class of it such as stores.sql.CachedSQLTrackerStore."""
    if (store_type or "").lower() == "sql":
        return True
    try:
        store_class = class_from_module_path(store_type or "")
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(store_class, type) and issubclass(store_class, SQLTrackerStore)


@dataclass
class Turn:
    """One user message with what the assistant understood and did about it."""

    timestamp: float
    text: str
    intent: str
    confidence: float
    # faq/<topic> the ResponseSelector chose, when the intent is a retrieval intent.
    response_key: Optional[str]
    # The model's best intent other than nlu_fallback: what a fallback "almost" was.
    best_guess: Tuple[str, float]
    previous_action: Optional[str]
    actions: List[str] = field(default_factory=list)
    replies: List[str] = field(default_factory=list)

    def unsure(self, threshold: float) -> bool:
        """The message a trainer should look at: a fallback or a low-confidence guess."""
        return self.intent == FALLBACK_INTENT or self.confidence < threshold


@dataclass
class Conversation:
    sender: str
    turns: List[Turn]
    # When the first user message came (the first event if there is none).
    started: float

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.started).date()

    def flags(self, threshold: float) -> List[str]:
        """The outcome flags of FLAGS that this conversation has, in that order."""
        actions = {action for turn in self.turns for action in turn.actions}
        intents = {turn.intent for turn in self.turns}
        found = {
            "fallback": FALLBACK_INTENT in intents or bool(actions & FALLBACK_ACTIONS),
            "crisis": CRISIS_INTENT in intents or CRISIS_ACTION in actions,
            "low_confidence": any(turn.confidence < threshold for turn in self.turns),
            "out_of_scope": OUT_OF_SCOPE_INTENT in intents or OUT_OF_SCOPE_ACTION in actions,
            "not_helpful": any(
                turn.intent == "deny" and turn.previous_action in ANSWER_ACTIONS
                for turn in self.turns
            ),
        }
        return [flag for flag in FLAGS if found[flag]]


def _turn(event: UserUttered, previous_action: Optional[str]) -> Turn:
    parse: Dict[str, Any] = event.parse_data or {}
    intent = event.intent_name or ""
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    guess, guess_confidence = (ranking[0]["name"], float(ranking[0]["confidence"])) if ranking else (intent, 0.0)
    return Turn(
        timestamp=event.timestamp,
        text=event.text or "",
        intent=intent,
        confidence=float(event.intent.get("confidence") or 0.0),
        response_key=response_key(parse, intent),
        best_guess=(response_key(parse, guess) or guess, guess_confidence),
        previous_action=previous_action,
    )


def summarise(tracker: DialogueStateTracker) -> Conversation:
    """The turns of a tracker: each user message with the actions and replies after it."""
    turns: List[Turn] = []
    previous_action: Optional[str] = None
    for event in tracker.events:
        if isinstance(event, SessionStarted):
            previous_action = None
        elif isinstance(event, UserUttered):
            turns.append(_turn(event, previous_action))
        elif isinstance(event, ActionExecuted) and event.action_name not in SILENT_ACTIONS:
            previous_action = event.action_name
            if turns:
                turns[-1].actions.append(event.action_name or "")
        elif isinstance(event, BotUttered) and turns:
            turns[-1].replies.append(event.text or "")
    started = turns[0].timestamp if turns else tracker.events[0].timestamp
    return Conversation(tracker.sender_id, turns, started)


async def _load_all(store: TrackerStore) -> List[Conversation]:
    conversations = []
    for sender in await store.keys():
        tracker = await store.retrieve_full_tracker(sender)
        if tracker is not None and tracker.events:
            conversations.append(summarise(tracker))
    return conversations


def load_conversations(store: TrackerStore) -> List[Conversation]:
    """Every stored conversation, oldest first."""
    return sorted(asyncio.run(_load_all(store)), key=lambda c: c.started)


def load_tracker(store: TrackerStore, sender: str) -> DialogueStateTracker:
    """All events of one conversation, across its sessions; `sender` as find_sender takes it."""
    tracker = asyncio.run(store.retrieve_full_tracker(find_sender(store, sender)))
    if tracker is None or not tracker.events:
        raise ReviewError(f"no conversation with sender id {sender!r}")
    return tracker


def find_sender(store: TrackerStore, sender: str) -> str:
    """The stored sender id that `sender` stands for: the one whose masked id
    (`conv-...`, what the review commands print) it is, or else `sender` itself."""
    if MASKED_SENDER.fullmatch(sender):
        matches = [key for key in asyncio.run(store.keys()) if mask_sender(key) == sender]
        if len(matches) > 1:
            raise ReviewError(f"{sender} stands for {len(matches)} conversations; give the sender id")
        if matches:
            return matches[0]
    return sender


@dataclass
class Purged:
    """What a purge deleted."""

    sessions: int
    conversations: int  # conversations that lost at least one session
    emptied: int  # of those, the ones that had no session left


PURGE_BATCH = 200  # conversations per transaction: a running server waits at most for one


def purge(store: TrackerStore, older_than_days: float) -> Purged:
    """Deletes every session that started more than `older_than_days` days ago.

    A session begins at a `session_started` event (with the `action_session_start` that
    Rasa logs right before it), or at the conversation's first event; it is deleted with
    all its events, so a returning user's old messages expire even though the
    conversation goes on, while a session that started after the cutoff is kept whole.
    A conversation whose sessions are all old is gone.

    Goes through the SQL store's own session and table (SQLite and PostgreSQL alike):
    Rasa's TrackerStore interface has no delete. On SQLite, `secure_delete` overwrites
    the deleted rows in the file and a checkpoint empties the write-ahead log
    (`*.db-wal`), so that no deleted text stays on disk. On PostgreSQL deleted rows stay
    in the table's files until VACUUM reuses them: running it (autovacuum, or VACUUM
    FULL to give the space back) is the database owner's job.
    """
    store = getattr(store, "_tracker_store", store)  # unwrap an AwaitableTrackerStore
    if not isinstance(store, SQLTrackerStore):
        raise ReviewError(f"purge needs an SQL tracker store, not {type(store).__name__}")
    cutoff = time.time() - older_than_days * 86400
    sqlite = store.engine.dialect.name == "sqlite"
    with store.session_scope() as session:
        expired = _expired_sessions(session, cutoff)
    event = SQLTrackerStore.SQLEvent
    for start in range(0, len(expired), PURGE_BATCH):
        with store.session_scope() as session:
            if sqlite:
                session.execute(sa.text("PRAGMA secure_delete=ON"))
            for old in expired[start : start + PURGE_BATCH]:
                rows = session.query(event).filter(event.sender_id == old.sender, event.id < old.keep_from)
                rows.delete(synchronize_session=False)
            session.commit()
    if sqlite and expired:
        _empty_write_ahead_log(store)
    return Purged(
        sessions=sum(old.sessions for old in expired),
        conversations=len(expired),
        emptied=sum(1 for old in expired if old.whole),
    )


def forget(store: TrackerStore, sender: str) -> int:
    """Deletes every event of one conversation, as `purge` deletes (overwritten on SQLite,
    the write-ahead log emptied); the number of rows deleted. "Start over" in the widget."""
    store = getattr(store, "_tracker_store", store)  # unwrap an AwaitableTrackerStore
    if not isinstance(store, SQLTrackerStore):
        raise ReviewError(f"forgetting needs an SQL tracker store, not {type(store).__name__}")
    sqlite = store.engine.dialect.name == "sqlite"
    event = SQLTrackerStore.SQLEvent
    with store.session_scope() as session:
        if sqlite:
            session.execute(sa.text("PRAGMA secure_delete=ON"))
        deleted = session.query(event).filter(event.sender_id == sender).delete(synchronize_session=False)
        session.commit()
    forget_cached = getattr(store, "forget_cached", None)
    if forget_cached is not None:
        forget_cached(sender)
    if sqlite and deleted:
        _empty_write_ahead_log(store)
    return deleted


class _Expired(NamedTuple):
    sender: str
    keep_from: int  # the first row id that stays (the one after the last row if none does)
    sessions: int  # sessions before it
    whole: bool  # no session stays


def _expired_sessions(session: Any, cutoff: float) -> List[_Expired]:
    """What to delete of each conversation with a session that started before `cutoff`.

    Row ids are fixed here, so the events a returning user adds meanwhile stay.
    """
    event = SQLTrackerStore.SQLEvent
    conversations = (
        session.query(event.sender_id, sa.func.min(event.id), sa.func.min(event.timestamp), sa.func.max(event.id))
        .group_by(event.sender_id)
        .having(sa.func.min(event.timestamp) < cutoff)
        .all()
    )
    marks: Dict[str, List[Tuple[int, str, float]]] = {}
    senders = [sender for sender, *_ in conversations]
    for start in range(0, len(senders), 500):  # stay under SQLite's parameter limit
        rows = session.query(event.sender_id, event.id, event.type_name, event.timestamp).filter(
            event.sender_id.in_(senders[start : start + 500]),
            sa.or_(event.type_name == SessionStarted.type_name, event.action_name == ACTION_SESSION_START_NAME),
        )
        for sender, row_id, kind, timestamp in rows.order_by(event.id):
            marks.setdefault(sender, []).append((row_id, kind, timestamp))
    expired = []
    for sender, first, first_time, last in conversations:
        starts = {first: first_time, **_session_starts(marks.get(sender, []))}
        kept = min((row_id for row_id, started in starts.items() if started >= cutoff), default=None)
        if kept is None:
            expired.append(_Expired(sender, last + 1, len(starts), True))
        else:
            expired.append(_Expired(sender, kept, sum(row_id < kept for row_id in starts), False))
    return expired


def _session_starts(marks: List[Tuple[int, str, float]]) -> Dict[int, float]:
    """Row id -> start time of each session: its `session_started` row, or the
    `action_session_start` row that Rasa logs right before it."""
    starts, action = {}, None
    for row_id, kind, timestamp in marks:
        if kind == SessionStarted.type_name:
            starts[action or row_id] = timestamp
            action = None
        else:
            action = row_id
    return starts


def _empty_write_ahead_log(store: SQLTrackerStore) -> None:
    """Copies the write-ahead log into the database file and truncates it to 0 bytes; the
    log would otherwise keep the deleted rows (and the page versions that held them)."""
    with store.engine.connect() as connection:
        busy, _, _ = connection.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)")).fetchone()
    if busy:
        logger.warning(
            "The conversation database stayed busy: its write-ahead log (*.db-wal) keeps "
            "the deleted rows until the next checkpoint. Purge again to empty it."
        )
