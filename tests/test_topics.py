"""Answer quality on held-out phrasings (tests/heldout/topics.yml), never seen in training."""
import json
from collections import Counter

from conftest import HELDOUT, RESULTS, load_yaml

TOPICS = load_yaml(HELDOUT / "topics.yml")["topics"]
MIN_ACCURACY = 0.90
MIN_PHRASINGS = 5
# "What are k-pins?" may get the Klonopin FAQ answer or the clonazepam medication
# answer: both describe the same medication.
SAME_ANSWER = {"medication:clonazepam": {"faq/klonopin_what"}}


def is_right(expected, predicted):
    return predicted == expected or predicted in SAME_ANSWER.get(expected, set())


def predicted_label(parsed):
    """The answer the assistant would give, in the label format of topics.yml."""
    intent = parsed["intent"]["name"]
    if intent == "faq":
        return parsed["response_selector"]["faq"]["response"]["intent_response_key"]
    if intent == "ask_medication":
        names = [e["value"] for e in parsed["entities"] if e["entity"] == "medication"]
        return f"medication:{names[-1]}" if names else "medication:none"
    return intent


def macro_f1(pairs):
    labels = {expected for expected, _ in pairs}
    scores = []
    for label in labels:
        tp = sum(1 for e, p in pairs if e == label and p == label)
        fp = sum(1 for e, p in pairs if e != label and p == label)
        fn = sum(1 for e, p in pairs if e == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores)


def test_every_topic_and_medication_has_heldout_phrasings():
    faq_topics = {label for label in TOPICS if label.startswith("faq/")}
    medications = {label for label in TOPICS if label.startswith("medication:")}
    assert len(faq_topics) == 18 and len(medications) == 5
    assert all(len(phrasings) >= MIN_PHRASINGS for phrasings in TOPICS.values())


def test_heldout_topic_accuracy(bot):
    pairs = [
        (label, predicted_label(bot.parse(text)))
        for label, phrasings in TOPICS.items()
        for text in phrasings
    ]
    pairs = [(e, e if is_right(e, p) else p) for e, p in pairs]
    accuracy = sum(e == p for e, p in pairs) / len(pairs)
    f1 = macro_f1(pairs)
    errors = Counter(f"{e} -> {p}" for e, p in pairs if e != p)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "heldout_topics.json").write_text(
        json.dumps({"phrasings": len(pairs), "accuracy": accuracy, "macro_f1": f1,
                    "errors": dict(errors.most_common())}, indent=2)
    )
    print(f"held-out topic accuracy {accuracy:.3f}, macro-F1 {f1:.3f} on {len(pairs)} phrasings")
    assert accuracy >= MIN_ACCURACY, errors.most_common()
