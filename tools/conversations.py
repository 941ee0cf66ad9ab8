"""Stored conversations, read through Rasa's own tracker store, and what a reviewer wants
to know about them (turns, intents, outcome flags)."""
import asyncio
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from tools.heldout import response_key

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ("fallback", "crisis", "low_confidence", "not_helpful")
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTIONS = {"utter_fallback", "utter_fallback_helpline"}
CRISIS_INTENT, CRISIS_ACTION = "crisis", "utter_crisis"
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
    if (config.type or "").lower() == "sql" and config.kwargs.get("dialect", "sqlite") == "sqlite":
        db = Path(config.kwargs.get("db", "rasa.db"))
        db = db if db.is_absolute() else endpoints.resolve().parent / db
        if not db.is_file():
            raise ReviewError(f"no conversation database at {db}")
        config.kwargs["db"] = str(db)
    return TrackerStore.create(config, Domain.load(str(ROOT / "domain")))


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
    """All events of one conversation, across its sessions."""
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    if tracker is None or not tracker.events:
        raise ReviewError(f"no conversation with sender id {sender!r}")
    return tracker


def purge(store: TrackerStore, older_than_days: float) -> int:
    """Deletes conversations whose latest event is older than the given age; their count.

    Goes through the SQL store's own session and table (SQLite and PostgreSQL alike):
    Rasa's TrackerStore interface has no delete.
    """
    store = getattr(store, "_tracker_store", store)  # unwrap an AwaitableTrackerStore
    if not isinstance(store, SQLTrackerStore):
        raise ReviewError(f"purge needs an SQL tracker store, not {type(store).__name__}")
    cutoff = time.time() - older_than_days * 86400
    event = SQLTrackerStore.SQLEvent
    with store.session_scope() as session:
        old = (
            session.query(event.sender_id)
            .group_by(event.sender_id)
            .having(sa.func.max(event.timestamp) < cutoff)
        )
        senders = [sender for (sender,) in old.all()]
        for start in range(0, len(senders), 500):  # stay under SQLite's parameter limit
            session.query(event).filter(event.sender_id.in_(senders[start : start + 500])).delete(
                synchronize_session=False
            )
        session.commit()
    return len(senders)
