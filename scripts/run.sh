#!/usr/bin/env bash
# Starts the action server (5055), the assistant (5005, REST and socket.io) and the
# demo page with the web chat widget (8080).
# `scripts/run.sh shell` chats in this terminal instead of serving.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
MODEL=models/withdrawal-help.tar.gz
set -a; source server.env; set +a  # worker processes and threads

# Both servers listen on this machine only, unless CHAT_INTERFACE says otherwise
# (for example 0.0.0.0 behind a proxy on another host).
INTERFACE="${CHAT_INTERFACE:-127.0.0.1}"
SANIC_HOST="$INTERFACE" "$BIN/rasa" run actions --port 5055 --actions actions >logs-actions.txt 2>&1 &
ACTIONS_PID=$!
trap 'kill $ACTIONS_PID ${DEMO_PID:-} 2>/dev/null || true' EXIT

if [ "${1:-}" = "shell" ]; then
  # One worker: several would all read this terminal.
  SANIC_WORKERS=1 "$BIN/rasa" shell --model "$MODEL" --endpoints endpoints.yml
  exit
fi

"$BIN/python" scripts/credentials.py build/credentials.yml
"$BIN/python" -m http.server 8080 --bind localhost --directory build/widget >logs-widget.txt 2>&1 &
DEMO_PID=$!

cat <<MSG

The assistant is starting on http://localhost:5005 (action server on 5055).
Chat over REST, for example:
  curl -s localhost:5005/webhooks/rest/webhook -d '{"message": "what are withdrawal symptoms?"}'
The first message starts a conversation: send the recipient_id of its replies as "sender"
to continue it (the server refuses ids it did not issue):
  curl -s localhost:5005/webhooks/rest/webhook -d '{"sender": "web-...", "message": "how long does it last?"}'
Socket.io clients connect to http://localhost:5005 (events user_uttered / bot_uttered).
The demo page with the web chat widget is at http://localhost:8080/ (button in the corner).
Or chat in a terminal with: make shell
Trainers review conversations in the browser with: make workbench (http://localhost:5010;
accounts: make workbench-user ARGS=<name>)
Stop with Ctrl+C.

MSG
"$BIN/rasa" run --model "$MODEL" --endpoints endpoints.yml --credentials build/credentials.yml \
  --interface "$INTERFACE" --port 5005 --cors "http://localhost:8080"
