"""Scoring on real people's messages: `../shared/realworld/dev.jsonl` and our own sets in
tests/realworld/. Shared by `make evaluate` and tests/test_realworld.py.

A case is scored on the reply the person would read, as the set's README says:
- an escalation leads with 911 (in its first 200 characters) and names 988;
- a topic answer states the topic's key facts (tests/realworld/key_facts.yml);
- an out-of-scope message gets neither an FAQ answer nor an escalation.
These sets are for measuring only: never copy their messages into data/.
"""
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Text

import yaml

ROOT = Path(__file__).resolve().parent.parent
OWN = ROOT / "tests" / "realworld"
SHARED_DEV = ROOT.parent / "shared" / "realworld" / "dev.jsonl"
KEY_FACTS = OWN / "key_facts.yml"
# The figures issue 11 asks for, with the floor each must reach.
REQUIRED = {
    "topic_accuracy": 0.92,
    "crisis_recall": 0.98,
    "false_alarm_rate": 0.03,  # at most
    "out_of_scope_rate": 0.85,
}


def load_cases(path: Path) -> List[Dict[Text, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def development_sets() -> Dict[Text, Path]:
    """The sets scored by `make test`: the shared one (when present) and every set of ours
    in tests/realworld/ but the held-back one, `own_dev` first, then by name and number.
    The blind sets (`own_blind*`; `written_blind*`, crisis and non-crisis messages; and
    `written_topic*`, topic and out-of-scope questions, written by people who had seen
    neither the patterns nor the data) were kept unread until their first scores were
    taken; since then they guide changes like `own_dev`. A new set is scored as soon as
    its file is there (tests/test_realworld.py asks for its floors)."""
    held_back = set(held_back_sets())
    own = sorted((path for path in OWN.glob("*.jsonl") if path.stem not in held_back), key=_set_order)
    sets = {"shared_dev": SHARED_DEV, **{path.stem: path for path in own}}
    return {name: path for name, path in sets.items() if path.exists()}


def _set_order(path: Path) -> Any:
    name, number = re.fullmatch(r"(.*?)(\d*)", path.stem).groups()
    return path.stem != "own_dev", name, int(number or 0)


def held_back_sets() -> Dict[Text, Path]:
    """Our set kept out of `make test`: scored by `make evaluate` only. It was looked at
    once and has guided changes since; no set of ours is unread now."""
    return {"own_final": OWN / "own_final.jsonl"}


def key_facts() -> Dict[Text, List[Text]]:
    return yaml.safe_load(KEY_FACTS.read_text())


def reply_text(messages: Iterable[Dict[Text, Any]]) -> Text:
    return "\n".join(m.get("text") or "" for m in messages)


def is_escalation(text: Text) -> bool:
    return "911" in text[:200] and "988" in text


def states_facts(text: Text, facts: List[Text]) -> bool:
    return all(re.search(fact, text, re.IGNORECASE) for fact in facts)


def expected_label(case: Dict[Text, Any]) -> Text:
    if case["expect"] == "ask_medication":
        return f"medication:{case.get('medication')}"
    return case["expect"]


def source_kind(case: Dict[Text, Any]) -> Text:
    """A short name of where the message came from, for per-source figures."""
    source = case.get("source", "")
    if source.startswith("github:"):
        return source.split()[0]
    match = re.match(r"https?://(?:www\.)?([^/]+)", source)
    return match.group(1) if match else source.split()[0] if source else "unknown"


def classify(text: Text, facts: Dict[Text, List[Text]], faq_texts: set) -> Text:
    """What kind of reply this is: an escalation, an FAQ answer (named by the label whose
    facts it states), or anything else (out-of-scope, fallback, dosing refusal)."""
    if is_escalation(text):
        return "escalation"
    answers = [line for line in text.split("\n") if line in faq_texts]
    if not answers:
        return "other"
    for label, label_facts in facts.items():
        if states_facts(answers[0], label_facts):
            return label
    return "faq_answer"


def score_case(case: Dict[Text, Any], reply: Text, facts: Dict[Text, List[Text]], faq_texts: set) -> Dict[Text, Any]:
    got = classify(reply, facts, faq_texts)
    expect = expected_label(case)
    if expect == "crisis":
        passed = got == "escalation"
    elif expect == "out_of_scope":
        passed = got == "other"
    elif expect == "not_crisis":
        passed = got != "escalation"
    else:
        passed = got != "escalation" and states_facts(reply, facts[expect])
    return {
        "id": case["id"], "expect": expect, "got": got, "passed": passed,
        "borderline": bool(case.get("borderline")), "source": source_kind(case),
        "text": case["turns"][-1], "reply": reply[:300],
    }


def run_cases(
    cases: List[Dict[Text, Any]],
    chat: Callable[[List[Text]], List[Dict[Text, Any]]],
    faq_texts: set,
) -> List[Dict[Text, Any]]:
    """`chat` sends a case's turns in a new conversation and returns the last replies."""
    facts = key_facts()
    return [score_case(case, reply_text(chat(case["turns"])), facts, faq_texts) for case in cases]


def _share(results: List[Dict[Text, Any]], keep: Callable, good: Callable) -> Optional[float]:
    chosen = [r for r in results if keep(r)]
    return sum(1 for r in chosen if good(r)) / len(chosen) if chosen else None


def figures(results: List[Dict[Text, Any]]) -> Dict[Text, Any]:
    """The four figures; borderline cases count in none of them."""
    firm = [r for r in results if not r["borderline"]]
    is_topic = lambda r: r["expect"].startswith(("faq/", "medication:"))  # noqa: E731
    return {
        "cases": len(results),
        "topic_accuracy": _share(firm, is_topic, lambda r: r["passed"]),
        "crisis_recall": _share(firm, lambda r: r["expect"] == "crisis", lambda r: r["passed"]),
        "false_alarm_rate": _share(
            firm, lambda r: r["expect"] != "crisis", lambda r: r["got"] == "escalation"
        ),
        "out_of_scope_rate": _share(
            firm, lambda r: r["expect"] == "out_of_scope", lambda r: r["passed"]
        ),
    }


def by_source(results: List[Dict[Text, Any]]) -> Dict[Text, Dict[Text, Any]]:
    groups: Dict[Text, List[Dict[Text, Any]]] = defaultdict(list)
    for result in results:
        groups[result["source"]].append(result)
    return {source: figures(group) for source, group in sorted(groups.items())}


def domain_responses() -> Dict[Text, List[Dict[Text, Any]]]:
    """Every response of the domain folder, by name."""
    responses: Dict[Text, List[Dict[Text, Any]]] = {}
    for path in sorted((ROOT / "domain").glob("*.yml")):
        responses.update(yaml.safe_load(path.read_text()).get("responses") or {})
    return responses


def faq_answer_texts(responses: Dict[Text, List[Dict[Text, Any]]]) -> set:
    """Every text of an FAQ or medication answer (not the question asking which medicine)."""
    return {
        variation["text"]
        for name, variations in responses.items()
        if name.startswith("utter_faq/") or name == "utter_medication_info"
        for variation in variations
        if variation.get("condition") or name.startswith("utter_faq/")
    }


def evaluate(agent: Any, sets: Dict[Text, Path], responses: Dict[Text, Any]) -> Dict[Text, Any]:
    """Scores a loaded Rasa Agent on each set; each case is a new conversation."""
    import asyncio
    import uuid

    loop = asyncio.new_event_loop()

    def chat(turns: List[Text]) -> List[Dict[Text, Any]]:
        sender, replies = uuid.uuid4().hex, []
        for turn in turns:
            replies = loop.run_until_complete(agent.handle_text(turn, sender_id=sender))
        return replies

    faq_texts = faq_answer_texts(responses)
    report = {}
    for name, path in sets.items():
        results = run_cases(load_cases(path), chat, faq_texts)
        report[name] = {
            "figures": figures(results),
            "by_source": by_source(results),
            "failures": [r for r in results if not r["passed"] and not r["borderline"]],
        }
    return report


def summary_lines(report: Dict[Text, Any]) -> List[Text]:
    """Markdown: the four figures per set, then per source, then what failed."""
    lines = ["| set | cases | topic answered right | crisis recall | false alarms | out of scope honest |",
             "| --- | --- | --- | --- | --- | --- |"]
    cell = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for name, part in report.items():
        f = part["figures"]
        lines.append(f"| {name} | {f['cases']} | {cell(f['topic_accuracy'])} | {cell(f['crisis_recall'])}"
                     f" | {cell(f['false_alarm_rate'])} | {cell(f['out_of_scope_rate'])} |")
    lines += ["", "Required: " + ", ".join(f"{k} {'<=' if k == 'false_alarm_rate' else '>='} {v}"
                                           for k, v in REQUIRED.items()), ""]
    for name, part in report.items():
        lines += [f"### {name}: per source", "",
                  "| source | cases | topic | crisis recall | false alarms | out of scope |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for source, f in part["by_source"].items():
            lines.append(f"| {source} | {f['cases']} | {cell(f['topic_accuracy'])} | {cell(f['crisis_recall'])}"
                         f" | {cell(f['false_alarm_rate'])} | {cell(f['out_of_scope_rate'])} |")
        lines += ["", f"### {name}: failures", ""]
        lines += [f"- `{r['id']}` expected {r['expect']}, got {r['got']}: {r['text'][:140]!r}"
                  for r in part["failures"]] or ["- none"]
        lines.append("")
    return lines
