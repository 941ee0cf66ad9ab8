"""Personal data: masking (tools/privacy.py), masked sender ids in what the review tool
prints and writes, and retention that really deletes (tools.conversations.purge, and the
server's own store, stores/sql.py). Nothing here needs the trained model: conversations
are written straight into SQLite files through Rasa's SQL tracker store.
"""
import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest
import yaml
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

import stores.sql
from conftest import ROOT
from stores.sql import CachedSQLTrackerStore
from tools.conversations import Purged, purge
from tools.privacy import MASKED_SENDER, mask, mask_sender

CASES = [
    # Phone numbers, e-mail addresses
    ("call me at 555-123-4567", "call me at [PHONE]"),
    ("(555) 123 4567 or +1 555 123 4567", "[PHONE] or [PHONE]"),
    ("my cell is 555-123-4567x12", "my cell is [PHONE]"),
    ("work line 555-123-4567 ext. 204, ask for me", "work line [PHONE], ask for me"),
    ("text 555/123/4567 after 6", "text [PHONE] after 6"),
    ("555.123.4567", "[PHONE]"),
    ("my uk number +44 20 7946 0958", "my uk number [PHONE]"),
    ("mail jordan.miller@example.com please", "mail [EMAIL] please"),
    ("john(at)gmail(dot)com", "[EMAIL]"),
    ("email me at john at gmail dot com", "email me at [EMAIL]"),
    ("JOHN [AT] GMAIL [DOT] COM", "[EMAIL]"),
    ("reach me: jane.doe [at] yahoo.com", "reach me: [EMAIL]"),
    # Names
    ("my name is Jordan Miller", "my name is [NAME]"),
    ("My name is jordan and i need help", "My name is [NAME] and i need help"),
    ("I'm Sarah and my son uses", "I'm [NAME] and my son uses"),
    ("im sarah and im scared", "im [NAME] and im scared"),
    ("i'm sarah", "i'm [NAME]"),
    ("i’m sarah", "i’m [NAME]"),
    ("I am Sarah", "I am [NAME]"),
    ("this is sarah, my son is using", "this is [NAME], my son is using"),
    ("this is Dave", "this is [NAME]"),
    ("i'm tyler's mom", "i'm [NAME]'s mom"),
    ("my son tyler is using fent again", "my son [NAME] is using fent again"),
    ("my son Tyler is using fent again", "my son [NAME] is using fent again"),
    ("my wife Maria took 4 of my pills", "my wife [NAME] took 4 of my pills"),
    ("Tyler is using again", "[NAME] is using again"),
    ("Tyler's using again", "[NAME]'s using again"),
    ("Tyler won't stop taking them", "[NAME] won't stop taking them"),
    ("I found pills. Tyler keeps lying about it", "I found pills. [NAME] keeps lying about it"),
    ("Jordan Miller here", "[NAME] here"),
    ("Dr. Smith gave me Klonopin", "Dr. [NAME] gave me Klonopin"),
    ("I saw Dr. John Smith yesterday", "I saw Dr. [NAME] yesterday"),
    ("dr smith said to taper", "dr [NAME] said to taper"),
    ("Mrs. Jones from the clinic called", "Mrs. [NAME] from the clinic called"),
    # Kept: drugs, the assistant's own words, helplines, doses, dates and times
    ("I took Klonopin and Suboxone", "I took Klonopin and Suboxone"),
    ("is it safe to mix Kratom and Gabapentin?", "is it safe to mix Kratom and Gabapentin?"),
    ("my dr said to taper off Xanax", "my dr said to taper off Xanax"),
    ("should I call 911 or 988", "should I call 911 or 988"),
    ("call 1-800-662-4357 for help", "call 1-800-662-4357 for help"),
    ("is 1 (800) 662-4357 free?", "is 1 (800) 662-4357 free?"),
    ("took 2 mg 3 times, now in the ER", "took 2 mg 3 times, now in the ER"),
    ("I took 2mg at 10:45pm", "I took 2mg at 10:45pm"),
    ("I quit on 2024-01-05 at 14:30", "I quit on 2024-01-05 at 14:30"),
    ("last used 01/05/2024, day 3 now", "last used 01/05/2024, day 3 now"),
    ("since January 5th i feel sick", "since January 5th i feel sick"),
    ("It's Tuesday and I'm sick", "It's Tuesday and I'm sick"),
    ("What are withdrawal symptoms?", "What are withdrawal symptoms?"),
    ("i'm exhausted and shaking", "i'm exhausted and shaking"),
    ("im sitting in the car and i cant stop shaking", "im sitting in the car and i cant stop shaking"),
    ("I'm worthless and I'm scared", "I'm worthless and I'm scared"),
    ("this is ridiculous, im sober 30 days", "this is ridiculous, im sober 30 days"),
    ("Honestly I am scared", "Honestly I am scared"),
    ("I was at home all day", "I was at home all day"),
    # Documented limits
    ("tyler is using again", "tyler is using again"),
    ("im jared", "im jared"),
    ("I live in Ohio", "I live in [NAME]"),
]


