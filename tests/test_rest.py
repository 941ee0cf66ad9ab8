"""End to end: the real Rasa server and action server on loopback, chatting over REST.

Each test names its conversations (`new_sender()`); `servers.say` starts each one
without a sender and continues it with the id the server issued."""
import uuid

import pytest
import requests

from conftest import texts_of, variation


def new_sender():
    return uuid.uuid4().hex


def replies(servers, sender, text):
    response = servers.say(sender, text)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_faq_question_gets_its_answer(servers, responses):
    answer = replies(servers, new_sender(), "what are the symptoms of opiate withdrawal?")
    assert texts_of(answer) == [variation(responses, "utter_faq/withdrawal_symptoms")]
    assert answer[0]["buttons"]


def test_a_typed_yes_takes_the_offered_next_step(servers, responses):
    """Needs the action server: action_accept_offer reads the offer from the domain."""
    sender = new_sender()
    first = replies(servers, sender, "is quitting cold turkey a good idea")
    assert texts_of(first) == [variation(responses, "utter_faq/cold_turkey")]
    offer = responses["utter_faq/cold_turkey"][0]["metadata"]["offer"]
    assert texts_of(replies(servers, sender, "yes")) == [variation(responses, offer)]


def test_medication_question_without_a_name_asks_which(servers, responses):
    sender = new_sender()
    asked = replies(servers, sender, "can you tell me about one of the meds they use")
    assert texts_of(asked) == [variation(responses, "utter_medication_info")]
    answer = replies(servers, sender, "suboxone")
    assert texts_of(answer) == [variation(responses, "utter_medication_info", medication="buprenorphine")]


def test_a_loved_one_changes_the_wording(servers, responses):
    sender = new_sender()
    replies(servers, sender, "i'm asking for my son")
    answer = replies(servers, sender, "is it dangerous to quit cold turkey")
    assert texts_of(answer) == [variation(responses, "utter_faq/cold_turkey", asking_for="loved_one")]


def test_crisis_over_rest(servers, responses):
    answer = replies(servers, new_sender(), "i took a whole bottle of pills")
    assert texts_of(answer)[:2] == [variation(responses, "utter_crisis", crisis_path="overdose"),
                                    variation(responses, "utter_ask_safe", crisis_path="overdose")]


def test_dosing_questions_are_refused_kindly(servers, responses):
    answer = replies(servers, new_sender(), "how many mg of klonopin should i take to sleep")
    assert texts_of(answer) == [responses["utter_no_dosing"][0]["text"]]


def test_conversations_are_stored_in_sqlite(servers):
    import sqlite3

    sender = new_sender()
    replies(servers, sender, "hello")
    with sqlite3.connect(servers.db) as db:
        rows = db.execute("SELECT type_name FROM events WHERE sender_id = ?", (servers.sender_id(sender),)).fetchall()
    assert ("user",) in rows and ("bot",) in rows


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😭😭😭", "!!!", "¿Cuáles son los síntomas de la abstinencia?", "x" * 100_000,
     "kicking " * 12_000],
)
def test_odd_messages_get_a_reply(servers, text):
    response = servers.say(new_sender(), text)
    assert response.status_code == 200, response.text
    assert any(reply.get("text") for reply in response.json())


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"sender": null, "message": 5}', b'{"sender": "x"}', b'{"sender": "x", "message": 5}',
     b'{"sender": {"a": 1}, "message": "hi"}'],
)
def test_malformed_requests_get_a_client_error(servers, body):
    response = requests.post(
        servers.url + "/webhooks/rest/webhook", data=body,
        headers={"Content-Type": "application/json"}, timeout=30,
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert servers.say(new_sender(), "hello").status_code == 200


def test_the_root_says_it_is_up_without_naming_the_version(servers):
    import rasa

    answer = requests.get(servers.url + "/", timeout=30)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert rasa.__version__ not in answer.text and "Rasa" not in answer.text


def test_a_spanish_message_not_understood_gets_spanish_over_rest(servers, responses):
    answer = replies(servers, new_sender(), "que significa la palabra recaida en ingles?")
    assert texts_of(answer) == [variation(responses, "utter_fallback", language="es")]
