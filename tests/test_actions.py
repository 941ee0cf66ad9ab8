"""Unit tests of the custom actions, with rasa_sdk's own Tracker and dispatcher."""
import asyncio

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.actions import ActionAcceptOffer, last_bot_response, offered_response

DOMAIN = {
    "responses": {
        "utter_faq/cold_turkey": [
            {"text": "...", "metadata": {"source": "p5", "offer": "utter_faq/medical_detox"}}
        ],
        "utter_faq/get_help": [{"text": "...", "metadata": {"source": "helplines"}}],
    }
}


def tracker_after(*bot_responses):
    events = [{"event": "user", "text": "hi"}]
    events += [{"event": "bot", "text": "...", "metadata": {"utter_action": r}} for r in bot_responses]
    events.append({"event": "user", "text": "yes"})
    return Tracker("someone", {}, {"text": "yes"}, events, False, None, {}, "action_listen")


def run(tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionAcceptOffer().run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, events


def test_last_bot_response_is_the_newest_one():
    assert last_bot_response(tracker_after("utter_greet", "utter_faq/cold_turkey")) == "utter_faq/cold_turkey"
    assert last_bot_response(tracker_after()) is None


def test_offered_response_reads_the_metadata():
    assert offered_response("utter_faq/cold_turkey", DOMAIN) == "utter_faq/medical_detox"
    assert offered_response("utter_faq/get_help", DOMAIN) is None
    assert offered_response(None, DOMAIN) is None


def test_yes_shows_the_offered_answer():
    messages, events = run(tracker_after("utter_faq/cold_turkey"))
    assert [m["response"] for m in messages] == ["utter_faq/medical_detox"]
    assert events == []


def test_yes_without_an_offer_shows_the_topics():
    messages, _ = run(tracker_after("utter_faq/get_help"))
    assert [m["response"] for m in messages] == ["utter_capabilities"]
