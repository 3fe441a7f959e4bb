#!/usr/bin/env bash
# Development server: the timer scheduler in the background, the Flask app in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:-5000}"
# Development over plain http: the session cookie may not be Secure here (it is everywhere else).
export APP_ENV=development
.venv/bin/flask scheduler run &
SCHEDULER=$!
trap 'kill $SCHEDULER 2>/dev/null || true' EXIT INT TERM
.venv/bin/flask run --host 127.0.0.1 --port "$PORT"
