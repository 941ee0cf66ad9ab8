"""The trainers' weekly loop in real headless Chromium (browser.mjs), against the real Rasa
server and action server and their SQLite store: conversations held over REST show up in
the inbox, a correction lands in (a copy of) data/nlu/ through `make review`'s import, a
saved story replays with `rasa test core`, and the charts count what was said.
"""
import re
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from conftest import MODEL, ROOT
from workbench_server import figures, hold, workbench  # noqa: F401 - fixtures

NEW_EXAMPLE = "how rough are the shakes on day two of quitting dope"
LABEL = "faq/withdrawal_symptoms"
# Held after the charts' first reading: what each adds to its figures is known.
COUNTED = {
    "faq": ["hi", "what are the symptoms of opiate withdrawal?", "no"],
    "fallback": ["zuxqa plimvort grendask"],
    "crisis": ["i want to kill myself"],
    "out_of_scope": ["can a dog die from kennel cough?"],
}
HOSTILE = ('<script>window.pwned=true</script><img src=x onerror="window.pwned=true"> '
           '[tap here](javascript:window.pwned=true) <a href="javascript:window.pwned=true">link</a>')
PERSONAL = ["my name is Jordan Miller", "call me at 555-123-4567 or mail jordan.miller@example.com"]


@pytest.fixture(scope="module")
def chats(servers, workbench):  # noqa: F811 - the fixture imported above
    """Conversations held over REST, by name (their conv-... ids), and the charts' figures
    for today before the COUNTED ones were held."""
    tag = uuid.uuid4().hex[:8]
    ids = {
        "hostile": hold(servers, f"wb-hostile-{tag}", [HOSTILE]),
        "personal": hold(servers, f"wb-personal-{tag}", PERSONAL),
        "unsure": hold(servers, f"wb-unsure-{tag}", [NEW_EXAMPLE]),
    }
    before = figures(workbench.client(), date.today().isoformat())
    for name, texts in COUNTED.items():
        ids[name] = hold(servers, f"wb-{name}-{tag}", texts)
    return {"ids": ids, "before": before}


@pytest.fixture(scope="module")
def loop(workbench, chats):  # noqa: F811
    ids = chats["ids"]
    return workbench.browser("loop", {
        "faq": ids["faq"], "personal": ids["personal"], "unsure": ids["unsure"], "label": LABEL,
        "day": date.today().isoformat(),
    })


def test_signing_in_sets_a_secure_http_only_cookie(loop):
    assert loop["cookie"] == {"httpOnly": True, "secure": True, "sameSite": "Strict"}


def test_the_inbox_lists_conversations_held_over_rest_by_flag(loop, chats):
    ids = chats["ids"]
    assert ids["fallback"] in loop["fallback_rows"]
    assert ids["faq"] not in loop["fallback_rows"] and ids["crisis"] not in loop["fallback_rows"]
    for flag in ("fallback", "crisis", "out_of_scope", "not_helpful", "low_confidence"):
        assert loop["counts"][flag] >= 1, flag
    assert loop["counts"]["unreviewed"] >= len(ids)


def test_the_transcript_shows_intent_topic_confidence_and_replies(loop, responses):
    turns = loop["faq_turns"]
    assert [t["text"] for t in turns] == COUNTED["faq"]
    assert [t["intent"] for t in turns] == ["greet", "faq", "deny"]
    assert turns[1]["topic"] == "faq/withdrawal_symptoms"
    assert re.fullmatch(r"0\.9\d|1\.00", turns[1]["confidence"])
    answers = {v["text"] for v in responses["utter_faq/withdrawal_symptoms"]}
    assert set(turns[1]["replies"]) & answers


def test_the_transcript_masks_personal_data(loop):
    shown = [t["text"] for t in loop["personal_turns"]]
    assert shown == ["my name is [NAME]", "call me at [PHONE] or mail [EMAIL]"]


def test_a_correction_goes_into_the_nlu_data_through_review_import(loop, workbench):  # noqa: F811
    added = loop["added"]
    assert LABEL in added["offered"], "the searchable list offers the label"
    assert added["title"] == "Added to the training data"
    assert added["intent"] == [LABEL]
    assert added["file"] == [str(workbench.data_dir / "withdrawal.yml")]
    assert "passed" in added["validation"][0]
    block = next(b for b in yaml.safe_load((workbench.data_dir / "withdrawal.yml").read_text())["nlu"]
                 if b.get("intent") == LABEL)
    assert block["examples"].splitlines()[-1] == f"- {NEW_EXAMPLE}"
    assert NEW_EXAMPLE not in (ROOT / "data" / "nlu" / "withdrawal.yml").read_text()


