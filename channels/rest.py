"""Rasa's REST and callback channels, with requests checked before they reach the assistant.

Rasa's own channel files a request without a sender under the shared id "default",
mixing strangers' conversations, and answers a malformed body with a server error.
This one answers such requests with a 400 and a plain explanation instead.
"""
from typing import Any, Awaitable, Callable, Optional, Text

from sanic import Blueprint, response
from sanic.request import Request

from rasa.core.channels.callback import CallbackInput
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput

MAX_SENDER_LENGTH = 200


def request_problem(request: Request) -> Optional[Text]:
    """What is wrong with a webhook request, or None when it can be handled."""
    try:
        body: Any = request.json
    except Exception:
        return "The request body must be JSON."
    if not isinstance(body, dict):
        return 'The request body must be a JSON object like {"sender": "...", "message": "..."}.'
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_LENGTH:
        return f'"sender" must be a non-empty string of at most {MAX_SENDER_LENGTH} characters.'
    if not isinstance(message, str):
        return '"message" must be a string.'
    return None


def refuse_malformed(webhook: Blueprint) -> Blueprint:
    """Adds a check to a REST-style webhook: malformed POSTs get a 400, not the bot."""

    @webhook.middleware("request")
    async def check(request: Request) -> Optional[response.HTTPResponse]:
        if request.method == "POST":
            problem = request_problem(request)
            if problem:
                return response.json({"error": problem}, status=400)
        return None

    return webhook


class CheckedRestInput(RestInput):
    """REST channel (`/webhooks/rest/webhook`) that refuses malformed requests."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        return refuse_malformed(super().blueprint(on_new_message))


class CheckedCallbackInput(CallbackInput):
    """Callback channel (`/webhooks/callback/webhook`) that refuses malformed requests.

    Replies are POSTed to the `url` of its credentials, one JSON message each.
    """

    @classmethod
    def name(cls) -> Text:
        return "callback"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        return refuse_malformed(super().blueprint(on_new_message))
