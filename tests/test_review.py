"""The conversation review tool (tools/review.py) on real conversations: the real Rasa
server and action server on loopback store them in their SQLite tracker store, and the
CLI reads that store through Rasa's own tracker store classes.

The purge test deletes every conversation of the test servers, so it stays last.
"""
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from conftest import MODEL, ROOT, variation
from tools.privacy import mask_sender

CHATS = {
    "faq": ["hi", "what are the symptoms of opiate withdrawal?", "no"],
    "fallback": ["asdkjh qwpoeiru zmxncb", "blorf snarg wibble"],
    "crisis": ["i want to kill myself"],
    "personal": [
        "my name is Jordan Miller",
        "call me at 555-123-4567 or mail jordan.miller@example.com",
        "what are withdrawal symptoms",
    ],
}
# Fragments with a non-hex character, so that a random hex sender id never matches them.
PERSONAL_DATA = ["Jordan", "Miller", "555-", "-4567", "example.com", "@"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def senders(servers) -> Dict[str, str]:
    """Holds each chat of CHATS over REST; its sender id (issued by the server) by name."""
    senders = {}
    for name, texts in CHATS.items():
        chat = f"review-{name}-{uuid.uuid4().hex[:8]}"
        for text in texts:
            response = servers.say(chat, text)
            assert response.status_code == 200, response.text
        senders[name] = servers.sender_id(chat)
    return senders


@pytest.fixture(scope="module")
def chats(senders) -> Dict[str, str]:
    """The id of each chat as the review commands print and take it (conv-...), by name."""
    return {name: mask_sender(sender) for name, sender in senders.items()}


def run_review(*args: str) -> subprocess.CompletedProcess:
    """Runs `python -m tools.review ARGS` as a trainer would."""
    return subprocess.run(
        [sys.executable, "-m", "tools.review", *args],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600,
    )


def review(servers, *args: str) -> subprocess.CompletedProcess:
    """Runs a command on the test servers' tracker store."""
    return run_review(*args, "--endpoints", str(servers.endpoints))


def listed(servers, *args: str) -> Dict[str, List[str]]:
    """`list` output as masked sender id -> [date, user turns, flags]."""
    result = review(servers, "list", *args)
    assert result.returncode == 0, result.stderr
    return {line.split("\t")[0]: line.split("\t")[1:] for line in result.stdout.splitlines()}


def test_help_names_every_command():
    result = run_review("--help")
    assert result.returncode == 0
    for command in ["list", "show", "export", "import", "story", "purge"]:
        assert command in result.stdout


def test_list_gives_date_turns_and_flags(servers, chats):
    rows = listed(servers)
    today = date.today().isoformat()
    for name, sender in chats.items():
        assert rows[sender][:2] == [today, f"{len(CHATS[name])} user turn" + ("s" if len(CHATS[name]) > 1 else "")]
    flags = {name: rows[sender][2].split(",") for name, sender in chats.items()}
    assert flags["faq"] == ["not_helpful"]  # "no" right after the FAQ answer
    assert {"fallback", "low_confidence"} <= set(flags["fallback"])
    assert "crisis" in flags["crisis"] and "fallback" not in flags["crisis"]
    assert "crisis" not in flags["personal"]


def test_list_filters_by_flag_and_date(servers, chats):
    assert chats["crisis"] in listed(servers, "--flag", "crisis")
    assert chats["faq"] not in listed(servers, "--flag", "crisis")
    fallbacks = listed(servers, "--flag", "fallback")
    assert chats["fallback"] in fallbacks and chats["faq"] not in fallbacks
    assert chats["faq"] in listed(servers, "--flag", "not_helpful")
    assert chats["fallback"] not in listed(servers, "--flag", "fallback", "--flag", "not_helpful")
    # With a threshold of 0 nothing is low confidence.
    assert not set(chats.values()) & set(listed(servers, "--flag", "low_confidence", "--threshold", "0"))

    today = date.today()
    assert set(chats.values()) <= set(listed(servers, "--since", today.isoformat(), "--until", today.isoformat()))
    assert listed(servers, "--since", (today + timedelta(days=1)).isoformat()) == {}
    assert not set(chats.values()) & set(listed(servers, "--until", (today - timedelta(days=1)).isoformat()))


def test_show_gives_intents_and_masked_text(servers, chats, responses):
    result = review(servers, "show", chats["personal"])
    assert result.returncode == 0, result.stderr
    assert "user: my name is [NAME]" in result.stdout
    assert "user: call me at [PHONE] or mail [EMAIL]" in result.stdout
    assert re.search(r"intent: \w+ \(\d\.\d\d\)", result.stdout)
    for secret in PERSONAL_DATA:
        assert secret not in result.stdout

    faq = review(servers, "show", chats["faq"]).stdout
    assert "user: what are the symptoms of opiate withdrawal?" in faq
    assert re.search(r"intent: faq \((0\.9\d|1\.00)\) -> faq/withdrawal_symptoms", faq)
    assert re.search(r"intent: greet \(\d\.\d\d\)", faq)
    assert "bot: " + variation(responses, "utter_faq/withdrawal_symptoms") in faq
    assert "flags: not_helpful" in faq


def test_show_gives_the_best_guess_of_a_fallback(servers, chats):
    result = review(servers, "show", chats["fallback"])
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"intent: nlu_fallback \(\d\.\d\d\), best guess \S+ \(\d\.\d\d\)", result.stdout)) == 2


