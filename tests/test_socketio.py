"""The socket.io channel (the web widget's) answers on the real server."""
import asyncio
import uuid

import socketio

from conftest import variation


async def ask_over_socketio(url, text):
    client = socketio.AsyncClient()
    answers = asyncio.Queue()
    session = str(uuid.uuid4())

    @client.on("bot_uttered")
    async def on_bot(message):
        await answers.put(message)

    await client.connect(url, transports=["websocket"])
    await client.emit("session_request", {"session_id": session})
    await client.emit("user_uttered", {"message": text, "session_id": session})
    try:
        return await asyncio.wait_for(answers.get(), timeout=60)
    finally:
        await client.disconnect()


def test_socketio_answers_a_question(servers, responses):
    answer = asyncio.run(ask_over_socketio(servers.url, "what is cold turkey"))
    assert answer["text"] == variation(responses, "utter_faq/cold_turkey")
    assert [reply["title"] for reply in answer["quick_replies"]]
