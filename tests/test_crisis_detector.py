"""Unit tests of the crisis detector component and its pattern syntax."""
import pytest
import spacy
import yaml
from rasa.nlu.utils.spacy_utils import SpacyModel
from rasa.shared.nlu.training_data.message import Message

from components.crisis_detector import PATTERNS_FILE, CrisisDetector, CrisisMatcher, compile_pattern
from conftest import ROOT


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(ROOT / "build" / "spacy-en")


def matcher(nlp, categories, alone=()):
    return CrisisMatcher(nlp, {"categories": categories, "alone": list(alone)})


@pytest.mark.parametrize("text, words", [
    ("killing myself.my head", ["killing", "myself", ".", "my", "head"]),
    ("im done,bye", ["i", "m", "done", ",", "bye"]),
    ("e.g. he o.d.'d at www.samhsa.gov", ["e.g.", "he", "o.d", ".", "'d", "at", "www.samhsa.gov"]),
])
def test_the_pipeline_splits_words_glued_by_punctuation_but_not_abbreviations(nlp, text, words):
    assert [token.text for token in nlp(text)] == words


def test_every_compiled_crisis_pattern_passes_spacys_pattern_check(nlp):
    """The component compiles crisis_patterns.yml without spaCy's check of each pattern
    (it cost every server worker's first message 3.5 s); the check runs here."""
    patterns = yaml.safe_load(PATTERNS_FILE.read_text())
    checked = CrisisMatcher(nlp, patterns, validate=True)  # MatchPatternError on a malformed one
    assert checked.matcher.validate
    assert len(checked.matcher) == len(CrisisMatcher(nlp, patterns).matcher) > 0


def test_words_match_in_any_form_and_equals_sign_pins_the_form(nlp):
    assert compile_pattern("kill myself", nlp) == [[{"LEMMA": "kill"}, {"LEMMA": "myself"}]]
    assert compile_pattern("=overdosed", nlp) == [[{"LOWER": "overdosed"}]]


def test_alternatives_of_different_lengths_become_separate_patterns(nlp):
    patterns = compile_pattern("end my_life|it ?", nlp)
    assert len(patterns) == 2
    assert [{"LEMMA": "end"}, {"LEMMA": "my"}, {"LEMMA": "life"}, {"OP": "?"}] in patterns
    assert [{"LEMMA": "end"}, {"LEMMA": "it"}, {"OP": "?"}] in patterns


def test_one_word_alternatives_share_one_pattern(nlp):
    assert compile_pattern("kill|stab|shoot myself|=meself", nlp) == [
        [{"LEMMA": {"IN": ["kill", "shoot", "stab"]}}, {"LEMMA": "myself"}],
        [{"LEMMA": {"IN": ["kill", "shoot", "stab"]}}, {"LOWER": "meself"}],
    ]


def test_any_all_unless_and_alone(nlp):
    m = matcher(
        nlp,
        {
            "overdose": {"any": ["=overdosed"], "unless": ["years ago"]},
            "mix": {"all": {"benzo": ["xanax"], "opioid": ["heroin"], "wrong": ["feel weird"]}},
        },
        alone=["od"],
    )
    assert m.read(nlp("he overdosed")).crisis["category"] == "overdose"
    assert m.read(nlp("he overdosed two years ago and is sober now")).crisis is None
    assert m.read(nlp("took xanax and heroin and i feel weird")).crisis["category"] == "mix"
    assert m.read(nlp("can xanax and heroin kill you")).crisis is None
    assert m.read(nlp("OD!")).crisis["category"] == "alone"
    assert m.read(nlp("what does od mean")).crisis is None


def test_an_overdose_happening_now_is_never_cancelled_by_an_exception(nlp):
    m = matcher(
        nlp,
        {"overdose": {"any": ["=overdosed"], "now": ["od right_now"], "unless": ["how do i know"]}},
    )
    assert m.read(nlp("how do i know if he overdosed")).crisis is None
    found = m.read(nlp("he is having an od right now, how do i know what to do")).crisis
    assert found == {"category": "overdose", "phrase": "od right now"}


