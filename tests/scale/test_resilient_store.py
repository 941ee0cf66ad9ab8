"""The resilient SQL tracker store on its own (SQLite, no services): a tracker that does
not continue the stored conversation is refused, and database errors are retried."""
import asyncio

import pytest
import sqlalchemy.exc

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from stores import resilient
from stores.resilient import ConversationOutOfSync, ResilientSQLTrackerStore


@pytest.fixture
def store(tmp_path):
    return ResilientSQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "t.db"))


def conversation(*texts):
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    for text in texts:
        events += [UserUttered(text), BotUttered(f"re: {text}"), ActionExecuted("action_listen")]
    return DialogueStateTracker.from_events("someone", events)


def stored_texts(store):
    tracker = asyncio.run(store.retrieve("someone"))
    return [event.text for event in tracker.events if isinstance(event, (UserUttered, BotUttered))]


def test_a_continued_conversation_is_saved(store):
    tracker = conversation("hello")
    asyncio.run(store.save(tracker))
    tracker = asyncio.run(store.retrieve("someone"))
    tracker.update(UserUttered("more"))
    asyncio.run(store.save(tracker))
    assert stored_texts(store) == ["hello", "re: hello", "more"]


def test_a_tracker_that_does_not_continue_the_stored_one_is_refused(store):
    asyncio.run(store.save(conversation("hello", "how long does it last")))
    # What Rasa saves when a failed read made it start the conversation afresh.
    with pytest.raises(ConversationOutOfSync):
        asyncio.run(store.save(conversation("a new start")))
    assert stored_texts(store) == ["hello", "re: hello", "how long does it last", "re: how long does it last"]


def test_database_errors_are_retried_for_a_while(store, monkeypatch):
    monkeypatch.setattr(resilient, "RETRY_PAUSE", 0.01)
    failures = []

    async def flaky():
        if len(failures) < 3:
            failures.append(1)
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return "answer"

    assert asyncio.run(store._retrying(flaky)) == "answer"
    monkeypatch.setattr(resilient, "RETRY_SECONDS", 0.02)
    failures.clear()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        asyncio.run(store._retrying(flaky))
