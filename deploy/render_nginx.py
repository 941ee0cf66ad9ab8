"""Writes nginx.conf for a set of Rasa replicas from deploy/nginx.conf.template.

    python -m deploy.render_nginx --listen 0.0.0.0:443 --listen-http 0.0.0.0:80 \
        --certificate /etc/letsencrypt/live/help.example.org/fullchain.pem \
        --certificate-key /etc/letsencrypt/live/help.example.org/privkey.pem \
        --rasa 10.0.0.5:5005 --rasa 10.0.0.6:5005 --origin https://help.example.org \
        --replica-ca /etc/withdrawal-help/tls/internal-ca.crt --replica-name rasa.internal \
        --trusted-proxy 10.0.0.0/8
"""
import argparse
import json
from pathlib import Path
from typing import Iterable, Text

from channels import messages

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def reply(text: Text) -> Text:
    """A REST reply body, as the assistant sends it, quoted for nginx."""
    body = json.dumps([{"recipient_id": "", "text": text}])
    assert "'" not in body
    return body


def https_port(listen: Text) -> Text:
    """What the redirect from plain HTTP adds after the host: nothing for 443."""
    port = listen.rsplit(":", 1)[-1]
    return "" if port == "443" else f":{port}"


def render(
    listen: Text, listen_http: Text, certificate: Text, certificate_key: Text,
    rasa_servers: Iterable[Text], origins: Iterable[Text], trusted_proxy: Text,
    replica_ca: Text, replica_name: Text,
) -> Text:
    servers = "\n".join(f"        server {server} max_fails=1 fail_timeout=10s;" for server in rasa_servers)
    allowed = "\n".join(f'        "{origin}" 1;' for origin in origins)
    return (
        TEMPLATE.read_text()
        .replace("@LISTEN@", listen)
        .replace("@LISTEN_HTTP@", listen_http)
        .replace("@HTTPS_PORT@", https_port(listen))
        .replace("@CERTIFICATE@", certificate)
        .replace("@CERTIFICATE_KEY@", certificate_key)
        .replace("@RASA_SERVERS@", servers)
        .replace("@ALLOWED_ORIGINS@", allowed)
        .replace("@TRUSTED_PROXY@", trusted_proxy)
        .replace("@REPLICA_CA@", replica_ca)
        .replace("@REPLICA_NAME@", replica_name)
        .replace("@TOO_LONG@", reply(messages.TOO_LONG))
        .replace("@TOO_FAST@", reply(messages.TOO_FAST))
        .replace("@CANNOT_ANSWER@", reply(messages.CANNOT_ANSWER))
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="address:port for https")
    parser.add_argument("--listen-http", required=True, help="address:port for plain HTTP (redirects to https)")
    parser.add_argument("--certificate", required=True, help="PEM file: the certificate and its chain")
    parser.add_argument("--certificate-key", required=True, help="PEM file: the certificate's private key")
    parser.add_argument("--rasa", action="append", required=True, help="host:port of a replica")
    parser.add_argument("--origin", action="append", default=[], help="a site allowed to chat")
    parser.add_argument("--trusted-proxy", default="127.0.0.1", help="address of the load balancer in front")
    parser.add_argument("--replica-ca", required=True, help="PEM file of the CA that signed the replicas' certificates")
    parser.add_argument("--replica-name", required=True, help="the host name in the replicas' certificates")
    args = parser.parse_args()
    print(render(args.listen, args.listen_http, args.certificate, args.certificate_key, args.rasa, args.origin,
                 args.trusted_proxy, args.replica_ca, args.replica_name))
