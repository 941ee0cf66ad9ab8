"""The web chat widget in real headless Chromium, on the demo page, against the real servers.

Each scenario is a script in widget/test/browser.mjs (playwright-core driving the
Debian chromium); it gets the expected texts from the domain here and fails on the
first check that does not hold. Screenshots go to tests/artifacts/.
"""
import json
import shutil
import sqlite3
import subprocess
import threading
from functools import partial
from pathlib import Path
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rasa.shared.nlu.training_data.loading import load_data

from channels.messages import TOO_FAST, TOO_LONG
from channels.rest import reply
from conftest import ROOT, eventually, variation
from test_data import examples_by_label

WIDGET = ROOT / "build" / "widget"
ARTIFACTS = ROOT / "tests" / "artifacts"
SCRIPT = ROOT / "widget" / "test" / "browser.mjs"
QUESTION = "what are the symptoms of opiate withdrawal?"
DEMO_INIT = '{ url: "http://localhost:5005" }'  # the demo page's options for the widget
# Pages of a site that sets the widget's options, next to the demo page (browser.mjs opens them).
EMBEDDED = {
    "local.html": {"storage": "local", "idleMinutes": 1440},
    "idle.html": {"idleMinutes": 0.1},
}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def demo_page(servers, tmp_path_factory):
    """The demo page served the way `make run` serves it, with the test server's address
    written into it (as a site writes its own), and the EMBEDDED pages beside it."""
    assert (WIDGET / "widget.js").exists(), "run `make install` first (it builds the widget)"
    site = tmp_path_factory.mktemp("site")
    for name in ("widget.js", "widget.js.map"):
        shutil.copy(WIDGET / name, site)
    page = (WIDGET / "index.html").read_text()
    assert DEMO_INIT in page
    for name, options in {"index.html": {}, **EMBEDDED}.items():
        (site / name).write_text(page.replace(DEMO_INIT, json.dumps({"url": servers.url, **options})))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()


@pytest.fixture(scope="module")
def expected(responses, servers):
    """What the widget must show, taken from the domain and the training data."""
    topic_of = {
        text: label for label, texts in examples_by_label(load_data(str(ROOT / "data" / "nlu"))).items()
        for text in texts
    }
    answer = responses["utter_faq/withdrawal_symptoms"][0]
    button = answer["buttons"][0]
    ask_safe = next(v for v in responses["utter_ask_safe"]
                    if v.get("condition") and v["condition"][0]["value"] == "overdose")
    return {
        "question": QUESTION,
        "answer": variation(responses, "utter_faq/withdrawal_symptoms"),
        "button_title": button["title"],
        "button_answer": variation(responses, "utter_" + topic_of[button["payload"]]),
        "crisis_message": "i took a whole bottle of pills",
        "crisis": variation(responses, "utter_crisis", crisis_path="overdose"),
        "safe_title": ask_safe["buttons"][0]["title"],
        "safe_answer": variation(responses, "utter_crisis_safe", crisis_path="overdose"),
        "server": servers.url,
        # The REST channel's answer when one sender writes too fast (channels/rest.py).
        "too_fast": TOO_FAST,
        "too_fast_body": reply("", TOO_FAST),
        # Its answer to a message over the size limit (channels/rest.py, and nginx's in deploy/).
        "too_long": TOO_LONG,
        "too_long_body": reply("", TOO_LONG),
    }


SCENARIOS = [
    "conversation", "hostile", "keyboard", "mobile", "reconnect", "rest_fallback",
    "storage", "idle", "local_storage", "malformed", "refused", "too_long", "rest_start_over", "demo_server",
    "accessibility",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_widget_in_chromium(servers, demo_page, expected, scenario):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["node", str(SCRIPT), scenario, demo_page, str(ARTIFACTS)],
        input=json.dumps(expected), capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    if "screenshot" in report:
        assert Path(report["screenshot"]).stat().st_size > 10_000
    if "started_over" in report:  # "Start over" deleted the conversation on the server too
        assert report["started_over"].startswith("web-")
        with sqlite3.connect(servers.db) as db:
            left = db.execute("SELECT COUNT(*) FROM events WHERE sender_id = ?", (report["started_over"],))
            assert left.fetchone()[0] == 0
    if "kept" in report:  # ... and only that one: the conversation begun after it is stored
        assert eventually(lambda: stored_events(servers, report["kept"]), lambda count: count > 0) > 0


def stored_events(servers, sender):
    with sqlite3.connect(servers.db) as db:
        return db.execute("SELECT COUNT(*) FROM events WHERE sender_id = ?", (sender,)).fetchone()[0]
