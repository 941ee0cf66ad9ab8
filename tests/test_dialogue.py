"""Test stories (tests/test_stories.yml) pass 100 % with `rasa test core`."""
import subprocess

from conftest import MODEL, RESULTS, ROOT
from tools.servers import BIN


def test_every_test_story_passes():
    out = RESULTS / "stories"
    result = subprocess.run(
        [str(BIN / "rasa"), "test", "core", "--model", str(MODEL),
         "--stories", "tests/test_stories.yml", "--out", str(out), "--fail-on-prediction-errors"],
        cwd=ROOT, capture_output=True, text=True,
    )
    failed = out / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, details or (result.stdout[-3000:] + result.stderr[-3000:])
    assert "None of the test stories failed" in details, details
