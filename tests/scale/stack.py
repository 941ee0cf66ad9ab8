"""The production topology on loopback: PostgreSQL, Redis, nginx, two Rasa replicas and
one action server, all real processes started here (deploy/ holds their configuration).
nginx, the replicas, the action server, PostgreSQL and Redis speak TLS only, with a
certificate from a throwaway CA.
"""
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Text

import psycopg2
import redis

from deploy.render_nginx import render
from tools.servers import (
    DEMO_ORIGIN, MODEL, ROOT, RestClient, Server, action_server, free_port, rasa_server, server_env, stop_all,
)

ORIGIN = DEMO_ORIGIN  # the demo page's origin, as `make run` serves it
REPLICA_NAME = "localhost"  # the name nginx checks in the replicas' certificate
DB_USER, DB_NAME = "rasa", "rasa"


class Certificates:
    """A throwaway CA and a server certificate it signed for `names` (subjectAltName
    entries; 127.0.0.1 and localhost unless told otherwise)."""

    def __init__(self, folder: Path, names: Sequence[Text] = ("IP:127.0.0.1", "DNS:localhost")) -> None:
        self.folder, self.names = folder, names
        self.ca, self.certificate, self.key = folder / "ca.crt", folder / "server.crt", folder / "server.key"

    def create(self) -> None:
        self.folder.mkdir()
        ca_key = self.folder / "ca.key"
        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
        openssl("req", "-x509", *new_key, "-keyout", ca_key, "-out", self.ca, "-subj", "/CN=withdrawal-help test CA")
        openssl("req", "-x509", *new_key, "-keyout", self.key, "-out", self.certificate, "-subj", "/CN=localhost",
                "-CA", self.ca, "-CAkey", ca_key, "-addext", "subjectAltName=" + ",".join(self.names),
                "-addext", "basicConstraints=critical,CA:FALSE")

    def context(self) -> ssl.SSLContext:
        """A client's TLS settings that trust the throwaway CA only."""
        return ssl.create_default_context(cafile=str(self.ca))

    def server_context(self) -> ssl.SSLContext:
        """A server's TLS settings with the signed certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, self.key)
        return context


def openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def pg_bin(name: Text) -> Text:
    """A PostgreSQL server program; Debian keeps them out of PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    assert found, f"{name} not found: run `make install` (system-packages.txt lists postgresql)"
    return str(found[-1])


class Postgres:
    """A throw-away PostgreSQL cluster on a free loopback port, TLS and password required."""

    def __init__(self, tls: Certificates) -> None:
        # PostgreSQL refuses to run as root; then it runs as the `postgres` user, which
        # cannot enter pytest's private temp folders, hence a folder of its own.
        self.as_owner: List[Text] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.dir = Path(tempfile.mkdtemp(prefix="withdrawal-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        self.port, self.password = free_port(), secrets.token_hex(16)
        self.tls = tls

    def create(self) -> None:
        """A new cluster with the `rasa` user and database, started."""
        (self.dir / "pw").write_text(self.password)
        if self.as_owner:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.dir / "pw", "postgres")
        self.run(pg_bin("initdb"), "-D", str(self.data), "-U", DB_USER, "--pwfile", str(self.dir / "pw"),
                 "--auth", "scram-sha-256", "-E", "UTF8", "--no-locale")
        self.require_tls()
        self.start()
        self.run(pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, "-d", "postgres",
                 "-c", f"CREATE DATABASE {DB_NAME}", env={"PGPASSWORD": self.password, "PGSSLMODE": "verify-full",
                                                          "PGSSLROOTCERT": str(self.dir / "ca.crt")})

    def require_tls(self) -> None:
        """Serves the certificate and accepts TCP connections over TLS only (`hostssl`)."""
        # Copies the server's own user can read; it refuses a key that anyone else can.
        for source in [self.tls.ca, self.tls.certificate, self.tls.key]:
            copy = self.dir / source.name
            shutil.copy(source, copy)
            copy.chmod(0o600)
            if self.as_owner:
                shutil.chown(copy, "postgres")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"ssl = on\nssl_cert_file = '{self.dir / 'server.crt'}'\n"
                       f"ssl_key_file = '{self.dir / 'server.key'}'\nssl_min_protocol_version = 'TLSv1.2'\n")
        (self.data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 scram-sha-256\n")

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

    def connect(self, **options: Text) -> "psycopg2.extensions.connection":
        """A connection as the replicas' user; by default over TLS, checked as the replicas check it."""
        options = {"sslmode": "verify-full", "sslrootcert": str(self.tls.ca), **options}
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER, password=self.password,
                                dbname=DB_NAME, **options)

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


