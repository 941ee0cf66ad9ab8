"""Answer quality on held-out phrasings (tests/heldout/topics.yml), never seen in training."""
import json
from collections import Counter

from conftest import RESULTS
from tools import heldout

MIN_ACCURACY = 0.90
MIN_PHRASINGS = 5


def test_every_topic_and_medication_has_heldout_phrasings():
    labels = heldout.topics()
    assert len([label for label in labels if label.startswith("faq/")]) == 22
    assert len([label for label in labels if label.startswith("medication:")]) == 5
    assert all(len(phrasings) >= MIN_PHRASINGS for phrasings in labels.values())


def test_heldout_topic_accuracy(bot):
    pairs = heldout.scored(
        (label, heldout.predicted_label(bot.parse(text)))
        for label, phrasings in heldout.topics().items()
        for text in phrasings
    )
    accuracy, f1 = heldout.accuracy(pairs), heldout.macro_f1(pairs)
    errors = Counter(f"{e} -> {p}" for e, p in pairs if e != p)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "heldout_topics.json").write_text(
        json.dumps({"phrasings": len(pairs), "accuracy": accuracy, "macro_f1": f1,
                    "errors": dict(errors.most_common())}, indent=2)
    )
    print(f"held-out topic accuracy {accuracy:.3f}, macro-F1 {f1:.3f} on {len(pairs)} phrasings")
    assert accuracy >= MIN_ACCURACY, errors.most_common()
