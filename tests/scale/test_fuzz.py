"""Property-based fuzzing of the REST channel on a real replica: whatever arrives (random
unicode, control characters, huge or deeply nested JSON, bytes that are not JSON) the
answer is never a server error, the server keeps answering, and every conversation it
stored can still be read back."""
import json
import uuid
from typing import Any, List

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.rest import NOT_ISSUED
from stack import Stack

# Ten conversations the server issued, started by the `issued` fixture before fuzzing;
# any other sender is refused (403).
SENDERS: List[str] = []
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
control = st.text(st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=50)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=30,
)
messages = text | control | st.integers(0, 300_000).map(lambda n: "ok " * (n // 3))
well_formed = st.fixed_dictionaries(
    {"sender": st.integers(0, 9).map(lambda n: SENDERS[n]) | text | control, "message": messages},
    optional={"message_id": text, "metadata": json_value, "input_channel": json_value},
).map(json.dumps)
malformed = st.one_of(
    json_value.map(json.dumps),
    st.fixed_dictionaries({"sender": json_value, "message": json_value}).map(json.dumps),
    st.integers(1, 100_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 5_000).map(lambda depth: '{"sender": "x", "message": ' + '{"a": ' * depth + "1" + "}" * depth + "}"),
    st.binary(max_size=500).map(lambda raw: raw.decode("latin-1")),
)


@pytest.fixture(scope="module")
def issued(stack: Stack) -> List[str]:
    for n in range(10):
        name = f"fuzz-{uuid.uuid4().hex[:8]}-{n}"
        assert stack.say(name, "hello", url=stack.replicas[1].url).status_code == 200
        SENDERS.append(stack.sender_id(name))
    return SENDERS


def sender_of(body: str) -> Any:
    try:
        return json.loads(body).get("sender")
    except (ValueError, AttributeError):
        return None


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=well_formed | malformed)
def test_the_rest_channel_never_fails_with_a_server_error(stack: Stack, issued: List[str], body: str):
    response = requests.post(
        stack.replicas[1].url + "/webhooks/rest/webhook", data=body.encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/json"}, timeout=120,
    )
    assert response.status_code in (200, 400, 403, 413, 429), (response.status_code, response.text[:300])
    if response.status_code == 403:  # only ever a sender the server did not issue
        assert response.json() == {"error": NOT_ISSUED} and sender_of(body) not in issued, body[:300]


def user_messages(stack: Stack, sender: str) -> int:
    return sum(type_name == "user" for type_name, _ in stack.events(sender))


def test_after_fuzzing_the_server_answers_and_the_store_reads_back(stack: Stack, issued: List[str]):
    replica = stack.replicas[1]
    assert stack.say(uuid.uuid4().hex, "what are withdrawal symptoms", url=replica.url).status_code == 200
    for sender in issued:
        for _, data in stack.events(sender):
            json.loads(data)
        tracker = requests.get(f"{replica.url}/conversations/{sender}/tracker",
                               params={"token": stack.api_token}, timeout=60)
        assert tracker.status_code == 200
        assert tracker.json()["sender_id"] == sender
    # Each holds the fixture's "hello"; fuzzed messages come after it.
    assert any(user_messages(stack, sender) > 1 for sender in issued), "no fuzzed message reached the store"
