"""Every test of tests/test_tracker_store.py again, on a real PostgreSQL over TLS (the
cluster of the scale stack, without the rest of it): two replicas alternating on one
conversation, a restart in the middle of a save, a deleted conversation, retention.
An outage here stops the server and starts it again."""
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

import psycopg2
import pytest

from scale.stack import DB_USER, Certificates, Postgres
from test_tracker_store import *  # noqa: F401,F403  (the tests, and their fixtures)
from test_tracker_store import Database


class PostgresDatabase(Database):
    def __init__(self, server: Postgres, name: str) -> None:
        super().__init__({
            "dialect": "postgresql", "host": "127.0.0.1", "port": server.port, "db": name,
            "username": DB_USER, "password": server.password,
            "query": {"sslmode": "verify-full", "sslrootcert": str(server.tls.ca)},
        })
        self.server = server
        self._restart: Optional[threading.Thread] = None

    def outage(self, seconds: float) -> None:
        """Stops PostgreSQL now (`pg_ctl stop -m fast`: every connection dropped) and starts
        it again `seconds` later."""
        self.back()
        self.server.stop()

        def restart() -> None:
            time.sleep(seconds)
            self.server.start()

        self._restart = threading.Thread(target=restart)
        self._restart.start()

    def back(self) -> None:
        if self._restart is not None:
            self._restart.join()
            self._restart = None


class PostgresDatabases:
    def __init__(self, server: Postgres) -> None:
        self.server = server

    def new(self) -> PostgresDatabase:
        name = f"t_{uuid.uuid4().hex[:12]}"
        connection = psycopg2.connect(host="127.0.0.1", port=self.server.port, user=DB_USER,
                                      password=self.server.password, dbname="postgres",
                                      sslmode="verify-full", sslrootcert=str(self.server.tls.ca))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        connection.close()
        return PostgresDatabase(self.server, name)


@pytest.fixture(scope="module")
def databases(tmp_path_factory):  # noqa: F811  (replaces the SQLite one)
    tls = Certificates(Path(tmp_path_factory.mktemp("postgres")) / "tls")
    tls.create()
    server = Postgres(tls)
    try:
        server.create()
        yield PostgresDatabases(server)
    finally:
        server.remove()
