"""Starts the assistant's servers: the action server and the Rasa server.

The one place that knows how they start, used by `make run` and `make shell`
(`python -m tools.servers run|shell`), by the test suite's servers (tests/conftest.py), by
`make bench` (bench/run.py) and by the scale stack (tests/scale/stack.py). Also the REST
client that talks to them, shared by the tests and the bench's load generator.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "withdrawal-help.tar.gz"

ACTION_PORT, RASA_PORT, DEMO_PORT = 5055, 5005, 8080
DEMO_ORIGIN = f"http://localhost:{DEMO_PORT}"  # the demo page `make run` serves
UP_AND_RUNNING = "Rasa server is up and running."  # logged once by each Sanic worker
REST_WEBHOOK = "/webhooks/rest/webhook"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> Dict[Text, Text]:
    """The worker and thread settings of server.env (two workers, one thread each)."""
    lines = (ROOT / "server.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def wait_for(url: Text, process: subprocess.Popen, timeout: float = 180) -> None:
    """Returns once `url` answers without a server error; fails at once if `process` ended."""
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


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", re.MULTILINE)  # how each record starts


def tracebacks(text: Text) -> List[Tuple[int, Text]]:
    """Where each traceback in a server's log starts, and its text up to the next record."""
    found = []
    start = text.find("Traceback")
    while start != -1:
        following = LOG_RECORD.search(text, start)
        found.append((start, text[start:following.start() if following else len(text)]))
        start = text.find("Traceback", start + 1)
    return found


def assert_no_traceback(log: Path, expected: Sequence[Text] = ()) -> None:
    """A server that logged a traceback failed somewhere, even if every reply looked right.
    Only a fault a test caused on purpose may leave one: a traceback that contains one of
    the `expected` texts (what that fault's exception says)."""
    text = log.read_text(errors="replace")
    for start, traceback in tracebacks(text):
        assert any(each in traceback for each in expected), f"{log}:\n{text[max(0, start - 500):][:3000]}"


class Server:
    """One server process in its own process group (so that stopping it ends every Sanic
    worker), writing to `log` (appended to across restarts; None: this terminal).

    It is ready once `health` answers and, for a Rasa server, each of its `workers` has
    logged that it is up: the first worker up answers the health check while the others
    may still be loading the model, and would miss the first requests.
    """

    def __init__(
        self, args: Sequence[Text], log: Optional[Path], health: Text = "",
        env: Optional[Dict[Text, Text]] = None, workers: int = 0, cwd: Path = ROOT,
    ) -> None:
        self.args, self.log, self.health, self.workers, self.cwd = list(args), log, health, workers, cwd
        self.env = env or {}  # on top of os.environ as it is when the server starts
        self.process: Optional[subprocess.Popen] = None
        self._log_start = 0
        self.expected_tracebacks: List[Text] = []  # see assert_no_traceback

    @property
    def pid(self) -> int:
        assert self.process, "not started"
        return self.process.pid

    def spawn(self) -> "Server":
        output = None
        if self.log is not None:
            self._log_start = self.log.stat().st_size if self.log.exists() else 0
            output = self.log.open("a")
        self.process = subprocess.Popen(self.args, cwd=self.cwd, stdout=output, stderr=subprocess.STDOUT,
                                        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", **self.env},
                                        start_new_session=True)
        if output is not None:
            output.close()  # the child holds its own copy
        return self

    def ready(self, timeout: float = 300) -> "Server":
        assert self.process, "not started"
        deadline = time.monotonic() + timeout
        if self.health:
            wait_for(self.health, self.process, timeout=timeout)
        while self.log is not None and self._workers_up() < self.workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only some of {self.workers} workers started; see {self.log}")
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args[:3]} exited with {self.process.returncode}; see {self.log}")
            time.sleep(0.5)
        return self

    def _workers_up(self) -> int:
        with self.log.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace").count(UP_AND_RUNNING)

    def start(self, timeout: float = 300) -> "Server":
        return self.spawn().ready(timeout)

    def stop(self, timeout: float = 20) -> None:
        if self.process and self.process.returncode is None:
            stop_process_group(self.process, timeout)

    def kill(self) -> None:
        """Ends the server at once, as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def check_log(self) -> None:
        if self.log is not None:
            assert_no_traceback(self.log, self.expected_tracebacks)


def stop_all(*servers: Server) -> None:
    """Asks every server to stop at once, then waits for each: a graceful Sanic shutdown
    can take seconds, and one after the other they would add up."""
    for server in servers:
        if server.process and server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        server.stop()


def loopback(interface: Text) -> Text:
    """The address a health check on this machine reaches a server on `interface` at."""
    return "127.0.0.1" if interface in ("0.0.0.0", "::", "") else interface


def rasa(*args: Text) -> List[Text]:
    return [str(BIN / "rasa"), *args]


def action_server(
    port: int, log: Optional[Path], interface: Text = "127.0.0.1", env: Optional[Dict[Text, Text]] = None,
    cwd: Path = ROOT, tls: Optional[Tuple[Path, Path]] = None,
) -> Server:
    """The action server of the project in `cwd` (its `actions` package). Given `tls`
    (certificate, key), it serves TLS only: the calls carry whole conversations."""
    args = rasa("run", "actions", "--port", str(port), "--actions", "actions")
    if tls is not None:
        args += ["--ssl-certificate", str(tls[0]), "--ssl-keyfile", str(tls[1])]
    scheme = "https" if tls is not None else "http"
    return Server(
        args, log, health=f"{scheme}://{loopback(interface)}:{port}/health",
        env={**(env or {}), "SANIC_HOST": interface}, cwd=cwd,
    )


def rasa_server(
    port: int, log: Optional[Path], endpoints: Path, credentials: Path, model: Path = MODEL,
    interface: Text = "127.0.0.1", cors: Optional[Text] = None, options: Sequence[Text] = (),
    env: Optional[Dict[Text, Text]] = None, cwd: Path = ROOT,
) -> Server:
    """The Rasa server, with as many workers as SANIC_WORKERS says (one if unset).
    The HTTP API stays off unless `options` turn it on (--enable-api with --auth-token)."""
    env = env or {}
    args = rasa("run", "--model", str(model), "--endpoints", str(endpoints), "--credentials", str(credentials),
                "--interface", interface, "--port", str(port))
    if cors is not None:
        args += ["--cors", cors]
    workers = int(env.get("SANIC_WORKERS", os.environ.get("SANIC_WORKERS", 1)))
    return Server([*args, *options], log, health=f"http://{loopback(interface)}:{port}/", env=env,
                  workers=workers, cwd=cwd)


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
    caller gives it ("s1"): a name's first message starts a conversation, and the id the
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


# `make run` and `make shell`: fixed ports, the files in the project folder, server.env.

CREDENTIALS = ROOT / "build" / "credentials.yml"  # credentials.yml plus the messaging apps turned on
ACTIONS_LOG, DEMO_LOG = ROOT / "logs-actions.txt", ROOT / "logs-widget.txt"  # begun afresh at each start

HOW_TO_CHAT = f"""
The assistant is up on http://localhost:{RASA_PORT} (action server on {ACTION_PORT}).
Chat over REST, for example:
  curl -s localhost:{RASA_PORT}{REST_WEBHOOK} -d '{{"message": "what are withdrawal symptoms?"}}'
