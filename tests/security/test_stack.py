"""Security and privacy on the real stack: TLS to nginx, the replicas, the action server,
PostgreSQL and Redis, Rasa's HTTP API, CORS, socket.io sessions, request size, nginx's limits and the
replicas' per-sender and per-address ones, and what the logs keep."""
import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Text

import aiohttp
import psycopg2
import pytest
import redis
import requests
import socketio

from channels.messages import CANNOT_ANSWER, NO_ANSWER, TOO_FAST, TOO_LONG
from channels.guard import ADDRESS_RATE_LIMIT, RATE_LIMIT
from channels.rest import NOT_ISSUED
from conftest import eventually, in_one_rate_window, texts_of, variation
from deploy.render_nginx import render
from scale.stack import ORIGIN, Certificates, Stack
from tools.servers import ROOT, chat_interface, free_port, local_servers

EVIL = "https://evil.example"
HSTS = "max-age=31536000; includeSubDomains"


def new_sender() -> Text:
    return uuid.uuid4().hex


def new_client() -> Text:
    """An address of its own for one test's client, as nginx's trusted load balancer in
    front names it (X-Forwarded-For): nginx's and the replicas' limits count per address."""
    number = uuid.uuid4().int
    return f"10.{number % 250 + 1}.{number // 250 % 250 + 1}.{number // 62500 % 250 + 1}"


def test_plain_http_only_redirects_to_https(stack: Stack):
    for method, path in [("GET", "/"), ("POST", "/webhooks/rest/webhook?x=1"), ("GET", "/conversations/a/tracker")]:
        response = requests.request(method, stack.http_url + path, allow_redirects=False, timeout=30)
        assert response.status_code == 301, path
        assert response.headers["Location"] == stack.url + path
    # Followed, it arrives at nginx's https side, whose certificate the CA vouches for.
    assert requests.get(stack.http_url + "/", timeout=30).url == stack.url + "/"


def test_every_https_response_carries_hsts(stack: Stack):
    responses = [
        requests.get(stack.url + "/", timeout=30),
        stack.say(new_sender(), "hello"),
        requests.get(stack.url + "/status", timeout=30),  # 404 from nginx
        requests.post(stack.url + "/webhooks/rest/webhook", json={}, headers={"Origin": EVIL}, timeout=30),
        requests.post(stack.url + "/webhooks/rest/webhook", data="x" * 300_000, timeout=60),  # the kind 413
    ]
    assert [response.status_code for response in responses] == [200, 200, 404, 403, 413]
    assert all(response.headers.get("Strict-Transport-Security") == HSTS for response in responses)


