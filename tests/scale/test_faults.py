"""Faults the assistant survives: the action server, PostgreSQL or Redis going away, each
on the real services of the stack (a Rasa replica's crash and restart: test_load.py)."""
import uuid

from channels.messages import CANNOT_ANSWER, EMERGENCY, NO_ANSWER
from conftest import texts_of, variation
from load import Load, record
from stack import Stack

CRISIS = "i took a whole bottle of pills"


def new_sender() -> str:
    return uuid.uuid4().hex


def answer(stack: Stack, sender: str, text: str, **extra) -> list:
    response = stack.say(sender, text, **extra)
    assert response.status_code == 200, response.text
    return texts_of(response.json())


def test_action_server_down_gets_a_kind_message_and_recovers(stack: Stack, responses):
    offer = responses["utter_faq/cold_turkey"][0]["metadata"]["offer"]
    # Rasa logs the failed custom action with its traceback.
    stack.expect_traceback(f"Couldn't connect to the server at '{stack.env['ACTION_SERVER_URL']}")
    stack.actions.stop()
    try:
        sender = new_sender()
        assert answer(stack, sender, "is quitting cold turkey a good idea") == [
            variation(responses, "utter_faq/cold_turkey")]
        assert answer(stack, sender, "yes") == [NO_ANSWER]
        assert answer(stack, new_sender(), CRISIS)[0] == variation(responses, "utter_crisis", crisis_path="overdose")
        assert answer(stack, new_sender(), "what are withdrawal symptoms") == [
            variation(responses, "utter_faq/withdrawal_symptoms")]
    finally:
        stack.actions.start()
    sender = new_sender()
    answer(stack, sender, "is quitting cold turkey a good idea")
    assert answer(stack, sender, "yes") == [variation(responses, offer)]


def test_postgres_restart_during_load_loses_nothing(stack: Stack):
    pids = [replica.process.pid for replica in stack.replicas]
    load = Load(stack, "pg", 10, stack.postgres.restart).run()
    summary = load.check("PostgreSQL restarted (pg_ctl restart -m fast) after a third of the replies")
    record("postgres-restart", summary)
    assert summary["fault_injected"], summary
    assert summary["lost"] == summary["duplicated"] == summary["corrupted"] == 0, summary
    assert summary["replied"] == summary["messages_sent"], summary
    # The replicas recovered by themselves: same processes, still answering.
    assert [replica.process.pid for replica in stack.replicas] == pids
    assert all(replica.process.poll() is None for replica in stack.replicas)


def test_redis_down_fails_clearly_and_keeps_the_conversation_intact(stack: Stack, responses):
    sender = new_sender()
    answer(stack, sender, "i'm asking for my son")
    stored = stack.sender_id(sender)
    before = stack.events(stored)
    stack.redis.stop()
    try:
        for text in ["what are withdrawal symptoms", CRISIS]:
            response = stack.say(sender, text)
            assert response.status_code == 503
            assert texts_of(response.json()) == [CANNOT_ANSWER]
            assert EMERGENCY in CANNOT_ANSWER
        assert stack.events(stored) == before
    finally:
        stack.start_redis()
    assert answer(stack, sender, "is it dangerous to quit cold turkey") == [
        variation(responses, "utter_faq/cold_turkey", asking_for="loved_one")]
    assert stack.events(stored)[: len(before)] == before