@pytest.mark.parametrize("text, masked", CASES)
def test_mask(text, masked):
    assert mask(text) == masked


def test_masked_sender_ids_are_stable_short_and_keyed():
    phone = "+15557654321"
    assert mask_sender(phone) == mask_sender(phone)
    assert MASKED_SENDER.fullmatch(mask_sender(phone))
    assert mask_sender(phone) != mask_sender("+15557654322")
    assert "5557654321" not in mask_sender(phone)


DAY = 86400
ENV = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain"))


def conversation(
    domain: Domain, sender: str, sessions: Sequence[Tuple[float, List[str]]], confidence: float = 0.9
) -> DialogueStateTracker:
    """A tracker with one session per (start time, user texts), with the events Rasa logs."""
    events: List[Event] = []
    for start, texts in sessions:
        events += [
            ActionExecuted(ACTION_SESSION_START_NAME, timestamp=start),
            SessionStarted(timestamp=start + 0.1),
            ActionExecuted(ACTION_LISTEN_NAME, timestamp=start + 0.2),
        ]
        for number, text in enumerate(texts, 1):
            at = start + 10 * number
            intent = {"name": "greet", "confidence": confidence}
            events += [
                UserUttered(text, intent, parse_data={"intent": intent, "intent_ranking": [intent]}, timestamp=at),
                ActionExecuted("utter_greet", timestamp=at + 1),
                BotUttered("Hi!", timestamp=at + 2),
                ActionExecuted(ACTION_LISTEN_NAME, timestamp=at + 3),
            ]
    return DialogueStateTracker.from_events(sender, events, domain.slots)


def save(store: SQLTrackerStore, *trackers: DialogueStateTracker) -> None:
    async def save_all() -> None:
        for tracker in trackers:
            await store.save(tracker)

    asyncio.run(save_all())


def days_ago(days: float) -> float:
    return time.time() - days * DAY


def user_texts(store: SQLTrackerStore, sender: str) -> Optional[List[str]]:
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    return None if tracker is None else [e.text for e in tracker.events if isinstance(e, UserUttered)]