@pytest.mark.parametrize("text, crisis", [
    # An overdose told as happening, with a question about what to do: never cancelled by
    # the exceptions for general questions, stories and naloxone how-tos.
    ("my friend overdosed, how do i know if she needs the hospital", True),
    ("i think i overdosed, what are the signs that i need the er", True),
    ("what do i do i overdosed and i feel weird", True),
    ("my son overdosed back in the bathroom", True),
    ("he overdosed and i dont know what to do, we watched a video about narcan", True),
    ("she od'd in the car, how do you use narcan", True),
    ("i think i overdosed, i survived last time but this feels different", True),
    ("how can you tell if someone is overdosing", False),
    ("what are the signs of an overdose", False),
    ("what does an overdose feel like", False),
    ("how would i know if someone overdosed on fentanyl", False),
    ("how do you use narcan", False),
    ("i overdosed back in 2019 and survived", False),
])
def test_an_overdose_told_now_outweighs_the_exceptions(nlp, full_list, text, crisis):
    assert bool(full_list.read(nlp(text)).crisis) is crisis


def detect(nlp, text, intent, confidence, ranking=()):
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence}, *ranking])
    detector = CrisisDetector(CrisisDetector.get_default_config())
    detector.process([message], SpacyModel(model=nlp, model_name="test"))
    return message


def test_a_crisis_phrase_overrides_a_fallback(nlp):
    message = detect(nlp, "his breathing is really slow", "nlu_fallback", 0.6)
    assert message.get("intent") == {"name": "crisis", "confidence": 1.0}
    assert message.get("intent_ranking")[0]["name"] == "crisis"
    assert message.get("crisis_detector")["category"] == "breathing"


def test_classifier_weight_on_crisis_escalates_too(nlp):
    message = detect(nlp, "everything feels pointless", "faq", 0.45, [{"name": "crisis", "confidence": 0.5}])
    assert message.get("intent")["name"] == "crisis"
    assert message.get("crisis_detector")["category"] == "classifier"


def test_a_weak_crisis_vote_does_not_escalate(nlp):
    """Below 0.5 the vote fired on "Strange or scary Ambien side effects?" (0.37)."""
    message = detect(nlp, "strange or scary ambien side effects?", "faq", 0.6, [{"name": "crisis", "confidence": 0.37}])
    assert message.get("intent") == {"name": "faq", "confidence": 0.6}
    assert message.get("crisis_detector") is None


def test_the_classifier_vote_on_a_message_of_unknown_words_is_set_aside(nlp):
    """The scope guard found no word of it in the training data (see scope_guard.py)."""
    message = Message(data={"text": "mornin", "scope": {"known_words": 0, "out": False}})
    message.set("intent", {"name": "nlu_fallback", "confidence": 0.0})
    message.set("intent_ranking", [{"name": "nlu_fallback", "confidence": 0.0}, {"name": "crisis", "confidence": 0.9}])
    CrisisDetector(CrisisDetector.get_default_config()).process([message], SpacyModel(model=nlp, model_name="test"))
    assert message.get("intent")["name"] == "nlu_fallback" and message.get("crisis_detector") is None
    # A crisis phrase still escalates, known words or not.
    message = Message(data={"text": "quiero morir", "scope": {"known_words": 0, "out": False}})
    message.set("intent", {"name": "nlu_fallback", "confidence": 0.0})
    CrisisDetector(CrisisDetector.get_default_config()).process([message], SpacyModel(model=nlp, model_name="test"))
    assert message.get("intent")["name"] == "crisis"


def test_ordinary_questions_are_left_alone(nlp):
    message = detect(nlp, "these cramps are killing me", "faq", 0.9, [{"name": "crisis", "confidence": 0.05}])
    assert message.get("intent") == {"name": "faq", "confidence": 0.9}
    assert message.get("crisis_detector") is None


def test_chat_shorthand_reads_as_the_word_it_stands_for(nlp):
    m = matcher(nlp, {"method": {"any": ["para no despertar", "que piso"]}, "you": {"any": ["you were the best"]}})
    assert m.read(nlp("cuantas pastillas pa no despertar")).crisis["category"] == "method"
    assert m.read(nlp("q piso es suficiente")).crisis["category"] == "method"
    assert m.read(nlp("u were the best")).crisis["category"] == "you"
    assert m.read(nlp("papa no despertar")).crisis is None


