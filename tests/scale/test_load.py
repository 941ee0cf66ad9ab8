"""Bounded load through nginx while one Rasa replica is killed with SIGKILL, then every
conversation is checked in PostgreSQL: each user message that got a reply is stored once,
with that reply, in the order it was sent, and nothing else is mixed in. The killed
replica is started again and carries on a conversation it had begun, slots and all
(one restart serves both checks: loading the model takes a minute or more)."""
import uuid

from conftest import texts_of, variation
from load import Load, record
from stack import Stack

USERS = 50


def test_a_replica_killed_under_load_loses_nothing_and_carries_on(stack: Stack, responses):
    killed, sender = stack.replicas[0], uuid.uuid4().hex
    assert stack.say(sender, "i'm asking for my son", url=killed.url).status_code == 200

    def kill_a_replica() -> None:
        killed.kill()
        killed.spawn()  # started again at once, as an orchestrator would

    load = Load(stack, "kill", USERS, kill_a_replica).run()
    killed.ready()
    summary = load.check("one of two Rasa replicas SIGKILLed after a third of the replies")
    record("replica-kill", summary)
    assert summary["fault_injected"], summary
    assert load.retries > 0, "the kill should have cost some requests their first try"
    assert summary["lost"] == summary["duplicated"] == summary["corrupted"] == 0, summary
    assert summary["replied"] == summary["messages_sent"], summary

    continued = stack.say(sender, "is it dangerous to quit cold turkey", url=killed.url)
    assert texts_of(continued.json()) == [variation(responses, "utter_faq/cold_turkey", asking_for="loved_one")]
