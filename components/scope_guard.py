"""Scope check: an FAQ answer only for a message that resembles what the FAQs cover.

A classifier always picks its nearest label, so "Can a dog die from kennel cough?"
used to get "opiate withdrawal usually is not life-threatening". This component keeps
the sentence-model vector (mean of the token vectors) of every in-scope training
example and of every `out_of_scope` example. A message predicted as an in-scope topic
becomes `out_of_scope` when no in-scope example is similar enough, or when an
out-of-scope example is clearly closer. The thresholds were chosen on the real-world
development sets (see README, "Model choices"); `scope` in the parse data shows
reviewers the similarities behind each decision.

A question how much of something to take ("what dose of klonopin should i take for
wd") gets the dosing refusal (`ask_dosing`), whatever FAQ its words resemble: an FAQ
answer next to a dosing question can read as a go-ahead.

A question about a benzodiazepine together with an opioid ("can you take clonazepam
with suboxone", "kpins while on subs") gets the answer on mixing them, the deadliest
combination the answers cover, rather than the answer about one of the two.

A question about drug tests or how long a drug stays in the body ("how long does
oxycontin stay in the urine", "will subs show up on a drug test") is out of scope: no
answer covers it.

A message none of whose words occurs in the training data ("asdkjh qwpoeiru",
"blorf snarg") is not out of scope but not understood: it becomes `nlu_fallback`, so
the assistant asks to rephrase, whatever the classifiers guessed from its sub-words.
`scope.known_words` is then 0, and the crisis detector sets aside the classifier's
crisis vote for it (its phrase patterns still apply).

A question about another substance ("How does gabapentin help with withdrawal?") can
sit close to the FAQ examples, since it uses their words. It is out of scope when it
names a substance the answers do not cover and none they do (scope_substances.yml),
unless it was matched to an answer about any substance, or it tells of a plan to get
through withdrawal with that substance ("can i take imodium for wd", "gonna drink my
way through the wd"): that is self-medicating, whatever the classifiers chose, and its
answer warns against it for any substance.

An answer about one kind of substance is wrong for a message that names substances,
none of that kind: "will naltrexone stop me from overdosing" is not about naloxone, and
"is codeine any good for avoiding H WDs" is not about Klonopin. Such a message gets the
answer about the detox medicine it names, or the answer for any substance
(`subject_topics`).

The classifiers' own "out of scope" or unsure vote is overruled for a question that names
a substance the answers cover, whose FAQ answer the ResponseSelector is sure of, and that
sits clearly closer to the in-scope examples than to the out-of-scope ones ("how long it
takes for withdrawals to go away on oxycodone", "subs vs done"): the FAQ answer then goes
through every check above and below (`scope.overruled`).

The same similarities also vote on the answer: the in-scope examples most like the
message weigh in for their own answers, and an answer with most of the vote replaces
the classifiers' choice (`scope.nearest`). The classifiers read a long or unusual
message through the words they learned; its nearest examples are often the better guide,
also where the classifiers were unsure ("tell me about clonazepam, what its for and side
effects and stuff" fell below the FallbackClassifier's threshold).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import numpy as np
import yaml

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
    TOKENS_NAMES,
)
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_TYPE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

OUT_OF_SCOPE = "out_of_scope"
FAQ = "faq"
MEDICATION = "medication"
MEDICATION_QUESTION = "ask_medication"
FALLBACK = "nlu_fallback"
DOSING_QUESTION = "ask_dosing"
SCOPE_KEY = "scope"
VECTORS_FILE = "vectors.npz"
VOCABULARY_FILE = "vocabulary.json"
LABELS_FILE = "labels.json"
SUBSTANCES_FILE = Path(__file__).with_name("scope_substances.yml")
OPIOIDS = "opioids"
BENZODIAZEPINES = "benzodiazepines"
DETOX_MEDICINES = "detox_medicines"
MIX_TOPIC = "faq/klonopin_opioid_mix"
BENZO_WITHDRAWAL_TOPIC = "faq/benzo_withdrawal"
PRESCRIBED_TOPIC = "faq/prescribed_medicine"
# Words that ask about taking two drugs together, and those that join two drug names.
MIXING_WORDS = re.compile(r"\b(?:mix(?:ing|ed|es)?|combin(?:e|ed|es|ing|ation)|combo|together|synergy)\b")
JOINING_WORDS = r"(?:\b(?:with|and|plus|while on|on top of)\b|\+)"


# Opiate withdrawal, and the writer's plan to treat it with something: "can i take X for
# wd", "gonna use X to get through the withdrawal", "got some of my mom's X, will that help
# with kicking". A plain question about X ("does X help with withdrawal?") is not a plan.
WITHDRAWAL_WORDS = r"withdrawa?ls?|withdrawl?s|withdraws|wds?|w/ds?|dope ?sick(?:ness)?|detox(?:ing)?|kick(?:ing)?"
WITHDRAWAL = re.compile(rf"\b(?:{WITHDRAWAL_WORDS})\b")
# Coming off a drug: "tapering off", "ran out of my", "withdrawal from" (not "dizzy from my
# klonopin", a side effect).
COMING_OFF = (
    r"off|quit|quitting|stop|stopping|stopped|taper|tapering|kick|kicking|no more"
    r"|ran out of|run out of|running out of|withdrawals? from|withdrawing from|detox(?:ing)? from"
)
SELF_TREATMENT_PLAN = re.compile(
    r"\b(?:can|could|should|will|would) i (?:just )?(?:take|use|try|drink|smoke|pop)\b"
    r"|\b(?:gonna|going to|about to|planning to|plan to|i'?ll|i will) (?:just )?(?:take|use|try|drink|smoke|pop)\b"
    r"|\b(?:got|have|bought) (?:some|a few|a bottle|a bunch)\b"
)


# A question how much of something to take or give ("what dose of klonopin for sleep",
# "how many mg of subs should i take on day 1", "how much methadone do they start you
# at"): the dosing refusal, whichever FAQ its words resemble. Not a question how many days
# or times, what a pill is ("how many mg is a blue 30"), or at what dose something happens,
# nor a story of the writer's usual dose.
DOSE_QUESTION = re.compile(
    r"(?<!my )(?<!your )(?<!his )(?<!her )(?<!their )"
    r"\b(?:right|safe|normal|correct|good|best|starting|lowest|highest|max|maximum|typical|proper|recommended)"
    r" (?:dose|dosage|amount)\b"
    r"|(?<!at )\bwhat (?:dose|dosage|amount)\b"
    r"|\bhow (?:many|much)\b(?! (?:days?|hours?|weeks?|months?|years?|times?|minutes?|time|longer|money|people)\b)"
    r"(?: [\w'-]+){0,4}? (?:should|do|does|can|could|would|must) (?:i|he|she|we|you|they|my \w+)"
    r"(?: [\w'-]+){0,2}? (?:take|give|use|start)\b"
)


# A question whether or how long a drug shows in a test ("how long does oxycontin stay in
# the urine", "will subs show up on a drug test"): none of the answers covers it.
DRUG_TEST_QUESTION = re.compile(
    r"\b(?:stay|stays|remain|remains|show up|shows up|showing up|detectable|detected)\b[^.?!]{0,15}"
    r"\bin (?:(?:your|my|the|his|her|their|a) )?(?:system|body|urine|blood|hair|breast ?milk|pee|piss)\b"
    r"|\bdrug (?:test|tests|testing|screen)\b|\b(?:piss|urine|pee|spit|hair) (?:test|tests|screen)\b|\buds\b"
)


def words(message: Message) -> List[Text]:
    """The message's tokens that contain a letter, lower-cased."""
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    return [token.text.lower() for token in tokens if any(char.isalpha() for char in token.text)]


