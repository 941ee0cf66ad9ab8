"""Scoring on the held-out phrasings in tests/heldout/, shared by the tests and `make evaluate`."""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Text, Tuple

import yaml

HELDOUT = Path(__file__).resolve().parent.parent / "tests" / "heldout"
# "What are k-pins?" may get the Klonopin FAQ answer or the clonazepam medication
# answer: both describe the same medication.
SAME_ANSWER = {"medication:clonazepam": {"faq/klonopin_what"}}


def load(name: Text) -> Any:
    return yaml.safe_load((HELDOUT / name).read_text())


def crisis_messages() -> List[Text]:
    return load("crisis.yml")["messages"] + load("crisis_hard.yml")["messages"]


def non_crisis_messages() -> List[Text]:
    return [m["text"] for m in load("non_crisis.yml")["messages"]]


def near_misses() -> List[Text]:
    return load("near_misses.yml")["messages"]


def topics() -> Dict[Text, List[Text]]:
    return load("topics.yml")["topics"]


def response_key(parsed: Dict[Text, Any], intent: Text = "faq") -> Optional[Text]:
    """The faq/<topic> the ResponseSelector chose for a retrieval intent, if any."""
    selected = parsed.get("response_selector", {}).get(intent, {})
    return selected.get("response", {}).get("intent_response_key")


def predicted_label(parsed: Dict[Text, Any]) -> Text:
    """The answer the assistant would give, in the label format of topics.yml."""
    intent = parsed["intent"]["name"]
    if intent == "faq":
        return response_key(parsed)
    if intent == "ask_medication":
        names = [e["value"] for e in parsed["entities"] if e["entity"] == "medication"]
        return f"medication:{names[-1]}" if names else "medication:none"
    return intent


def scored(pairs: Iterable[Tuple[Text, Text]]) -> List[Tuple[Text, Text]]:
    """(expected, predicted) pairs, with equivalent answers counted as right."""
    return [(e, e if p in SAME_ANSWER.get(e, set()) else p) for e, p in pairs]


def accuracy(pairs: List[Tuple[Text, Text]]) -> float:
    return sum(e == p for e, p in pairs) / len(pairs)


def macro_f1(pairs: List[Tuple[Text, Text]]) -> float:
    scores = []
    for label in {expected for expected, _ in pairs}:
        tp = sum(1 for e, p in pairs if e == label and p == label)
        fp = sum(1 for e, p in pairs if e != label and p == label)
        fn = sum(1 for e, p in pairs if e == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores)


def scores(parse: Callable[[Text], Dict[Text, Any]]) -> Dict[Text, Any]:
    """Crisis recall, false alarms and topic accuracy of a model, given its parse function
    (`make evaluate` and the workbench's candidate models)."""
    is_crisis = lambda text: parse(text)["intent"]["name"] == "crisis"  # noqa: E731
    missed = [t for t in crisis_messages() if not is_crisis(t)]
    alarms = [t for t in non_crisis_messages() if is_crisis(t)]
    near = [t for t in near_misses() if is_crisis(t)]
    pairs = scored(
        (label, predicted_label(parse(text)))
        for label, texts in topics().items()
        for text in texts
    )
    return {
        "crisis_recall": 1 - len(missed) / len(crisis_messages()),
        "crisis_missed": missed,
        "false_alarm_rate": len(alarms) / len(non_crisis_messages()),
        "false_alarms": alarms,
        "near_miss_alarm_rate": len(near) / len(near_misses()),
        "near_miss_alarms": near,
        "topic_accuracy": accuracy(pairs),
        "topic_macro_f1": macro_f1(pairs),
        "topic_errors": [f"{e} -> {p}" for e, p in pairs if e != p],
    }