class Stack(RestClient):
    """PostgreSQL + Redis + action server + two Rasa replicas + nginx, on loopback.

    `say` chats through nginx (or a replica's `url`); a conversation's issued id is valid
    on every replica, which all sign with one secret."""

    timeout = 120

    def __init__(self, workdir: Path) -> None:
        assert MODEL.exists(), "run `make train` first (make test does it)"
        super().__init__()
        self.workdir = workdir
        self.api_token = secrets.token_urlsafe(24)
        self.tls = Certificates(workdir / "tls")
        self.postgres = Postgres(self.tls)
        self.redis_port = free_port()
        # TLS only (no plain port); clients log in with a password, not a client certificate.
        self.redis = Server(
            ["redis-server", "--port", "0", "--tls-port", str(self.redis_port), "--tls-cert-file",
             str(self.tls.certificate), "--tls-key-file", str(self.tls.key), "--tls-auth-clients", "no",
             "--tls-protocols", "TLSv1.2 TLSv1.3", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            workdir / "redis.log", health="",
        )
        action_port = free_port()
        self.actions = action_server(action_port, workdir / "actions.log", tls=(self.tls.certificate, self.tls.key))
        # The replicas check the action server against a copy of the CA of their own, so that
        # a test can give them the wrong one without touching PostgreSQL's, Redis's or nginx's.
        self.actions_ca = workdir / "actions-ca.crt"
        self.env = {
            "ACTION_SERVER_URL": f"https://127.0.0.1:{action_port}/webhook",
            "ACTION_SERVER_CA_CERT": str(self.actions_ca),
            "DB_HOST": "127.0.0.1", "DB_PORT": str(self.postgres.port), "DB_DATABASE": DB_NAME,
            "DB_USER": DB_USER, "DB_PASSWORD": self.postgres.password,
            "DB_SSLMODE": "verify-full", "DB_CA_CERT": str(self.tls.ca),
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.redis_port), "REDIS_PASSWORD": "",
            "REDIS_CA_CERT": str(self.tls.ca),
            # A replica killed while holding a conversation's lock frees it after this long.
            "TICKET_LOCK_LIFETIME": "20",
            # The replicas count the client's address that nginx passes on, not nginx's own.
            "SANIC_PROXIES_COUNT": "1",
            # A body over 256 KiB is refused before it is read, behind nginx too (server.env).
            "SANIC_REQUEST_MAX_SIZE": server_env()["SANIC_REQUEST_MAX_SIZE"],
            # Every replica signs and checks the widget's conversation ids with one secret.
            "CHAT_SESSION_SECRET": secrets.token_hex(32),
        }
        self.replicas = [self.replica(index) for index in range(2)]
        self.nginx_dir = workdir / "nginx"
        self.port, self.http_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.http_url = f"http://127.0.0.1:{self.http_port}"  # only redirects to `url`
        self.nginx = Server(
            ["nginx", "-p", str(self.nginx_dir), "-c", str(self.nginx_dir / "nginx.conf"), "-g", "daemon off;"],
            workdir / "nginx.log", health=self.url + "/",
        )

    def start(self) -> None:
        self.tls.create()
        shutil.copy(self.tls.ca, self.actions_ca)
        # Every https request of the tests (requests honours this) checks nginx's
        # certificate against the throwaway CA.
        os.environ["REQUESTS_CA_BUNDLE"] = str(self.tls.ca)
        self.postgres.create()
        self.start_redis()
        self.actions.start()
        for replica in self.replicas:
            replica.spawn()
        for replica in self.replicas:
            replica.ready()
        (self.nginx_dir / "logs").mkdir(parents=True)
        (self.nginx_dir / "nginx.conf").write_text(render(
            f"127.0.0.1:{self.port}", f"127.0.0.1:{self.http_port}", str(self.tls.certificate), str(self.tls.key),
            [r.address for r in self.replicas], [ORIGIN], "127.0.0.1", str(self.tls.ca), REPLICA_NAME))
        self.nginx.start()

    def replica(self, index: int) -> Server:
        """A Rasa replica with the production endpoints (deploy/), serving TLS only, its HTTP
        API behind a token."""
        port = free_port()
        tls = ["--ssl-certificate", str(self.tls.certificate), "--ssl-keyfile", str(self.tls.key)]
        server = rasa_server(port, self.workdir / f"rasa-{index}.log", endpoints=ROOT / "deploy" / "endpoints.yml",
                             credentials=ROOT / "credentials.yml", cors=ORIGIN,
                             options=["--enable-api", "--auth-token", self.api_token, *tls], env=self.env)
        server.address = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
        server.url = f"https://127.0.0.1:{port}"  # type: ignore[attr-defined]
        server.health = server.url + "/"
        return server

    def redis_client(self) -> redis.Redis:
        """A client of the lock store's Redis, over TLS with the host name checked."""
        return redis.Redis(host="127.0.0.1", port=self.redis_port, ssl=True, ssl_ca_certs=str(self.tls.ca),
                           ssl_check_hostname=True)

    def start_redis(self) -> None:
        self.redis.spawn()
        deadline = time.time() + 30
        while True:
            try:
                self.redis_client().ping()
                return
            except redis.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def expect_traceback(self, text: Text) -> None:
        """Lets a fault a test injects on purpose leave the traceback that says `text` in a
        replica's log; any other traceback there still fails the tests (see stop())."""
        for replica in self.replicas:
            replica.expected_tracebacks.append(text)

    def events(self, sender: Text) -> List[tuple]:
        """(type_name, data) of every stored event of `sender`, in order."""
        return self.postgres.query("SELECT type_name, data FROM events WHERE sender_id = %s ORDER BY id", sender)

    def stop(self) -> None:
        """Stops every server; a traceback in a replica's or the action server's log fails
        the tests that used the stack, as it does for the test suite's own servers."""
        stop_all(self.nginx, *self.replicas, self.actions, self.redis)
        self.postgres.remove()
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
        for server in [*self.replicas, self.actions]:
            server.check_log()
