"""Shared fixtures: the trained model loaded in-process, and real servers on loopback.

`make test` trains the model first (only when data or config changed), so every test
here uses the same models/withdrawal-help.tar.gz.
"""
import asyncio
import sqlite3
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Text

import pytest
import yaml

from tools.servers import MODEL, ROOT, RestClient, action_server, free_port, rasa_server, server_env, stop_all

SOCKETIO = "channels.socketio.CheckedSocketIOInput"
RESULTS = ROOT / "results"


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
        self.env = {**server_env(), **(env or {})}  # as make run, on top of os.environ
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
        self.actions = action_server(self.action_port, workdir / "actions.log", env=self.env).start()
        self.rasa = rasa_server(self.rasa_port, workdir / "rasa.log", endpoints=self.endpoints,
                                credentials=self.credentials, cors="*", env=self.env).start()

    @contextmanager
    def lock_store_broken(self) -> Iterator[None]:
        """While this lasts, the conversation locks cannot be read (their table is moved
        away, as a damaged store would fail): no message can be handled. The rate counts
        live beside them and still work."""
        with sqlite3.connect(self.workdir / "locks.db", timeout=30) as db:
            db.execute("ALTER TABLE locks RENAME TO locks_away")
        try:
            yield
        finally:
            with sqlite3.connect(self.workdir / "locks.db", timeout=30) as db:
                db.execute("ALTER TABLE locks_away RENAME TO locks")

    def stop(self) -> None:
        """Stops both servers; a traceback in either log fails the tests that used them."""
        stop_all(self.rasa, self.actions)
        for server in (self.rasa, self.actions):
            server.check_log()


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
