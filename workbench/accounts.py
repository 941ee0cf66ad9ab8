"""Accounts, sessions, failed sign-ins and "reviewed" marks, in one small SQLite file.

The file is created readable by its owner only (0600), like the conversation store.
Passwords are kept only as argon2id hashes (argon2-cffi); session tokens only as their
SHA-256, so a copy of the file signs nobody in. Conversations are named by their masked
ids (`conv-...`), never by the sender id, which can be a phone number.
"""
import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Set

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from stores.sql import create_private

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD = 12
SESSION_IDLE = 8 * 3600  # seconds a session lasts without a request
SESSION_MAX = 24 * 3600  # and at most, in all
# Failed sign-ins allowed in FAILURE_WINDOW seconds, per account and per client address.
FAILURE_WINDOW = 15 * 60
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_ADDRESS = 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, hash TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reviewed (conversation TEXT PRIMARY KEY, name TEXT NOT NULL, at REAL NOT NULL);
"""
# A hash to verify against when the account does not exist, so that a wrong name takes
# as long as a wrong password and does not tell which accounts exist.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class AccountError(Exception):
    """A problem the person can fix (a short password, a taken name): shown, not traced."""


@dataclass
class Session:
    name: str
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class Accounts:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private(str(path))
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    # Accounts

    def create_user(self, name: str, password: str) -> None:
        if not USERNAME.fullmatch(name):
            raise AccountError("a user name is 1 to 64 lower-case letters, digits, dots, dashes or underscores")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
        if password.strip().lower() in {name, "password1234", "123456789012"}:
            raise AccountError("choose a password nobody could guess")
        with self._lock, self._connect() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"there is already an account '{name}'")
            db.execute("INSERT INTO users VALUES (?, ?, ?)", (name, _HASHER.hash(password), time.time()))

    def users(self) -> Set[str]:
        with self._connect() as db:
            return {name for (name,) in db.execute("SELECT name FROM users")}

    # Sign-in and its rate limit

    def wait_seconds(self, name: str, address: str) -> int:
        """How long sign-ins for `name` or from `address` are refused (0: they are not)."""
        now = time.time()
        with self._connect() as db:
            db.execute("DELETE FROM failures WHERE at < ?", (now - FAILURE_WINDOW,))
            waits = []
            for key, limit in ((f"user:{name}", FAILURES_PER_ACCOUNT), (f"addr:{address}", FAILURES_PER_ADDRESS)):
                times = [at for (at,) in db.execute("SELECT at FROM failures WHERE key = ? ORDER BY at", (key,))]
                if len(times) >= limit:
                    waits.append(int(times[-limit] + FAILURE_WINDOW - now) + 1)
            return max(waits, default=0)

    def sign_in(self, name: str, password: str, address: str) -> Optional[str]:
        """A new session token when the password is right, else None (and a failure counted)."""
        with self._connect() as db:
            row = db.execute("SELECT hash FROM users WHERE name = ?", (name,)).fetchone()
        try:
            ok = _HASHER.verify(row[0] if row else _DUMMY_HASH, password) and row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        with self._lock, self._connect() as db:
            if not ok:
                now = time.time()
                db.executemany("INSERT INTO failures VALUES (?, ?)", [(f"user:{name}", now), (f"addr:{address}", now)])
                return None
            db.execute("DELETE FROM failures WHERE key = ?", (f"user:{name}",))
            if _HASHER.check_needs_rehash(row[0]):
                db.execute("UPDATE users SET hash = ? WHERE name = ?", (_HASHER.hash(password), name))
            token = secrets.token_urlsafe(32)
            now = time.time()
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                       (_digest(token), name, secrets.token_urlsafe(32), now, now))
            return token

    def session(self, token: Optional[str]) -> Optional[Session]:
        """The live session of a cookie's token; it stays alive while it is used."""
        if not token:
            return None
        now = time.time()
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE seen < ? OR created < ?", (now - SESSION_IDLE, now - SESSION_MAX))
            row = db.execute("SELECT name, csrf FROM sessions WHERE token_hash = ?", (_digest(token),)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE sessions SET seen = ? WHERE token_hash = ?", (now, _digest(token)))
        return Session(*row)

    def sign_out(self, token: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))

    # Reviewed conversations

    def reviewed(self) -> Dict[str, str]:
        """Masked conversation id -> who marked it reviewed."""
        with self._connect() as db:
            return dict(db.execute("SELECT conversation, name FROM reviewed"))

    def mark_reviewed(self, conversation: str, name: str, reviewed: bool = True) -> None:
        with self._connect() as db:
            if reviewed:
                db.execute("INSERT OR REPLACE INTO reviewed VALUES (?, ?, ?)", (conversation, name, time.time()))
            else:
                db.execute("DELETE FROM reviewed WHERE conversation = ?", (conversation,))
