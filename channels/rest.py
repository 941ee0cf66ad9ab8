"""Rasa's REST and callback channels, with requests checked before they reach the assistant.

Rasa's own channel files a request without a sender under the shared id "default",
mixing strangers' conversations, and answers a malformed body with a server error.
This one answers such requests with a 400 and a plain explanation instead.

Like every channel it goes through channels/guard.py (cleaned text, rate limits per
conversation and per client address), never logs what people wrote, and always says
something: when the assistant could not answer (the action server or the lock store is
down) the person gets a kind message with the emergency numbers.
A client may send a `message_id`; a retry with the same id is answered from the stored
conversation instead of being handled twice, so retries never duplicate a message.

REST conversations are owned: a message without a sender starts one, and the server
issues its id (channels/sessions.py); any other id is refused (403) unless the site
owner sets `issued_ids_only: false` for a backend that names its own conversations.
"""
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from sanic import Blueprint, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request

from rasa.core.channels.callback import CallbackInput
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from channels.guard import GuardedInput, Guard, Limits, client_address, readable
from channels.messages import CANNOT_ANSWER, NO_ANSWER, TOO_LONG
from channels.sessions import SessionIds, forget_conversation

logger = logging.getLogger(__name__)

MAX_SENDER_LENGTH = 200
MAX_MESSAGE_ID_LENGTH = 100
MAX_BODY_BYTES = 256 * 1024
NOT_ISSUED = ("This conversation id was not given out by this server. Send the message without "
              "a sender to start a new conversation.")


def request_problem(request: Request, sender_required: bool = True) -> Optional[Text]:
    """What is wrong with a webhook request, or None when it can be handled."""
    try:
        body: Any = request.json
    except Exception:
        return "The request body must be JSON."
    if not isinstance(body, dict):
        return 'The request body must be a JSON object like {"sender": "...", "message": "..."}.'
    sender, message = body.get("sender"), body.get("message")
    may_be_absent = sender is None and not sender_required
    if not may_be_absent and (
        not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_LENGTH
        or not sender.isprintable()
    ):
        return f'"sender" must be a non-empty, printable string of at most {MAX_SENDER_LENGTH} characters.'
    if not isinstance(message, str):
        return '"message" must be a string.'
    message_id = body.get("message_id")
    if message_id is not None and (not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH):
        return f'"message_id" must be a non-empty string of at most {MAX_MESSAGE_ID_LENGTH} characters.'
    if not isinstance(body.get("metadata") or {}, dict):
        return '"metadata" must be a JSON object.'
    return None


def refuse_malformed(webhook: Blueprint) -> Blueprint:
    """Adds a check to a REST-style webhook: malformed POSTs get a 400, not the bot."""

    @webhook.middleware("request")
    async def check(request: Request) -> Optional[response.HTTPResponse]:
        if request.method == "POST":
            problem = request_problem(request)
            if problem:
                return response.json({"error": problem}, status=400)
            if not SessionIds.may_name(request.json["sender"]):
                return response.json({"error": NOT_ISSUED}, status=403)
        return None

    return webhook


def reply(sender: Text, text: Text) -> List[Dict[Text, Any]]:
    return [{"recipient_id": sender, "text": text}]


def stored_replies(tracker: Optional[DialogueStateTracker], message_id: Text) -> Optional[List[Dict[Text, Any]]]:
    """The replies already stored for the user message `message_id`, or None if it is new."""
    replies: Optional[List[Dict[Text, Any]]] = None
    for event in tracker.events if tracker else []:
        if isinstance(event, UserUttered):
            if replies is not None:
                break
            if event.message_id == message_id:
                replies = []
        elif isinstance(event, BotUttered) and replies is not None:
            extra = {key: value for key, value in event.data.items() if value}
            replies.append({"recipient_id": tracker.sender_id, "text": event.text, **extra})
    return replies


async def refuse_oversized_kindly(request: Request, error: Exception) -> response.HTTPResponse:
    """Sanic refuses a body over SANIC_REQUEST_MAX_SIZE before reading it, on every route;
    its own 413 says only "Payload Too Large", this one gives the emergency numbers."""
    return response.json(reply("", TOO_LONG), status=413)


async def answer_root_without_version(
    request: Request, answer: response.HTTPResponse
) -> Optional[response.HTTPResponse]:
    """Rasa's `/` says "Hello from Rasa: 3.6.x", which tells an attacker what to look up;
    this says the server is up and nothing more."""
    if request.path == "/" and answer.status == 200:
        return response.json({"status": "ok"})
    return None


