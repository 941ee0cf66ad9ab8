"""The load generator: simulated users chatting with a Rasa server over its REST channel.

Runs as its own process (`python -m bench.load URL SCENARIO`), so the client's work
never shares a CPU budget with the server it measures. Prints one JSON object.

The assistant issues each conversation's id (the first message goes without a sender);
the stock bot's channel files a message without a sender under one shared id, so there
the client names each conversation.
"""
import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from typing import Any, Dict, List, Text

import aiohttp

from tools.servers import Conversation

# A realistic six-turn conversation for each bot; users take turns at the variants.
CONVERSATIONS = {
    "assistant": [
        ["hi", "hello there", "hey"],
        ["what are the symptoms of opiate withdrawal", "what does withdrawal feel like",
         "how will i feel when i stop using"],
        ["is it safe to take klonopin for withdrawal", "can i use clonazepam to get through detox",
         "should i take benzos while i come off opioids"],
        ["tell me about methadone", "what is buprenorphine", "what is suboxone"],
        ["thank you", "thanks a lot", "that helps, thanks"],
        ["bye", "goodbye", "see you later"],
    ],
    "stock": [
        ["hi", "hello there", "hey"],
        ["i am sad", "I am feeling very sad", "I'm unhappy"],
        ["yes", "yes please", "of course"],
        ["are you a bot?", "am I talking to a human?", "are you a robot?"],
        ["great", "I am feeling good", "perfect"],
        ["bye", "goodbye", "see you later"],
    ],
}
TIMEOUT = aiohttp.ClientTimeout(total=60)
# The stock bot's policies sometimes answer nothing deep into a long conversation (seen
# once in five runs); that is its behaviour, not a failed request. The assistant must
# always answer.
MAY_STAY_SILENT = {"stock"}
ISSUES_IDS = {"assistant"}


class Errors(Exception):
    """A request failed or came back without a reply."""


def new_conversation(bot: Text) -> Conversation:
    return Conversation() if bot in ISSUES_IDS else Conversation(uuid.uuid4().hex)


async def send(session: aiohttp.ClientSession, url: Text, bot: Text, conversation: Conversation, text: Text) -> float:
    """Sends one message; returns the seconds until the full reply arrived."""
    start = time.perf_counter()
    async with session.post(url, json=conversation.body(text)) as response:
        body = await response.json(content_type=None)
        if response.status != 200 or (not body and bot not in MAY_STAY_SILENT):
            raise Errors(f"{response.status} {body!r} for {text!r}")
    conversation.remember(body)
    return time.perf_counter() - start


async def converse(url: Text, bot: Text, user: int, deadline: float) -> List[float]:
    """One user holding fresh six-turn conversations, one after another, until the deadline.

    Each conversation is a new visitor, so it comes on a connection of its own.
    """
    latencies: List[float] = []
    for number in itertools.count():
        conversation = new_conversation(bot)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for turn in CONVERSATIONS[bot]:
                if time.perf_counter() >= deadline:
                    return latencies
                latencies.append(await send(session, url, bot, conversation, turn[(user + number) % len(turn)]))
    return latencies


async def concurrent(url: Text, bot: Text, users: int, seconds: float) -> Dict[Text, Any]:
    """`users` users at once for `seconds`; throughput counts every reply over the wall time.

    Every user keeps chatting until the end, so a server process that happens to hold
    fewer of the open connections never sits idle while the measurement still runs.
    """
    start = time.perf_counter()
    results = await asyncio.gather(
        *(converse(url, bot, user, start + seconds) for user in range(users)),
        return_exceptions=True,
    )
    wall = time.perf_counter() - start
    errors = [repr(result) for result in results if isinstance(result, BaseException)]
    latencies = [value for result in results if isinstance(result, list) for value in result]
    return {"users": users, "messages": len(latencies), "errors": errors, "wall_s": wall,
            "throughput": len(latencies) / wall, **percentiles(latencies)}


async def long_conversation(url: Text, bot: Text, turns: int, repeats: int) -> Dict[Text, Any]:
    """Latency at each turn of `repeats` conversations, each `turns` messages long."""
    by_turn: List[List[float]] = [[] for _ in range(turns)]
    flat = [text for turn in CONVERSATIONS[bot][1:5] for text in turn]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for _ in range(repeats):
            conversation = new_conversation(bot)
            for turn in range(turns):
                by_turn[turn].append(await send(session, url, bot, conversation, flat[turn % len(flat)]))
    return {"latency_by_turn_ms": [[1000 * v for v in values] for values in by_turn]}


def percentiles(latencies: List[float]) -> Dict[Text, float]:
    ordered = sorted(latencies) or [float("nan")]

    def at(fraction: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the server's REST webhook URL")
    parser.add_argument("bot", choices=sorted(CONVERSATIONS))
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the users chat")
    parser.add_argument("--long", type=int, default=0, help="turns of one long conversation")
    parser.add_argument("--repeats", type=int, default=1, help="long conversations to hold")
    args = parser.parse_args()
    if args.long:
        result = asyncio.run(long_conversation(args.url, args.bot, args.long, args.repeats))
    else:
        result = asyncio.run(concurrent(args.url, args.bot, args.users, args.seconds))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