def raw_bytes(db: Path) -> bytes:
    """Everything SQLite keeps on disk for `db`: the file, its write-ahead log and index."""
    files = [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
    return b"".join(path.read_bytes() for path in files if path.exists())


def write_endpoints(folder: Path, store_type: str = "stores.sql.CachedSQLTrackerStore") -> Path:
    endpoints = folder / "endpoints.yml"
    store = {"type": store_type, "dialect": "sqlite", "db": "tracker.db"}
    endpoints.write_text(yaml.safe_dump({"tracker_store": store}))
    return endpoints


def run_review(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.review", *args],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300,
    )


SECRET = "zebra quartz lullaby"
PHONE_SENDER = "+15557654321"


def test_only_the_owner_may_read_the_conversation_and_lock_files(domain, tmp_path):
    from rasa.utils.endpoints import EndpointConfig

    from stores.locks import SQLiteLockStore

    store = CachedSQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "tracker.db"))
    asyncio.run(store.save(conversation(domain, "someone", [(days_ago(0), ["my son is using again"])])))
    SQLiteLockStore(EndpointConfig(db=str(tmp_path / "locks.db")))
    files = sorted(tmp_path.glob("*.db*"))
    assert {path.name for path in files} >= {"tracker.db", "tracker.db-wal", "locks.db"}
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} == {path.name: "0o600" for path in files}


