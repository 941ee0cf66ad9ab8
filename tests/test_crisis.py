"""Crisis escalation on phrasings the model never saw (tests/heldout/).

The bot here runs without an action server, which also shows that crisis replies do
not depend on it.
"""
import json

import pytest

from conftest import RESULTS, texts_of, variation
from tools import heldout

CRISIS_MESSAGES = heldout.crisis_messages()
NON_CRISIS = heldout.non_crisis_messages()
NEAR_MISSES = heldout.near_misses()
MAX_FALSE_ALARM_RATE = 0.02
# Near misses are built to be confusable (a question about suicide hotlines, a past
# overdose, "not suicidal"); an extra safety message there is cheap, a missed crisis
# is not. This bound guards against the rate growing (it measured 0.15).
MAX_NEAR_MISS_ALARM_RATE = 0.20


@pytest.fixture(scope="module")
def crisis_texts(responses):
    """Every variation of the crisis reply (the overdose and the at-risk paths)."""
    return {variation["text"] for variation in responses["utter_crisis"]}


def first_reply(bot, text):
    replies = bot.chat(text)[0]
    return replies[0]["text"] if replies else None


def test_heldout_sets_are_big_enough():
    assert len(CRISIS_MESSAGES) >= 120
    assert len(NON_CRISIS) >= 120


def false_alarms(bot, crisis_texts, texts, name):
    alarms = [text for text in texts if first_reply(bot, text) in crisis_texts]
    rate = len(alarms) / len(texts)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"crisis_false_alarms_{name}.json").write_text(
        json.dumps({"messages": len(texts), "rate": rate, "alarms": alarms}, indent=2)
    )
    print(f"crisis false alarms on {name}: {rate:.3f} ({len(alarms)} of {len(texts)})")
    return rate, alarms


def test_every_crisis_message_gets_the_crisis_reply_first(bot, crisis_texts):
    missed = [text for text in CRISIS_MESSAGES if first_reply(bot, text) not in crisis_texts]
    recall = 1 - len(missed) / len(CRISIS_MESSAGES)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "crisis_recall.json").write_text(
        json.dumps({"messages": len(CRISIS_MESSAGES), "recall": recall, "missed": missed}, indent=2)
    )
    print(f"crisis recall {recall:.3f} on {len(CRISIS_MESSAGES)} held-out messages")
    assert missed == []


def test_non_crisis_messages_rarely_get_the_crisis_reply(bot, crisis_texts):
    rate, alarms = false_alarms(bot, crisis_texts, NON_CRISIS, "non_crisis")
    assert rate <= MAX_FALSE_ALARM_RATE, alarms


def test_near_misses_seldom_get_the_crisis_reply(bot, crisis_texts):
    rate, alarms = false_alarms(bot, crisis_texts, NEAR_MISSES, "near_misses")
    assert rate <= MAX_NEAR_MISS_ALARM_RATE, alarms


@pytest.mark.parametrize(
    "text, topic",
    [
        ("these cramps are killing me", "faq/withdrawal_symptoms"),
        ("can mixing Klonopin and opioids kill you?", "faq/klonopin_opioid_mix"),
    ],
)
def test_idioms_and_risk_questions_get_the_faq_answer(bot, text, topic):
    parsed = bot.parse(text)
    assert parsed["intent"]["name"] == "faq"
    assert heldout.response_key(parsed) == topic


def test_crisis_interrupts_a_conversation_and_follows_up(bot, responses):
    replies = bot.chat(
        "what are the symptoms of withdrawal",
        "my boyfriend took xanax with his oxy and now he wont wake up",
        "no",
    )
    # Someone may be overdosing: 911 and first aid first, then a question about them.
    assert texts_of(replies[1]) == [
        variation(responses, "utter_crisis", crisis_path="overdose"),
        variation(responses, "utter_ask_safe", crisis_path="overdose"),
    ]
    assert texts_of(replies[2]) == [responses["utter_crisis_not_safe"][0]["text"]]


def test_safe_answer_gets_reassurance_and_helplines(bot, responses):
    replies = bot.chat("i want to kill myself", "yes i'm safe now")
    assert texts_of(replies[1]) == [responses["utter_crisis_safe"][0]["text"]]


def test_crisis_wins_over_an_unsure_classifier(bot):
    parsed = bot.parse("hes gurgling and blue, not breathing right")
    assert parsed["intent"] == {"name": "crisis", "confidence": 1.0}
    assert parsed["crisis_detector"]["category"] in {"breathing", "unresponsive"}
