"""The training data, domain and responses follow the rules trainers rely on."""
import re
import subprocess
from collections import defaultdict

import pytest
import textstat
from rasa.shared.nlu.training_data.loading import load_data

from conftest import ROOT
from tools import heldout
from tools.servers import BIN
from tools.training_data import normalise

MIN_EXAMPLES = 25
FAQ_TOPICS = {
    "opiates_vs_opioids", "why_addictive", "addiction_vs_dependence", "withdrawal_symptoms",
    "withdrawal_onset", "withdrawal_danger", "detox_options", "cold_turkey", "home_taper",
    "medical_detox", "detox_medications", "klonopin_what", "klonopin_for_withdrawal",
    "klonopin_addiction", "klonopin_opioid_mix", "self_medicating", "get_help",
    "medical_disclaimer",
    # Around the article's edges, from official pages (see each answer's source).
    "benzo_withdrawal", "prescribed_medicine", "naloxone", "tolerance_after_detox",
}
# Amounts, schedules and "how to take" wording that no answer may contain.
DOSING = re.compile(
    r"\b\d+(\.\d+)?\s*(mg|milligrams?|mcg|ml|pills?|tablets?|tabs?|doses?)\b"
    r"|\b(once|twice|three times) (a|per) day\b|\bevery \d+ hours\b|\bper day\b"
    r"|\b(take|taking|use) (klonopin|clonazepam|benzos?)\b",
    re.IGNORECASE,
)
# About an 8th-grade reading level (Flesch-Kincaid), with a little room.
MAX_READING_GRADE = 9.0
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


@pytest.fixture(scope="module")
def nlu():
    return load_data(str(ROOT / "data" / "nlu"))


def examples_by_label(nlu):
    by_label = defaultdict(list)
    for example in nlu.intent_examples:
        label = example.get("intent_response_key") or example.get("intent")
        by_label[label].append(example.get("text"))
    return by_label


def test_rasa_data_validate_passes():
    result = subprocess.run(
        [str(BIN / "rasa"), "data", "validate", "--domain", "domain", "--fail-on-warnings"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_faq_topic_has_examples_and_an_answer(nlu, responses):
    labels = examples_by_label(nlu)
    assert {label[4:] for label in labels if label.startswith("faq/")} == FAQ_TOPICS
    assert {name[len("utter_faq/"):] for name in responses if name.startswith("utter_faq/")} == FAQ_TOPICS


def test_every_intent_has_enough_varied_examples(nlu):
    too_few = {label: len(texts) for label, texts in examples_by_label(nlu).items() if len(texts) < MIN_EXAMPLES}
    assert too_few == {}


@pytest.mark.parametrize("one, other", [
    ("what's up", "whats up"), ("What\u2019s up?", "whats up"), ("withdrawal-symptoms", "withdrawal symptoms"),
    ("¿Quiero  MORIR?", "quiero morir"),
])
def test_one_rule_decides_what_counts_as_the_same_example(one, other):
    """The same normalise() as `make review ARGS='import ...'`, so it never adds what
    these tests then reject."""
    assert normalise(one) == normalise(other)


def test_no_example_appears_under_two_intents(nlu):
    seen = defaultdict(set)
    for label, texts in examples_by_label(nlu).items():
        for text in texts:
            seen[normalise(text)].add(label)
    assert {text: labels for text, labels in seen.items() if len(labels) > 1} == {}


def test_heldout_phrasings_are_not_in_the_training_data(nlu):
    training = {normalise(example.get("text")) for example in nlu.intent_examples}
    texts = heldout.crisis_messages() + heldout.non_crisis_messages() + heldout.near_misses()
    texts += [t for phrasings in heldout.topics().values() for t in phrasings]
    assert [text for text in texts if normalise(text) in training] == []


def all_variations(responses):
    for name, variations in responses.items():
        for variation in variations:
            yield name, variation


def test_answers_are_short_plain_and_name_their_source(responses):
    for name, variation in all_variations(responses):
        sentences = len(SENTENCE_END.findall(variation["text"]))
        if name.startswith(("utter_faq/", "utter_medication_info")):
            assert 2 <= sentences <= 4, (name, variation["text"])
        assert variation.get("metadata", {}).get("source"), name


def test_answers_are_easy_to_read(responses):
    too_hard = {
        name: round(textstat.flesch_kincaid_grade(v["text"]), 1)
        for name, v in all_variations(responses)
        if textstat.flesch_kincaid_grade(v["text"]) > MAX_READING_GRADE
    }
    assert too_hard == {}


def test_no_answer_gives_dosing_instructions(responses):
    offending = [(name, v["text"]) for name, v in all_variations(responses) if DOSING.search(v["text"])]
    assert offending == []


def test_faq_and_medication_answers_offer_next_steps(responses):
    for name, variation in all_variations(responses):
        if name.startswith(("utter_faq/", "utter_medication_info")):
            assert 1 <= len(variation.get("buttons", [])) <= 5, name


def test_offers_name_existing_answers(responses):
    for name, variation in all_variations(responses):
        offer = variation.get("metadata", {}).get("offer")
        if offer:
            assert offer in responses, (name, offer)


def test_button_payloads_are_training_examples_of_their_topic(nlu, responses, bot):
    """A button that sends text must land on the answer it promises."""
    label_of = {}
    for label, texts in examples_by_label(nlu).items():
        for text in texts:
            label_of[text] = label
    wrong = []
    for name, variation in all_variations(responses):
        for button in variation.get("buttons", []):
            payload = button["payload"]
            if payload.startswith("/"):
                continue
            assert payload in label_of, f"{name}: button payload {payload!r} is no training example"
            parsed = bot.parse(payload)
            got = parsed["intent"]["name"]
            if got == "faq":
                got = heldout.response_key(parsed)
            if got != label_of[payload]:
                wrong.append((name, payload, label_of[payload], got))
    assert wrong == []
