"""Rasa's Twilio (SMS) channel, with Twilio's request signature checked.

Rasa's own channel answers any POST to /webhooks/twilio/webhook, so anyone could make
the assistant text any phone number from the provider's Twilio number. This one only
accepts requests signed by Twilio (the X-Twilio-Signature header, computed with the
account's auth token over the public webhook URL that Twilio calls).
"""
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from sanic import Blueprint, response
from sanic.request import Request
from twilio.request_validator import RequestValidator

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.twilio import TwilioInput


class CheckedTwilioInput(TwilioInput):
    """Twilio channel (`/webhooks/twilio/webhook`) that refuses unsigned requests."""

    @classmethod
    def name(cls) -> Text:
        return "twilio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        channel = super().from_credentials(credentials)
        # The URL as Twilio calls it, e.g. https://chat.example.org/webhooks/twilio/webhook
        # (behind a proxy the server sees another one, so it is configured, not guessed).
        channel.webhook_url = credentials["webhook_url"]
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        validator = RequestValidator(self.auth_token)

        @webhook.middleware("request")
        async def refuse_unsigned(request: Request) -> Optional[response.HTTPResponse]:
            if request.method != "POST":
                return None
            params = {key: values[0] for key, values in request.form.items()}
            signature = request.headers.get("X-Twilio-Signature", "")
            if not validator.validate(self.webhook_url, params, signature):
                return response.text("Request is not signed by Twilio.", status=403)
            return None

        return webhook
