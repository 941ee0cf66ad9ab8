"""Bounded load through nginx with a fault injected part-way, and the check of what
PostgreSQL holds afterwards."""
import asyncio
import json
import time
from typing import Any, Callable, Dict, List, Optional, Text

import aiohttp

from stack import Stack
from tools.servers import REST_WEBHOOK, ROOT, Conversation

TURNS = 6
# One script a user; "yes" after the cold turkey answer needs the action server.
SCRIPTS = [
    ["hello", "what are withdrawal symptoms", "is quitting cold turkey a good idea", "yes",
     "can klonopin help with withdrawal", "thanks"],
    ["i'm asking for my son", "how long does withdrawal last", "what is medical detox",
     "what is suboxone", "is it dangerous to quit cold turkey", "bye"],
]


class Load:
    """Simulated users, each sending its turns in order and retrying a failure once.

    Every message carries a `message_id`, so a retry of a message that was handled but
    whose reply got lost is answered from the store instead of being handled twice.
    Each user's first message starts its conversation, whose id the server issues.
    """

    def __init__(self, stack: Stack, name: Text, users: int, fault: Callable[[], None]) -> None:
        self.stack, self.name, self.users, self.fault = stack, name, users, fault
        self.conversations = [Conversation() for _ in range(users)]
        self.replied: Dict[Text, List[Dict[Text, Any]]] = {}  # message_id -> replies
        self.failed: List[Text] = []
        self.retries = 0
        self.seconds = 0.0
        self.fault_due = asyncio.Event()
        self.fault_injected = False

    def sender(self, user: int) -> Optional[Text]:
        """The id the server issued for the user's conversation (None before its first reply)."""
        return self.conversations[user].sender

    def script(self, user: int) -> List[Text]:
        return SCRIPTS[user % len(SCRIPTS)]

    async def send(self, session: aiohttp.ClientSession, user: int, turn: int, text: Text) -> None:
        message_id = f"{self.name}-u{user}-t{turn}"
        conversation = self.conversations[user]
        # Each user comes from an address of its own, as behind a real load balancer.
        headers = {"X-Forwarded-For": f"10.{user}.0.1"}
        for attempt in range(2):
            try:
                body = conversation.body(text, message_id=message_id)
                async with session.post(self.stack.url + REST_WEBHOOK, json=body, headers=headers) as got:
                    if got.content_type == "application/json":
                        conversation.remember(await got.json())
                    if got.status == 200:
                        self.replied[message_id] = await got.json()
                        if len(self.replied) >= self.users * TURNS // 3 and self.everyone_started():
                            self.fault_due.set()
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if attempt == 0:
                self.retries += 1
                await asyncio.sleep(1)
        self.failed.append(message_id)

    def everyone_started(self) -> bool:
        """Whether every user holds its conversation's id. The fault waits for that: a
        first message whose reply is lost cannot be sent again into its conversation,
        since the client never learned the id."""
        return all(conversation.sender for conversation in self.conversations)

    async def user(self, session: aiohttp.ClientSession, user: int) -> None:
        for turn, text in enumerate(self.script(user)):
            await self.send(session, user, turn, text)

    async def _run(self) -> None:
        https = aiohttp.TCPConnector(ssl=self.stack.tls.context())
        async with aiohttp.ClientSession(connector=https, timeout=aiohttp.ClientTimeout(total=150)) as session:
            users = asyncio.gather(*(self.user(session, user) for user in range(self.users)))
            due = asyncio.ensure_future(self.fault_due.wait())
            await asyncio.wait([users, due], return_when=asyncio.FIRST_COMPLETED)
            if self.fault_due.is_set():
                await asyncio.get_running_loop().run_in_executor(None, self.fault)
                self.fault_injected = True
            due.cancel()
            await users

    def run(self) -> "Load":
        """Runs every user at once; injects the fault once a third of the replies are in
        and every user holds its conversation's id (`fault_injected` says whether it was)."""
        started = time.monotonic()
        asyncio.run(self._run())
        self.seconds = time.monotonic() - started
        return self

    def stored_turns(self, sender: Optional[Text]) -> List[Dict[Text, Any]]:
        """The sender's stored user messages, each with the bot texts that follow it."""
        turns: List[Dict[Text, Any]] = []
        for type_name, data in self.stack.events(sender) if sender else []:
            event = json.loads(data)
            if type_name == "user":
                turns.append({"message_id": event["message_id"], "text": event["text"], "replies": []})
            elif type_name == "bot":
                assert turns, f"{sender}: a bot message before any user message"
                turns[-1]["replies"].append(event["text"])
        return turns

    def check(self, fault: Text) -> Dict[Text, Any]:
        """Counts lost, duplicated and corrupted messages in PostgreSQL; the summary."""
        lost, duplicated, wrong = [], [], []
        for user in range(self.users):
            script, turns = self.script(user), self.stored_turns(self.sender(user))
            ids = [turn["message_id"] for turn in turns]
            duplicated += [i for i in set(ids) if ids.count(i) > 1]
            sent = [f"{self.name}-u{user}-t{n}" for n in range(len(script))]
            # Only this user's messages, in the order sent, each with the text sent.
            if any(i not in sent for i in ids) or ids != sorted(set(ids), key=sent.index) or any(
                turn["text"] != script[sent.index(turn["message_id"])] for turn in turns
            ):
                wrong.append(f"user {user} ({self.sender(user)})")
                continue
            for message_id in sent:
                if message_id in self.replied:
                    stored = [turn for turn in turns if turn["message_id"] == message_id]
                    if not stored:
                        lost.append(message_id)
                    elif stored[0]["replies"] != [reply.get("text") for reply in self.replied[message_id]]:
                        wrong.append(message_id)
        return {
            "users": self.users, "turns_each": TURNS, "messages_sent": self.users * TURNS,
            "replied": len(self.replied), "failed_after_retry": len(self.failed), "retries": self.retries,
            "fault": fault, "fault_injected": self.fault_injected,
            "lost": len(lost), "duplicated": len(duplicated), "corrupted": len(wrong),
            "seconds": round(self.seconds, 1), "problems": sorted(set(lost + duplicated + wrong))[:20],
        }


def record(name: Text, summary: Dict[Text, Any]) -> None:
    """Keeps the summary in results/ (and prints it) for the closing report."""
    folder = ROOT / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"scale-{name}.json").write_text(json.dumps(summary, indent=2))
    print(name, summary)
