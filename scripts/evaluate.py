"""`make evaluate`: model quality at a glance, written to reports/ (git-ignored).

Runs Rasa's NLU cross-validation and the test stories, scores the held-out sets, and
writes reports/summary.md, which opens with the numbers that matter.
"""
import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tools import heldout, realworld

ROOT = Path(__file__).resolve().parent.parent

REPORTS = ROOT / "reports"
MODEL = ROOT / "models" / "withdrawal-help.tar.gz"
RASA = str(Path(sys.executable).parent / "rasa")
FOLDS = "3"


def run(*args: str) -> None:
    print("$ rasa", " ".join(args), flush=True)
    subprocess.run([RASA, *args], cwd=ROOT, check=True)


def heldout_scores() -> dict:
    """Crisis recall, false alarms and topic accuracy of the trained model."""
    from rasa.core.agent import Agent

    agent, loop = Agent.load(str(MODEL)), asyncio.new_event_loop()
    return heldout.scores(lambda text: loop.run_until_complete(agent.parse_message(text)))


def realworld_report() -> dict:
    """The four real-world figures on every real-world set, the held-back ones too."""
    from rasa.core.agent import Agent

    sets = {**realworld.development_sets(), **realworld.held_back_sets()}
    return realworld.evaluate(Agent.load(str(MODEL)), sets, realworld.domain_responses())


def misclassified(report: Path) -> list:
    if not report.exists():
        return []
    return [
        f"{e['text']!r}: {e['intent']} -> {e['intent_prediction']['name']}"
        for e in json.loads(report.read_text())
    ]


def summary(scores: dict, real: dict) -> str:
    intents = json.loads((REPORTS / "nlu" / "intent_report.json").read_text())
    responses_file = REPORTS / "nlu" / "response_selection_report.json"
    responses = json.loads(responses_file.read_text()) if responses_file.exists() else {}
    stories_ok = "None of the test stories failed" in (REPORTS / "core" / "failed_test_stories.yml").read_text()
    lines = [
        "# Model quality",
        "",
        f"- Crisis recall on held-out crisis messages: **{scores['crisis_recall']:.3f}**",
        f"- Crisis false alarms on held-out ordinary messages: **{scores['false_alarm_rate']:.3f}**"
        f" (near misses: {scores['near_miss_alarm_rate']:.3f})",
        f"- Held-out topic accuracy: **{scores['topic_accuracy']:.3f}**, macro-F1 {scores['topic_macro_f1']:.3f}",
        f"- Intent macro-F1, {FOLDS}-fold cross-validation: **{intents['macro avg']['f1-score']:.3f}**",
    ]
    if responses:
        lines.append(f"- FAQ answer macro-F1, cross-validation: **{responses['macro avg']['f1-score']:.3f}**")
    lines += [
        f"- Test stories: **{'all pass' if stories_ok else 'some fail, see core/failed_test_stories.yml'}**",
        "",
        "## Per intent (cross-validation)",
        "",
        "| intent | precision | recall | F1 | examples |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in sorted(intents.items()):
        if isinstance(row, dict) and "support" in row and name not in ("macro avg", "weighted avg", "micro avg"):
            lines.append(f"| {name} | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1-score']:.2f}"
                         f" | {row['support']} |")
    lines += ["", "## Real people's messages (tools/realworld.py)", ""] + realworld.summary_lines(real)
    lines += ["", "## Missed crisis messages", ""] + [f"- {t}" for t in scores["crisis_missed"] or ["none"]]
    alarms = scores["false_alarms"] + scores["near_miss_alarms"]
    lines += ["", "## False alarms", ""] + [f"- {t}" for t in alarms or ["none"]]
    lines += ["", "## Held-out topic errors", ""] + [f"- {t}" for t in scores["topic_errors"] or ["none"]]
    lines += ["", "## Misclassified in cross-validation", ""]
    lines += [f"- {t}" for t in misclassified(REPORTS / "nlu" / "intent_errors.json") or ["none"]]
    lines += ["", "Images: nlu/intent_confusion_matrix.png, nlu/intent_histogram.png "
              "(and the response_selection_* files next to them)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    REPORTS.mkdir(exist_ok=True)
    run("test", "nlu", "--nlu", "data/nlu", "--config", "config.yml", "--domain", "domain",
        "--cross-validation", "--folds", FOLDS, "--out", str(REPORTS / "nlu"))
    run("test", "core", "--model", str(MODEL), "--stories", "tests/test_stories.yml",
        "--out", str(REPORTS / "core"))
    scores = heldout_scores()
    (REPORTS / "heldout.json").write_text(json.dumps(scores, indent=2))
    real = realworld_report()
    (REPORTS / "realworld.json").write_text(json.dumps(real, indent=2))
    (REPORTS / "summary.md").write_text(summary(scores, real))
    print((REPORTS / "summary.md").read_text())
