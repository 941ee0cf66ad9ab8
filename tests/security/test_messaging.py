"""Messaging integrations: the callback channel, signed webhooks, and the crisis reply
as each messaging app receives it.

A second real server runs here with test secrets for every messaging app set in its
environment, so credentials.messaging.yml is read exactly as `make run` reads it. Nothing
leaves the machine: Telegram's API is a local receiver (the channel's `api_url`), and the
server's HTTPS proxy is a local one. The proxy refuses every connection (so Twilio's API
is never reached; its refusals show that the bot tried to send an SMS), except to Slack's
and Facebook's APIs, which it answers itself with a certificate of a throwaway CA that
the server trusts: so the tests read what the assistant sent each app.
"""
import hashlib
import hmac
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.etree import ElementTree

import pytest
import requests
import yaml

from channels.messages import CANNOT_ANSWER, TOO_FAST, TOO_LONG
from conftest import ROOT, Servers, eventually, in_one_rate_window, texts_of, variation
from scale.stack import Certificates
from scripts.credentials import messaging_channels

SECRETS = {
    "TELEGRAM_TOKEN": "123456:test-token", "TELEGRAM_BOT_NAME": "withdrawal_help_bot",
    "TELEGRAM_WEBHOOK_URL": "https://chat.example.org/webhooks/telegram/webhook",
    "TELEGRAM_SECRET_TOKEN": "tg-test-secret",
    "SLACK_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "slack-test-signing-secret",
    "FACEBOOK_VERIFY_TOKEN": "fb-test-verify", "FACEBOOK_APP_SECRET": "fb-test-app-secret",
    "FACEBOOK_PAGE_ACCESS_TOKEN": "fb-test-page-token",
    "TWILIO_ACCOUNT_SID": "ACtest", "TWILIO_AUTH_TOKEN": "twilio-test-token", "TWILIO_NUMBER": "+15550001111",
    "TWILIO_WEBHOOK_URL": "https://chat.example.org/webhooks/twilio/webhook",
}
TELEGRAM = "channels.messaging.CheckedTelegramInput"
SLACK, FACEBOOK = "channels.messaging.CheckedSlackInput", "channels.messaging.CheckedFacebookInput"
TWILIO = "channels.twilio.CheckedTwilioInput"
CRISIS_MESSAGE = "i took a whole bottle of pills"
QUESTION = "what are the symptoms of opiate withdrawal?"


# The apps' API hosts whose HTTPS the servers' proxy answers itself (see `Receiver`).
OPENED_HOSTS = ("slack.com", "graph.facebook.com")


def api_certificates(folder):
    """A throwaway CA, and a certificate it signed for OPENED_HOSTS; (CA file, server context)."""
    tls = Certificates(folder / "tls", names=[f"DNS:{host}" for host in OPENED_HOSTS])
    tls.create()
    return tls.ca, tls.server_context()


