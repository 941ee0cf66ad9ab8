"""Rasa's socket.io channel (the web widget's), with the protections of the REST channel.

Rasa's own channel turns engine.io's Origin check off, lets a socket join whatever
conversation it names, and passes every message on unchecked. This one

* accepts browsers only from the sites in `cors_allowed_origins` (credentials.yml);
  without that setting, only pages served by the assistant's own address;
* owns its conversations: the server issues each new conversation an unguessable id
  signed with a server secret, and a socket can only join an id the server issued.
  Ids start with `web-`, so they never collide with another channel's (a Twilio
  sender is a phone number). Whoever holds an id can resume it; the widget keeps it
  only for the tab's session;
* deletes the conversation for real on `session_forget` ("Start over") and starts a
  new one;
* sends each message through the guard (channels/guard.py) and answers kindly, with the
  emergency numbers, when it cannot answer.

The handlers are replaced through python-socketio's public `on()`; `eio` is pinned by
tests/test_socketio.py.
"""
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic

from channels.guard import Guard, client_address, readable
from channels.messages import CANNOT_ANSWER, EMERGENCY
from channels.rest import MAX_BODY_BYTES
from channels.sessions import SessionIds, forget_conversation

logger = logging.getLogger(__name__)

NOT_TEXT = f"I can only read text messages. Please type your question. {EMERGENCY}"


class CheckedSocketIOInput(SocketIOInput):
    """socket.io channel with checked origins, owned conversations and the guard."""

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        channel = super().from_credentials(credentials)
        channel.allowed_origins = credentials.get("cors_allowed_origins")
        channel.guard = Guard.from_credentials(credentials)
        channel.ids = SessionIds.from_credentials(credentials)
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        # None: engine.io allows only the server's own origin; [] would turn the check off.
        sio.eio.cors_allowed_origins = self.allowed_origins or None
        sio.eio.max_http_buffer_size = MAX_BODY_BYTES
        conversations: Dict[Text, Text] = {}  # socket id -> the conversation it joined

        async def reply(sid: Text, text: Text) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid, namespace=self.namespace)

        async def join(sid: Text, requested: Any) -> Text:
            session_id = requested if self.ids.issued(requested) else self.ids.issue()
            previous = conversations.get(sid)
            if previous and previous != session_id:
                sio.leave_room(sid, previous, namespace=self.namespace)
            conversations[sid] = session_id
            sio.enter_room(sid, session_id, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
            return session_id

        async def session_request(sid: Text, data: Any) -> None:
            await join(sid, data.get("session_id") if isinstance(data, dict) else None)

        async def user_message(sid: Text, data: Any) -> None:
            data = data if isinstance(data, dict) else {}
            # A socket writes only into the conversation it was confirmed for; one that
            # never asked gets a new conversation rather than losing its message.
            session_id = conversations.get(sid) or await join(sid, None)
            text = data.get("message")
            if not isinstance(text, str):
                return await reply(sid, NOT_TEXT)
            text = readable(text)
            environ = sio.get_environ(sid, namespace=self.namespace) or {}
            request = environ.get("sanic.request")
            address = client_address(request) if request is not None else environ.get("REMOTE_ADDR")
            refusal = await self.guard.refusal(session_id, address, text)
            if refusal:
                return await reply(sid, refusal)
            metadata = data.get(self.metadata_key)
            message = UserMessage(
                text, SocketIOOutput(sio, self.bot_message_evt), session_id,
                input_channel=self.name(), metadata=metadata if isinstance(metadata, dict) else None,
            )
            try:
                await on_new_message(message)
            except Exception as error:
                # Only the error's type: its text may quote the message.
                logger.error("Could not answer a socket.io message: %s", type(error).__name__)
                await reply(sid, CANNOT_ANSWER)

        async def session_forget(sid: Text, _: Any = None) -> None:
            """"Start over": the conversation is deleted and a new one begins."""
            session_id = conversations.get(sid)
            await join(sid, None)  # first, so that the next message goes to the new one
            if session_id:
                try:
                    await forget_conversation(Sanic.get_app().ctx.agent, session_id)
                except Exception as error:
                    logger.error("Could not delete a conversation: %s", type(error).__name__)

        async def disconnect(sid: Text) -> None:
            conversations.pop(sid, None)

        sio.on("session_request", session_request, namespace=self.namespace)
        sio.on(self.user_message_evt, user_message, namespace=self.namespace)
        sio.on("session_forget", session_forget, namespace=self.namespace)
        sio.on("disconnect", disconnect, namespace=self.namespace)
        return webhook