def tls_version(stack: Stack, version: ssl.TLSVersion) -> Text:
    """The protocol nginx agrees on with a client that offers only `version`."""
    context = stack.tls.context()
    context.set_ciphers("ALL:@SECLEVEL=0")  # lets the local OpenSSL offer the old versions
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_before_1_2_is_refused(stack: Stack):
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in (stack.nginx_dir / "nginx.conf").read_text()
    for old in [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1]:
        # nginx's answer to the hello: an alert that it does not speak this version.
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            tls_version(stack, old)
    assert tls_version(stack, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert tls_version(stack, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


def test_nginx_reaches_the_replicas_over_checked_tls(stack: Stack, tmp_path):
    """The replicas answer TLS only, and nginx passes requests on only to a replica whose
    certificate the internal CA signed for the configured name."""
    conf = (stack.nginx_dir / "nginx.conf").read_text()
    assert "proxy_ssl_verify on;" in conf and "proxy_pass http://" not in conf
    for replica in stack.replicas:
        assert requests.get(replica.url + "/", timeout=30).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get(replica.url.replace("https://", "http://") + "/", timeout=30)
    # An nginx that expects another name in the replicas' certificate reaches none of them.
    (tmp_path / "logs").mkdir()
    port = free_port()
    (tmp_path / "nginx.conf").write_text(render(
        f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}", str(stack.tls.certificate), str(stack.tls.key),
        [r.address for r in stack.replicas], [ORIGIN], "127.0.0.1", str(stack.tls.ca), "not-the-replica.example"))
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"])
    try:
        def answer():
            try:
                return requests.get(f"https://127.0.0.1:{port}/", timeout=30)
            except requests.ConnectionError:
                return None
        refused = eventually(answer, lambda response: response is not None)
        assert refused.status_code == 502 and texts_of(refused.json()) == [CANNOT_ANSWER]
    finally:
        nginx.terminate()
        nginx.wait()
    assert "upstream SSL certificate does not match" in (tmp_path / "logs" / "error.log").read_text()


def accept_offer(stack: Stack) -> requests.Response:
    """Through nginx, the "yes" to the offer after the cold turkey answer: the one reply
    that runs a custom action (action_accept_offer) on the action server."""
    name = new_sender()
    assert stack.say(name, "is quitting cold turkey a good idea").status_code == 200
    return stack.say(name, "yes")


def test_the_replicas_reach_the_action_server_over_checked_tls(stack: Stack, responses, tmp_path):
    """The action server receives whole conversations: it answers TLS only, and the replicas
    send them only to a server whose certificate the internal CA signed. With the wrong CA
    they send nothing and the person gets the kind reply."""
    url = stack.env["ACTION_SERVER_URL"]
    assert url.startswith("https://")
    assert requests.get(stack.actions.health, timeout=30).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(stack.actions.health.replace("https://", "http://"), timeout=30)
    offer = variation(responses, responses["utter_faq/cold_turkey"][0]["metadata"]["offer"])
    accepted = accept_offer(stack)
    assert accepted.status_code == 200 and texts_of(accepted.json()) == [offer]
    # Replicas given another CA's certificate: they refuse the action server's own.
    other = Certificates(tmp_path / "other-ca")
    other.create()
    stack.expect_traceback(f"Couldn't connect to the server at '{url}")
    shutil.copy(other.ca, stack.actions_ca)  # read again on every call
    try:
        refused = accept_offer(stack)
        assert refused.status_code == 200 and texts_of(refused.json()) == [NO_ANSWER]
        assert "911" in NO_ANSWER and "988" in NO_ANSWER
    finally:
        shutil.copy(stack.tls.ca, stack.actions_ca)
    logs = "".join(replica.log.read_text(errors="replace") for replica in stack.replicas)
    assert "certificate verify failed" in logs
    accepted = accept_offer(stack)
    assert accepted.status_code == 200 and texts_of(accepted.json()) == [offer]


def test_postgres_accepts_tls_connections_only(stack: Stack):
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        stack.postgres.connect(sslmode="disable")
    # The replicas' own connections (they just stored a conversation) are encrypted too.
    assert stack.say(new_sender(), "hello").status_code == 200
    clients = stack.postgres.query(
        "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
        " WHERE a.backend_type = 'client backend'")
    assert len(clients) > 1 and all(encrypted and version in ("TLSv1.2", "TLSv1.3") for encrypted, version in clients)


@pytest.mark.parametrize("sslmode", ["disable", "allow", "prefer", ""])
def test_the_replicas_refuse_a_database_connection_that_may_be_plain(monkeypatch, sslmode):
    """deploy/endpoints.yml with a DB_SSLMODE that lets libpq fall back to plain TCP (or
    never try TLS) is refused before any connection is made."""
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.exceptions import RasaException
    from rasa.utils.endpoints import read_endpoint_config

    for name in ["ACTION_SERVER_URL", "ACTION_SERVER_CA_CERT", "DB_HOST", "DB_PORT", "DB_DATABASE", "DB_USER",
                 "DB_PASSWORD", "DB_CA_CERT", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_CA_CERT"]:
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("DB_SSLMODE", sslmode)
    settings = read_endpoint_config(str(ROOT / "deploy" / "endpoints.yml"), "tracker_store")
    assert settings.kwargs["query"]["sslmode"] == sslmode
    with pytest.raises(RasaException, match="sslmode.*require, verify-ca, verify-full"):
        TrackerStore.create(settings)


def test_redis_has_no_plain_port(stack: Stack):
    client = stack.redis_client()
    assert client.config_get("port") == {"port": "0"}
    assert client.config_get("tls-port") == {"tls-port": str(stack.redis_port)}
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=stack.redis_port, socket_timeout=10).ping()


def test_make_run_keeps_the_http_api_off(servers, monkeypatch):
    """`make run` starts Rasa without --enable-api, both servers on this machine only unless
    CHAT_INTERFACE says otherwise; the test servers start it the same way (tools/servers.py)."""
    monkeypatch.delenv("CHAT_INTERFACE", raising=False)
    actions, assistant = local_servers(chat_interface())
    option = lambda name: assistant.args[assistant.args.index(name) + 1]  # noqa: E731
    assert option("--port") == "5005" and option("--interface") == "127.0.0.1"
    assert actions.env["SANIC_HOST"] == "127.0.0.1"
    assert "--enable-api" not in assistant.args and "--enable-api" not in servers.rasa.args
    name = new_sender()
    assert servers.say(name, "hello").status_code == 200
    sender = servers.sender_id(name)
    for method, path in [("GET", f"/conversations/{sender}/tracker"), ("GET", "/status"),
                         ("POST", f"/conversations/{sender}/messages")]:
        assert requests.request(method, servers.url + path, timeout=30).status_code == 404, path


def test_the_api_needs_its_token(stack: Stack):
    replica, name = stack.replicas[1], new_sender()
    assert stack.say(name, "i'm asking for my son", url=replica.url).status_code == 200
    sender = stack.sender_id(name)
    stored = stack.events(sender)
    tracker = f"{replica.url}/conversations/{sender}/tracker"
    slot = [{"event": "slot", "name": "asking_for", "value": "self"}]
    for token in [None, "wrong", stack.api_token[:-1]]:
        params = {"token": token} if token else {}
        assert requests.get(tracker, params=params, timeout=30).status_code == 401
        assert requests.post(tracker + "/events", json=slot, params=params, timeout=30).status_code == 401
        assert requests.put(tracker + "/events", json=[], params=params, timeout=30).status_code == 401
        assert requests.post(f"{replica.url}/conversations/{sender}/messages", params=params,
                             json={"text": "hello", "sender": "user"}, timeout=30).status_code == 401
    assert stack.events(sender) == stored, "a request without the token changed the conversation"
    read = requests.get(tracker, params={"token": stack.api_token}, timeout=30)
    assert read.status_code == 200 and read.json()["slots"]["asking_for"] == "loved_one"
    # nginx does not expose the API at all, token or not.
    public = requests.get(f"{stack.url}/conversations/{sender}/tracker", params={"token": stack.api_token}, timeout=30)
    assert public.status_code == 404


def test_only_the_configured_origin_may_call_from_a_browser(stack: Stack):
    body = {"message": "hello"}  # each request starts a conversation
    webhook = "/webhooks/rest/webhook"
    direct = stack.replicas[0].url
    allowed = requests.post(direct + webhook, json=body, headers={"Origin": ORIGIN}, timeout=60)
    assert allowed.headers.get("Access-Control-Allow-Origin") == ORIGIN
    for response in [
        requests.post(direct + webhook, json=body, headers={"Origin": EVIL}, timeout=60),
        requests.options(direct + webhook, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
                         timeout=30),
    ]:
        assert "Access-Control-Allow-Origin" not in response.headers, response.headers
    # The proxy refuses other sites outright, for socket.io too (browsers need no CORS there).
    handshake = "/socket.io/?EIO=4&transport=polling"
    assert requests.post(stack.url + webhook, json=body, headers={"Origin": EVIL}, timeout=60).status_code == 403
    assert requests.get(stack.url + handshake, headers={"Origin": EVIL}, timeout=30).status_code == 403
    assert requests.get(stack.url + handshake, headers={"Origin": ORIGIN}, timeout=30).status_code == 200


async def socketio_chat(url: Text, client_address: Text, tls: ssl.SSLContext) -> Dict[Text, Text]:
    """One polling socket.io conversation through nginx over https; the ids and the answer.

    Every request carries the client's address, as a browser's would come from one."""
    http = aiohttp.ClientSession(headers={"X-Forwarded-For": client_address}, connector=aiohttp.TCPConnector(ssl=tls))
    client = socketio.AsyncClient(http_session=http)
    confirmed: asyncio.Queue = asyncio.Queue()
    answers: asyncio.Queue = asyncio.Queue()
    client.on("session_confirm", confirmed.put)
    client.on("bot_uttered", answers.put)
    # Long polling needs every request of a session on one replica: the sticky upstream.
    # The namespace handshake gets the same budget as the answers below (the client's
    # default is one second, too short for sixteen sessions opening at once on a busy machine).
    await client.connect(url, transports=["polling"], wait_timeout=60)
    try:
        await client.emit("session_request", {})
        session_id = await asyncio.wait_for(confirmed.get(), timeout=60)
        await client.emit("user_uttered", {"message": "what is cold turkey", "session_id": session_id})
        answer = await asyncio.wait_for(answers.get(), timeout=120)
        return {"sid": client.eio.sid, "session_id": session_id, "text": answer["text"]}
    finally:
        await client.disconnect()
        await client.wait()  # the close packet goes out in the background, through `http` too
        await http.close()


def test_socketio_sessions_are_random_and_sticky(stack: Stack, responses):
    async def chats() -> List[Dict[Text, Text]]:
        return list(await asyncio.gather(
            *(socketio_chat(stack.url, f"10.200.{n}.7", stack.tls.context()) for n in range(16))))

    results = asyncio.run(chats())
    assert all(result["text"].startswith("Cold turkey means") for result in results)
    session_ids = [result["session_id"] for result in results]
    assert len(set(session_ids)) == len(session_ids)
    # Issued by the server: 128 random bits and their signature.
    assert all(re.fullmatch(r"web-[0-9a-f]{32}\.[0-9a-f]{32}", session_id) for session_id in session_ids)
    # Every request of one engine.io session went to one replica, and both replicas served some.
    upstreams: Dict[Text, set] = {}
    for line in (stack.nginx_dir / "logs" / "access.log").read_text().splitlines():
        match = re.search(r" /socket\.io/ sid=(\S+) upstream=(\S+) ", line)
        if match and match.group(1) != "-":
            upstreams.setdefault(match.group(1), set()).add(match.group(2))
    ours = {result["sid"]: upstreams.get(result["sid"], set()) for result in results}
    assert all(len(replicas) == 1 for replicas in ours.values()), ours
    assert len(set().union(*ours.values())) == 2, ours


def test_oversized_requests_get_a_kind_413(stack: Stack):
    body = {"message": "x" * 300_000}
    for url in [stack.url, stack.replicas[0].url]:
        response = requests.post(url + "/webhooks/rest/webhook", json=body, timeout=60)
        assert response.status_code == 413
        assert texts_of(response.json()) == [TOO_LONG]
    # A replica refuses a large body on any route before reading it (SANIC_REQUEST_MAX_SIZE).
    response = requests.post(stack.replicas[0].url + "/socket.io/", data=b"x" * 300_000, timeout=60)
    assert response.status_code == 413 and texts_of(response.json()) == [TOO_LONG]


def test_a_conversation_id_the_client_chose_is_refused_through_nginx(stack: Stack):
    issued = stack.say(new_sender(), "hello").json()[0]["recipient_id"]
    forged = issued[:-2] + ("00" if not issued.endswith("00") else "11")
    for sender in ["alice", "+15551234567", "twilio:+15551234567", forged]:
        refused = requests.post(stack.url + "/webhooks/rest/webhook", json={"sender": sender, "message": "hi"},
                                timeout=60)
        assert refused.status_code == 403 and refused.json() == {"error": NOT_ISSUED}, sender
        assert not stack.events(sender), sender
        forget = requests.post(stack.url + "/webhooks/rest/forget", json={"sender": sender}, timeout=60)
        assert forget.status_code == 403, sender


def test_nginx_does_not_pass_the_callback_webhook(stack: Stack):
    """Its senders are the site owner's app's own user ids: only that app may reach it."""
    body = {"sender": "alice", "message": "hi"}
    assert requests.post(stack.url + "/webhooks/callback/webhook", json=body, timeout=30).status_code == 404
    assert not stack.events("alice")


def test_one_sender_is_rate_limited_with_a_clear_reply(stack: Stack):
    in_one_rate_window(30)
    replica, sender = stack.replicas[0], new_sender()
    statuses = [stack.say(sender, "hi", url=replica.url).status_code for _ in range(RATE_LIMIT)]
    assert statuses == [200] * RATE_LIMIT
    limited = stack.say(sender, "hi", url=replica.url)
    assert limited.status_code == 429
    assert texts_of(limited.json()) == [TOO_FAST]
    assert stack.say(new_sender(), "hi", url=replica.url).status_code == 200


def test_the_replicas_share_one_conversations_count(stack: Stack):
    """Messages of one conversation alternate between the two replicas: the count is kept
    in Redis, so the limit holds for the conversation, not for each replica."""
    in_one_rate_window(30)
    sender = new_sender()
    urls = [replica.url for replica in stack.replicas]
    statuses = [stack.say(sender, "hi", url=urls[turn % 2]).status_code for turn in range(RATE_LIMIT + 2)]
    assert statuses == [200] * RATE_LIMIT + [429, 429]


def test_clients_behind_nginx_are_counted_by_their_own_address(stack: Stack):
    """The replicas count the client's address that nginx passes on (SANIC_PROXIES_COUNT=1),
    not nginx's own: a client that used up its messages of the minute is refused with the
    replicas' kind reply, while other clients behind the same nginx are answered."""
    in_one_rate_window(50)
    flooder, other = new_client(), new_client()
    webhook = "/webhooks/rest/webhook"

    def start_conversation(url: Text, client: Text = "") -> requests.Response:
        headers = {"X-Forwarded-For": client} if client else {}
        return requests.post(url + webhook, json={"message": "hi"}, headers=headers, timeout=120)

    # Its earlier messages, each starting a new conversation, sent to the replicas with the
    # header nginx sets (nginx itself allows an address 10 requests a second).
    urls = [stack.replicas[turn % 2].url for turn in range(ADDRESS_RATE_LIMIT)]
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda url: start_conversation(url, flooder).status_code, urls))
    assert statuses == [200] * ADDRESS_RATE_LIMIT
    refused = start_conversation(stack.url, flooder)
    assert refused.status_code == 429 and texts_of(refused.json()) == [TOO_FAST]
    assert refused.json()[0]["recipient_id"].startswith("web-")  # the replica's reply, not nginx's
    assert start_conversation(stack.url, other).status_code == 200
    assert start_conversation(stack.url).status_code == 200  # the load balancer's own address