@pytest.mark.parametrize("store_class", [CachedSQLTrackerStore, SQLTrackerStore])
def test_purge_leaves_no_deleted_text_in_the_files(domain, tmp_path, store_class):
    """The review tool purges while the server's store (WAL mode, open connections) runs;
    Rasa's stock store (no secure_delete of its own) is purged as safely."""
    db = tmp_path / "tracker.db"
    server_store = store_class(domain, dialect="sqlite", db=str(db))
    save(
        server_store,
        conversation(domain, PHONE_SENDER, [(days_ago(40), [f"my secret is {SECRET}", "bye"])]),
        conversation(domain, "recent-visitor", [(days_ago(1), ["fresh question about detox"])]),
    )
    assert SECRET.encode() in raw_bytes(db) and PHONE_SENDER.encode() in raw_bytes(db)

    result = run_review("purge", "--older-than", "30", "--endpoints", str(write_endpoints(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "purged 1 sessions started more than 30 days ago from 1 conversations (1 deleted entirely)\n")

    on_disk = raw_bytes(db)
    assert SECRET.encode() not in on_disk
    assert PHONE_SENDER.encode() not in on_disk and b"5557654321" not in on_disk
    assert b"fresh question about detox" in on_disk
    wal = db.with_name("tracker.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert user_texts(server_store, "recent-visitor") == ["fresh question about detox"]
    assert user_texts(server_store, PHONE_SENDER) is None


def test_a_returning_users_old_session_expires_and_the_new_one_stays(domain, tmp_path):
    db = tmp_path / "tracker.db"
    store = CachedSQLTrackerStore(domain, dialect="sqlite", db=str(db))
    save(
        store,
        conversation(domain, "returning", [(days_ago(400), ["a year-old story about my son"]),
                                           (days_ago(2), ["back again, day 3 of detox"])]),
        conversation(domain, "gone", [(days_ago(100), ["first visit"]), (days_ago(50), ["second visit"])]),
        conversation(domain, "new", [(days_ago(0), ["hello there"])]),
    )
    assert purge(store, 30) == Purged(sessions=3, conversations=2, emptied=1)

    assert user_texts(store, "returning") == ["back again, day 3 of detox"]
    events = asyncio.run(store.retrieve_full_tracker("returning")).events
    assert isinstance(events[0], ActionExecuted) and events[0].action_name == ACTION_SESSION_START_NAME
    assert user_texts(store, "gone") is None
    assert user_texts(store, "new") == ["hello there"]
    assert b"a year-old story" not in raw_bytes(db) and b"first visit" not in raw_bytes(db)
    # Nothing left to purge; the server still answers the returning user from the new session.
    assert purge(store, 30) == Purged(0, 0, 0)
    assert asyncio.run(store.retrieve("returning")) is not None


def test_the_server_store_purges_expired_sessions_by_itself_even_when_idle(domain, tmp_path):
    """Written before the server starts, read by nobody since: gone once the server runs,
    without a message; later purges wait for the interval."""
    db = str(tmp_path / "tracker.db")
    unpurged = CachedSQLTrackerStore(domain, dialect="sqlite", db=db)
    asyncio.run(unpurged.save(conversation(domain, "old", [(days_ago(40), ["old words"])])))
    asyncio.run(unpurged.save(conversation(domain, "recent", [(days_ago(3), ["recent words"])])))

    store = CachedSQLTrackerStore(domain, dialect="sqlite", db=db, retention_days=30)
    assert store.purged.wait(timeout=30)
    assert user_texts(store, "old") is None
    assert user_texts(store, "recent") == ["recent words"]
    store.purged.clear()
    asyncio.run(store.save(conversation(domain, "later", [(days_ago(31), ["more old words"])])))
    assert not store.purged.wait(timeout=1)  # at most once an hour
    assert user_texts(store, "later") == ["more old words"]


def test_a_failed_automatic_purge_is_logged_and_the_server_goes_on(domain, tmp_path, monkeypatch, caplog):
    def broken(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(stores.sql, "purge", broken)
    with caplog.at_level(logging.ERROR, logger="stores.sql"):
        store = CachedSQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "tracker.db"), retention_days=30)
        assert store.purged.wait(timeout=30)
        asyncio.run(store.save(conversation(domain, "someone", [(days_ago(0), ["hi"])])))
    assert "Retention purge failed" in caplog.text and "disk on fire" in caplog.text
    assert user_texts(store, "someone") == ["hi"]


def test_endpoints_configure_the_retention(domain, tmp_path):
    settings = yaml.safe_load((ROOT / "endpoints.yml").read_text())["tracker_store"]
    settings["db"] = str(tmp_path / "tracker.db")
    store = CachedSQLTrackerStore(domain, **{k: v for k, v in settings.items() if k != "type"})
    assert settings["type"] == "stores.sql.CachedSQLTrackerStore" and store.retention_days == 30


def test_several_replicas_use_the_same_store_with_retention():
    """deploy/ (PostgreSQL) purges by itself too; the purge itself is tested on PostgreSQL
    in tests/scale/test_tracker_store_postgres.py."""
    settings = yaml.safe_load((ROOT / "deploy" / "endpoints.yml").read_text())["tracker_store"]
    assert settings["type"] == "stores.sql.CachedSQLTrackerStore"
    assert settings["dialect"] == "postgresql" and settings["retention_days"] == 30


def test_the_review_loop_never_shows_a_phone_number_sender(domain, tmp_path):
    """Twilio's sender id is the phone number: list, show, export and story use the masked id."""
    store = CachedSQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "tracker.db"))
    save(store, conversation(domain, PHONE_SENDER, [(days_ago(0), ["i'm sarah, call me at 555-123-4567"])],
                             confidence=0.3))
    endpoints = str(write_endpoints(tmp_path))

    listing = run_review("list", "--endpoints", endpoints)
    assert listing.returncode == 0, listing.stderr
    masked = listing.stdout.split("\t")[0]
    assert masked == mask_sender(PHONE_SENDER)

    show = run_review("show", masked, "--endpoints", endpoints)
    assert show.returncode == 0, show.stderr
    assert f"conversation {masked}" in show.stdout and "user: i'm [NAME], call me at [PHONE]" in show.stdout

    export, story = tmp_path / "review.yml", tmp_path / "story.yml"
    assert run_review("export", "--out", str(export), "--endpoints", endpoints).returncode == 0
    assert yaml.safe_load(export.read_text()) == [
        {"sender": masked, "text": "i'm [NAME], call me at [PHONE]", "predicted": "greet", "confidence": 0.3,
         "intent": ""}]
    written = run_review("story", masked, "--out", str(story), "--endpoints", endpoints)
    assert written.returncode == 0, written.stderr
    assert yaml.safe_load(story.read_text())["stories"][0]["story"] == masked

    for output in [listing.stdout, show.stdout, written.stdout, export.read_text(), story.read_text()]:
        assert not re.search(r"555.?765.?4321|sarah", output)
