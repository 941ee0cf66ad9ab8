"""Whose conversation an id is.

The browser channels (socket.io and REST) get ids that only the server issues: 128
random bits and their signature with a server secret, so a client can resume only an
id it was given (REST takes other ids only with `issued_ids_only: false`). A messaging
app's conversations are stored as `<app>:<the app's user id>` (`twilio:+15551234567`),
and no browser client may write as such an id, so a REST sender can never be someone's
phone number.
"""
import asyncio
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import OutputChannel

ID_PREFIX = "web-"
MESSAGING_APPS = ("twilio", "slack", "telegram", "facebook")
SECRET_FILE = "session.secret"


def session_secret(path: Path) -> bytes:
    """`CHAT_SESSION_SECRET`, or a random one kept in `path` (created once, readable by
    the server's user only) so that every worker and restart signs the same way."""
    configured = os.environ.get("CHAT_SESSION_SECRET")
    if configured:
        return configured.encode("utf-8")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it right now
            secret = path.read_bytes().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it and restart") from None
    secret = secrets.token_hex(32).encode("ascii")
    with os.fdopen(descriptor, "wb") as file:
        file.write(secret)
    return secret


class SessionIds:
    """Issues conversation ids and recognises the ones it issued."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SessionIds":
        """Signed with the secret of `session_secret_file` (credentials.yml), or the default."""
        return cls(session_secret(Path((credentials or {}).get("session_secret_file", SECRET_FILE))))

    def _signature(self, token: Text) -> Text:
        return hmac.new(self.secret, token.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> Text:
        token = secrets.token_hex(16)
        return f"{ID_PREFIX}{token}.{self._signature(token)}"

    def issued(self, session_id: Any) -> bool:
        if not isinstance(session_id, str) or not session_id.startswith(ID_PREFIX) or "." not in session_id:
            return False
        token, signature = session_id[len(ID_PREFIX):].split(".", 1)
        return token.isascii() and hmac.compare_digest(self._signature(token), signature)

    def may_use(self, sender: Text, issued_only: bool) -> bool:
        """Whether a client may write as `sender`: an id that looks issued must be genuine,
        and with `issued_only` every id must be."""
        if self.issued(sender):
            return True
        return not issued_only and self.may_name(sender)

    @staticmethod
    def may_name(sender: Text) -> bool:
        """Whether a client may name its own conversation `sender`: never with an id that
        looks issued, nor with a messaging app's."""
        return not sender.startswith(ID_PREFIX) and not app_conversation(sender)


def app_conversation(sender: Text) -> bool:
    """Whether `sender` names a messaging app's conversation."""
    return sender.split(":", 1)[0] in MESSAGING_APPS and ":" in sender


class AppOutput(OutputChannel):
    """A messaging app's output channel for conversations stored as `<app>:<user id>`:
    the app is given back its own user id."""

    def __init__(self, app_output: OutputChannel) -> None:
        self.app_output = app_output

    def name(self) -> Text:  # type: ignore[override]
        return self.app_output.name()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        await self.app_output.send_response(recipient_id.split(":", 1)[-1], message)


def in_app_namespace(app: Text, message: Any) -> Any:
    """`message` (a UserMessage) moved into the conversations of `app`."""
    message.sender_id = f"{app}:{message.sender_id}"
    message.output_channel = AppOutput(message.output_channel)
    return message


async def forget_conversation(agent: Any, sender: Text) -> None:
    """Deletes a conversation from the tracker store for real ("Start over"), under its
    lock so that no message of it is half handled, off the event loop."""
    from tools.conversations import forget

    async with agent.lock_store.lock(sender):
        await asyncio.get_running_loop().run_in_executor(None, forget, agent.tracker_store, sender)