@pytest.mark.parametrize("method, path, passed", [("GET", "/", 200), ("POST", "/webhooks/rest/webhook", 400)])
def test_a_burst_over_nginx_rate_gets_its_kind_429(stack: Stack, method, path, passed):
    """nginx lets one client address send 10 requests a second with a burst of 20; beyond
    that it answers 429 itself, with the emergency numbers. (An empty JSON body: the
    replica refuses it at once with a 400, so the burst is nginx's to count.)"""
    client = new_client()
    with requests.Session() as session:
        session.headers["X-Forwarded-For"] = client
        body = {} if method == "POST" else None
        answers = [session.request(method, stack.url + path, json=body, timeout=30) for _ in range(80)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:21] == [passed] * 21 and 429 in statuses, statuses
    assert set(statuses) == {passed, 429}, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json() == [{"recipient_id": "", "text": TOO_FAST}]
    assert "911" in TOO_FAST and "988" in TOO_FAST
    assert requests.get(stack.url + "/", headers={"X-Forwarded-For": new_client()}, timeout=30).status_code == 200


def held_request(stack: Stack, client: Text) -> ssl.SSLSocket:
    """A connection to nginx whose REST request never finishes sending its body: nginx
    keeps it open, waiting."""
    raw = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    connection = stack.tls.context().wrap_socket(raw, server_hostname="127.0.0.1")
    connection.sendall(f"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {client}\r\n"
                       "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
    return connection


def test_too_many_open_connections_from_one_client_are_refused(stack: Stack):
    """nginx lets one client address hold 20 requests open at once; the next gets its kind
    429, while other clients are served, and the client is served again once some end."""
    client = new_client()
    held = [held_request(stack, client) for _ in range(20)]
    try:
        time.sleep(2.5)  # the rate limit's burst fills up again: only the connections are too many
        refused = requests.post(stack.url + "/webhooks/rest/webhook", json={"message": "hi"},
                                headers={"X-Forwarded-For": client}, timeout=30)
        assert refused.status_code == 429 and refused.json() == [{"recipient_id": "", "text": TOO_FAST}]
        assert requests.get(stack.url + "/", headers={"X-Forwarded-For": new_client()}, timeout=30).status_code == 200
    finally:
        for connection in held:
            connection.close()
    log = (stack.nginx_dir / "logs" / "error.log").read_text()
    assert 'limiting connections by zone "connections_per_client"' in log
    served = eventually(lambda: requests.get(stack.url + "/", headers={"X-Forwarded-For": client}, timeout=30),
                        lambda answer: answer.status_code == 200)
    assert served.status_code == 200


@pytest.mark.parametrize("app", ["twilio", "slack", "telegram", "facebook"])
def test_nginx_passes_the_messaging_webhooks_to_a_replica(stack: Stack, app):
    """Behind nginx an app's webhook reaches the assistant (nginx's own answer to a path it
    does not pass is an empty 404, `location /`); this stack runs no app, so the replica
    answers that it has no such route."""
    answer = requests.post(f"{stack.url}/webhooks/{app}/webhook", data=b"{}", timeout=30)
    assert answer.status_code == 404 and "Requested URL" in answer.text, answer.text[:300]


def test_logs_do_not_keep_what_people_wrote(stack: Stack):
    secret = f"my private worry number {uuid.uuid4().hex}"
    for replica in stack.replicas:
        assert stack.say(new_sender(), secret, url=replica.url).status_code == 200
        assert stack.say(new_sender(), f"i want to die {secret}", url=replica.url).status_code == 200
    logs = [*stack.workdir.glob("*.log"), *(stack.nginx_dir / "logs").glob("*.log")]
    assert len(logs) >= 5
    for log in logs:
        assert secret.split()[-1] not in log.read_text(errors="replace"), log.name
