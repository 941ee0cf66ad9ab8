"""The production topology on loopback: PostgreSQL, Redis, nginx, two Rasa replicas and
one action server, all real processes started here (deploy/ holds their configuration).
"""
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Text

import psycopg2
import redis
import requests

from conftest import BIN, MODEL, ROOT, free_port, wait_for
from deploy.render_nginx import render

ORIGIN = "http://localhost:8080"  # the demo page's origin, as in scripts/run.sh
DB_USER, DB_NAME = "rasa", "rasa"


def pg_bin(name: Text) -> Text:
    """A PostgreSQL server program; Debian keeps them out of PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    assert found, f"{name} not found: run `make install` (system-packages.txt lists postgresql)"
    return str(found[-1])


class Postgres:
    """A throw-away PostgreSQL cluster on a free loopback port, password required."""

    def __init__(self) -> None:
        # PostgreSQL refuses to run as root; then it runs as the `postgres` user, which
        # cannot enter pytest's private temp folders, hence a folder of its own.
        self.as_owner: List[Text] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.dir = Path(tempfile.mkdtemp(prefix="withdrawal-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        self.port, self.password = free_port(), secrets.token_hex(16)

    def create(self) -> None:
        """A new cluster with the `rasa` user and database, started."""
        (self.dir / "pw").write_text(self.password)
        if self.as_owner:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.dir / "pw", "postgres")
        self.run(pg_bin("initdb"), "-D", str(self.data), "-U", DB_USER, "--pwfile", str(self.dir / "pw"),
                 "--auth", "scram-sha-256", "-E", "UTF8", "--no-locale")
        self.start()
        self.run(pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, "-d", "postgres",
                 "-c", f"CREATE DATABASE {DB_NAME}", env={"PGPASSWORD": self.password})

    def run(self, *args: Text, env: Optional[Dict[Text, Text]] = None) -> None:
        subprocess.run([*self.as_owner, *args], check=True, capture_output=True, cwd=self.dir,
                       env={**os.environ, **(env or {})})

    def ctl(self, action: Text) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} -c fsync=off"
        self.run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-m", "fast", "-w", action)

    def start(self) -> None:
        self.ctl("start")

    def stop(self) -> None:
        self.ctl("stop")

    def restart(self) -> None:
        self.ctl("restart")

    def connect(self) -> "psycopg2.extensions.connection":
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER, password=self.password,
                                dbname=DB_NAME)

    def query(self, sql: Text, *params: object) -> List[tuple]:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def remove(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """A server process with its log file; it can be killed and started again."""

    def __init__(self, args: List[Text], log: Path, health: Text, env: Optional[Dict[Text, Text]] = None) -> None:
        self.args, self.log, self.health, self.env = args, log, health, env or {}
        self.process: Optional[subprocess.Popen] = None

    def spawn(self) -> "Process":
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", **self.env},
        )
        return self

    def ready(self, timeout: float = 300) -> "Process":
        assert self.process
        wait_for(self.health, self.process, timeout=timeout)
        return self

    def start(self) -> "Process":
        return self.spawn().ready()

    def signal(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)


class Stack:
    """PostgreSQL + Redis + action server + two Rasa replicas + nginx, on loopback."""

    def __init__(self, workdir: Path) -> None:
        assert MODEL.exists(), "run `make train` first (make test does it)"
        self.workdir = workdir
        self.api_token = secrets.token_urlsafe(24)
        self.postgres = Postgres()
        self.redis_port = free_port()
        self.redis = Process(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            workdir / "redis.log", health="",
        )
        action_port = free_port()
        self.actions = Process(
            [str(BIN / "rasa"), "run", "actions", "--port", str(action_port), "--actions", "actions"],
            workdir / "actions.log", health=f"http://127.0.0.1:{action_port}/health",
        )
        self.env = {
            "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook",
            "DB_HOST": "127.0.0.1", "DB_PORT": str(self.postgres.port), "DB_DATABASE": DB_NAME,
            "DB_USER": DB_USER, "DB_PASSWORD": self.postgres.password,
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.redis_port), "REDIS_PASSWORD": "",
            # A replica killed while holding a conversation's lock frees it after this long.
            "TICKET_LOCK_LIFETIME": "20",
            # Every replica signs and checks the widget's conversation ids with one secret.
            "CHAT_SESSION_SECRET": secrets.token_hex(32),
        }
        self.replicas = [self.replica(index) for index in range(2)]
        self.nginx_dir = workdir / "nginx"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.nginx = Process(
            ["nginx", "-p", str(self.nginx_dir), "-c", str(self.nginx_dir / "nginx.conf"), "-g", "daemon off;"],
            workdir / "nginx.log", health=self.url + "/",
        )

    def start(self) -> None:
        self.postgres.create()
        self.start_redis()
        self.actions.start()
        for replica in self.replicas:
            replica.spawn()
        for replica in self.replicas:
            replica.ready()
        (self.nginx_dir / "logs").mkdir(parents=True)
        (self.nginx_dir / "nginx.conf").write_text(
            render(f"127.0.0.1:{self.port}", [r.address for r in self.replicas], [ORIGIN], "127.0.0.1"))
        self.nginx.start()

    def replica(self, index: int) -> Process:
        port = free_port()
        process = Process(
            [str(BIN / "rasa"), "run", "--model", str(MODEL), "--endpoints", str(ROOT / "deploy" / "endpoints.yml"),
             "--credentials", str(ROOT / "credentials.yml"), "--interface", "127.0.0.1", "--port", str(port),
             "--cors", ORIGIN, "--enable-api", "--auth-token", self.api_token],
            self.workdir / f"rasa-{index}.log", health=f"http://127.0.0.1:{port}/", env=self.env,
        )
        process.address = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
        process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        return process

    def start_redis(self) -> None:
        self.redis.spawn()
        deadline = time.time() + 30
        while True:
            try:
                redis.Redis(port=self.redis_port).ping()
                return
            except redis.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def say(self, sender: Text, text: Text, url: Optional[Text] = None, **extra: object) -> requests.Response:
        return requests.post((url or self.url) + "/webhooks/rest/webhook",
                             json={"sender": sender, "message": text, **extra}, timeout=120)

    def events(self, sender: Text) -> List[tuple]:
        """(type_name, data) of every stored event of `sender`, in order."""
        return self.postgres.query("SELECT type_name, data FROM events WHERE sender_id = %s ORDER BY id", sender)

    def stop(self) -> None:
        for process in [self.nginx, *self.replicas, self.actions, self.redis]:
            process.stop()
        self.postgres.remove()
