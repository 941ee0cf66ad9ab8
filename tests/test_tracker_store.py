"""stores/sql.py: trimmed, cached trackers give the same replies and rows as Rasa's SQL store."""
import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import List, Text, Tuple

import pytest
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.events import SessionStarted, UserUttered

from conftest import Bot, texts_of, variation
from stores.sql import CachedSQLTrackerStore

# Slots set at the start (asking_for, medication) must still shape the answers at the end,
# long after the trimmed tracker has dropped the turns that set them.
OPENING = ["hi", "i'm asking for my son", "tell me about methadone"]
MIDDLE = [
    "what are the symptoms of opiate withdrawal", "is it safe to take klonopin for withdrawal",
    "yes", "what is detox", "no thanks", "asdfgh qwerty", "thank you",
]
CLOSING = ["what about that medication", "is it safe to quit cold turkey", "i want to kill myself", "yes"]
SCRIPT = OPENING + MIDDLE * 5 + CLOSING
RECENT = 10  # trim hard, so the script crosses many cuts


def chat(bot: Bot, stores: List[TrackerStore], texts: List[Text]) -> Tuple[Text, List[List[Text]]]:
    """One conversation; message i is handled with stores[i % len(stores)]."""
    sender = uuid.uuid4().hex
    replies = []
    for index, text in enumerate(texts):
        store = stores[index % len(stores)]
        bot.agent.tracker_store = bot.agent.processor.tracker_store = store
        replies.append(texts_of(bot.loop.run_until_complete(bot.agent.handle_text(text, sender_id=sender))))
    return sender, replies


def rows(db: Path, sender: Text) -> List[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT type_name, intent_name, action_name FROM events WHERE sender_id = ? ORDER BY id",
            (sender,),
        ).fetchall()


@pytest.fixture(scope="module")
def stock_run(bot: Bot, tmp_path_factory):
    db = tmp_path_factory.mktemp("stock") / "tracker.db"
    store = SQLTrackerStore(bot.agent.domain, dialect="sqlite", db=str(db))
    sender, replies = chat(bot, [store], SCRIPT)
    return rows(db, sender), replies


def cached_store(bot: Bot, db: Path) -> CachedSQLTrackerStore:
    return CachedSQLTrackerStore(bot.agent.domain, dialect="sqlite", db=str(db), recent_events=RECENT)


def test_same_replies_and_rows_as_rasa_sql_store(bot, stock_run, responses, tmp_path):
    stock_rows, stock_replies = stock_run
    db = tmp_path / "tracker.db"
    sender, replies = chat(bot, [cached_store(bot, db)], SCRIPT)
    assert replies == stock_replies
    assert rows(db, sender) == stock_rows
    # The loved-one slot set in the opening still shapes the wording at the end...
    assert variation(responses, "utter_faq/cold_turkey", asking_for="loved_one") in replies[-3]
    # ...while a first-person crisis always asks about the writer.
    assert variation(responses, "utter_ask_safe") in replies[-2]
    assert len(stock_rows) > 10 * RECENT


def test_two_replicas_sharing_one_database_stay_consistent(bot, stock_run, tmp_path):
    """Messages alternate between two stores (two servers); each notices the other's rows."""
    stock_rows, stock_replies = stock_run
    db = tmp_path / "tracker.db"
    sender, replies = chat(bot, [cached_store(bot, db), cached_store(bot, db)], SCRIPT)
    assert replies == stock_replies
    assert rows(db, sender) == stock_rows


def test_rasa_gets_recent_turns_and_the_database_keeps_all(bot, tmp_path):
    store = cached_store(bot, tmp_path / "tracker.db")
    sender, _ = chat(bot, [store], SCRIPT)
    recent = asyncio.run(store.retrieve(sender))
    full = asyncio.run(store.retrieve_full_tracker(sender))
    assert len(recent.events) <= 3 * RECENT
    assert len(full.events) == len(rows(tmp_path / "tracker.db", sender)) > 10 * RECENT
    assert recent.get_slot("asking_for") == full.get_slot("asking_for") == "loved_one"


def test_a_message_that_failed_before_saving_leaves_no_trace(bot, tmp_path):
    store = cached_store(bot, tmp_path / "tracker.db")
    sender, _ = chat(bot, [store], OPENING)
    tracker = asyncio.run(store.retrieve(sender))
    tracker.update(UserUttered("never saved"))
    again = asyncio.run(store.retrieve(sender))
    assert again is not tracker
    assert "never saved" not in [getattr(event, "text", None) for event in again.events]


def test_stored_count_is_rasas_count_of_the_current_session(bot, tmp_path):
    """The plain count statement agrees with Rasa's ORM query, also after a new session."""
    store = cached_store(bot, tmp_path / "tracker.db")
    sender, _ = chat(bot, [store], OPENING)
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    tracker.update(SessionStarted())
    tracker.update(UserUttered("hello again"))
    asyncio.run(SQLTrackerStore.save(store, tracker))
    with store.session_scope() as session:
        counts = {
            "current": (store._stored_count(session, sender),
                        store._event_query(session, sender, fetch_events_from_all_sessions=False).count()),
            "unknown": (store._stored_count(session, "nobody"), 0),
        }
        all_rows = store._event_query(session, sender, fetch_events_from_all_sessions=True).count()
    assert counts["current"][0] == counts["current"][1] == 2
    assert counts["unknown"] == (0, 0)
    assert all_rows > 2


def test_a_conversation_deleted_by_one_replica_is_gone_from_the_others_memory(bot, tmp_path):
    """"Start over" reaches one worker; another worker that cached the conversation must
    neither answer from it nor write it back."""
    from tools.conversations import forget

    db = tmp_path / "tracker.db"
    first, second = cached_store(bot, db), cached_store(bot, db)
    sender, _ = chat(bot, [first, second], OPENING)  # both have it cached now
    assert asyncio.run(second.retrieve(sender)).get_slot("asking_for") == "loved_one"
    assert forget(first, sender) > 0
    assert asyncio.run(second.retrieve(sender)) is None
    bot.agent.tracker_store = bot.agent.processor.tracker_store = second
    bot.loop.run_until_complete(bot.agent.handle_text("hello", sender_id=sender))
    texts = [text for kind, text in sqlite3.connect(db).execute(
        "SELECT type_name, data FROM events WHERE sender_id = ?", (sender,)).fetchall() if kind == "user"]
    assert len(texts) == 1 and "son" not in texts[0]
    assert asyncio.run(second.retrieve(sender)).get_slot("asking_for") is None