The first message starts a conversation: send the recipient_id of its replies as "sender"
to continue it (the server refuses ids it did not issue):
  curl -s localhost:{RASA_PORT}{REST_WEBHOOK} -d '{{"sender": "web-...", "message": "how long does it last?"}}'
Socket.io clients connect to http://localhost:{RASA_PORT} (events user_uttered / bot_uttered).
The demo page with the web chat widget is at {DEMO_ORIGIN}/ (button in the corner).
Or chat in a terminal with: make shell
Trainers review conversations in the browser with: make workbench (http://localhost:5010;
accounts: make workbench-user ARGS=<name>)
Stop with Ctrl+C.
"""


def chat_interface() -> Text:
    """Both servers listen on this machine only, unless CHAT_INTERFACE says otherwise
    (for example 0.0.0.0 behind a proxy on another host)."""
    return os.environ.get("CHAT_INTERFACE", "127.0.0.1")


def local_servers(interface: Text) -> Tuple[Server, Server]:
    """The action server and the Rasa server of `make run`, on `interface`. The Rasa
    server's log goes to this terminal; the HTTP API stays off."""
    env = server_env()
    actions = action_server(ACTION_PORT, ACTIONS_LOG, interface=interface, env=env)
    assistant = rasa_server(RASA_PORT, None, endpoints=ROOT / "endpoints.yml", credentials=CREDENTIALS,
                            interface=interface, cors=DEMO_ORIGIN, env=env)
    return actions, assistant


def run(interface: Text) -> int:
    """`make run`: both servers and the demo page with the web chat widget, until Ctrl+C
    (0) or until the Rasa server ends by itself (its exit code)."""
    from scripts.credentials import write_credentials

    write_credentials(CREDENTIALS)
    ACTIONS_LOG.unlink(missing_ok=True)
    DEMO_LOG.unlink(missing_ok=True)
    actions, assistant = local_servers(interface)
    demo = Server([sys.executable, "-m", "http.server", str(DEMO_PORT), "--bind", "localhost",
                   "--directory", str(ROOT / "build" / "widget")], DEMO_LOG)
    try:
        actions.spawn()
        demo.spawn()
        assistant.spawn()
        actions.ready()
        assistant.ready()
        print(HOW_TO_CHAT, flush=True)
        return assistant.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all(assistant, demo, actions)


def shell() -> int:
    """`make shell`: chat in this terminal, with one worker (several would all read it)."""
    ACTIONS_LOG.unlink(missing_ok=True)
    actions = action_server(ACTION_PORT, ACTIONS_LOG, env=server_env()).spawn()
    try:
        return subprocess.call(rasa("shell", "--model", str(MODEL), "--endpoints", "endpoints.yml"), cwd=ROOT,
                               env={**os.environ, **server_env(), "SANIC_WORKERS": "1"})
    finally:
        actions.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "shell"])
    command = parser.parse_args().command
    # The servers run in process groups of their own (Ctrl+C reaches only this process),
    # so however this process is told to end, it stops them first.
    for ending in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(ending, lambda number, frame: sys.exit(128 + number))
    if command == "shell":
        sys.exit(shell())
    sys.exit(run(chat_interface()))


if __name__ == "__main__":
    main()
