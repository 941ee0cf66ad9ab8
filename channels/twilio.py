"""Rasa's Twilio (SMS) channel, with Twilio's request signature checked and replays refused.

Rasa's own channel answers any POST to /webhooks/twilio/webhook, so anyone could make
the assistant text any phone number from the provider's Twilio number. This one only
accepts requests signed by Twilio (the X-Twilio-Signature header, computed with the
account's auth token over the public webhook URL that Twilio calls).

A signature has no date, so a signed request that was copied once could be sent again
and again. Each SMS is handled once: its MessageSid is stored as the user message's
`message_id`, and a request whose MessageSid the conversation already holds is answered
with empty TwiML. The check reads the tracker store under the conversation's lock, which
every worker and replica shares, and reads the whole conversation: a replay may come
long after the message.
"""
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text
from xml.sax.saxutils import escape

from sanic import Blueprint, response
from sanic.request import Request
from twilio.request_validator import RequestValidator

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.twilio import TwilioInput, TwilioOutput
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from channels.guard import Guard, readable
from channels.sessions import in_app_namespace
from channels.messages import CANNOT_ANSWER

logger = logging.getLogger(__name__)


def twiml(text: Optional[Text] = None) -> response.HTTPResponse:
    """Twilio's answer: no message (the replies go out through the API), or `text`."""
    message = f"<Message>{escape(text)}</Message>" if text else ""
    return response.text(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{message}</Response>', content_type="text/xml"
    )


def handled_before(tracker: Optional[DialogueStateTracker], message_id: Text) -> bool:
    events = tracker.events if tracker else []
    return any(isinstance(event, UserUttered) and event.message_id == message_id for event in events)


class CheckedTwilioOutput(TwilioOutput):
    """Rasa's Twilio output channel, which keeps going when an SMS cannot be sent.

    Rasa's lets a network error end the handling of the message, and then the
    conversation is not saved: the person's message would be lost, and a replay of it
    handled again.
    """

    async def _send_message(self, message_data: Dict[Text, Any]) -> Any:
        try:
            return await super()._send_message(message_data)
        except Exception as error:
            # Only the error's type: its text may quote the message.
            logger.error("Could not send an SMS: %s", type(error).__name__)
            return None


class CheckedTwilioInput(TwilioInput):
    """Twilio channel (`/webhooks/twilio/webhook`) that refuses unsigned requests and
    handles each SMS once, through the guard, in the conversation `twilio:<phone>`."""

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
        channel.guard = Guard.from_credentials(credentials)
        return channel

    def get_output_channel(self) -> CheckedTwilioOutput:
        return CheckedTwilioOutput(self.account_sid, self.auth_token, self.twilio_number)

    async def handle(self, request: Request) -> Optional[Text]:
        """Handles the SMS under the conversation's lock, unless its MessageSid was handled;
        the guard's kind reply when it may not be handled now."""
        agent = request.app.ctx.agent
        phone, message_id = request.form.get("From"), request.form.get("MessageSid")
        text = readable(request.form.get("Body") or "").replace("¡", "@")  # carriers garble @
        message = in_app_namespace(self.name(), UserMessage(
            text, self.get_output_channel(), phone, input_channel=self.name(), message_id=message_id
        ))
        # Counted as `twilio:<phone>`; Twilio's servers send every user's SMS, so no
        # per-address limit (see MessagingAppInput).
        refusal = await self.guard.refusal(message.sender_id, None, text)
        if refusal:
            return refusal
        async with agent.lock_store.lock(message.sender_id):
            tracker = await agent.tracker_store.retrieve_full_tracker(message.sender_id)
            if message_id and handled_before(tracker, message_id):
                return None
            await agent.processor.handle_message(message)
        return None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Its own routes: Rasa's hand the message to `on_new_message`, which takes the
        conversation's lock itself, too late for the check."""
        webhook = Blueprint("checked_twilio_webhook", __name__)
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

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> response.HTTPResponse:
            if not request.form.get("From"):
                return twiml()
            try:
                return twiml(await self.handle(request))
            except Exception as error:
                # Only the error's type: its text may quote the message.
                logger.error("Could not answer an SMS: %s", type(error).__name__)
                return twiml(CANNOT_ANSWER)

        return webhook