class Receiver:
    """A local HTTP endpoint that records what is POSTed to it (a callback app, or a
    messaging platform's API) and answers each path with the JSON a real one would.

    As the servers' HTTPS proxy it refuses every tunnel (CONNECT), except, given `tls`
    (a server context for OPENED_HOSTS), to those hosts: it answers their requests
    itself and records them as `https://<host><path>`."""

    def __init__(self, answers=None, tls=None):
        self.requests, self.answers = [], answers or {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            tunnel = ""  # the host of an opened HTTPS tunnel

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if "json" in self.headers.get("Content-Type", ""):
                    data = json.loads(body)
                else:
                    data = {key: values[0] for key, values in parse_qs(body).items()}
                path = f"https://{self.tunnel}{self.path}" if self.tunnel else self.path
                receiver.requests.append((path, data))
                answer = next((a for part, a in receiver.answers.items() if part in path), {})
                payload = json.dumps(answer).encode()
                self.send_response(201 if "Messages.json" in self.path else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_CONNECT(self):
                # As the servers' HTTPS proxy: records where a request was going, refuses it
                # unless it goes to an opened host.
                receiver.requests.append(("CONNECT " + self.path, {}))
                host = self.path.rsplit(":", 1)[0]
                if tls is not None and host in OPENED_HOSTS:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.flush()
                    self.connection = tls.wrap_socket(self.connection, server_side=True)
                    self.rfile, self.wfile = self.connection.makefile("rb"), self.connection.makefile("wb")
                    self.tunnel = host
                    self.handle_one_request()
                    self.close_connection = True
                    return
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()

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


# What Telegram's API answers the server (getMe: the bot that TELEGRAM_BOT_NAME names).
TELEGRAM_ANSWERS = {
    "/setWebhook": {"ok": True, "result": True},
    "/getMe": {"ok": True, "result": {"id": 123456, "is_bot": True, "first_name": "Help",
                                      "username": SECRETS["TELEGRAM_BOT_NAME"]}},
    "/sendMessage": {"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}},
}


# Longer messages are refused on the callback and messaging channels of these tests.
MAX_CHARS = 2000
# Messages a minute per conversation on the callback channel of these tests (the longest
# conversation below has four).
CALLBACK_RATE_LIMIT = 5


# What Slack's and Facebook's APIs answer a sent message (through the proxy).
APP_ANSWERS = {
    "https://slack.com/api/": {"ok": True},
    "https://graph.facebook.com/": {"recipient_id": "fb-user", "message_id": "m1"},
}
# Messages a minute per conversation on Slack and Facebook in these tests.
APP_RATE_LIMIT = 2


@pytest.fixture(scope="module")
def api_ca(tmp_path_factory):
    return api_certificates(tmp_path_factory.mktemp("api-tls"))


@pytest.fixture(scope="module")
def apis(api_ca):
    """The server's way out: Telegram's API, and the proxy of every other HTTPS request."""
    receiver = Receiver({**TELEGRAM_ANSWERS, **APP_ANSWERS}, tls=api_ca[1])
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def messaging(tmp_path_factory, callback_app, apis, api_ca):
    """A real server with credentials.yml (callback pointed at the receiver) plus the
    messaging channels that the test secrets turn on."""
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    credentials["channels.rest.CheckedCallbackInput"]["url"] = callback_app.url + "/bot"
    credentials.update(messaging_channels({**SECRETS}))
    credentials[TELEGRAM]["api_url"] = apis.url + "/telegram"
    for name in ("channels.rest.CheckedCallbackInput", TELEGRAM, SLACK, FACEBOOK, TWILIO):
        credentials[name]["max_message_chars"] = MAX_CHARS
    credentials["channels.rest.CheckedCallbackInput"]["rate_limit"] = CALLBACK_RATE_LIMIT
    for name in (SLACK, FACEBOOK):
        credentials[name]["rate_limit"] = APP_RATE_LIMIT
    # An app's servers send all its users' messages: an address limit must not apply to them.
    for name in (TELEGRAM, TWILIO):
        credentials[name]["address_rate_limit"] = 1
    # The server trusts the CA of the proxy's opened hosts (OpenSSL's default, and requests').
    env = {**SECRETS, "https_proxy": apis.url, "no_proxy": "127.0.0.1,localhost",
           "SSL_CERT_FILE": str(api_ca[0]), "REQUESTS_CA_BUNDLE": str(api_ca[0])}
    running = Servers(tmp_path_factory.mktemp("messaging"), credentials=credentials, env=env)
    yield running
    running.stop()


def user_messages(server, sender):
    """The user messages stored for `sender`, as Rasa stores them."""
    import sqlite3

    with sqlite3.connect(server.db) as db:
        rows = db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (str(sender),)
        ).fetchall()
    return [json.loads(data) for (data,) in rows]


def test_messaging_channels_are_on_only_when_their_variables_are_set():
    assert messaging_channels({}) == {}
    assert set(messaging_channels(SECRETS)) == {
        "channels.messaging.CheckedSlackInput", TELEGRAM, "channels.messaging.CheckedFacebookInput",
        "channels.twilio.CheckedTwilioInput",
    }
    with pytest.raises(SystemExit, match="TELEGRAM_SECRET_TOKEN"):
        messaging_channels({k: v for k, v in SECRETS.items() if k != "TELEGRAM_SECRET_TOKEN"})
    with pytest.raises(SystemExit, match="TWILIO_NUMBER"):
        messaging_channels({k: v for k, v in SECRETS.items() if k != "TWILIO_NUMBER"})
    # Placeholders stay placeholders: Rasa fills them in, nothing secret is written out.
    assert messaging_channels(SECRETS)["channels.messaging.CheckedSlackInput"]["slack_token"] == "${SLACK_TOKEN}"


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
    assert texts_of(crisis) == [variation(responses, "utter_crisis", crisis_path="overdose"),
                                variation(responses, "utter_ask_safe", crisis_path="overdose")]
    assert "(tel:911)" in crisis[0]["text"]

    callback_say(messaging, sender, crisis[1]["buttons"][0]["payload"])
    safe = variation(responses, "utter_crisis_safe", crisis_path="overdose")
    assert texts_of([body for _, body in callback_app.take()]) == [safe]


def test_a_refused_message_gets_the_kind_reply_on_the_callback_channel_and_telegram(messaging, callback_app, apis):
    """These channels answer through the app, so the refusal with 911 and 988 must go there too."""
    sender, chat_id, too_long = uuid.uuid4().hex, uuid.uuid4().int % 10**9, "please help " * MAX_CHARS
    callback_app.take()
    callback_say(messaging, sender, too_long)
    assert [(body["recipient_id"], body["text"]) for _, body in callback_app.take()] == [(sender, TOO_LONG)]
    response = telegram_post(messaging, chat_id, too_long, SECRETS["TELEGRAM_SECRET_TOKEN"])
    assert response.status_code == 200
    assert sent_to(apis, chat_id) == [TOO_LONG]
    assert user_messages(messaging, f"telegram:{chat_id}") == []


def test_a_too_fast_callback_sender_gets_the_kind_reply_at_the_app(messaging, callback_app):
    """The refusal goes where the callback channel's replies go, to the app's url."""
    in_one_rate_window(30)
    sender = uuid.uuid4().hex
    for _ in range(CALLBACK_RATE_LIMIT):
        callback_say(messaging, sender, "hello")
    answered = [body for _, body in callback_app.take()]
    assert answered and TOO_FAST not in texts_of(answered)
    callback_say(messaging, sender, "hello")
    assert [(body["recipient_id"], body["text"]) for _, body in callback_app.take()] == [(sender, TOO_FAST)]
    assert "911" in TOO_FAST and "988" in TOO_FAST
    assert len(user_messages(messaging, sender)) == CALLBACK_RATE_LIMIT


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


def telegram_post(server, chat_id, text, secret):
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": text,
                                          "chat": {"id": chat_id, "type": "private"}}}
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return requests.post(server.url + "/webhooks/telegram/webhook", json=update, headers=headers, timeout=60)