def has_unknown_words_only(message: Message) -> bool:
    """Set by the scope guard: no word of the message occurs in the training data."""
    return (message.get(SCOPE_KEY) or {}).get("known_words") == 0


def sentence_vector(message: Message) -> Optional[np.ndarray]:
    """Unit-length mean of the message's dense token features, or None without any."""
    sequence, _ = message.get_dense_features(TEXT)
    if sequence is None or not len(sequence.features):
        return None
    vector = np.asarray(sequence.features, dtype=np.float32).mean(axis=0)
    norm = np.linalg.norm(vector)
    return vector / norm if norm else None


class Substances:
    """The substances the answers cover, by group, and those they do not
    (scope_substances.yml)."""

    def __init__(self, covered: Dict[Text, List[Text]], other: List[Text]) -> None:
        self.groups = {group: self._pattern(names) for group, names in covered.items()}
        self.covered = self._pattern([name for names in covered.values() for name in names])
        self.other = self._pattern(other)
        # An opioid taken for withdrawal: "hydrocodone for heroin withdrawal", "is codeine
        # any good for avoiding h wds" (not "on oxy for 5 years").
        # A benzodiazepine and an opioid or a detox medicine joined in a few words ("clonazepam
        # with suboxone", "kpins while on subs"), not "klonopin help with opiate withdrawal".
        benzo = self.groups[BENZODIAZEPINES].pattern
        opioid = f"(?:{self.groups[OPIOIDS].pattern}|{self.groups[DETOX_MEDICINES].pattern})"
        near = rf"(?:\W+[\w']+){{0,3}}?\W*(?<!help )(?<!helps ){JOINING_WORDS}\W*(?:[\w']+\W+){{0,3}}?"
        self.benzo_joined_to_opioid = re.compile(f"{benzo}{near}{opioid}|{opioid}{near}{benzo}")
        # Coming off a benzodiazepine: "tapering off klonopin", "xanax wd", "ran out of my klonopin".
        self.benzo_withdrawal = re.compile(
            rf"\b(?:{COMING_OFF})\s+(?:of\s+)?(?:(?:my|the|her|his)\s+)?{benzo}|{benzo}\s+(?:{WITHDRAWAL_WORDS})\b"
        )
        self.opioid_for_withdrawal = re.compile(
            rf"({self.groups[OPIOIDS].pattern})\s+(?:any good\s+)?(?:for|to)\s+"
            r"(?:(?!and\b|but\b|years?\b|months?\b|weeks?\b|days?\b)[a-z']+\s+){0,3}"
            rf"(?:{WITHDRAWAL_WORDS})\b"
        )

    @classmethod
    def from_file(cls, path: Path = SUBSTANCES_FILE) -> Substances:
        lists = yaml.safe_load(path.read_text())
        return cls(lists["covered"], lists["other"])

    @staticmethod
    def _pattern(names: List[Text]) -> re.Pattern:
        alternatives = "|".join(sorted((re.escape(name.lower()) for name in names), key=len, reverse=True))
        return re.compile(rf"\b(?:{alternatives})s?\b")

    def only_other(self, text: Text) -> Optional[Text]:
        """The first uncovered substance the text names, if it names no covered one."""
        text = text.lower()
        other = self.other.search(text)
        return other.group(0) if other and not self.covered.search(text) else None

    def self_treatment(self, text: Text, other: Optional[Text]) -> Optional[Text]:
        """The substance the writer would get through withdrawal with: `other` (the text's
        `only_other`) when they plan to take it, or an opioid taken for it (and no detox
        medicine, benzo or naloxone named, whose answers speak for themselves)."""
        text = text.lower()
        if other:
            return other if WITHDRAWAL.search(text) and SELF_TREATMENT_PLAN.search(text) else None
        if any(self.names_group(group, text) for group in self.groups if group != OPIOIDS):
            return None
        opioid = self.opioid_for_withdrawal.search(text)
        return opioid.group(1) if opioid else None

    def mixes(self, text: Text) -> bool:
        """The text asks about a benzodiazepine together with an opioid or a detox medicine
        ("can you take clonazepam with suboxone", "kpins while on subs", "bars and subs
        together ok?"), not about one of them for withdrawal ("does klonopin help with
        opiate withdrawal")."""
        text = text.lower()
        if not self.names_group(BENZODIAZEPINES, text):
            return False
        if MIXING_WORDS.search(text):
            return self.names_group(OPIOIDS, text) or self.names_group(DETOX_MEDICINES, text)
        return bool(self.benzo_joined_to_opioid.search(text))

    def quits_benzo_only(self, text: Text) -> bool:
        """The text is about coming off a benzodiazepine and names no opioid: benzodiazepine
        withdrawal ("how long does it take to start feeling xanax wd"), not opiate withdrawal."""
        text = text.lower()
        return bool(self.benzo_withdrawal.search(text)) and not self.names_group(OPIOIDS, text)

    def names_any(self, text: Text) -> bool:
        text = text.lower()
        return bool(self.covered.search(text) or self.other.search(text))

    def names_group(self, group: Text, text: Text) -> bool:
        return bool(self.groups[group].search(text.lower()))


