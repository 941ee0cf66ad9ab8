"""Tags a message written in Spanish, for the `language` slot.

The answers are in English, and the crisis reply already comes in Spanish and English.
A Spanish question the assistant cannot answer ("que es la buprenorfina?", "mi novio
lleva dos dias sin usar") used to get "Sorry, I didn't quite understand that": the
out-of-scope and not-understood replies now say, in Spanish, that answers are in English
only and where to get help in Spanish, followed by the same in English. Only Spanish
messages are tagged (an entity on every message would be a slot event on every turn and
an annotation in every exported story), so the slot stays `es` until the session ends;
the replies it chooses carry the English too.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

LANGUAGE_ENTITY = "language"
SPANISH = "es"

# Common Spanish words that English messages hardly ever use.
SPANISH_WORDS = {
    "que", "qué", "es", "el", "los", "las", "del", "la", "de", "y", "en", "se", "lo", "le",
    "un", "una", "unos", "unas", "al", "para", "por", "como", "cómo", "cual", "cuál",
    "cuales", "cuáles", "cuanto", "cuánto", "cuanta", "cuánta", "cuantos", "cuántos",
    "cuantas", "cuántas", "cuando", "cuándo", "donde", "dónde", "porque", "pero", "sin",
    "con", "mi", "mis", "tu", "su", "sus", "hay", "son", "está", "esta", "estoy", "tengo",
    "tiene", "puedo", "puede", "quiero", "necesito", "ayuda", "muy", "mucho", "ya",
    "también", "tambien", "sobre", "desde", "hace", "lleva", "días", "dias", "semanas",
    "tomar", "dejar", "dejé", "deje", "pastillas", "abstinencia", "hijo", "hija", "novio",
    "novia", "esposo", "esposa", "mamá", "papá", "peligroso", "sirve", "hola", "gracias",
}
# Common English words, so that a Spanish name or place in an English message does not count.
ENGLISH_WORDS = {
    "the", "is", "are", "and", "to", "of", "i", "you", "my", "it", "what", "how", "can",
    "do", "does", "for", "with", "im", "i'm", "this", "that", "he", "she", "an",
    "have", "be", "will", "should", "from", "about", "after", "off", "get", "much", "many",
}
WORD = re.compile(r"[\w']+")


def is_spanish(text: Text) -> bool:
    """At least two Spanish words and more Spanish than English ones."""
    words = WORD.findall(text.lower())
    spanish = sum(word in SPANISH_WORDS for word in words)
    english = sum(word in ENGLISH_WORDS for word in words)
    return spanish >= 2 and spanish > english


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageTagger(GraphComponent):
    """Adds a `language` entity (`es`) to a message in Spanish."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageTagger:
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if not is_spanish(text):
                continue
            entity = {
                "entity": LANGUAGE_ENTITY, "value": SPANISH,
                "start": 0, "end": len(text), "confidence": 1.0, "extractor": type(self).__name__,
            }
            message.set(ENTITIES, (message.get(ENTITIES) or []) + [entity], add_to_output=True)
        return messages
