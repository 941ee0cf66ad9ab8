"""Rasa's Slack, Telegram and Facebook Messenger channels, with each request's sender
checked, and each message through the guard (channels/guard.py) in its app's own
conversations (`telegram:<chat id>`, see channels/sessions.py).

Rasa's Slack channel checks Slack's signature itself.

Rasa's Telegram channel handles any JSON POSTed to /webhooks/telegram/webhook: anyone
who knows the address can write into anyone's conversation (a chat id is a number) and
make the bot message them. This one registers the webhook with a secret token, which
Telegram then sends in the X-Telegram-Bot-Api-Secret-Token header of every update, and
refuses requests without it.

Rasa's Facebook channel checks the SHA-1 X-Hub-Signature, with a plain `==` and a hash
named by the request itself. This one checks X-Hub-Signature-256 (HMAC-SHA256 of the
body with the app secret) in constant time, and refuses requests without it.
Both compare secrets with hmac.compare_digest and refuse with a 403.
"""
import asyncio
import hashlib
import hmac
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from aiogram.bot.api import Methods, TelegramAPIServer
from aiogram.utils.exceptions import TelegramAPIError
from sanic import Blueprint, response
from sanic.request import Request

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.facebook import FacebookInput, Messenger
from rasa.core.channels.slack import SlackInput
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.shared.exceptions import RasaException

from channels.guard import MessagingAppInput

logger = logging.getLogger(__name__)

SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram's setWebhook accepts


def same_secret(given: Text, expected: Text) -> bool:
    """Whether two secrets are equal, in a time that does not tell how much of them is."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class CheckedTelegramOutput(TelegramOutput):
    """Rasa's Telegram output channel, whose set_webhook also registers the secret token."""

    def __init__(self, access_token: Text, secret_token: Text, api_url: Optional[Text] = None) -> None:
        super().__init__(access_token)
        self.secret_token = secret_token
        if api_url:  # a self-hosted Bot API server instead of Telegram's
            self.server = TelegramAPIServer.from_base(api_url)

    async def set_webhook(self, url: Text, **kwargs: Any) -> bool:
        # aiogram 2.15's set_webhook predates setWebhook's secret_token (Bot API 6.1).
        return await self.request(Methods.SET_WEBHOOK, {"url": url, "secret_token": self.secret_token})


class CheckedTelegramInput(MessagingAppInput, TelegramInput):
    """Telegram channel (`/webhooks/telegram/webhook`) that refuses updates without its secret.

    Its credentials are Rasa's plus `secret_token`, and optionally `api_url`: a
    self-hosted Bot API server to use instead of Telegram's.
    """

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials or not credentials.get("webhook_url"):
            cls.raise_missing_credentials_exception()
        secret_token = str(credentials.get("secret_token") or "")
        if not SECRET_TOKEN.fullmatch(secret_token):
            raise RasaException("Telegram's secret_token must be 1 to 256 of A-Z, a-z, 0-9, _ and -.")
        channel = super().from_credentials(credentials)
        channel.secret_token = secret_token
        channel.api_url = credentials.get("api_url")
        return channel

    def get_output_channel(self) -> CheckedTelegramOutput:
        # Rasa's also registers the webhook, each time; blueprint() does it once, at start.
        return CheckedTelegramOutput(self.access_token, self.secret_token, self.api_url)

    async def register_webhook(self) -> None:
        channel = self.get_output_channel()
        try:
            await channel.set_webhook(self.webhook_url)
        except TelegramAPIError as error:
            raise RasaException(f"Failed to set channel webhook: {error}") from error
        finally:
            # Its connections belong to this short-lived event loop. (Not `close()`: in
            # aiogram 3 that is Telegram's close method, which takes the bot offline.)
            await channel.session.close()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        asyncio.run(self.register_webhook())
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def refuse_forged(request: Request) -> Optional[response.HTTPResponse]:
            if request.method != "POST":
                return None
            token = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not same_secret(token, self.secret_token):
                return response.text("Request is not from Telegram.", status=403)
            return None

        return webhook


def valid_signature(app_secret: Text, body: bytes, signature: Text) -> bool:
    """Whether `signature` is Meta's X-Hub-Signature-256 of `body`: "sha256=<hex HMAC>"."""
    expected = "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return same_secret(signature, expected)


class CheckedFacebookInput(MessagingAppInput, FacebookInput):
    """Messenger channel (`/webhooks/facebook/webhook`) that refuses requests without a
    valid SHA-256 signature. Its own routes: Rasa's accept the SHA-1 one."""

    @classmethod
    def name(cls) -> Text:
        return "facebook"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials or not credentials.get("secret") or not credentials.get("verify"):
            cls.raise_missing_credentials_exception()
        return super().from_credentials(credentials)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = self.watch_addresses(Blueprint("checked_facebook_webhook", __name__))
        on_new_message = self.guarded(on_new_message)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def token_verification(request: Request) -> response.HTTPResponse:
            """Meta's check, when the webhook is set up, that this is the app's server."""
            if same_secret(request.args.get("hub.verify_token", ""), self.fb_verify):
                return response.text(request.args.get("hub.challenge", ""))
            return response.text("Wrong verify token.", status=403)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> response.HTTPResponse:
            signature = request.headers.get("X-Hub-Signature-256", "")
            if not valid_signature(self.fb_secret, request.body, signature):
                return response.text("Request is not signed by Facebook.", status=403)
            messenger = Messenger(self.fb_access_token, on_new_message)
            await messenger.handle(request.json, self.get_metadata(request))
            return response.text("success")

        return webhook


class CheckedSlackInput(MessagingAppInput, SlackInput):
    """Rasa's Slack channel (`/webhooks/slack/webhook`), guarded."""

    @classmethod
    def name(cls) -> Text:
        return "slack"
