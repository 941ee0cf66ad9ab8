"""Shared fixtures: the trained model loaded in-process, and real servers on loopback.

`make test` trains the model first (only when data or config changed), so every test
here uses the same models/withdrawal-help.tar.gz.
"""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Text

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "withdrawal-help.tar.gz"
SOCKETIO = "channels.socketio.CheckedSocketIOInput"
RESULTS = ROOT / "results"
BIN = Path(sys.executable).parent

sys.path.insert(0, str(ROOT))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def responses() -> Dict[Text, List[Dict[Text, Any]]]:
    from tools.realworld import domain_responses

    return domain_responses()


class Bot:
    """The trained assistant, in-process, with no action server (as if it were down)."""

    def __init__(self) -> None:
        from rasa.core.agent import Agent

        self.loop = asyncio.new_event_loop()
        self.agent = Agent.load(str(MODEL))

    def parse(self, text: Text) -> Dict[Text, Any]:
        return self.loop.run_until_complete(self.agent.parse_message(text))

    def chat(self, *texts: Text) -> List[List[Dict[Text, Any]]]:
        """Sends the texts in one new conversation; returns the replies to each."""
        sender = uuid.uuid4().hex
        return [
            self.loop.run_until_complete(self.agent.handle_text(text, sender_id=sender))
            for text in texts
        ]


