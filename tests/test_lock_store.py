"""stores/locks.py: conversation locks shared by worker processes through one SQLite file."""
import asyncio
import sqlite3
import time

import pytest
from rasa.utils.endpoints import EndpointConfig

from stores.locks import SQLiteLockStore


@pytest.fixture
def store(tmp_path):
    return SQLiteLockStore(EndpointConfig(db=str(tmp_path / "locks.db")))


def test_messages_of_one_conversation_take_turns_across_stores(store, tmp_path):
    """Two stores on one file stand for two worker processes."""
    other = SQLiteLockStore(EndpointConfig(db=str(tmp_path / "locks.db")))
    order = []

    async def handle(lock_store, name, seconds):
        async with lock_store.lock("conversation", wait_time_in_seconds=0.01):
            order.append(f"{name} starts")
            await asyncio.sleep(seconds)
            order.append(f"{name} ends")

    async def main():
        first = asyncio.create_task(handle(store, "first", 0.2))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, handle(other, "second", 0))

    asyncio.run(main())
    assert order == ["first starts", "first ends", "second starts", "second ends"]
    assert store.get_lock("conversation") is None, "the lock is gone once nobody waits"


def test_a_busy_database_does_not_stall_the_event_loop(store, tmp_path):
    """Another process holds the write lock for a while: this worker's loop keeps serving
    other conversations, then takes its ticket."""
    blocker = sqlite3.connect(str(tmp_path / "locks.db"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")

    async def main():
        ticks = 0

        async def other_conversations():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def take_lock():
            async with store.lock("conversation", wait_time_in_seconds=0.01) as lock:
                return lock.conversation_id

        ticker = asyncio.create_task(other_conversations())
        task = asyncio.create_task(take_lock())
        await asyncio.sleep(0.5)
        assert not task.done(), "the ticket waits for the other process's transaction"
        ticks_while_blocked = ticks
        blocker.execute("COMMIT")
        conversation = await asyncio.wait_for(task, 5)
        ticker.cancel()
        return ticks_while_blocked, conversation

    started = time.monotonic()
    ticks_while_blocked, conversation = asyncio.run(main())
    assert conversation == "conversation"
    assert ticks_while_blocked >= 20, ticks_while_blocked
    assert time.monotonic() - started < 5


def test_a_failed_turn_gives_the_lock_back(store):
    async def main():
        with pytest.raises(RuntimeError):
            async with store.lock("conversation", wait_time_in_seconds=0.01):
                raise RuntimeError("the message could not be handled")
        async with store.lock("conversation", wait_time_in_seconds=0.01) as lock:
            return lock.conversation_id

    assert asyncio.run(asyncio.wait_for(main(), 5)) == "conversation"
    assert store.get_lock("conversation") is None


def test_a_waiting_message_looks_for_its_turn_often_not_once_a_second(store, monkeypatch):
    """Called as Rasa's agent calls it (no wait given), a second message of the same
    conversation looks again every TURN_POLL seconds: Rasa's default second would hold up
    someone who sends two lines in a row."""
    from stores import locks

    pauses = []
    real_sleep = asyncio.sleep

    async def noted_sleep(seconds):
        pauses.append(seconds)
        await real_sleep(seconds)

    monkeypatch.setattr(locks.asyncio, "sleep", noted_sleep)

    async def handle(hold):
        async with store.lock("conversation"):
            await real_sleep(hold)

    async def main():
        first = asyncio.create_task(handle(0.2))
        await real_sleep(0.02)
        await asyncio.gather(first, handle(0))

    asyncio.run(asyncio.wait_for(main(), 5))
    assert pauses and set(pauses) == {locks.TURN_POLL} and locks.TURN_POLL <= 0.1