def names_medicine(message: Message) -> bool:
    """The message names a detox medicine (an entity the medication answer covers)."""
    return any(entity.get(ENTITY_ATTRIBUTE_TYPE) == MEDICATION for entity in message.get(ENTITIES) or [])


def faq_selection(message: Message) -> Dict[Text, Any]:
    """The ResponseSelector's prediction for the FAQ (topic and confidence), or {}."""
    selected = (message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {}).get(FAQ) or {}
    return selected.get(RESPONSE_SELECTOR_PREDICTION_KEY) or {}


def faq_topic(message: Message) -> Optional[Text]:
    """The FAQ topic the ResponseSelector chose ("faq/withdrawal_onset"), if any."""
    return faq_selection(message).get(INTENT_RESPONSE_KEY)


def _matrix(vectors: List[np.ndarray], width: int) -> np.ndarray:
    return np.stack(vectors) if vectors else np.zeros((0, width), dtype=np.float32)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class ScopeGuard(GraphComponent):
    """Replaces an in-scope intent by `out_of_scope` for messages unlike its examples,
    and an answer by the one the nearest examples or the substances named call for."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Intents whose prediction is checked: the FAQ retrieval intent, the
            # medication question, and the classifiers' unsure guess (nlu_fallback), which
            # the nearest examples may answer when they agree.
            "intents": ["faq", "ask_medication", "nlu_fallback"],
            # Below this cosine similarity to every in-scope example: out of scope.
            "min_similarity": 0.49,
            # The in-scope examples most like the message vote on its answer (weighted
            # by similarity); a share of at least `nearest_share` for another answer
            # than the classifiers' wins (see README, "Model choices").
            "nearest_examples": 7,
            "nearest_share": 0.6,
            # An out-of-scope example this much closer than any in-scope one: out of scope.
            "margin": 0.05,
            # The classifiers' out-of-scope or unsure vote gives way to the FAQ answer for
            # a question naming a covered substance, when the ResponseSelector is at least
            # this sure of it and the message is at least `overrule_lead` more similar to
            # an in-scope example than to any out-of-scope one (see README, "How the assistant
            # understands a message").
            "overrule_confidence": 0.8,
            "overrule_lead": 0.1,
            # FAQ topics whose answer holds for any substance: never out of scope for
            # naming one the answers do not cover.
            "any_substance_topics": ["faq/self_medicating"],
            # FAQ answers about one kind of substance (a `covered` group in
            # scope_substances.yml). A message that names substances, none of that kind,
            # asks about something else: about the detox medicine it names, it gets that
            # medicine's answer ("will naltrexone stop me from overdosing" is not about
            # naloxone); otherwise the answer in `instead`, where there is one ("is
            # codeine any good for avoiding H WDs" gets the self-medicating answer).
            "subject_topics": {
                "faq/klonopin_what": {"subject": "benzodiazepines"},
                "faq/klonopin_addiction": {"subject": "benzodiazepines"},
                "faq/klonopin_for_withdrawal": {"subject": "benzodiazepines", "instead": "faq/self_medicating"},
                "faq/naloxone": {"subject": "naloxone"},
            },
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        in_scope: Optional[np.ndarray] = None,
        out_of_scope: Optional[np.ndarray] = None,
        vocabulary: Optional[set] = None,
        labels: Optional[List[Text]] = None,
    ) -> None:
        self.config = config
        self.intents = set(config["intents"])
        self._model_storage = model_storage
        self._resource = resource
        self.in_scope = in_scope
        self.out_of_scope = out_of_scope
        self.vocabulary = vocabulary or set()
        self.labels = labels or []
        self.substances = Substances.from_file()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ScopeGuard:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> ScopeGuard:
        with model_storage.read_from(resource) as directory:
            vectors = np.load(directory / VECTORS_FILE)
            vocabulary = set(json.loads((directory / VOCABULARY_FILE).read_text()))
            labels = json.loads((directory / LABELS_FILE).read_text())
            return cls(config, model_storage, resource, vectors["in_scope"], vectors["out_of_scope"], vocabulary,
                       labels)

    def train(self, training_data: TrainingData) -> Resource:
        in_scope: List[np.ndarray] = []
        out_of_scope: List[np.ndarray] = []
        for example in training_data.intent_examples:
            self.vocabulary.update(words(example))
            vector = sentence_vector(example)
            if vector is None:
                continue
            if example.get(INTENT) in self.intents:
                in_scope.append(vector)
                self.labels.append(example.get_full_intent())
            elif example.get(INTENT) == OUT_OF_SCOPE:
                out_of_scope.append(vector)
        width = len(in_scope[0]) if in_scope else 0
        self.in_scope, self.out_of_scope = _matrix(in_scope, width), _matrix(out_of_scope, width)
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / VECTORS_FILE, in_scope=self.in_scope, out_of_scope=self.out_of_scope)
            (directory / VOCABULARY_FILE).write_text(json.dumps(sorted(self.vocabulary)))
            (directory / LABELS_FILE).write_text(json.dumps(self.labels))
        return self._resource

    def in_scope_similarity(self, vector: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Cosine similarity to every in-scope example (None for a message without
        features or a guard without examples)."""
        if vector is None or self.in_scope is None or not len(self.in_scope):
            return None
        return self.in_scope @ vector

    def similarities(self, vector: np.ndarray, in_scope: np.ndarray) -> Dict[Text, float]:
        """Highest cosine similarity to an in-scope and to an out-of-scope example."""
        out_of_scope = self.out_of_scope @ vector if len(self.out_of_scope) else [-1.0]
        return {"in_scope": float(np.max(in_scope)), "out_of_scope": float(np.max(out_of_scope))}

    def nearest_answer(self, similarity: np.ndarray) -> Optional[Dict[Text, Any]]:
        """The answer the in-scope examples most like the message share, with the share
        of their similarity that voted for it."""
        if not self.labels:
            return None
        nearest = np.argsort(-similarity)[: self.config["nearest_examples"]]
        votes: Dict[Text, float] = {}
        for index in nearest:
            votes[self.labels[index]] = votes.get(self.labels[index], 0.0) + float(similarity[index])
        answer = max(votes, key=votes.get)
        return {"answer": answer, "share": round(votes[answer] / sum(votes.values()), 3)}

    def is_out_of_scope(self, similarity: Dict[Text, float]) -> bool:
        return (
            similarity["in_scope"] < self.config["min_similarity"]
            or similarity["out_of_scope"] - similarity["in_scope"] > self.config["margin"]
        )

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            # Only the intents checked below, and an out-of-scope vote, need the similarities.
            checked = (message.get(INTENT) or {}).get(INTENT_NAME_KEY) in self.intents | {OUT_OF_SCOPE}
            vector = sentence_vector(message) if checked else None
            in_scope = self.in_scope_similarity(vector)
            overruled = self._overrule_out_of_scope_vote(message, vector, in_scope)
            if (
                self._refuse_dose_question(message)
                or self._answer_mixing(message)
                or self._answer_benzo_withdrawal(message)
                or self._decline_drug_test_question(message)
            ):
                continue
            other = self.substances.only_other(message.get(TEXT) or "")
            if self._answer_self_treatment(message, other):
                continue
            message_words = words(message)
            if message_words and self.vocabulary and not self.vocabulary.intersection(message_words):
                message.set(SCOPE_KEY, {"known_words": 0, "out": False}, add_to_output=True)
                # Nothing in it was understood: no confidence in any reading of it.
                self._replace_intent(message, FALLBACK, confidence=0.0)
                continue
            if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) in self.intents:
                nearest = self._follow_nearest_examples(message, in_scope)
                not_about = self._check_subject(message, other)
                self._check_scope(message, vector, in_scope, other, not_about=not_about, nearest=nearest,
                                  overruled=overruled)
        return messages

    def _overrule_out_of_scope_vote(
        self, message: Message, vector: Optional[np.ndarray], in_scope: Optional[np.ndarray]
    ) -> Optional[Text]:
        """Gives the FAQ answer to a question about a covered substance that the
        classifiers called out of scope or were unsure of, where the ResponseSelector is
        sure of its answer and the message is clearly more like the in-scope examples;
        returns the intent overruled. ("how long it takes for withdrawals to go away on
        oxycodone" sat near out-of-scope questions how long things take.)"""
        intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        selected = faq_selection(message)
        if (
            intent not in (OUT_OF_SCOPE, FALLBACK)
            or in_scope is None
            or selected.get("confidence", 0.0) < self.config["overrule_confidence"]
            or not self.substances.covered.search((message.get(TEXT) or "").lower())
        ):
            return None
        similarity = self.similarities(vector, in_scope)
        if (
            similarity["in_scope"] < self.config["min_similarity"]
            or similarity["in_scope"] - similarity["out_of_scope"] < self.config["overrule_lead"]
        ):
            return None
        self._replace_intent(message, FAQ, confidence=selected["confidence"])
        return intent

    def _refuse_dose_question(self, message: Message) -> bool:
        """A question how much to take gets the dosing refusal (`ask_dosing`), where the
        classifiers chose an FAQ topic, a medicine or nothing sure."""
        return self._intent_from_words(message, DOSE_QUESTION, self.intents, DOSING_QUESTION, "dose_question")

    def _decline_drug_test_question(self, message: Message) -> bool:
        """A question about drug tests or how long a drug stays in the body is out of
        scope, however close its words sit to the withdrawal answers. (A medicine question
        keeps its answer: "what is methadone? ... how long does it stay in the body?")"""
        return self._intent_from_words(message, DRUG_TEST_QUESTION, {FAQ, FALLBACK}, OUT_OF_SCOPE, "drug_test")

    def _intent_from_words(
        self, message: Message, question: re.Pattern, replaced: set, intent: Text, reason: Text
    ) -> bool:
        """Gives a message that asks `question` the `intent` its words call for, where the
        classifiers chose one of the `replaced` intents; `scope.<reason>` says why."""
        predicted = message.get(INTENT) or {}
        if predicted.get(INTENT_NAME_KEY) not in replaced or not question.search((message.get(TEXT) or "").lower()):
            return False
        out = intent == OUT_OF_SCOPE
        self._replace_intent(message, intent, confidence=1.0 if out else predicted["confidence"])
        message.set(SCOPE_KEY, {"out": out, reason: True}, add_to_output=True)
        return True

    def _may_answer_by_words(self, message: Message) -> bool:
        """The classifiers chose an FAQ topic, a medicine, out of scope or nothing sure, and
        the ResponseSelector ranked the FAQ answers: an answer chosen by the message's words
        may take its place."""
        return (
            (message.get(INTENT) or {}).get(INTENT_NAME_KEY) in self.intents | {OUT_OF_SCOPE}
            and bool((message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {}).get(FAQ))
        )

    def _answer_by_words(self, message: Message, topic: Text, reason: Text, value: Any = True) -> bool:
        """Gives the message `topic`'s answer; `scope.<reason>` says why."""
        self._give_answer(message, topic)
        message.set(SCOPE_KEY, {"out": False, reason: value}, add_to_output=True)
        return True

    def _answer_mixing(self, message: Message) -> bool:
        """A question about a benzodiazepine together with an opioid gets the answer on
        mixing them, the deadliest combination the answers cover, whatever the
        classifiers chose ("can you take clonazepam with suboxone" is not a question
        about buprenorphine alone). The answer on prescribed medicines stays: it covers
        both, and that they are not to be stopped on one's own."""
        if (
            not self._may_answer_by_words(message)
            or (message.get(INTENT)[INTENT_NAME_KEY] == FAQ and faq_topic(message) == PRESCRIBED_TOPIC)
            or not self.substances.mixes(message.get(TEXT) or "")
        ):
            return False
        return self._answer_by_words(message, MIX_TOPIC, "mixing")

    def _answer_benzo_withdrawal(self, message: Message) -> bool:
        """Coming off a benzodiazepine, with no opioid named, gets the answer on benzodiazepine
        withdrawal (it can cause seizures: see a doctor), never an answer about opiate
        withdrawal, where the classifiers chose another FAQ topic, a medicine, out of scope
        or nothing sure."""
        if not self._may_answer_by_words(message) or not self.substances.quits_benzo_only(message.get(TEXT) or ""):
            return False
        return self._answer_by_words(message, BENZO_WITHDRAWAL_TOPIC, "benzo_withdrawal")

    def _answer_self_treatment(self, message: Message, other: Optional[Text]) -> bool:
        """Gives a message about treating withdrawal with another substance (an uncovered
        one the writer plans to take, or an opioid) the answer for any substance (the first
        of `any_substance_topics`), where the classifiers chose an FAQ topic, a medicine,
        out of scope or nothing sure."""
        substance = self.substances.self_treatment(message.get(TEXT) or "", other)
        if not substance or not self._may_answer_by_words(message):
            return False
        return self._answer_by_words(message, self.config["any_substance_topics"][0], "self_treatment", substance)

    def _follow_nearest_examples(
        self, message: Message, similarity: Optional[np.ndarray]
    ) -> Optional[Dict[Text, Any]]:
        """Gives the message the answer its nearest in-scope examples agree on, where
        that is another answer than the classifiers chose."""
        if similarity is None:
            return None
        nearest = self.nearest_answer(similarity)
        if not nearest or nearest["share"] < self.config["nearest_share"]:
            return nearest
        answer, intent = nearest["answer"], message.get(INTENT)
        current = faq_topic(message) if intent[INTENT_NAME_KEY] == FAQ else intent[INTENT_NAME_KEY]
        if answer == current:
            return nearest
        if answer == MEDICATION_QUESTION:
            if not names_medicine(message):
                return nearest
            self._replace_intent(message, MEDICATION_QUESTION, confidence=intent["confidence"])
        else:
            self._give_answer(message, answer)
        return {**nearest, "followed": True}

    def _check_subject(self, message: Message, other: Optional[Text]) -> Optional[Text]:
        """Moves a message off an answer about a kind of substance it does not name;
        returns that kind. (`other`: the uncovered substance it names, if it names only
        such: out of scope, whatever the answer.)"""
        topic = faq_topic(message)
        rule = self.config["subject_topics"].get(topic or "")
        text = message.get(TEXT) or ""
        if (
            not rule
            or self.substances.names_group(rule["subject"], text)
            or not self.substances.names_any(text)
            or other
        ):
            return None
        if names_medicine(message):
            self._replace_intent(message, MEDICATION_QUESTION, confidence=message.get(INTENT)["confidence"])
        elif rule.get("instead"):
            self._replace_topic(message, rule["instead"])
        else:
            return None
        return rule["subject"]

    def _give_answer(self, message: Message, topic: Text) -> None:
        """The message gets the FAQ answer `topic`, whatever intent the classifiers chose."""
        if message.get(INTENT)[INTENT_NAME_KEY] != FAQ:
            self._replace_intent(message, FAQ, confidence=message.get(INTENT)["confidence"])
        self._replace_topic(message, topic)

    @staticmethod
    def _replace_topic(message: Message, topic: Text) -> None:
        """The ResponseSelector's answer becomes `topic`'s (its response texts, which
        nothing downstream reads, are dropped rather than left stale)."""
        selected = message.get(RESPONSE_SELECTOR_PROPERTY_NAME)[FAQ][RESPONSE_SELECTOR_PREDICTION_KEY]
        selected.pop(RESPONSE_SELECTOR_RESPONSES_KEY, None)
        selected.update({INTENT_RESPONSE_KEY: topic, RESPONSE_SELECTOR_UTTER_ACTION_KEY: f"utter_{topic}"})

    def _check_scope(
        self,
        message: Message,
        vector: Optional[np.ndarray],
        in_scope: Optional[np.ndarray],
        other_substance: Optional[Text],
        not_about: Optional[Text] = None,
        nearest: Optional[Dict[Text, Any]] = None,
        overruled: Optional[Text] = None,
    ) -> None:
        decision: Dict[Text, Any] = {"out": False}
        if vector is not None and in_scope is not None:
            similarity = self.similarities(vector, in_scope)
            decision = {**{name: round(value, 3) for name, value in similarity.items()},
                        "out": self.is_out_of_scope(similarity)}
        if other_substance and faq_topic(message) not in self.config["any_substance_topics"]:
            decision.update(other_substance=other_substance, out=True)
        if not_about:
            decision["not_about"] = not_about
        if nearest:
            decision["nearest"] = nearest
        if overruled:
            decision["overruled"] = overruled
        message.set(SCOPE_KEY, decision, add_to_output=True)
        if decision["out"]:
            self._replace_intent(message, OUT_OF_SCOPE, confidence=1.0)

    @staticmethod
    def _replace_intent(message: Message, name: Text, confidence: float) -> None:
        """The intent becomes `name`; the classifier's ranking stays below it."""
        replaced = {INTENT_NAME_KEY: name, "confidence": confidence}
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != name]
        message.set(INTENT, replaced, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [replaced] + ranking, add_to_output=True)