def test_warning_signs_are_marked_without_escalating(nlp):
    m = CrisisMatcher(nlp, {
        "categories": {"suicide": {"any": ["kill myself"]}},
        "warning_signs": {"means": {"any": ["saved up ? pills"]}, "loss": {"any": ["lost my job"]}},
    })
    doc = nlp("i lost my job and ive got pills saved up")
    assert m.read(doc).crisis is None
    assert set(m.read(doc).warning_signs) == {"loss"}
    assert set(m.read(nlp("i lost my job, saved up some pills")).warning_signs) == {"loss", "means"}


def test_an_idiom_overrules_the_classifier_vote_but_never_a_crisis_phrase(nlp):
    ranking = [{"name": "crisis", "confidence": 0.93}]
    message = detect(nlp, "my arch was killing me", "crisis", 0.93, [{"name": "out_of_scope", "confidence": 0.04}])
    assert message.get("intent") == {"name": "out_of_scope", "confidence": 0.04}
    assert message.get("crisis_detector") is None
    assert message.get("crisis_idiom") == "arch was killing me"
    message = detect(nlp, "i want to kill myself, my back is killing me", "faq", 0.9, ranking)
    assert message.get("crisis_detector")["category"] == "suicide"
    message = detect(nlp, "he is killing me", "faq", 0.5, ranking)
    assert message.get("crisis_detector")["category"] == "classifier"


def test_a_curly_apostrophe_reads_as_a_straight_one(nlp):
    """Phones type "don’t"; the lemmatizer only knows "don't"."""
    m = matcher(nlp, {"denied": {"any": ["not want to live"]}})
    for text in ("i don’t want to live", "i don‘t want to live", "i don't want to live"):
        assert m.read(nlp(text)).crisis["category"] == "denied", text


def test_a_number_typed_into_the_next_word_reads_apart(nlp):
    """"took 45sleeping pills" is "took 45 sleeping pills"; "30mg" stays one unit."""
    m = matcher(nlp, {"pills": {"any": ["=took <many> sleeping"]}})
    assert m.read(nlp("i just took 45sleeping pills")).crisis["category"] == "pills"
    assert m.read(nlp("i just took 45 sleeping pills")).crisis["category"] == "pills"
    assert m.read(nlp("i took 30mg sleeping")).crisis is None


@pytest.fixture(scope="module")
def full_list(nlp):
    """The crisis list as the assistant loads it."""
    return CrisisMatcher(nlp, yaml.safe_load(PATTERNS_FILE.read_text()))


def test_the_wish_to_die_counts_but_its_denial_does_not(nlp, full_list):
    m = full_list
    assert m.read(nlp("i just want to die")).crisis["category"] == "wants_to_die"
    assert m.read(nlp("i don’t want to die, i'm on prednisone and dehydrated")).crisis is None
    # Denied, yet another phrase of the list still counts.
    assert m.read(nlp("i dont want to die but im going to kill myself")).crisis["category"] == "suicide"