@pytest.fixture(scope="session")
def bot() -> Bot:
    assert MODEL.exists(), "run `make train` first (make test does it)"
    return Bot()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_one_rate_window(seconds: float, window: float = 60) -> None:
    """Waits, if need be, until at least `seconds` are left in the guard's current rate
    window: its counts start again with each window, so a test of a limit that straddles
    two of them would see the count reset."""
    left = window - time.time() % window
    if left < seconds:
        time.sleep(left + 0.1)


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 10) -> Any:
    """What `read()` returns once `done` holds of it (or, at the timeout, its last value,
    for the test's own assertion to report)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def wait_for(url: Text, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


UP_AND_RUNNING = "Rasa server is up and running."  # logged once by each Sanic worker


def wait_for_workers(log: Path, workers: int, timeout: float = 180) -> None:
    """The first worker up answers the health check; the others may still be loading
    the model, and would miss the first requests."""
    deadline = time.monotonic() + timeout
    while log.read_text().count(UP_AND_RUNNING) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only some of {workers} workers started; see {log}")
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """Waits for a server started with `start_new_session=True` to stop, then ends what is
    left of its process group: a Sanic worker can outlive a parent killed at the timeout."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def server_env() -> Dict[Text, Text]:
    """The worker and thread settings `make run` uses (server.env)."""
    lines = (ROOT / "server.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


REST_WEBHOOK = "/webhooks/rest/webhook"


class Conversation:
    """One REST conversation as a client holds it. The first message goes without a
    sender: the server starts the conversation and issues its id (each reply's
    `recipient_id`), which the client sends as `sender` from then on. Given a `sender`,
    the client names the conversation itself (Rasa's stock channel, or ours with
    `issued_ids_only: false`; by default ours refuses it with a 403)."""

    def __init__(self, sender: Optional[Text] = None) -> None:
        self.sender = sender

    def body(self, text: Any, **extra: Any) -> Dict[Text, Any]:
        """The JSON body of a message in this conversation."""
        return {"sender": self.sender, "message": text, **extra} if self.sender else {"message": text, **extra}

    def remember(self, replies: Any) -> None:
        """Keeps the id the server issued, from the replies to the first message."""
        if self.sender is None and isinstance(replies, list) and replies and isinstance(replies[0], dict):
            self.sender = replies[0].get("recipient_id") or None

    def post(self, url: Text, text: Any, timeout: float = 60, **extra: Any) -> requests.Response:
        """Sends `text` to the REST channel of the server at `url`."""
        response = requests.post(url + REST_WEBHOOK, json=self.body(text, **extra), timeout=timeout)
        try:
            self.remember(response.json())
        except ValueError:
            pass
        return response


class RestClient:
    """Chats with the server at `self.url` over REST, each conversation under the name a
    test gives it ("s1"): a name's first message starts a conversation, and the id the
    server issued for it is used from then on (`sender_id(name)`)."""

    url: Text
    timeout: float = 60

    def __init__(self) -> None:
        self.conversations: Dict[Text, Conversation] = defaultdict(Conversation)

    def say(self, name: Text, text: Any, url: Optional[Text] = None, **extra: Any) -> requests.Response:
        """Sends `text` in the conversation `name`, to `url` if given (another replica)."""
        return self.conversations[name].post(url or self.url, text, timeout=self.timeout, **extra)

    def say_as(self, sender: Text, text: Any, **extra: Any) -> requests.Response:
        """Sends `text` as a `sender` the client names itself."""
        return Conversation(sender).post(self.url, text, timeout=self.timeout, **extra)

    def sender_id(self, name: Text) -> Text:
        """The id the server issued for the conversation `name`."""
        return self.conversations[name].sender


class Servers(RestClient):
    """The real action server and Rasa server, on loopback, with their own SQLite store.

    `credentials` replaces credentials.yml (as a dict), `env` adds environment variables.
    Every test message comes from 127.0.0.1 and the test pages from a random port, so
    unless a test says otherwise the per-address limit is lifted and socket.io takes
    `origins` ("*": any page, as `--cors "*"` below).
    """

    def __init__(
        self, workdir: Path, credentials: Optional[Dict] = None, env: Optional[Dict] = None, origins: Any = "*"
    ) -> None:
        super().__init__()
        self.workdir = workdir
        self.env = {**os.environ, **server_env(), "RASA_TELEMETRY_ENABLED": "false", **(env or {})}
        credentials = load_yaml(ROOT / "credentials.yml") if credentials is None else credentials
        for name in credentials:
            if name.startswith("channels."):
                credentials[name] = {"address_rate_limit": 100_000, **(credentials[name] or {})}
        credentials[SOCKETIO]["cors_allowed_origins"] = origins
        self.credentials = workdir / "credentials.yml"
        self.credentials.write_text(yaml.safe_dump(credentials))
        self.action_port, self.rasa_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.rasa_port}"
        self.db = workdir / "tracker.db"
        self.endpoints = workdir / "endpoints.yml"
        endpoints = load_yaml(ROOT / "endpoints.yml")
        endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{self.action_port}/webhook"
        endpoints["tracker_store"]["db"] = str(self.db)
        endpoints["lock_store"]["db"] = str(workdir / "locks.db")
        self.endpoints.write_text(yaml.safe_dump(endpoints))
        self.rasa_log = workdir / "rasa.log"
        self.actions = self._start_actions()
        self.rasa = self._start_rasa()

    def _spawn(self, args: List[Text], log: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [str(BIN / "rasa"), *args],
            cwd=ROOT,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,  # its own process group: stop() can end every worker
        )

    def _start_actions(self) -> subprocess.Popen:
        process = self._spawn(
            ["run", "actions", "--port", str(self.action_port), "--actions", "actions"],
            self.workdir / "actions.log",
        )
        wait_for(f"http://127.0.0.1:{self.action_port}/health", process)
        return process

    def _start_rasa(self) -> subprocess.Popen:
        process = self._spawn(
            [
                "run", "--model", str(MODEL), "--endpoints", str(self.endpoints),
                "--credentials", str(self.credentials), "--cors", "*",
                "--interface", "127.0.0.1", "--port", str(self.rasa_port),
            ],
            self.rasa_log,
        )
        wait_for(self.url + "/", process)
        wait_for_workers(self.rasa_log, int(self.env.get("SANIC_WORKERS", 1)))
        return process

    def stop(self) -> None:
        """Stops both servers; a traceback in either log fails the tests that used them."""
        for process in (self.rasa, self.actions):
            stop_process_group(process)
        for log in (self.rasa_log, self.workdir / "actions.log"):
            text = log.read_text(errors="replace")
            assert "Traceback" not in text, f"{log}:\n{text[text.index('Traceback') - 500:][:3000]}"


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory):
    running = Servers(tmp_path_factory.mktemp("servers"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """PostgreSQL, Redis, nginx, two Rasa replicas and an action server on loopback
    (tests/scale/stack.py), started once: loading the model takes a minute or more."""
    from scale.stack import Stack  # imported here: it needs the Debian servers only when used

    running = Stack(tmp_path_factory.mktemp("stack"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def variation(responses, name: Text, channel: Optional[Text] = None, **slots: Text) -> Text:
    """Text of the variation of `name` for `channel` whose slot conditions are exactly `slots`."""
    for candidate in responses[name]:
        condition = {c["name"]: c["value"] for c in candidate.get("condition", [])}
        if condition == slots and candidate.get("channel") == channel:
            return candidate["text"]
    raise KeyError(f"{name} has no variation for {slots}")


def texts_of(replies: List[Dict[Text, Any]]) -> List[Text]:
    return [reply.get("text", "") for reply in replies]