def sent_to(apis, chat_id):
    return [body["text"] for path, body in apis.requests
            if path.endswith("/sendMessage") and body["chat_id"] == str(chat_id)]


def test_telegram_registers_its_webhook_with_the_secret_token(messaging, apis):
    registered = [body for path, body in apis.requests if path.endswith("/setWebhook")]
    assert registered == [{"url": SECRETS["TELEGRAM_WEBHOOK_URL"], "secret_token": SECRETS["TELEGRAM_SECRET_TOKEN"]}]


@pytest.mark.parametrize("secret", [None, "", "not-the-secret", SECRETS["TELEGRAM_SECRET_TOKEN"] + "x"])
def test_telegram_refuses_updates_without_the_secret_token(messaging, apis, secret):
    """Anyone can POST an update naming any chat: without the secret, none reaches the bot."""
    chat_id = uuid.uuid4().int % 10**9
    response = telegram_post(messaging, chat_id, CRISIS_MESSAGE, secret)
    assert response.status_code == 403
    assert user_messages(messaging, f"telegram:{chat_id}") == []
    assert sent_to(apis, chat_id) == []


def test_telegram_answers_updates_with_the_secret_token(messaging, apis, responses):
    chat_id = uuid.uuid4().int % 10**9
    response = telegram_post(messaging, chat_id, QUESTION, SECRETS["TELEGRAM_SECRET_TOKEN"])
    assert (response.status_code, response.text) == (200, "success")
    assert [m["text"] for m in user_messages(messaging, f"telegram:{chat_id}")] == [QUESTION]
    answer = variation(responses, "utter_faq/withdrawal_symptoms")
    assert sent_to(apis, chat_id) == answer.strip().split("\n\n")  # Rasa sends each paragraph


