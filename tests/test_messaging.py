"""Messaging integrations: the callback channel, signed webhooks, and the crisis reply
as each messaging app receives it.

A second real server runs here with test secrets for Slack, Facebook and Twilio set in
its environment, so credentials.messaging.yml is read exactly as `make run` reads it.
(Telegram registers its webhook with Telegram when the server starts, which needs the
internet; it is covered by the in-process test at the end.)
"""
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import requests
import yaml

from conftest import ROOT, Servers, texts_of, variation
from scripts.credentials import messaging_channels

SECRETS = {
    "SLACK_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "slack-test-signing-secret",
    "FACEBOOK_VERIFY_TOKEN": "fb-test-verify", "FACEBOOK_APP_SECRET": "fb-test-app-secret",
    "FACEBOOK_PAGE_ACCESS_TOKEN": "fb-test-page-token",
    "TWILIO_ACCOUNT_SID": "ACtest", "TWILIO_AUTH_TOKEN": "twilio-test-token", "TWILIO_NUMBER": "+15550001111",
    "TWILIO_WEBHOOK_URL": "https://chat.example.org/webhooks/twilio/webhook",
}
CRISIS_MESSAGE = "i took a whole bottle of pills"
QUESTION = "what are the symptoms of opiate withdrawal?"


class Receiver:
    """A local HTTP endpoint that records what is POSTed to it (a callback app, or a
    messaging platform's API) and answers each path with the JSON a real one would."""

    def __init__(self, answers=None):
        self.requests, self.answers = [], answers or {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if "json" in self.headers.get("Content-Type", ""):
                    data = json.loads(body)
                else:
                    data = {key: values[0] for key, values in parse_qs(body).items()}
                receiver.requests.append((self.path, data))
                answer = next((a for part, a in receiver.answers.items() if part in self.path), {})
                payload = json.dumps(answer).encode()
                self.send_response(201 if "Messages.json" in self.path else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        taken, self.requests[:] = list(self.requests), []
        return taken

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def callback_app():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def messaging(tmp_path_factory, callback_app):
    """A real server with credentials.yml (callback pointed at the receiver) plus the
    messaging channels that the test secrets turn on."""
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    credentials["channels.rest.CheckedCallbackInput"]["url"] = callback_app.url + "/bot"
    credentials.update(messaging_channels({**SECRETS}))
    running = Servers(tmp_path_factory.mktemp("messaging"), credentials=credentials, env=SECRETS)
    yield running
    running.stop()


def test_messaging_channels_are_on_only_when_their_variables_are_set():
    assert messaging_channels({}) == {}
    assert set(messaging_channels(SECRETS)) == {"slack", "facebook", "channels.twilio.CheckedTwilioInput"}
    with pytest.raises(SystemExit, match="TWILIO_NUMBER"):
        messaging_channels({k: v for k, v in SECRETS.items() if k != "TWILIO_NUMBER"})
    # Placeholders stay placeholders: Rasa fills them in, nothing secret is written out.
    assert messaging_channels(SECRETS)["slack"]["slack_token"] == "${SLACK_TOKEN}"


def test_no_secret_is_stored_in_the_repository():
    for name in ("credentials.yml", "credentials.messaging.yml"):
        for settings in (yaml.safe_load((ROOT / name).read_text()) or {}).values():
            for key, value in (settings or {}).items():
                if any(word in key for word in ("token", "secret", "sid", "verify")):
                    assert str(value).startswith("${"), (name, key)


def callback_say(server, sender, text):
    response = requests.post(
        server.url + "/webhooks/callback/webhook", json={"sender": sender, "message": text}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response


def test_a_full_conversation_over_the_callback_channel(messaging, callback_app, responses):
    sender = uuid.uuid4().hex
    callback_app.take()
    callback_say(messaging, sender, QUESTION)
    answer = [body for _, body in callback_app.take()]
    assert texts_of(answer) == [variation(responses, "utter_faq/withdrawal_symptoms")]
    assert all(body["recipient_id"] == sender for body in answer)
    assert [b["title"] for b in answer[0]["buttons"]] == [
        b["title"] for b in responses["utter_faq/withdrawal_symptoms"][0]["buttons"]
    ]

    callback_say(messaging, sender, "yes")  # takes the offered next step (action server)
    offer = responses["utter_faq/withdrawal_symptoms"][0]["metadata"]["offer"]
    assert texts_of([body for _, body in callback_app.take()]) == [variation(responses, offer)]

    callback_say(messaging, sender, CRISIS_MESSAGE)
    crisis = [body for _, body in callback_app.take()]
    assert texts_of(crisis) == [variation(responses, "utter_crisis", crisis_path="overdose"), variation(responses, "utter_ask_safe", crisis_path="overdose")]
    assert "(tel:911)" in crisis[0]["text"]

    callback_say(messaging, sender, crisis[1]["buttons"][0]["payload"])
    assert texts_of([body for _, body in callback_app.take()]) == [variation(responses, "utter_crisis_safe", crisis_path="overdose")]


def test_the_callback_channel_refuses_malformed_requests(messaging, callback_app):
    response = requests.post(messaging.url + "/webhooks/callback/webhook", json={"message": "hi"}, timeout=30)
    assert response.status_code == 400
    assert callback_app.take() == []


def slack_headers(body, secret=SECRETS["SLACK_SIGNING_SECRET"], timestamp=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        "wrong secret",
        "stale timestamp",
    ],
)
def test_slack_rejects_unsigned_or_wrongly_signed_requests(messaging, headers):
    body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
    if headers == "wrong secret":
        headers = slack_headers(body, secret="not-the-secret")
    elif headers == "stale timestamp":
        headers = slack_headers(body, timestamp=time.time() - 3600)
    response = requests.post(messaging.url + "/webhooks/slack/webhook", data=body, headers=headers, timeout=30)
    assert response.status_code == 400
    assert "c-123" not in response.text


def test_slack_accepts_correctly_signed_requests(messaging):
    body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
    response = requests.post(messaging.url + "/webhooks/slack/webhook", data=body,
                             headers=slack_headers(body), timeout=30)
    assert response.status_code == 200
    assert response.json() == "c-123"


def facebook_post(server, body, signature):
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Hub-Signature"] = signature
    return requests.post(server.url + "/webhooks/facebook/webhook", data=body, headers=headers, timeout=60)


def facebook_signature(body, secret=SECRETS["FACEBOOK_APP_SECRET"]):
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_facebook_checks_the_verify_token(messaging):
    url = messaging.url + "/webhooks/facebook/webhook"
    ok = requests.get(url, params={"hub.verify_token": SECRETS["FACEBOOK_VERIFY_TOKEN"], "hub.challenge": "42"})
    wrong = requests.get(url, params={"hub.verify_token": "guess", "hub.challenge": "42"})
    assert ok.text == "42"
    assert wrong.text != "42"


def test_facebook_rejects_unsigned_or_wrongly_signed_requests_and_accepts_signed_ones(messaging):
    """A delivery receipt: handled without a reply, so no call to Facebook is needed."""
    body = json.dumps({"object": "page", "entry": [{"messaging": [
        {"sender": {"id": "fb-user"}, "recipient": {"id": "page"}, "delivery": {"watermark": 1}}
    ]}]}).encode()
    assert facebook_post(messaging, body, None).text == "not validated"
    assert facebook_post(messaging, body, facebook_signature(body, "not-the-secret")).text == "not validated"
    assert facebook_post(messaging, body, facebook_signature(body)).text == "success"


def twilio_post(server, form, signature):
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return requests.post(server.url + "/webhooks/twilio/webhook", data=form, headers=headers, timeout=60)


def test_twilio_rejects_unsigned_or_wrongly_signed_requests_and_accepts_signed_ones(messaging):
    from twilio.request_validator import RequestValidator

    form = {"From": "+15552223333", "To": SECRETS["TWILIO_NUMBER"], "Body": "hello"}
    url = SECRETS["TWILIO_WEBHOOK_URL"]
    assert twilio_post(messaging, form, None).status_code == 403
    wrong = RequestValidator("not-the-token").compute_signature(url, form)
    assert twilio_post(messaging, form, wrong).status_code == 403
    tampered = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(url, {**form, "Body": "hi"})
    assert twilio_post(messaging, form, tampered).status_code == 403
    # Signed: the bot answers, and only sending the SMS fails (no Twilio here).
    signed = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(url, form)
    assert twilio_post(messaging, form, signed).status_code != 403
    log = messaging.rasa_log.read_text()
    assert "api.twilio.com" in log


# What each platform's API answers to a sent message (enough for Rasa's clients).
PLATFORM_ANSWERS = {
    "/slack/": {"ok": True},
    "/telegram/": {"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}},
    "/facebook/": {"recipient_id": "fb-user", "message_id": "m1"},
    "/twilio/": {"sid": "SM1", "account_sid": "ACtest", "status": "queued", "body": ""},
}


@pytest.fixture(scope="module")
def platforms():
    receiver = Receiver(PLATFORM_ANSWERS)
    yield receiver
    receiver.stop()


def output_channel(name, api):
    """Rasa's own output channel for `name`, its API client pointed at `api`."""
    if name == "slack":
        from rasa.core.channels.slack import SlackBot

        channel = SlackBot(SECRETS["SLACK_TOKEN"], slack_channel="C0TEST")
        channel.client.base_url = api + "/slack/"
    elif name == "telegram":
        from aiogram.bot.api import TelegramAPIServer
        from rasa.core.channels.telegram import TelegramOutput

        channel = TelegramOutput("123456:test-token")
        channel.server = TelegramAPIServer.from_base(api + "/telegram")
    elif name == "facebook":
        from fbmessenger import MessengerClient
        from rasa.core.channels.facebook import MessengerBot

        client = MessengerClient(SECRETS["FACEBOOK_PAGE_ACCESS_TOKEN"])
        client.graph_url = api + "/facebook"
        channel = MessengerBot(client)
    else:
        from rasa.core.channels.twilio import TwilioOutput

        channel = TwilioOutput(SECRETS["TWILIO_ACCOUNT_SID"], SECRETS["TWILIO_AUTH_TOKEN"], SECRETS["TWILIO_NUMBER"])
        channel.api.base_url = api + "/twilio"
    return channel


def sent_texts(name, sent):
    """The texts a platform was asked to show, and the button titles it got."""
    texts, buttons = [], []
    for path, body in sent:
        if name == "slack":
            texts.append(body["text"])
            for block in body.get("blocks", []):
                buttons += [e["text"]["text"] for e in block.get("elements", [])]
        elif name == "telegram":
            texts.append(body["text"])
            markup = json.loads(body.get("reply_markup", "{}"))
            buttons += [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
        elif name == "facebook":
            message = body["message"]
            template = message.get("attachment", {}).get("payload", {})
            texts.append(message.get("text") or template.get("text"))
            buttons += [b["title"] for b in template.get("buttons", [])]
        else:
            texts.append(body["Body"])
    return texts, buttons


@pytest.mark.parametrize("name", ["slack", "telegram", "facebook", "twilio"])
def test_the_crisis_reply_reaches_every_messaging_app(bot, platforms, responses, name):
    """The trained bot answers through Rasa's real output channel for each app; the app's
    API is the local receiver. Apps without markdown get the plain numbers; SMS has no
    buttons, so they arrive as numbered lines."""
    from rasa.core.channels.channel import UserMessage

    platforms.take()
    channel = output_channel(name, platforms.url)
    sender = "+15552223333" if name == "twilio" else "user-1"
    bot.loop.run_until_complete(bot.agent.handle_message(UserMessage(CRISIS_MESSAGE, channel, sender)))
    texts, buttons = sent_texts(name, platforms.take())

    plain = variation(responses, "utter_crisis", crisis_path="overdose")  # the default, with markdown links
    crisis = variation(responses, "utter_crisis", channel=name, crisis_path="overdose")
    ask_safe = next(v for v in responses["utter_ask_safe"] if v.get("condition") and v["condition"][0]["value"] == "overdose")
    assert "](tel:" in plain and "](" not in crisis
    for number in ("911", "988", "1-800-662-4357"):
        assert number in crisis
    titles = [b["title"] for b in ask_safe["buttons"]]
    if name == "twilio":
        numbered = [f"{i}: {b['title']} ({b['payload']})" for i, b in
                    enumerate(ask_safe["buttons"], start=1)]
        assert texts == [crisis, ask_safe["text"], *numbered]
    else:
        assert texts == [crisis, ask_safe["text"]]
        assert buttons == titles
