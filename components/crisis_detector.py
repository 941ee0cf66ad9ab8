"""Deterministic crisis detection: the safety net under the learned `crisis` intent.

A classifier can be unsure about a message like "he's not breathing and his lips are
blue". This component matches such messages with spaCy's Matcher on lemmas and sets the
intent to `crisis` with full confidence, whatever the classifiers and the
FallbackClassifier said before it. It therefore stands last in the NLU pipeline.
The phrases live in crisis_patterns.yml beside this file, so they ship with the code.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import yaml
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.nlu.utils.spacy_utils import SpacyModel, SpacyNLP
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.language_tagger import is_spanish
from components.scope_guard import has_unknown_words_only

PATTERNS_FILE = Path(__file__).with_name("crisis_patterns.yml")
CRISIS_INTENT = "crisis"
# Added to the parse data so that reviewers can see why a message was escalated.
DETECTOR_KEY = "crisis_detector"
# And why a crisis vote of the classifier was set aside.
IDIOM_KEY = "crisis_idiom"
# The entity (and slot) that picks the crisis path: someone may be overdosing, the
# writer is at risk, or the writer is worried that someone else is.
PATH_ENTITY = "crisis_path"
# An entity for words that are a warning sign, not a crisis alone (see
# components/warning_signs_policy.py).
WARNING_SIGN_ENTITY = "warning_sign"
SIGN = "sign:"
IDIOM = "idiom"
# A category with `path: overdose` in crisis_patterns.yml is an emergency of the body.
OVERDOSE_PATH = "overdose"
OTHER_REFLEXIVE = {"himself", "herself", "themselves", "themself"}
OTHER_PERSON = OTHER_REFLEXIVE | {"he", "she", "hes", "shes", "he's", "she's"}
# Crisis words that mark even a short message as Spanish ("quiero morir"); a longer one is
# Spanish by the language tagger's count. It then gets the reply in Spanish and English.
SPANISH = {"quiero", "morir", "morirme", "matarme", "suicidarme", "respira", "sobredosis", "tengo",
           "ganas", "vida", "amigo", "amiga", "hijo", "hija", "despierta", "responde", "estoy",
           "hacerme", "daño", "ahorcarme", "cortarme", "quitarme", "esta", "está", "respirando",
           "pastillas", "desaparecer", "muerto", "muerta", "venas", "reacciona", "mí", "vivir",
           "suicidio", "mato", "suicido", "colgarme", "tirarme", "todo", "existir"}
FIRST_PERSON = {"i", "me", "myself", "my", "im", "i'm", "ill", "i'll", "mine"}
ANY_WORD = "?"
NOT = "!"
MANY = "<many>"
NUMBER = "<number>"
UNLESS = "!unless"
NOW = "!now"


# Chat shorthand read as the word it stands for, in messages and in patterns alike:
# "cuantas pastillas pa no despertar", "q piso es suficiente", "x si mañana no estoy".
SHORTHAND = {"pa": "para", "q": "que", "k": "que", "xq": "porque", "pq": "porque", "x": "por",
             "toy": "estoy", "ta": "está", "u": "you", "ur": "your"}
# Phones type a curly apostrophe ("don’t", "I’m"), which the lemmatizer does not know:
# read as the straight one, "I don’t want to live" is "I don't want to live".
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"})
# A number typed into the next word, "took 45sleeping pills": read as "45 sleeping". A unit
# ("30mg") or an ordinal ("2nd") is shorter than four letters and stays as it is.
GLUED_NUMBER = re.compile(r"\b(\d+)([a-z]{4,})\b", re.IGNORECASE)


def _token_specs(alternative: Text, nlp: Language) -> List[Dict[Text, Any]]:
    """Matcher token specs for one alternative (it may span several spaCy tokens)."""
    specs: List[Dict[Text, Any]] = []
    for word in alternative.lower().split("_"):
        if word == MANY:
            specs.append({"TEXT": {"REGEX": r"^[1-9][0-9]+$"}})
        elif word == NUMBER:
            specs.append({"TEXT": {"REGEX": r"^[0-9]+$"}})
        elif word.startswith("="):
            specs.extend({"LOWER": token.lower_} for token in nlp.make_doc(word[1:]))
        else:
            specs.extend({"LEMMA": SHORTHAND.get(token.lower_, token.lemma_)} for token in nlp(word))
    return specs


def _alternatives(part: Text, nlp: Language) -> List[List[Dict[Text, Any]]]:
    """The token specs of one word slot: its one-word alternatives merged into one spec
    per attribute ("kill|stab|shoot" is one LEMMA IN spec), the longer ones kept apart.
    Merging keeps the number of Matcher patterns, and so the time to match a message,
    small: each combination of the longer alternatives is its own pattern."""
    merged: Dict[Text, List[Text]] = {}
    longer: List[List[Dict[Text, Any]]] = []
    for specs in (_token_specs(alternative, nlp) for alternative in part.split("|")):
        if len(specs) == 1 and len(specs[0]) == 1 and isinstance(next(iter(specs[0].values())), str):
            [(attribute, value)] = specs[0].items()
            merged.setdefault(attribute, []).append(value)
        else:
            longer.append(specs)
    return [[_one_spec(attribute, sorted(set(values)))] for attribute, values in merged.items()] + longer


def _one_spec(attribute: Text, values: List[Text]) -> Dict[Text, Any]:
    """One token spec for several values of an attribute (a plain value when one)."""
    return {attribute: values[0] if len(values) == 1 else {"IN": values}}


def compile_pattern(pattern: Text, nlp: Language) -> List[List[Dict[Text, Any]]]:
    """Turns one line of crisis_patterns.yml into spaCy Matcher patterns.

    Alternatives (`a|b`) may differ in length, so each combination of the longer ones
    becomes its own Matcher pattern.
    """
    slots = []
    for part in pattern.split():
        if part == ANY_WORD:
            slots.append([[{"OP": "?"}]])
        elif part.startswith(NOT):
            slots.append([[{"LOWER": {"NOT_IN": part[1:].lower().split("|")}}]])
        else:
            slots.append(_alternatives(part, nlp))
    return [
        [spec for specs in combination for spec in specs]
        for combination in itertools.product(*slots)
    ]


def for_matching(doc: Doc, nlp: Language) -> Doc:
    """The message as the patterns read it: a curly apostrophe as a straight one and a
    number apart from the word typed into it ("45sleeping pills"), chat shorthand as the
    word it stands for, and a full stop after its last word if it has no closing mark.

    A pattern's `!a|b` needs a word to compare: "this could be my way out" (no final
    stop) would otherwise escape "be my way out !of|from". The copy keeps each word's
    lemma, which the patterns read, without running the pipeline again; only a message
    with a curly apostrophe or a glued number is parsed a second time, since its words
    and lemmas change."""
    straight = GLUED_NUMBER.sub(r"\1 \2", doc.text.translate(APOSTROPHES))
    if straight != doc.text:
        doc = nlp(straight)
    end = [] if len(doc) and doc[-1].is_punct else ["."]
    if not end and not any(token.lower_ in SHORTHAND for token in doc):
        return doc
    return Doc(
        doc.vocab,
        words=[token.text for token in doc] + end,
        spaces=[bool(token.whitespace_) for token in doc] + [False] * len(end),
        lemmas=[SHORTHAND.get(token.lower_, token.lemma_) for token in doc] + end,
    )


@dataclass
class Reading:
    """A message as the crisis phrases read it: the crisis found (category and words),
    the everyday idiom that only sounds like one, and the kinds of warning sign."""

    crisis: Optional[Dict[Text, Text]] = None
    idiom: Optional[Text] = None
    warning_signs: Dict[Text, Text] = field(default_factory=dict)


class CrisisMatcher:
    """All crisis patterns compiled for one spaCy vocabulary.

    spaCy's check of each compiled pattern (`validate`) took 3.5 of the 3.8 s that every
    server worker's first message waited for this; the patterns do not change at run
    time, so the check runs in the tests (tests/test_crisis_detector.py) instead.
    """

    def __init__(self, nlp: Language, patterns: Dict[Text, Any], validate: bool = False) -> None:
        self.nlp = nlp
        self.matcher = Matcher(nlp.vocab, validate=validate)
        self.categories: Dict[Text, Dict[Text, Any]] = patterns["categories"]
        self.alone = {phrase.lower() for phrase in patterns.get("alone", [])}
        for kind, parts in (patterns.get("warning_signs") or {}).items():
            self._add(SIGN + kind, parts.get("any", []), nlp)
        self._add(IDIOM, (patterns.get("idioms") or {}).get("any", []), nlp)
        for category, parts in self.categories.items():
            self._add(category, parts.get("any", []), nlp)
            self._add(category + UNLESS, parts.get("unless", []), nlp)
            self._add(category + NOW, parts.get("now", []), nlp)
            for group, lines in parts.get("all", {}).items():
                self._add(f"{category}/{group}", lines, nlp)

    def _add(self, label: Text, lines: List[Text], nlp: Language) -> None:
        if lines:
            self.matcher.add(label, [p for line in lines for p in compile_pattern(line, nlp)])

    def read(self, doc: Doc) -> Reading:
        """What the phrases find in a message, from one pass of the matcher (it is the
        costly part: a few milliseconds a message)."""
        if doc.text.strip(" .!?\n").lower() in self.alone:
            return Reading(crisis={"category": "alone", "phrase": doc.text.strip()})
        found: Dict[Text, Text] = {}
        doc = for_matching(doc, self.nlp)
        for match_id, start, end in self.matcher(doc):
            found.setdefault(doc.vocab.strings[match_id], doc[start:end].text)
        signs = {label[len(SIGN):]: words for label, words in found.items() if label.startswith(SIGN)}
        return Reading(crisis=self._crisis(found), idiom=found.get(IDIOM), warning_signs=signs)

    def _crisis(self, found: Dict[Text, Text]) -> Optional[Dict[Text, Text]]:
        """The category and matched words of the first crisis found, or None."""
        for category, parts in self.categories.items():
            if category + NOW in found:
                return {"category": category, "phrase": found[category + NOW]}
            if category + UNLESS in found:
                continue
            if category in found:
                return {"category": category, "phrase": found[category]}
            groups = [found.get(f"{category}/{group}") for group in parts.get("all", {})]
            if groups and all(groups):
                return {"category": category, "phrase": " + ".join(groups)}
        return None


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
    is_trainable=False,
    model_from="SpacyNLP",
)
class CrisisDetector(GraphComponent):
    """Forces the `crisis` intent when a crisis phrase matches or the model leans to crisis."""

    @staticmethod
    def required_components() -> List[type]:
        return [SpacyNLP]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Escalate too when the classifier gives `crisis` at least this confidence,
            # even if another intent ranked higher. At 0.3 its vote fired on sleep-drug
            # side effects and "i would kill to have him here"; on the real-world and
            # held-out sets every crisis it alone caught scored 0.75 or more (README).
            "model_threshold": 0.5,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.model_threshold = float(config["model_threshold"])
        self.patterns = yaml.safe_load(PATTERNS_FILE.read_text())
        self.overdose_categories = {
            name for name, parts in self.patterns["categories"].items() if parts.get("path") == OVERDOSE_PATH
        }
        self._matcher: Optional[CrisisMatcher] = None
        self._vocab_id: Optional[int] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CrisisDetector:
        return cls(config)

    def matcher_for(self, nlp: Language) -> CrisisMatcher:
        """Compiles the patterns once per spaCy pipeline (the Matcher needs its vocab)."""
        if self._matcher is None or self._vocab_id != id(nlp.vocab):
            self._matcher = CrisisMatcher(nlp, self.patterns)
            self._vocab_id = id(nlp.vocab)
        return self._matcher

    def process(self, messages: List[Message], model: SpacyModel) -> List[Message]:
        matcher = self.matcher_for(model.model)
        for message in messages:
            doc = message.get(SPACY_DOCS[TEXT]) or model.model((message.get(TEXT) or "").lower())
            reading = matcher.read(doc)
            reason, idiom = reading.crisis, None if reading.crisis else reading.idiom
            if idiom:
                self._overrule_crisis_vote(message, idiom)
            else:
                reason = reason or self._model_reason(message)
            if reason:
                self._force_crisis(message, reason)
            else:
                self._mark_warning_signs(message, reading.warning_signs)
        return messages

    @staticmethod
    def _mark_warning_signs(message: Message, signs: Dict[Text, Text]) -> None:
        if not signs:
            return
        text = message.get(TEXT) or ""
        found = [
            {"entity": WARNING_SIGN_ENTITY, "value": kind, "start": 0, "end": len(text),
             "confidence": 1.0, "extractor": CrisisDetector.__name__}
            for kind in signs
        ]
        message.set(ENTITIES, (message.get(ENTITIES) or []) + found, add_to_output=True)

    @staticmethod
    def _overrule_crisis_vote(message: Message, idiom: Text) -> None:
        """An idiom ("my arch was killing me") and no crisis phrase: the classifier's
        crisis vote is set aside, and the next intent it ranked stands."""
        others = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != CRISIS_INTENT]
        if (message.get(INTENT) or {}).get("name") == CRISIS_INTENT and others:
            message.set(INTENT, others[0], add_to_output=True)
        message.set(INTENT_RANKING_KEY, others, add_to_output=True)
        message.set(IDIOM_KEY, idiom, add_to_output=True)

    def _model_reason(self, message: Message) -> Optional[Dict[Text, Text]]:
        """The classifier's crisis vote, unless the message has no word it was trained on."""
        if has_unknown_words_only(message):
            return None
        for ranked in message.get(INTENT_RANKING_KEY) or []:
            if ranked.get("name") == CRISIS_INTENT and ranked["confidence"] >= self.model_threshold:
                return {"category": "classifier", "phrase": f"{ranked['confidence']:.2f}"}
        return None

    def crisis_path(self, reason: Dict[Text, Text], text: Text) -> Text:
        """`es` for a message in Spanish, `overdose` for an emergency of the body (911 and
        first aid first), `other` when the words are about someone else at risk, else
        `self`: a first-person crisis always asks about the writer."""
        words = set(text.lower().replace(",", " ").replace(".", " ").split())
        if words & SPANISH or is_spanish(text):
            return "es"
        if reason["category"] in self.overdose_categories:
            return OVERDOSE_PATH
        phrase = set(reason["phrase"].lower().split())
        if phrase & OTHER_REFLEXIVE or (words & OTHER_PERSON and not words & FIRST_PERSON):
            return "other"
        return "self"

    def _force_crisis(self, message: Message, reason: Dict[Text, Text]) -> None:
        text = message.get(TEXT) or ""
        path = {
            "entity": PATH_ENTITY, "value": self.crisis_path(reason, text),
            "start": 0, "end": len(text), "confidence": 1.0, "extractor": type(self).__name__,
        }
        entities = [e for e in message.get(ENTITIES) or [] if e.get("entity") != PATH_ENTITY]
        message.set(ENTITIES, entities + [path], add_to_output=True)
        crisis = {"name": CRISIS_INTENT, "confidence": 1.0}
        others = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != CRISIS_INTENT]
        message.set(INTENT, crisis, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [crisis] + others, add_to_output=True)
        message.set(DETECTOR_KEY, reason, add_to_output=True)