def test_the_address_limit_does_not_refuse_an_apps_other_users(messaging, apis, responses):
    """Every update comes from the same address here, as from Telegram's servers, and the
    address limit is 1: each user is still answered."""
    chats = [uuid.uuid4().int % 10**9 for _ in range(3)]
    for chat_id in chats:
        assert telegram_post(messaging, chat_id, QUESTION, SECRETS["TELEGRAM_SECRET_TOKEN"]).status_code == 200
    answer = variation(responses, "utter_faq/withdrawal_symptoms").strip().split("\n\n")
    assert [sent_to(apis, chat_id) for chat_id in chats] == [answer] * 3


def facebook_post(server, body, signatures):
    headers = {"Content-Type": "application/json", **signatures}
    return requests.post(server.url + "/webhooks/facebook/webhook", data=body, headers=headers, timeout=60)


def facebook_signature(body, secret=SECRETS["FACEBOOK_APP_SECRET"]):
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def facebook_sha1_signature(body, secret=SECRETS["FACEBOOK_APP_SECRET"]):
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def test_facebook_checks_the_verify_token(messaging):
    url = messaging.url + "/webhooks/facebook/webhook"
    ok = requests.get(url, params={"hub.verify_token": SECRETS["FACEBOOK_VERIFY_TOKEN"], "hub.challenge": "42"})
    wrong = requests.get(url, params={"hub.verify_token": "guess", "hub.challenge": "42"})
    assert ok.text == "42"
    assert wrong.status_code == 403 and wrong.text != "42"


def test_facebook_rejects_unsigned_or_wrongly_signed_requests_and_accepts_signed_ones(messaging):
    """A delivery receipt: handled without a reply, so no call to Facebook is needed.
    Only the SHA-256 signature counts; Rasa's channel took the SHA-1 one."""
    body = json.dumps({"object": "page", "entry": [{"messaging": [
        {"sender": {"id": "fb-user"}, "recipient": {"id": "page"}, "delivery": {"watermark": 1}}
    ]}]}).encode()
    other_body = body.replace(b'"watermark": 1', b'"watermark": 2')
    for signatures in (
        {}, facebook_sha1_signature(body), facebook_signature(body, "not-the-secret"), facebook_signature(other_body),
    ):
        response = facebook_post(messaging, body, signatures)
        assert (response.status_code, response.text) == (403, "Request is not signed by Facebook."), signatures
    response = facebook_post(messaging, body, facebook_signature(body))
    assert (response.status_code, response.text) == (200, "success")


def slack_message(server, user, text):
    """A signed direct message from `user`, as Slack's Events API sends it."""
    body = json.dumps({"type": "event_callback", "team_id": "T0TEST", "event": {
        "type": "message", "channel_type": "im", "channel": f"D{user}", "user": user, "text": text,
        "ts": f"{time.time():.6f}"}}).encode()
    return requests.post(server.url + "/webhooks/slack/webhook", data=body, headers=slack_headers(body), timeout=60)


def facebook_message(server, user, text):
    """A signed text message from `user`, as Messenger's webhook sends it."""
    body = json.dumps({"object": "page", "entry": [{"id": "page", "time": 0, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": "page"}, "timestamp": 0,
         "message": {"mid": "m-" + uuid.uuid4().hex, "text": text}}]}]}).encode()
    return facebook_post(server, body, facebook_signature(body))


