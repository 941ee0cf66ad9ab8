"""The scope guard: unit tests on hand-made vectors, then the trained model."""
import re

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.scope_guard import ScopeGuard


def tokenized(msg, text):
    msg.set(TEXT, text)
    msg.set("text_tokens", [Token(word, 0) for word in re.findall(r"\w+|[^\w\s]+", text)])
    return msg


def example(vector, intent, text="text"):
    """A training example: its intent is a plain name."""
    msg = tokenized(Message(data={"intent": intent}), text)
    msg.add_features(Features(np.asarray([vector], dtype=np.float32), "sequence", TEXT, "MiniLMFeaturizer"))
    return msg


def message(vector, intent=None, confidence=0.9, text="text"):
    data = {}
    if intent:
        data["intent"] = {"name": intent, "confidence": confidence}
        data["intent_ranking"] = [{"name": intent, "confidence": confidence},
                                  {"name": "crisis", "confidence": 0.05}]
    msg = tokenized(Message(data=data), text)
    tokens = np.asarray([vector, vector], dtype=np.float32)
    msg.add_features(Features(tokens, "sequence", TEXT, "MiniLMFeaturizer"))
    return msg


@pytest.fixture
def guard(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("scope_guard")
    component = ScopeGuard.create(ScopeGuard.get_default_config(), storage, resource,
                                  ExecutionContext(graph_schema=None))
    training = TrainingData([
        example([1, 0, 0], "faq", "what is klonopin"), example([0.9, 0.1, 0], "ask_medication"),
        example([0, 0, 1], "out_of_scope", "how do i fix my car"), example([0, 1, 0], "greet", "hi"),
    ])
    component.train(training)
    return ScopeGuard.load(ScopeGuard.get_default_config(), storage, resource,
                           ExecutionContext(graph_schema=None))


def test_a_message_like_an_faq_example_keeps_its_intent(guard):
    [msg] = guard.process([message([0.95, 0.05, 0.1], "faq")])
    assert msg.get("intent")["name"] == "faq"
    assert msg.get("scope")["out"] is False


def test_a_message_unlike_every_faq_example_becomes_out_of_scope(guard):
    [msg] = guard.process([message([0.1, 1, 0], "faq")])
    assert msg.get("intent") == {"name": "out_of_scope", "confidence": 1.0}
    # The rest of the ranking stays, so the crisis detector after it still sees `crisis`.
    assert [r["name"] for r in msg.get("intent_ranking")] == ["out_of_scope", "faq", "crisis"]


def test_an_out_of_scope_example_clearly_closer_wins(guard):
    [msg] = guard.process([message([0.6, 0, 0.8], "ask_medication")])
    assert msg.get("scope")["in_scope"] > guard.config["min_similarity"]
    assert msg.get("intent")["name"] == "out_of_scope"


@pytest.mark.parametrize("intent", ["faq", "greet", "out_of_scope"])
def test_a_message_with_no_known_word_falls_back_whatever_was_predicted(guard, intent):
    [msg] = guard.process([message([1, 0, 0], intent, text="blorf snarg")])
    assert msg.get("intent") == {"name": "nlu_fallback", "confidence": 0.0}
    # The classifier's guesses stay below it, for trainers to see.
    assert [r["name"] for r in msg.get("intent_ranking")] == ["nlu_fallback", intent, "crisis"]
    assert msg.get("scope")["known_words"] == 0


@pytest.mark.parametrize("text", ["blorf klonopin", "hi!!", "988", "🙏"])
def test_one_known_word_or_none_with_letters_is_enough_to_go_on(guard, text):
    [msg] = guard.process([message([1, 0, 0], "faq", text=text)])
    assert msg.get("intent")["name"] == "faq"


def test_other_intents_and_messages_without_features_are_left_alone(guard):
    greet = message([0, 1, 0], "greet")
    bare = Message(data={TEXT: "", "intent": {"name": "faq", "confidence": 0.9}})
    guard.process([greet, bare])
    assert greet.get("intent")["name"] == "greet" and greet.get("scope") is None
    assert bare.get("intent")["name"] == "faq"


@pytest.mark.parametrize("text, other", [
    ("how do i take kratom for my withdrawal", "kratom"),
    ("how do i stop my Gabapentin", "gabapentin"),
    ("how do i take gabapentin with my suboxone", None),
    ("how do i mix my bars and coke", None),
    ("how do i stop my withdrawal", None),
])
def test_a_question_naming_only_substances_the_answers_do_not_cover_is_out_of_scope(guard, text, other):
    [msg] = guard.process([message([0.95, 0.05, 0.1], "faq", text=text)])
    assert msg.get("scope").get("other_substance") == other
    assert msg.get("scope")["out"] is bool(other)
    assert msg.get("intent")["name"] == ("out_of_scope" if other else "faq")


def test_an_answer_about_any_substance_stays_whatever_substance_is_named(guard):
    msg = message([0.95, 0.05, 0.1], "faq", text="how do i get through withdrawal with weed instead")
    msg.set("response_selector", {"faq": {"response": {"intent_response_key": "faq/self_medicating"}}})
    guard.process([msg])
    assert msg.get("intent")["name"] == "faq" and msg.get("scope")["out"] is False


def answered(text, topic, entities=(), intent="faq"):
    """A message the ResponseSelector answered with `topic` (the intent classifier chose
    `intent`)."""
    msg = message([0.95, 0.05, 0.1], intent, text=text)
    msg.set("entities", [{"entity": "medication", "value": value} for value in entities])
    msg.set("response_selector", {"faq": {"response": {
        "intent_response_key": topic, "utter_action": f"utter_{topic}", "responses": [{"text": "..."}]}}})
    return msg


@pytest.mark.parametrize("intent", ["faq", "ask_medication", "out_of_scope"])
@pytest.mark.parametrize("text, substance", [
    ("can i take imodium for wd", "imodium"),
    ("gonna just drink my way through the wd, few beers at night", "beers"),
    ("got some of my moms gabapentin, will that help with kicking", "gabapentin"),
    ("is codeine any good for avoiding h wds", "codeine"),
    ("hydrocodone for heroin withdrawal?", "hydrocodone"),
])
def test_treating_withdrawal_with_another_substance_gets_the_self_medicating_answer(
    guard, intent, text, substance
):
    [msg] = guard.process([answered(text, "faq/withdrawal_symptoms", intent=intent)])
    assert msg.get("intent")["name"] == "faq"
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/self_medicating"
    assert msg.get("scope") == {"out": False, "self_treatment": substance}


@pytest.mark.parametrize("text", ["how does gabapentin help with withdrawal", "how long does kratom withdrawal last",
                                  "can i take gabapentin with my dinner", "how long does oxy withdrawal last",
                                  "ive been on oxy for 5 years and withdrawal scares me",
                                  "can i take suboxone for withdrawal"])
def test_a_question_about_a_substance_or_its_withdrawal_is_not_self_medicating(guard, text):
    msg = answered(text, "faq/withdrawal_symptoms")
    guard.process([msg])
    assert "self_treatment" not in msg.get("scope")


def test_a_question_about_a_detox_medicine_gets_its_answer_not_one_about_another_substance(guard):
    [msg] = guard.process([answered("is naltrexone what stops an overdose", "faq/naloxone", ["naltrexone"])])
    assert msg.get("intent")["name"] == "ask_medication"
    assert msg.get("scope")["not_about"] == "naloxone"


def test_a_question_about_an_opioid_gets_the_answer_for_any_substance_not_the_klonopin_one(guard):
    [msg] = guard.process([answered("is codeine any good for avoiding h wds", "faq/klonopin_for_withdrawal")])
    selected = msg.get("response_selector")["faq"]["response"]
    assert msg.get("intent")["name"] == "faq"
    assert selected == {"intent_response_key": "faq/self_medicating", "utter_action": "utter_faq/self_medicating"}


@pytest.mark.parametrize("text, topic", [
    ("is klonopin any good for withdrawal", "faq/klonopin_for_withdrawal"),  # names the subject
    ("what is it", "faq/klonopin_what"),  # names nothing: the conversation's subject
    ("is codeine addictive", "faq/klonopin_addiction"),  # no medicine named, nothing instead
    ("how do i get narcan", "faq/naloxone"),
])
def test_an_answer_about_a_kind_of_substance_stays_when_the_message_may_be_about_it(guard, text, topic):
    [msg] = guard.process([answered(text, topic)])
    assert msg.get("intent")["name"] == "faq"
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == topic
    assert "not_about" not in msg.get("scope")


def test_a_question_about_a_substance_the_answers_do_not_cover_stays_out_of_scope(guard):
    [msg] = guard.process([answered("how do i take gabapentin for withdrawal", "faq/klonopin_for_withdrawal")])
    assert msg.get("intent")["name"] == "out_of_scope"


@pytest.mark.parametrize("intent", ["faq", "ask_medication", "nlu_fallback"])
@pytest.mark.parametrize("text", [
    "what dose of klonopin should i take to sleep during wd",
    "how many mg of subs should i take on day 1? got 8mg strips",
    "how much methadone do they start you at",
    "how many percs do i need to take to not be sick",
    "clonazepam .25mg lowest dosage?",
    "whats a good dose of gabapentin for sleep",
])
def test_a_question_how_much_to_take_gets_the_dosing_refusal(guard, intent, text):
    [msg] = guard.process([answered(text, "faq/klonopin_for_withdrawal", intent=intent)])
    assert msg.get("intent")["name"] == "ask_dosing"
    assert msg.get("scope") == {"out": False, "dose_question": True}


@pytest.mark.parametrize("text", [
    "how long will 6 mgs of suboxone block opiates",
    "how many mg is a blue 30 supposed to be",
    "how many days should i take off work for detox",
    "at what dosage would i get dependent on kpin",
    "i took my normal dose of subs and still feel sick",
])
def test_other_questions_that_name_a_dose_are_not_dosing_questions(guard, text):
    [msg] = guard.process([answered(text, "faq/withdrawal_symptoms")])
    assert msg.get("intent")["name"] == "faq"
    assert "dose_question" not in msg.get("scope")


def test_a_question_the_classifiers_called_out_of_scope_keeps_that_answer(guard):
    msg = answered("how many ibuprofen can i take for back pain", "faq/withdrawal_symptoms")
    msg.set("intent", {"name": "out_of_scope", "confidence": 0.9})
    guard.process([msg])
    assert msg.get("intent")["name"] == "out_of_scope"


def sure_of(msg, confidence=0.95):
    """The ResponseSelector is `confidence` sure of the message's answer."""
    msg.get("response_selector")["faq"]["response"]["confidence"] = confidence
    return msg


@pytest.mark.parametrize("intent", ["out_of_scope", "nlu_fallback"])
def test_a_sure_answer_about_a_covered_substance_overrules_an_out_of_scope_vote(guard, intent):
    msg = sure_of(answered("how long it takes for withdrawals to go away on klonopin", "faq/withdrawal_onset",
                           intent=intent))
    guard.process([msg])
    assert msg.get("intent") == {"name": "faq", "confidence": 0.95}
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/withdrawal_onset"
    assert msg.get("scope")["overruled"] == intent and msg.get("scope")["out"] is False


def test_an_overruled_question_still_goes_through_every_check(guard):
    msg = sure_of(answered("how many klonopin should i take for wd", "faq/withdrawal_onset", intent="out_of_scope"))
    guard.process([msg])
    assert msg.get("intent")["name"] == "ask_dosing"


@pytest.mark.parametrize("text, confidence, vector", [
    ("how long does it take for a cold to go away", 0.95, [0.95, 0.05, 0.1]),  # no covered substance
    ("how long does klonopin take to go away", 0.6, [0.95, 0.05, 0.1]),  # the answer is not sure
    ("how long does klonopin take to go away", 0.95, [0.6, 0, 0.8]),  # nearer the out-of-scope example
    ("how long does klonopin take to go away", 0.95, [0.7, 0, 0.65]),  # not clearly nearer the in-scope one
])
def test_an_out_of_scope_vote_stays_without_a_sure_answer_clearly_in_scope(guard, text, confidence, vector):
    msg = sure_of(answered(text, "faq/withdrawal_onset", intent="out_of_scope"), confidence)
    msg.features = []
    msg.add_features(Features(np.asarray([vector] * 2, dtype=np.float32), "sequence", TEXT, "MiniLM"))
    guard.process([msg])
    assert msg.get("intent")["name"] == "out_of_scope"


@pytest.mark.parametrize("text", [
    "how long does oxycontin stay in the urine",
    "how long does vicodin stay in breast milk",
    "will subs show up on a drug test for my new job",
    "i have a piss test monday, will the methadone show",
])
def test_a_drug_test_question_is_out_of_scope(guard, text):
    [msg] = guard.process([answered(text, "faq/withdrawal_symptoms")])
    assert msg.get("intent")["name"] == "out_of_scope"
    assert msg.get("scope") == {"out": True, "drug_test": True}


@pytest.mark.parametrize("text", ["how long does naltrexone last in your system",
                                  "how long do withdrawal symptoms stay with you"])
def test_how_long_a_medicine_works_or_withdrawal_lasts_is_not_a_drug_test_question(guard, text):
    [msg] = guard.process([answered(text, "faq/withdrawal_onset")])
    assert "drug_test" not in msg.get("scope")


@pytest.mark.parametrize("intent", ["faq", "ask_medication", "out_of_scope", "nlu_fallback"])
@pytest.mark.parametrize("text", [
    "can you take clonazepam with suboxone",
    "kpins while on subs",
    "bars and subs together ok?",
    "Heroin+klonopin. Will I die?",
    "my bf does bars with his dope pretty much every day",
    "is it dangerous to take klonopin while on methadone",
])
def test_a_benzo_together_with_an_opioid_gets_the_answer_on_mixing_them(guard, intent, text):
    [msg] = guard.process([answered(text, "faq/klonopin_addiction", intent=intent)])
    assert msg.get("intent")["name"] == "faq"
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/klonopin_opioid_mix"
    assert msg.get("scope") == {"out": False, "mixing": True}


@pytest.mark.parametrize("text, topic", [
    ("does klonopin help with opiate withdrawal", "faq/klonopin_for_withdrawal"),
    ("is klonopin addictive like oxy", "faq/klonopin_addiction"),
    ("dad is prescribed methadone and klonopin, should he stop them before detox", "faq/prescribed_medicine"),
])
def test_a_question_naming_a_benzo_and_an_opioid_but_not_their_mixing_keeps_its_answer(guard, text, topic):
    [msg] = guard.process([answered(text, topic)])
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == topic
    assert "mixing" not in msg.get("scope")


@pytest.mark.parametrize("text", [
    "How long does it take to start feeling Xanax WD?",
    "tapering off my klonopin and the panic is awful",
    "ran out of my klonopin 3 days early, is that dangerous",
])
def test_coming_off_a_benzo_gets_the_answer_on_benzo_withdrawal(guard, text):
    [msg] = guard.process([answered(text, "faq/klonopin_for_withdrawal")])
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/benzo_withdrawal"
    assert msg.get("scope") == {"out": False, "benzo_withdrawal": True}


@pytest.mark.parametrize("text, topic", [
    ("does klonopin help with opiate withdrawal", "faq/klonopin_for_withdrawal"),
    ("can klonopin ease withdrawal", "faq/klonopin_for_withdrawal"),
    ("tapering off xanax while i come off oxy", "faq/withdrawal_symptoms"),
    ("i feel dizzy from my klonopin", "faq/klonopin_what"),
])
def test_klonopin_for_opiate_withdrawal_keeps_its_answer(guard, text, topic):
    [msg] = guard.process([answered(text, topic)])
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == topic
    assert "benzo_withdrawal" not in msg.get("scope")


@pytest.mark.parametrize("text, intent, topic", [
    ("does naltrexone keep me from overdosing if i relapse", "ask_medication", None),
    ("is tramadol any good for getting through heroin withdrawal", "faq", "faq/self_medicating"),
])
def test_the_trained_model_answers_about_the_substance_named(bot, text, intent, topic):
    parsed = bot.parse(text)
    assert parsed["intent"]["name"] == intent
    if topic:
        assert parsed["response_selector"]["faq"]["response"]["intent_response_key"] == topic


@pytest.fixture
def topics_guard(tmp_path):
    """A guard whose in-scope examples name their answers: three near [1, 0, 0] answer
    faq/onset, one near [0, 1, 0] answers faq/symptoms, one is a medication question."""
    storage, resource = LocalModelStorage(tmp_path), Resource("scope_guard")
    context = ExecutionContext(graph_schema=None)
    examples = [example(vector, "faq", "what is klonopin") for vector in ([1, 0, 0], [0.98, 0.2, 0], [0.98, 0, 0.2])]
    for msg in examples:
        msg.set("intent_response_key", "faq/onset")
    examples.append(example([0, 1, 0], "faq", "what is klonopin"))
    examples[-1].set("intent_response_key", "faq/symptoms")
    examples.append(example([0, 0.2, 0.98], "ask_medication", "what is klonopin"))
    ScopeGuard.create(ScopeGuard.get_default_config(), storage, resource, context).train(TrainingData(examples))
    return ScopeGuard.load(ScopeGuard.get_default_config(), storage, resource, context)


def test_the_answer_the_nearest_examples_agree_on_wins(topics_guard):
    [msg] = topics_guard.process([answered("what is klonopin", "faq/symptoms")])
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/onset"
    nearest = msg.get("scope")["nearest"]
    assert nearest["answer"] == "faq/onset" and nearest["share"] >= 0.6 and nearest["followed"] is True


def test_an_unsure_guess_gets_the_answer_the_nearest_examples_agree_on(topics_guard):
    msg = answered("what is klonopin", "faq/symptoms")
    msg.set("intent", {"name": "nlu_fallback", "confidence": 0.55})
    topics_guard.process([msg])
    assert msg.get("intent") == {"name": "faq", "confidence": 0.55}
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/onset"


def test_an_unsure_guess_stays_one_when_the_nearest_examples_disagree(topics_guard):
    msg = answered("what is klonopin", "faq/symptoms")
    msg.set("intent", {"name": "nlu_fallback", "confidence": 0.55})
    msg.features = []
    msg.add_features(Features(np.asarray([[0.35, 0.9, 0.25]] * 2, dtype=np.float32), "sequence", TEXT, "MiniLM"))
    topics_guard.process([msg])
    assert msg.get("intent")["name"] == "nlu_fallback"


def test_the_classifiers_answer_stays_when_the_nearest_examples_disagree(topics_guard):
    msg = answered("what is klonopin", "faq/symptoms")
    msg.features = []
    msg.add_features(Features(np.asarray([[0.35, 0.9, 0.25]] * 2, dtype=np.float32), "sequence", TEXT, "MiniLM"))
    topics_guard.process([msg])
    assert msg.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/symptoms"
    nearest = msg.get("scope")["nearest"]
    assert nearest["share"] < 0.6 and "followed" not in nearest


def test_a_medication_answer_needs_a_medicine_named(topics_guard):
    unnamed = answered("what is klonopin", "faq/symptoms")
    named = answered("what is klonopin", "faq/symptoms", ["methadone"])
    for msg in (unnamed, named):
        msg.features = []
        msg.add_features(Features(np.asarray([[0, 0.2, 0.98]] * 2, dtype=np.float32), "sequence", TEXT, "MiniLM"))
    topics_guard.process([unnamed, named])
    assert unnamed.get("intent")["name"] == "faq"
    assert named.get("intent")["name"] == "ask_medication"


@pytest.mark.parametrize("text", ["Can a dog die from kennel cough?", "how do i fix my car's brakes",
                                  "does gabapentin help with the withdrawal or not", "is pramipexole addictive?"])
def test_the_trained_model_sends_other_health_and_life_questions_out_of_scope(bot, text):
    assert bot.parse(text)["intent"]["name"] == "out_of_scope"


def test_the_trained_model_answers_a_benzo_with_an_opioid_with_the_mixing_answer(bot):
    parsed = bot.parse("can you take clonazepam with suboxone")
    assert parsed["response_selector"]["faq"]["response"]["intent_response_key"] == "faq/klonopin_opioid_mix"


def test_the_trained_model_refuses_a_dosing_question_whatever_topic_it_resembles(bot):
    assert bot.parse("what dose of klonopin should i take for wd")["intent"]["name"] == "ask_dosing"


@pytest.mark.parametrize("text", ["asdkjh qwpoeiru zmxncb", "blorf snarg wibble"])
def test_the_trained_model_asks_to_rephrase_gibberish(bot, text):
    assert bot.parse(text)["intent"]["name"] == "nlu_fallback"


@pytest.mark.parametrize("text", ["what are the symptoms of opiate withdrawal", "what is narcan",
                                  "im coming off xanax, is that dangerous"])
def test_the_trained_model_keeps_questions_it_covers(bot, text):
    parsed = bot.parse(text)
    assert parsed["intent"]["name"] == "faq" and parsed["scope"]["out"] is False
