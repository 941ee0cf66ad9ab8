"""The workbench as trainers run it (`python -m workbench serve`), on loopback, reading
the test servers' SQLite tracker store and writing to a temporary copy of the NLU data.

Test modules import the fixtures they use from here (a second conftest.py would clash
with tests/conftest.py under pytest's default import mode).
"""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

from tools.servers import ROOT, free_port, stop_process_group, wait_for
from workbench.candidate import read_status

ARTIFACTS = ROOT / "tests" / "artifacts"
SCRIPT = Path(__file__).resolve().parent / "browser.mjs"
USER = "alice"


class Client:
    """HTTP client that keeps the workbench's cookies itself: they are Secure, and
    `requests` sends Secure cookies only over https (a browser also sends them to
    http://localhost)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies: Dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = requests.request(method, self.url + path, headers=headers, allow_redirects=False,
                                    timeout=300, **kwargs)
        for header in response.raw.headers.getlist("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def csrf(self, path: str) -> str:
        """The CSRF token of the forms on the page at `path`."""
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, f"no form on {path}"
        return found.group(1)

    def sign_in(self, name: str, password: str) -> requests.Response:
        token = self.csrf("/signin")
        return self.post("/signin", data={"csrf": token, "name": name, "password": password})


class Workbench:
    """The workbench process, its accounts file, and the copies it writes to."""

    def __init__(self, workdir: Path, endpoints: Path) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "nlu"
        shutil.copytree(ROOT / "data" / "nlu", self.data_dir)
        self.stories_dir = workdir / "stories"
        self.work_dir = workdir / "work"
        self.db = workdir / "workbench.db"
        self.password = secrets.token_urlsafe(12)
        self.users = {USER: self.password}
        self.add_user(USER, self.password)
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.log = workdir / "workbench.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--port", str(self.port), "--endpoints", str(endpoints),
             "--data-dir", str(self.data_dir), "--stories-dir", str(self.stories_dir),
             "--work-dir", str(self.work_dir), "--db", str(self.db)],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(f"http://127.0.0.1:{self.port}/signin", self.process, timeout=120)

    def add_user(self, name: str, password: str) -> subprocess.CompletedProcess:
        """`python -m workbench user NAME --password-stdin`, as `make workbench-user` runs it."""
        result = subprocess.run(
            [sys.executable, "-m", "workbench", "user", name, "--password-stdin", "--db", str(self.db)],
            input=password + "\n", cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        if result.returncode == 0:
            self.users[name] = password
        return result

    def client(self, signed_in: bool = True) -> Client:
        client = Client(self.url)
        if signed_in:
            assert client.sign_in(USER, self.password).status_code == 302
        return client

    def browser(self, scenario: str, data: Dict[str, Any], timeout: float = 300) -> Dict[str, Any]:
        """Runs a scenario of browser.mjs in headless Chromium; its report."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        payload = {"url": self.url, "user": USER, "password": self.password, **data}
        result = subprocess.run(["node", str(SCRIPT), scenario, str(ARTIFACTS)], input=json.dumps(payload),
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report.get("errors") == [] and report.get("dialogs") == [], report
        return report

    def stop(self) -> None:
        """Stops the workbench, and a candidate training it started (its own process group)."""
        stop_process_group(self.process)
        job = read_status(self.work_dir)
        if job.get("state") == "running":
            try:
                os.killpg(int(job["pid"]), signal.SIGKILL)
            except (ProcessLookupError, KeyError, ValueError):
                pass
        text = self.log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def workbench(servers, tmp_path_factory):
    running = Workbench(tmp_path_factory.mktemp("workbench"), servers.endpoints)
    yield running
    running.stop()


def hold(servers, name: str, texts: List[str]) -> str:
    """Holds a conversation over REST; the id the workbench shows for it (conv-...)."""
    from tools.privacy import mask_sender

    for text in texts:
        response = servers.say(name, text)
        assert response.status_code == 200, response.text
    return mask_sender(servers.sender_id(name))


def figures(client: Client, day: str) -> Dict[str, Optional[List[int]]]:
    """The charts page's numbers for one day: each figure's count, and for a rate its
    "(part of whole)"."""
    page = client.get(f"/charts?since={day}&until={day}").text
    found = {}
    for name, cell in re.findall(r'data-figure="(\w+)">(.*?)</td>', page):
        part = re.search(r"\((\d+) of (\d+)", cell)
        found[name] = [int(part.group(1)), int(part.group(2))] if part else [int(re.sub(r"<.*", "", cell))]
    return found