def texts_sent_in_app(apis, app, user):
    """The texts the server asked Slack's or Facebook's API to show `user` (through the proxy)."""
    if app == "slack":
        return [body["text"] for path, body in apis.requests
                if path == "https://slack.com/api/chat.postMessage" and body.get("channel") == f"D{user}"]
    return [body["message"].get("text") for path, body in apis.requests
            if path.startswith("https://graph.facebook.com/") and path.split("?")[0].endswith("/me/messages")
            and body.get("recipient", {}).get("id") == user and "message" in body]


@pytest.mark.parametrize("app, send", [("slack", slack_message), ("facebook", facebook_message)])
def test_a_signed_app_message_too_long_or_too_fast_gets_the_kind_reply_in_the_app(messaging, apis, app, send):
    """Slack and Messenger reply through their APIs: a refusal must reach the person there,
    with 911 and 988, and the refused message is not stored. (Rasa's Slack channel handles
    a message after answering the webhook, hence the waits.)"""
    in_one_rate_window(40)
    user = "U" + uuid.uuid4().hex[:10].upper()

    def sent_once_more(count):
        """What the user was sent, once it is more than `count` texts (each message's
        first reply means it was counted)."""
        return eventually(lambda: texts_sent_in_app(apis, app, user), lambda texts: len(texts) > count, timeout=60)

    assert send(messaging, user, "please help " * MAX_CHARS).status_code == 200
    assert sent_once_more(0) == [TOO_LONG]
    for _ in range(APP_RATE_LIMIT):
        count = len(texts_sent_in_app(apis, app, user))
        assert send(messaging, user, "hello").status_code == 200
        sent_once_more(count)
    assert TOO_FAST not in texts_sent_in_app(apis, app, user)
    assert send(messaging, user, "hello").status_code == 200
    sent = eventually(lambda: texts_sent_in_app(apis, app, user), lambda texts: TOO_FAST in texts, timeout=60)
    assert sent.count(TOO_FAST) == 1 and sent.count(TOO_LONG) == 1
    assert all("911" in text and "988" in text for text in (TOO_LONG, TOO_FAST))
    stored = eventually(lambda: [m["text"] for m in user_messages(messaging, f"{app}:{user}")],
                        lambda texts: len(texts) >= APP_RATE_LIMIT)
    assert stored == ["hello"] * APP_RATE_LIMIT


def twilio_post(server, form, signature):
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return requests.post(server.url + "/webhooks/twilio/webhook", data=form, headers=headers, timeout=60)


def test_twilio_rejects_unsigned_or_wrongly_signed_requests_and_accepts_signed_ones(messaging, apis):
    from twilio.request_validator import RequestValidator

    form = {"From": "+15552223333", "To": SECRETS["TWILIO_NUMBER"], "Body": "hello"}
    url = SECRETS["TWILIO_WEBHOOK_URL"]
    assert twilio_post(messaging, form, None).status_code == 403
    wrong = RequestValidator("not-the-token").compute_signature(url, form)
    assert twilio_post(messaging, form, wrong).status_code == 403
    tampered = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(url, {**form, "Body": "hi"})
    assert twilio_post(messaging, form, tampered).status_code == 403
    # Signed: the bot answers, and only sending the SMS fails (the proxy refuses it).
    before = len(apis.requests)
    signed = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(url, form)
    response = twilio_post(messaging, form, signed)
    assert response.status_code == 200 and "<Response>" in response.text
    assert ("CONNECT api.twilio.com:443", {}) in apis.requests[before:]


def signed_sms(sender, text, message_id):
    from twilio.request_validator import RequestValidator

    form = {"From": sender, "To": SECRETS["TWILIO_NUMBER"], "Body": text, "MessageSid": message_id}
    signature = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(SECRETS["TWILIO_WEBHOOK_URL"], form)
    return form, signature