@pytest.mark.parametrize("store_type", ["SQL", "stores.sql.CachedSQLTrackerStore"])
@pytest.mark.parametrize("command", [["list"], ["purge", "--older-than", "30"]])
def test_a_missing_database_is_an_error_not_a_new_store(tmp_path, store_type, command):
    endpoints = tmp_path / "endpoints.yml"
    store = {"type": store_type, "dialect": "sqlite", "db": "none.db"}
    endpoints.write_text(yaml.safe_dump({"tracker_store": store}))
    result = run_review(*command, "--endpoints", str(endpoints))
    assert result.returncode != 0 and "no conversation database" in result.stderr
    assert not (tmp_path / "none.db").exists() and not (ROOT / "none.db").exists()


def test_show_also_takes_the_sender_id(servers, senders, chats):
    result = review(servers, "show", senders["faq"])
    assert result.returncode == 0, result.stderr
    assert f"conversation {chats['faq']}," in result.stdout and senders["faq"] not in result.stdout


def test_show_of_an_unknown_sender_is_a_clear_error(servers, chats):
    result = review(servers, "show", "nobody-" + uuid.uuid4().hex)
    assert result.returncode != 0
    assert "no conversation with sender id" in result.stderr


def test_export_lists_unsure_messages_masked(servers, senders, chats, tmp_path):
    out = tmp_path / "review.yml"
    result = review(servers, "export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    items = yaml.safe_load(out.read_text())
    ours = [item for item in items if item["sender"] in chats.values()]
    for item in ours:
        assert set(item) == {"sender", "text", "predicted", "confidence", "intent"}
        assert item["intent"] == "" and item["predicted"] and 0 <= item["confidence"] <= 1
    texts = {item["text"] for item in ours}
    assert set(CHATS["fallback"]) <= texts
    assert not texts & set(CHATS["faq"] + CHATS["crisis"])
    for secret in PERSONAL_DATA + list(senders.values()):
        assert secret not in out.read_text()


@pytest.fixture
def nlu_copy(tmp_path) -> Path:
    copy = tmp_path / "nlu"
    shutil.copytree(ROOT / "data" / "nlu", copy)
    return copy


def examples_of(path: Path, intent: str) -> List[str]:
    block = next(b for b in yaml.safe_load(path.read_text())["nlu"] if b.get("intent") == intent)
    return [line[2:] for line in block["examples"].splitlines()]


def test_import_adds_good_examples_and_refuses_the_rest(nlu_copy, tmp_path):
    new = "what does kicking dope feel like the first couple days"
    labelled = [
        {"sender": "s1", "text": new, "predicted": "faq/withdrawal_onset", "confidence": 0.4,
         "intent": "faq/withdrawal_symptoms"},
        {"sender": "s2", "text": "Where can I get HELP?!", "predicted": "nlu_fallback",
         "confidence": 0.55, "intent": "faq/get_help"},
        {"sender": "s3", "text": "brew me a coffee", "predicted": "out_of_scope",
         "confidence": 0.3, "intent": "make_coffee"},
        {"sender": "s4", "text": "tell me about unicorns", "predicted": "faq/klonopin_what",
         "confidence": 0.3, "intent": "faq/unicorns"},
        {"sender": "s5", "text": "not labelled yet", "predicted": "greet", "confidence": 0.5,
         "intent": ""},
    ]
    review_file = tmp_path / "labelled.yml"
    review_file.write_text(yaml.safe_dump(labelled))
    before = {p.name: p.read_text() for p in nlu_copy.glob("*.yml")}
    project_before = {p.name: p.read_text() for p in (ROOT / "data" / "nlu").glob("*.yml")}

    result = run_review("import", str(review_file), "--data-dir", str(nlu_copy))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"added: {new!r} -> faq/withdrawal_symptoms" in result.stdout
    assert "refused: 'Where can I get HELP?!' -> faq/get_help: already in the training data" in result.stdout
    assert "refused: 'brew me a coffee' -> make_coffee: unknown intent" in result.stdout
    assert "refused: 'tell me about unicorns' -> faq/unicorns: unknown intent" in result.stdout
    assert "not labelled yet" not in result.stdout
    assert "1 added, 3 refused" in result.stdout
    assert "rasa data validate passed" in result.stdout

    withdrawal = nlu_copy / "withdrawal.yml"
    assert examples_of(withdrawal, "faq/withdrawal_symptoms")[-1] == new
    assert withdrawal.read_text().replace(f"    - {new}\n", "", 1) == before["withdrawal.yml"]
    assert {p.name: p.read_text() for p in nlu_copy.glob("*.yml") if p.name != "withdrawal.yml"} == {
        name: text for name, text in before.items() if name != "withdrawal.yml"}
    assert {p.name: p.read_text() for p in (ROOT / "data" / "nlu").glob("*.yml")} == project_before


def test_import_fails_when_validation_fails(nlu_copy, tmp_path):
    """A broken story in the data folder: the example is added, validation reports it."""
    (nlu_copy / "broken_story.yml").write_text(
        'version: "3.1"\nstories:\n- story: a step that is no step\n  steps:\n  - banana: utter_greet\n'
    )
    review_file = tmp_path / "labelled.yml"
    review_file.write_text(yaml.safe_dump([{"sender": "s", "text": "heyo bot friend", "intent": "greet"}]))
    result = run_review("import", str(review_file), "--data-dir", str(nlu_copy))
    assert result.returncode != 0
    assert "added: 'heyo bot friend' -> greet" in result.stdout
    assert "rasa data validate FAILED" in result.stdout


def test_story_export_replays_with_rasa_test_core(servers, chats, tmp_path):
    story_file = tmp_path / "conversations" / "faq.yml"
    result = review(servers, "story", chats["faq"], "--out", str(story_file))
    assert result.returncode == 0, result.stderr
    steps = yaml.safe_load(story_file.read_text())["stories"][0]["steps"]
    assert [step.get("user", "").strip() for step in steps if "user" in step] == CHATS["faq"]
    assert [step["action"] for step in steps if "action" in step] == [
        "utter_greet", "utter_faq", "utter_offer_declined"]
    assert steps[2]["intent"] == "faq/withdrawal_symptoms"

    replay = subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "test", "core", "--model", str(MODEL),
         "--stories", str(story_file), "--fail-on-prediction-errors", "--out", str(tmp_path / "results")],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900,
    )
    assert replay.returncode == 0, (replay.stdout + replay.stderr)[-3000:]


def test_story_of_a_personal_chat_is_masked(servers, senders, chats, tmp_path):
    story_file = tmp_path / "personal.yml"
    result = review(servers, "story", chats["personal"], "--out", str(story_file))
    assert result.returncode == 0, result.stderr
    assert "masked" in result.stdout
    assert "my name is [NAME]" in story_file.read_text()
    assert yaml.safe_load(story_file.read_text())["stories"][0]["story"] == chats["personal"]
    for secret in PERSONAL_DATA + [senders["personal"]]:
        assert secret not in story_file.read_text() + result.stdout


def test_purge_removes_old_conversations_last(servers, chats):
    kept = review(servers, "purge", "--older-than", "1")
    assert kept.returncode == 0, kept.stderr
    assert set(chats.values()) <= set(listed(servers))

    result = review(servers, "purge", "--older-than", "0")
    assert result.returncode == 0, result.stderr
    found = re.search(r"purged (\d+) sessions .* from (\d+) conversations \((\d+) deleted entirely\)",
                      result.stdout)
    sessions, conversations, emptied = map(int, found.groups())
    assert sessions >= conversations == emptied >= len(chats)
    assert listed(servers) == {}