@pytest.mark.parametrize("text, crisis", [
    ("what should i overdose on? any drug u recommend", True),
    ("whats the best way to overdose", True),
    ("i am planning on dying tonight", True),
    ("im planning on dying my hair tonight", False),
    ("i am at peace with the idea of overdosing on my meds", True),
    ("the voices keep telling me to jump", True),
    ("if this doesnt work ill find a gun, thats the surest way", True),
    ("i gave him narcan and hes still not waking up", True),
    ("how do u use the narcan nasal spray? never done it", False),
    ("do i need a prescription for naloxone", False),
    ("does my insurance cover rehab? i have blue cross", False),
    ("his lips are blue", True),
    ("my wife has taken 30 mg a day for two years, how long will withdrawal last", False),
    ("i just took 30 of my klonopin", True),
    ("shot myself in the foot telling my boss im on methadone", False),
    ("im gonna kill my brother if he eats my leftover pizza again", False),
    ("im gonna kill my dealer tonight", True),
    ("took a handful of my pills hoping to overdose", True),
    ("i dont want to overdose, whats a safe amount of subs", False),
    ("could i die from a benadryl overdose", True),
    ("i want to go to heaven early", True),
    ("i have the pills, whatever happens as long as i die", True),
    ("i'm hopeless, ready to give up", True),
    ("im ready to give up opiates for good", False),
    ("how do you cut a wrist", True),
    ("i think i overdosed on insulin, should i go to the er", True),
    ("i am not ready to die, it scares me", False),
    ("why do people commit suicide", False),
    ("i wanna kill myself, not literally, this homework is endless", False),
    ("my gerbil is suicidal, he leaps off the sofa", False),
    ("im sick as a dog and suicidal", True),
    ("what happens if you swallow the whole bottle of seroquel at once", True),
    ("im gonna take all my pills tonight and sleep for good", True),
    ("would he just sleep or would it be permanent", True),
    ("if i die tonight honestly thats a relief", True),
    ("how high does the roof need to be to be sure", True),
    ("i take my whole dose of methadone in the morning", False),
    ("i cant think of a reason to keep on living", True),
    ("is 200 tablets of tylenol enough to kill you", True),
    ("is withdrawal enough to kill you", False),
    ("what would 50 advil do to you, could you die", True),
    ("im still here for a few hours but it is happening tonight", True),
    ("the concert is happening tonight", False),
    ("i drove to the place im going to spend my last day", True),
    ("i want to spend my last day at work with my team", False),
    ("sitting here looking at the gun again", True),
    ("i have a plan for next week so none of it matters", True),
    ("i have a plan for detox next week", False),
    ("took two oxy and half a bottle of gin, this feels so intense", True),
    ("you may not answer this but my blood pressure is high at night", False),
    ("my sister is not answering her phone and she took pills", True),
    ("i take 10 mg. oxymorphone pill and still hurt", False),
    ("is it going to kill my liver to take two lortabs a day", False),
    ("im afraid to go to sleep and not wake up after giving plasma", False),
    ("he wont wake up", True),
    ("after my shift im driving the kitchen knife into my neck", True),
    ("going to slice my carotid tonight", True),
    ("my lawyer always goes for the jugular", False),
    ("took 20mg methadone today and it helped a ton", False),
    ("should i take the whole pill all at once or split it", False),
    ("gonna take the whole bottle all at once", True),
    ("my brother committed suicide last spring and i might too", True),
    ("i wouldnt consider myself suicidal, just tired of withdrawal", False),
    ("just swallowed a bottle of pills and walking to the train tracks", True),
    ("how do i sign up for a naloxone training course", False),
    ("i took it 12 hours ago, when can i take the next one", False),
    ("i took half the bottle of my xanax an hour ago", True),
    ("im gonna take all my klonopin", True),
    ("would it feel like falling asleep forever", True),
    ("this is my final goodbye", True),
    ("said my final goodbye to grandpa at the funeral", False),
    ("i hope this one takes me", True),
    ("how would fentanyl kill me", True),
    ("ill take as many as possible", True),
    ("60mg oxy plus vodka, is that enough", True),
    ("is 8mg of subs enough to stop withdrawal", False),
    ("can you overdose on kratom? doing it tonight", True),
    ("whats the quickest thing to overdose on", True),
    ("im looking for pills to od on", True),
    ("which meds would kill me", True),
    ("i have 20 of my xanax here, would that kill me", True),
    ("my ceiling fan wobbles, will it kill me", False),
    ("it is easy to overdose on methadone when you start, go slow", False),
    ("about to take all these sleeping pills", True),
    ("im going to take a bunch of pills when i get home", True),
    ("i take a lot of pills for my back", False),
    ("took more oxy than i should have and im scared", True),
    ("i hope i die in my sleep tonight", True),
    ("i hope i dont die from this withdrawal", False),
    ("i keep thinking about overdosing", True),
])
def test_method_questions_count_and_everyday_questions_do_not(nlp, full_list, text, crisis):
    assert bool(full_list.read(nlp(text)).crisis) is crisis
