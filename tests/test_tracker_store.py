"""stores/sql.py on SQLite: trimmed, cached trackers give the same replies and rows as
Rasa's SQL store; several stores on one database (replicas) alternate on a conversation;
database errors are retried, and no event is ever lost or stored twice.

tests/scale/test_tracker_store_postgres.py runs every test here again on PostgreSQL: they
take their databases from the `databases` fixture, which that module replaces.
"""
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

import stores.sql
from conftest import Bot, texts_of, variation
from stores.sql import CachedSQLTrackerStore
from test_privacy import conversation as sessions_of, days_ago

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


class Database:
    """One database that stores share: two stores on it are two replicas."""

    def __init__(self, settings: Dict[Text, Any]) -> None:
        self.settings = settings
        self.reader = sa.create_engine(SQLTrackerStore.get_db_url(**settings))
        self._away_until = 0.0

    def store(self, domain: Domain, **options: Any) -> CachedSQLTrackerStore:
        store = CachedSQLTrackerStore(domain, **self.settings, **options)
        sa.event.listen(store.engine, "before_cursor_execute", self._fail_while_away)
        return store

    def stock(self, domain: Domain) -> SQLTrackerStore:
        return SQLTrackerStore(domain, **self.settings)

    def rows(self, sender: Text) -> List[tuple]:
        """(type_name, intent_name, action_name) of every stored event, in order."""
        with self.reader.connect() as connection:
            return connection.execute(sa.text(
                "SELECT type_name, intent_name, action_name FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": sender}).fetchall()

    def texts(self, sender: Text, kinds: Tuple[Text, ...] = ("user", "bot")) -> List[Text]:
        """The texts of every stored user message and bot reply (or `kinds`), in order."""
        with self.reader.connect() as connection:
            data = connection.execute(sa.text(
                "SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender}).fetchall()
        return [json.loads(row)["text"] for kind, row in data if kind in kinds]

    def outage(self, seconds: float) -> None:
        """The database is away for `seconds` from now. SQLite has no server to stop: every
        statement of the stores fails as a broken connection does."""
        self._away_until = time.monotonic() + seconds

    def back(self) -> None:
        """Waits until an outage is over."""
        time.sleep(max(0.0, self._away_until - time.monotonic()))

    def _fail_while_away(self, *_args: Any) -> None:
        if time.monotonic() < self._away_until:
            raise sqlalchemy.exc.OperationalError("", {}, Exception("the database is away"))

    def close(self) -> None:
        self.reader.dispose()


class SQLiteDatabases:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def new(self) -> Database:
        return Database({"dialect": "sqlite", "db": str(self.folder / f"{uuid.uuid4().hex}.db")})


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    return SQLiteDatabases(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture
def database(databases):
    new = databases.new()
    yield new
    new.back()
    new.close()


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(stores.sql, "RETRY_PAUSE", 0.05)


def chat(bot: Bot, stores_: List[TrackerStore], texts: List[Text], sender: Optional[Text] = None
         ) -> Tuple[Text, List[List[Text]]]:
    """One conversation; message i is handled with stores_[i % len(stores_)]. The shared
    in-process bot gets its own store back afterwards: later tests must not write into a
    database this module has stopped."""
    sender = sender or uuid.uuid4().hex
    replies = []
    own = bot.agent.tracker_store, bot.agent.processor.tracker_store
    try:
        for index, text in enumerate(texts):
            store = stores_[index % len(stores_)]
            bot.agent.tracker_store = bot.agent.processor.tracker_store = store
            replies.append(texts_of(bot.loop.run_until_complete(bot.agent.handle_text(text, sender_id=sender))))
    finally:
        bot.agent.tracker_store, bot.agent.processor.tracker_store = own
    return sender, replies


@pytest.fixture(scope="module")
def stock_run(bot: Bot, databases):
    database = databases.new()
    sender, replies = chat(bot, [database.stock(bot.agent.domain)], SCRIPT)
    yield database.rows(sender), replies
    database.close()


def cached_store(bot: Bot, database: Database) -> CachedSQLTrackerStore:
    return database.store(bot.agent.domain, recent_events=RECENT)


def test_same_replies_and_rows_as_rasa_sql_store(bot, stock_run, responses, database):
    stock_rows, stock_replies = stock_run
    sender, replies = chat(bot, [cached_store(bot, database)], SCRIPT)
    assert replies == stock_replies
    assert database.rows(sender) == stock_rows
    # The loved-one slot set in the opening still shapes the wording at the end...
    assert variation(responses, "utter_faq/cold_turkey", asking_for="loved_one") in replies[-3]
    # ...while a first-person crisis always asks about the writer.
    assert variation(responses, "utter_ask_safe") in replies[-2]
    assert len(stock_rows) > 10 * RECENT


def test_two_replicas_sharing_one_database_stay_consistent(bot, stock_run, database):
    """Messages alternate between two stores (two servers); each notices the other's rows."""
    stock_rows, stock_replies = stock_run
    sender, replies = chat(bot, [cached_store(bot, database), cached_store(bot, database)], SCRIPT)
    assert replies == stock_replies
    assert database.rows(sender) == stock_rows


def test_rasa_gets_recent_turns_and_the_database_keeps_all(bot, database):
    store = cached_store(bot, database)
    sender, _ = chat(bot, [store], SCRIPT)
    recent = asyncio.run(store.retrieve(sender))
    full = asyncio.run(store.retrieve_full_tracker(sender))
    assert len(recent.events) <= 3 * RECENT
    assert len(full.events) == len(database.rows(sender)) > 10 * RECENT
    assert recent.get_slot("asking_for") == full.get_slot("asking_for") == "loved_one"


def test_a_message_that_failed_before_saving_leaves_no_trace(bot, database):
    store = cached_store(bot, database)
    sender, _ = chat(bot, [store], OPENING)
    tracker = asyncio.run(store.retrieve(sender))
    tracker.update(UserUttered("never saved"))
    again = asyncio.run(store.retrieve(sender))
    assert again is not tracker
    assert "never saved" not in [getattr(event, "text", None) for event in again.events]


def test_the_current_session_is_rasas_current_session(bot, database):
    """The store's plain statement reads the rows of Rasa's own
    `_event_query(fetch_events_from_all_sessions=False)`, also after a new session."""
    store = cached_store(bot, database)
    sender, _ = chat(bot, [store], OPENING)
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    tracker.update(SessionStarted())
    tracker.update(UserUttered("hello again"))
    asyncio.run(SQLTrackerStore.save(store, tracker))
    with store.session_scope() as session:
        last_id = session.execute(store._state, {"sender": sender}).one()[1]
        ours = [row.id for row in store._recent_rows(session, sender, last_id, 10**6)]
        rasas = [row.id for row in store._event_query(session, sender, fetch_events_from_all_sessions=False)]
        unknown = store._recent_rows(session, "nobody", 10**9, 10**6)
        all_rows = store._event_query(session, sender, fetch_events_from_all_sessions=True).count()
    assert ours == rasas and len(ours) == 2
    assert unknown == []
    assert all_rows > 2


def test_a_conversation_deleted_by_one_replica_is_gone_from_the_others_memory(bot, database):
    """"Start over" reaches one worker; another worker that cached the conversation must
    neither answer from it nor write it back."""
    from tools.conversations import forget

    first, second = cached_store(bot, database), cached_store(bot, database)
    sender, _ = chat(bot, [first, second], OPENING)  # both have it cached now
    assert asyncio.run(second.retrieve(sender)).get_slot("asking_for") == "loved_one"
    assert forget(first, sender) > 0
    assert asyncio.run(second.retrieve(sender)) is None
    chat(bot, [second], ["hello"], sender=sender)
    texts = database.texts(sender, kinds=("user",))
    assert len(texts) == 1 and "son" not in texts[0]
    assert asyncio.run(second.retrieve(sender)).get_slot("asking_for") is None


# Below: the store on its own, with an empty domain and hand-made events.

SENDER = "someone"


@pytest.fixture
def store(database):
    return database.store(Domain.empty())


def conversation(*texts: Text) -> DialogueStateTracker:
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    for text in texts:
        events += [UserUttered(text), BotUttered(f"re: {text}"), ActionExecuted("action_listen")]
    return DialogueStateTracker.from_events(SENDER, events)


def add_turn(tracker: DialogueStateTracker, text: Text) -> None:
    for event in [UserUttered(text), BotUttered(f"re: {text}"), ActionExecuted("action_listen")]:
        tracker.update(event)


def stored_texts(store: CachedSQLTrackerStore) -> List[Text]:
    tracker = asyncio.run(store.retrieve(SENDER))
    return [event.text for event in tracker.events if isinstance(event, (UserUttered, BotUttered))]


def test_a_continued_conversation_is_saved(store, database):
    tracker = conversation("hello")
    asyncio.run(store.save(tracker))
    tracker = asyncio.run(store.retrieve(SENDER))
    tracker.update(UserUttered("more"))
    asyncio.run(store.save(tracker))
    assert stored_texts(store) == ["hello", "re: hello", "more"]
    assert database.texts(SENDER) == ["hello", "re: hello", "more"]


def test_a_fresh_tracker_over_a_stored_conversation_adds_only_its_own_events(store, database, caplog):
    """What Rasa saves when a failed read made it start the conversation afresh: the
    stored events stay as they were, the new ones follow once, as a new session."""
    asyncio.run(store.save(conversation("hello", "how long does it last")))
    before = database.rows(SENDER)
    with caplog.at_level("WARNING", logger="stores.sql"):
        asyncio.run(store.save(conversation("a new start")))
    assert "changed in the database" in caplog.text and SENDER not in caplog.text
    assert database.rows(SENDER)[: len(before)] == before
    assert database.texts(SENDER) == [
        "hello", "re: hello", "how long does it last", "re: how long does it last", "a new start", "re: a new start"]
    assert stored_texts(store) == ["a new start", "re: a new start"]


def test_database_errors_are_retried_for_a_while(store, monkeypatch):
    monkeypatch.setattr(stores.sql, "RETRY_PAUSE", 0.01)
    failures = []

    async def flaky():
        if len(failures) < 3:
            failures.append(1)
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return "answer"

    assert asyncio.run(store._retrying(flaky)) == "answer"
    monkeypatch.setattr(stores.sql, "RETRY_SECONDS", 0.02)
    failures.clear()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        asyncio.run(store._retrying(flaky))


def test_other_database_errors_are_not_retried(store):
    tries = []

    async def wrong():
        tries.append(1)
        raise sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        asyncio.run(store._retrying(wrong))
    assert len(tries) == 1


def test_a_commit_whose_reply_was_lost_is_not_stored_twice(store, database, fast_retries):
    """The commit went through, the connection broke before its reply: the retry finds
    the events stored and adds nothing."""
    tracker = conversation("hello")
    asyncio.run(store.save(tracker))
    tracker = asyncio.run(store.retrieve(SENDER))
    add_turn(tracker, "is it safe")
    lost = []

    def reply_lost(_session):
        if not lost:
            lost.append(1)
            database.outage(0.5)
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    sa.event.listen(store.sessionmaker, "after_commit", reply_lost)
    asyncio.run(store.save(tracker))
    sa.event.remove(store.sessionmaker, "after_commit", reply_lost)
    assert lost
    assert database.texts(SENDER) == ["hello", "re: hello", "is it safe", "re: is it safe"]
    add_turn(tracker, "thanks")  # the tracker stays in step with the database
    asyncio.run(store.save(tracker))
    assert stored_texts(store) == ["hello", "re: hello", "is it safe", "re: is it safe", "thanks", "re: thanks"]
    assert len(database.rows(SENDER)) == len(conversation("hello", "is it safe", "thanks").events)


def test_a_database_outage_during_a_save_is_waited_for(store, database, fast_retries):
    """The database goes away in the middle of the save's transaction (its rows are being
    inserted) and comes back two seconds later: the save waits, and stores each event once."""
    asyncio.run(store.save(conversation("hello")))
    tracker = asyncio.run(store.retrieve(SENDER))
    add_turn(tracker, "what is detox")
    went = []

    def away(_connection, _cursor, statement, *_args):
        if not went and statement.lstrip().upper().startswith("INSERT"):
            went.append(time.monotonic())
            database.outage(2)

    sa.event.listen(store.engine, "before_cursor_execute", away)
    asyncio.run(store.save(tracker))
    saved = time.monotonic()
    sa.event.remove(store.engine, "before_cursor_execute", away)
    assert went and saved - went[0] >= 1.5
    assert database.texts(SENDER) == ["hello", "re: hello", "what is detox", "re: what is detox"]
    assert stored_texts(store) == database.texts(SENDER)


def test_a_read_waits_for_the_database_too(store, database, fast_retries):
    asyncio.run(store.save(conversation("hello")))
    store.forget_cached(SENDER)
    database.outage(1.5)
    started = time.monotonic()
    assert stored_texts(store) == ["hello", "re: hello"]
    assert time.monotonic() - started >= 1


def test_a_conversation_changed_underneath_keeps_every_event_once(database):
    """Both replicas read the conversation; one saves a message, then the other (say its
    lock expired): the second re-reads and appends its own events after the first's."""
    first, second = database.store(Domain.empty()), database.store(Domain.empty())
    asyncio.run(first.save(conversation("hello")))
    mine, theirs = asyncio.run(first.retrieve(SENDER)), asyncio.run(second.retrieve(SENDER))
    add_turn(theirs, "from the second")
    asyncio.run(second.save(theirs))
    add_turn(mine, "from the first")
    asyncio.run(first.save(mine))
    expected = ["hello", "re: hello", "from the second", "re: from the second", "from the first", "re: from the first"]
    assert database.texts(SENDER) == expected
    # Neither store answers from a tracker that misses the other's message.
    assert [stored_texts(store) for store in (first, second)] == [expected, expected]
    again = asyncio.run(first.retrieve(SENDER))
    add_turn(again, "and on")
    asyncio.run(first.save(again))
    assert database.texts(SENDER) == expected + ["and on", "re: and on"]


def test_a_conversation_deleted_while_a_message_was_handled_does_not_come_back(database):
    from tools.conversations import forget

    first, second = database.store(Domain.empty()), database.store(Domain.empty())
    asyncio.run(first.save(conversation("my son is using again")))
    tracker = asyncio.run(first.retrieve(SENDER))
    assert forget(second, SENDER) > 0  # "Start over", through the other replica
    add_turn(tracker, "what now")
    asyncio.run(first.save(tracker))
    assert database.texts(SENDER) == ["what now", "re: what now"]
    assert stored_texts(first) == ["what now", "re: what now"]


def test_a_tracker_saved_again_adds_nothing(store, database):
    asyncio.run(store.save(conversation("hello", "bye")))
    before = database.rows(SENDER)
    asyncio.run(store.save(asyncio.run(store.retrieve(SENDER))))
    assert database.rows(SENDER) == before


def test_the_store_purges_expired_sessions_by_itself(database):
    """Retention, automatic on every database as the server starts: a returning user's
    old session goes, the new one stays, and the store still answers from it."""
    domain = Domain.empty()
    asyncio.run(database.store(domain).save(sessions_of(domain, "returning", [(days_ago(40), ["an old story"]),
                                                                              (days_ago(1), ["back again"])])))
    store = database.store(domain, retention_days=30)
    assert store.purged.wait(timeout=30)
    assert database.texts("returning") == ["back again", "Hi!"]
    tracker = asyncio.run(store.retrieve("returning"))
    assert [event.text for event in tracker.events if isinstance(event, UserUttered)] == ["back again"]


def test_events_are_published_once_to_an_event_broker(store, database, fast_retries):
    published = []

    class Broker:
        def publish(self, event):
            published.append(event)

    store.event_broker = Broker()
    tracker = conversation("hello")
    database.outage(0.3)
    asyncio.run(store.save(tracker))
    assert [event["event"] for event in published] == [event.type_name for event in tracker.events]
    assert {event["sender_id"] for event in published} == {SENDER}

