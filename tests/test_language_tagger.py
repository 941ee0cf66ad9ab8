"""A message in Spanish gets what the assistant cannot answer said in Spanish (and English)."""
import pytest

from components.language_tagger import is_spanish
from conftest import variation

SPANISH = [
    "que es la buprenorfina? para que sirve exactamente",
    "cuales son los sintomas de la abstinencia de heroina? mi novio lleva dos dias sin usar",
    "es peligroso tomar clonazepam mientras sigo usando metadona?",
    "oye quick question, cuántos mg de morphine es too much por un mes?",
]
NOT_SPANISH = [
    "what are the symptoms of opiate withdrawal",
    "my tia lives in los angeles, can she get narcan there",
    "is la a good place for detox",
    "ok",
    "",
]


@pytest.mark.parametrize("text", SPANISH)
def test_spanish_is_tagged(text):
    assert is_spanish(text)


@pytest.mark.parametrize("text", NOT_SPANISH)
def test_english_and_short_messages_are_not(text):
    assert not is_spanish(text)


def languages(parsed):
    return [entity["value"] for entity in parsed["entities"] if entity["entity"] == "language"]


def test_only_a_spanish_message_is_tagged(bot):
    assert languages(bot.parse("que es la naloxona y como se usa")) == ["es"]
    assert languages(bot.parse("what is naloxone")) == []


def test_after_a_spanish_message_the_replies_keep_the_spanish_and_the_english(bot, responses):
    spanish, english = bot.chat("mi perro tiene pulgas, que le puedo dar?", "my dog has fleas, what can i give him")
    assert [r["text"] for r in spanish] == [variation(responses, "utter_fallback", language="es")]
    assert [r["text"] for r in english] == [variation(responses, "utter_out_of_scope", language="es")]
    assert "In English: that's outside what I can answer" in english[0]["text"]


def test_an_english_conversation_gets_english(bot, responses):
    [reply] = bot.chat("my dog has fleas, what can i give him")
    assert [r["text"] for r in reply] == [variation(responses, "utter_out_of_scope")]


def test_a_spanish_question_outside_the_answers_says_so_in_spanish(bot, responses):
    [reply] = bot.chat("hola, me puedes explicar que es la metadona?")
    assert [r["text"] for r in reply] == [variation(responses, "utter_out_of_scope", language="es")]
    assert "1-800-662-4357" in reply[0]["text"] and "In English" in reply[0]["text"]