class CheckedRestInput(RestInput):
    """REST channel (`/webhooks/rest/webhook`) that refuses malformed requests.

    A message without a sender starts a new conversation whose id the server issues
    (each reply's `recipient_id`); send it as `sender` to continue. POST {"sender"} to
    `/webhooks/rest/forget` deletes the conversation. Both refuse every other id (403)
    unless `issued_ids_only: false` is set in credentials.yml.
    """

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "CheckedRestInput":
        credentials = credentials or {}
        return cls(
            Limits.from_credentials(credentials), int(credentials.get("max_body_bytes", MAX_BODY_BYTES)),
            SessionIds.from_credentials(credentials),
            # Only an explicit `issued_ids_only: false` lets clients name conversations.
            credentials.get("issued_ids_only", True) is not False,
        )

    def __init__(
        self, limits: Optional[Limits] = None, max_body_bytes: int = MAX_BODY_BYTES,
        ids: Optional[SessionIds] = None, issued_ids_only: bool = True,
    ) -> None:
        self.guard = Guard(limits or Limits())
        self.max_body_bytes = max_body_bytes
        self.ids = ids or SessionIds.from_credentials(None)
        # True: a client resumes only conversations the server issued to it. False (the
        # weaker choice, for a backend that names its users): a client may also name its
        # own, and so write into any conversation whose name it knows or guesses; ids that
        # look issued must still be genuine, and messaging apps' ids stay refused.
        self.issued_ids_only = issued_ids_only

    async def handle(self, request: Request, body: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        """Handles the message under the conversation's lock, once per `message_id`."""
        agent = request.app.ctx.agent
        sender, message_id = body["sender"], body.get("message_id")
        collector = CollectingOutputChannel()
        message = UserMessage(
            readable(body["message"]), collector, sender, input_channel=self.name(),
            message_id=message_id, metadata=body.get("metadata"),
        )
        async with agent.lock_store.lock(sender):
            if message_id:
                earlier = stored_replies(await agent.tracker_store.retrieve(sender), message_id)
                if earlier is not None:
                    return earlier
            await agent.processor.handle_message(message)
        return collector.messages

    def blueprint(self, on_new_message: Any) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.listener("before_server_start")
        async def hide_version_and_refuse_kindly(app: Any, _: Any) -> None:
            app.register_middleware(answer_root_without_version, "response")
            app.error_handler.add(PayloadTooLarge, refuse_oversized_kindly)

        @webhook.route("/forget", methods=["POST"])
        async def forget(request: Request) -> response.HTTPResponse:
            """Deletes a conversation for real ("Start over"): {"sender": "<its id>"}."""
            try:
                sender = request.json.get("sender")
            except Exception:
                sender = None
            if not isinstance(sender, str) or not sender or len(sender) > MAX_SENDER_LENGTH:
                return response.json({"error": 'Send {"sender": "<the conversation id>"}.'}, status=400)
            if not self.ids.may_use(sender, self.issued_ids_only):
                return response.json({"error": NOT_ISSUED}, status=403)
            try:
                await forget_conversation(request.app.ctx.agent, sender)
            except Exception as error:
                logger.error("Could not delete a conversation: %s", type(error).__name__)
                return response.json({"error": "The conversation could not be deleted. Please try again."}, status=503)
            return response.json({"forgotten": True})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> response.HTTPResponse:
            if len(request.body or b"") > self.max_body_bytes:
                return response.json(reply("", TOO_LONG), status=413)
            problem = request_problem(request, sender_required=False)
            if problem:
                return response.json({"error": problem}, status=400)
            sender = request.json.get("sender")
            if sender is None:  # a new conversation: the server names it
                sender = request.json["sender"] = self.ids.issue()
            elif not self.ids.may_use(sender, self.issued_ids_only):
                return response.json({"error": NOT_ISSUED}, status=403)
            refusal = await self.guard.refusal(sender, client_address(request), request.json["message"])
            if refusal:
                return response.json(reply(sender, refusal), status=413 if refusal == TOO_LONG else 429)
            try:
                replies = await self.handle(request, request.json)
            except Exception as error:
                # Only the error's type: its text may quote the message, and health
                # conversations are private.
                logger.error("Could not answer a REST message: %s", type(error).__name__)
                return response.json(reply(sender, CANNOT_ANSWER), status=503)
            return response.json(replies or reply(sender, NO_ANSWER))

        return webhook


class CheckedCallbackInput(GuardedInput, CallbackInput):
    """Callback channel (`/webhooks/callback/webhook`) that refuses malformed requests.

    Replies are POSTed to the `url` of its credentials, one JSON message each.
    """

    @classmethod
    def name(cls) -> Text:
        return "callback"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        return refuse_malformed(super().blueprint(on_new_message))