def test_a_duplicate_or_unknown_label_is_refused_kindly(loop):
    assert loop["duplicate"]["title"] == "Not added"
    assert loop["duplicate"]["refusal"] == [f"already in the training data (as {LABEL})"]
    assert loop["unknown"]["refusal"][0].startswith("unknown intent 'make_coffee'")


def test_mark_reviewed_takes_a_conversation_out_of_the_inbox(loop, chats):
    assert loop["after_review_path"] == "/"
    assert chats["ids"]["faq"] not in loop["unreviewed_rows"]
    assert chats["ids"]["fallback"] in loop["unreviewed_rows"]
    assert loop["counts_after"]["reviewed"] == loop["counts"]["reviewed"] + 1


def test_a_saved_story_replays_with_rasa_test_core(loop, workbench, chats, tmp_path):  # noqa: F811
    story = workbench.stories_dir / f"{chats['ids']['faq']}.yml"
    assert loop["story_file"] == str(story)
    steps = yaml.safe_load(story.read_text())["stories"][0]["steps"]
    assert [s["user"].strip() for s in steps if "user" in s] == COUNTED["faq"]
    replay = subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "test", "core", "--model", str(MODEL), "--stories", str(story),
         "--fail-on-prediction-errors", "--out", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert replay.returncode == 0, (replay.stdout + replay.stderr)[-3000:]


def _count(cell: str) -> list:
    part = re.search(r"\((\d+) of (\d+)", cell)
    return [int(part.group(1)), int(part.group(2))] if part else [int(cell)]


def test_the_charts_count_what_was_said(loop, chats):
    before, after = chats["before"], {name: _count(cell) for name, cell in loop["figures"].items()}
    change = {name: [a - b for a, b in zip(after[name], before[name], strict=True)] for name in after}
    assert change == {
        "conversations": [4],
        "messages": [6],
        "fallback_rate": [1, 6],
        "out_of_scope_rate": [1, 6],
        "crisis": [1],
        "not_helpful_rate": [1, 1],
    }
    assert dict(loop["per_day"])[date.today().isoformat()] == after["conversations"][0]
    assert loop["topics"][LABEL] >= 1
    assert loop["svg_bars"] >= 3


def test_user_text_is_escaped_and_runs_nothing(workbench, chats):  # noqa: F811
    report = workbench.browser("hostile", {"hostile": chats["ids"]["hostile"]})
    for page in ("inbox", "transcript"):
        assert report[page] == {"scripts": 0, "images": 0, "javascript_links": 0, "handlers": 0, "pwned": False}
    assert report["shown"] == [HOSTILE]
    html = workbench.client().get(f"/conversations/{chats['ids']['hostile']}").text
    assert "&lt;script&gt;window.pwned=true&lt;/script&gt;" in html and "<script" not in html


def test_keyboard_alone_reaches_every_control_on_desktop_and_tablet(workbench, chats):  # noqa: F811
    report = workbench.browser("keyboard", {"conversation": chats["ids"]["fallback"]})
    assert len(report["pages"]) == 11
    for name, page in report["pages"].items():
        assert page["controls"] > 0 and page["missed"] == [], name
        assert page["axe"] == [], name
        assert page.get("overflow", 0) <= 0, f"{name} scrolls sideways"
    for width in ("desktop", "tablet"):
        assert report[f"{width}_keyboard_correction"][0].startswith("unknown intent 'make_coffee'")


def test_the_inbox_filters_by_date(workbench, chats):  # noqa: F811
    client, today = workbench.client(), date.today()
    listed = lambda query: set(re.findall(r'data-conversation="(conv-[0-9a-f]{10})"', client.get(query).text))  # noqa: E731
    ours = set(chats["ids"].values())
    assert ours <= listed(f"/?state=all&since={today}&until={today}")
    assert not ours & listed(f"/?state=all&since={today + timedelta(days=1)}")
    assert not ours & listed(f"/?state=all&until={today - timedelta(days=1)}")
    counts = client.get(f"/?state=all&since={today + timedelta(days=1)}").text
    assert re.search(r'data-count="crisis"><strong>0</strong>', counts)
