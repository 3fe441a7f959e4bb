#!/usr/bin/env bash
# Development server: the local mail sink (scripts/mail_sink.py: SMTP on 8025, SMS gateway and the page
# of what was "sent" on http://127.0.0.1:8026/) and the scheduler (timers and the outbox dispatcher) in
# the background, the Flask app in the foreground. SMTP_* / SMS_GATEWAY_URL already set are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:-5000}"
# Development over plain http: the session cookie may not be Secure here (it is everywhere else).
export APP_ENV=development
export SMTP_HOST="${SMTP_HOST:-127.0.0.1}" SMTP_PORT="${SMTP_PORT:-8025}" SMTP_SECURITY="${SMTP_SECURITY:-none}"
export SMS_GATEWAY_URL="${SMS_GATEWAY_URL:-http://127.0.0.1:8026/sms}" SMS_GATEWAY_KEY="${SMS_GATEWAY_KEY:-dev-key}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"
.venv/bin/python scripts/mail_sink.py --smtp-port 8025 --http-port 8026 &
SINK=$!
.venv/bin/flask scheduler run &
SCHEDULER=$!
trap 'kill $SCHEDULER $SINK 2>/dev/null || true' EXIT INT TERM
echo "what the app sends: http://127.0.0.1:8026/"
.venv/bin/flask run --host 127.0.0.1 --port "$PORT"
