#!/usr/bin/env bash
# Starts the action server (5055) and the assistant (5005, REST and socket.io).
# `scripts/run.sh shell` chats in this terminal instead of serving.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
MODEL=models/withdrawal-help.tar.gz
set -a; source server.env; set +a  # worker processes and threads

"$BIN/rasa" run actions --port 5055 --actions actions >logs-actions.txt 2>&1 &
ACTIONS_PID=$!
trap 'kill $ACTIONS_PID 2>/dev/null || true' EXIT

if [ "${1:-}" = "shell" ]; then
  "$BIN/rasa" shell --model "$MODEL" --endpoints endpoints.yml
  exit
fi

cat <<MSG

The assistant is starting on http://localhost:5005 (action server on 5055).
Chat over REST, for example:
  curl -s localhost:5005/webhooks/rest/webhook -d '{"sender": "me", "message": "what are withdrawal symptoms?"}'
Socket.io clients connect to http://localhost:5005 (events user_uttered / bot_uttered).
Or chat in a terminal with: make shell
Stop with Ctrl+C.

MSG
"$BIN/rasa" run --model "$MODEL" --endpoints endpoints.yml --credentials credentials.yml \
  --port 5005 --cors "http://localhost:8080"