def test_a_replayed_sms_is_answered_once(messaging, apis):
    """Twilio's signature has no date, so a copied request stays valid: the MessageSid,
    stored with the message, is what tells a replay from a new SMS."""
    sender, sid = f"+1555{uuid.uuid4().int % 10**7:07d}", "SM" + uuid.uuid4().hex
    form, signature = signed_sms(sender, QUESTION, sid)
    with ThreadPoolExecutor(2) as pool:  # at once, maybe on both workers
        answers = list(pool.map(lambda _: twilio_post(messaging, form, signature), range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    stored = user_messages(messaging, f"twilio:{sender}")
    assert [(m["text"], m["message_id"]) for m in stored] == [(QUESTION, sid)]

    before = len(apis.requests)
    again = twilio_post(messaging, form, signature)
    assert again.status_code == 200 and "<Message>" not in again.text
    assert len(user_messages(messaging, f"twilio:{sender}")) == 1
    assert not any("twilio" in path for path, _ in apis.requests[before:])  # no SMS sent again

    # The same words in a new SMS are a new message.
    form, signature = signed_sms(sender, QUESTION, "SM" + uuid.uuid4().hex)
    assert twilio_post(messaging, form, signature).status_code == 200
    assert [m["text"] for m in user_messages(messaging, f"twilio:{sender}")] == [QUESTION, QUESTION]


def twiml_messages(response):
    """The texts of the <Message>s of a TwiML answer, which Twilio texts back."""
    assert response.headers["Content-Type"].startswith("text/xml")
    return [message.text for message in ElementTree.fromstring(response.text).iter("Message")]


def test_twilio_answers_a_refused_or_failed_sms_in_its_twiml(messaging):
    """An SMS that may not be handled, or cannot be, gets the kind reply in the webhook's
    own answer (TwiML): Twilio texts it back, with 911 and 988."""
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    form, signature = signed_sms(phone, "please help " * MAX_CHARS, "SM" + uuid.uuid4().hex)
    refused = twilio_post(messaging, form, signature)
    assert refused.status_code == 200 and twiml_messages(refused) == [TOO_LONG]
    form, signature = signed_sms(phone, CRISIS_MESSAGE, "SM" + uuid.uuid4().hex)
    with messaging.lock_store_broken():
        failed = twilio_post(messaging, form, signature)
    assert failed.status_code == 200 and twiml_messages(failed) == [CANNOT_ANSWER]
    assert all("911" in text and "988" in text for text in (TOO_LONG, CANNOT_ANSWER))
    assert user_messages(messaging, f"twilio:{phone}") == []
    # Twilio sends an SMS whose webhook failed again: now it is handled, once.
    again = twilio_post(messaging, form, signature)
    assert again.status_code == 200 and twiml_messages(again) == []
    assert [m["text"] for m in user_messages(messaging, f"twilio:{phone}")] == [CRISIS_MESSAGE]


def test_no_rest_client_can_write_into_an_sms_conversation(messaging):
    """A Twilio user's id is their phone number: the SMS conversation is `twilio:<phone>`,
    which no REST or callback sender may name; by default a REST client cannot name its
    conversation at all, so a phone number is refused too (with `issued_ids_only: false`
    it would be another conversation: tests/security/test_sessions.py)."""
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    form, signature = signed_sms(phone, QUESTION, "SM" + uuid.uuid4().hex)
    assert twilio_post(messaging, form, signature).status_code == 200
    refused = messaging.say_as(f"twilio:{phone}", "what did i ask?", message_id="x1")
    assert refused.status_code == 403
    callback = requests.post(messaging.url + "/webhooks/callback/webhook",
                             json={"sender": f"twilio:{phone}", "message": "hi"}, timeout=30)
    assert callback.status_code == 403
    assert messaging.say_as(phone, "hello").status_code == 403
    assert [m["text"] for m in user_messages(messaging, f"twilio:{phone}")] == [QUESTION]
    assert user_messages(messaging, phone) == []


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
    for _path, body in sent:
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
    ask_safe = next(v for v in responses["utter_ask_safe"]
                    if v.get("condition") and v["condition"][0]["value"] == "overdose")
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
