"""A local stand-in for the mail server and the SMS gateway, for development and tests.

    .venv/bin/python scripts/mail_sink.py [--host 127.0.0.1] [--smtp-port 8025] [--http-port 8026]

One process: an aiosmtpd SMTP server that keeps every e-mail it receives, and an HTTP server that
(a) is the SMS gateway (POST /sms with JSON {to, text, id} answers {"id": ...}, as HttpJsonGateway
expects) and (b) shows what was "sent": GET / lists the e-mails and SMS received, newest first.
GET /sent.json gives the same as JSON. Tests drive it from Python (Sink) and choose the gateway's
answer (sms_answer: "ok", an HTTP status such as 500 or 400, "garbage" or "slow")."""
from __future__ import annotations

import argparse
import email
import html
import itertools
import json
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

KEEP = 500                    # the sink remembers this many e-mails and SMS each


@dataclass
class Mail:
    received_at: str
    mail_from: str
    to: list
    subject: str
    message_id: str
    body: str


@dataclass
class Sms:
    received_at: str
    to: str
    text: str
    id: str
    idempotency_key: str
    authorization: str


def free_port(host="127.0.0.1") -> int:
    """A port nobody listens on now (aiosmtpd's Controller cannot take port 0 itself)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_mail(received_at, mail_from, to, content: bytes) -> Mail:
    """An e-mail as received, with its subject and body decoded."""
    msg = email.message_from_bytes(content, policy=policy.default)
    body = msg.get_body(("plain", "html"))
    return Mail(received_at, mail_from, to, str(msg["Subject"] or ""), str(msg["Message-ID"] or ""),
                body.get_content() if body else "")


class MailCollector:
    """aiosmtpd handler: keeps each e-mail as received (parsed when looked at, so that the sink keeps
    up with a dispatcher); the sink's `smtp_reply` (e.g. "451 4.3.0 try later") refuses it instead."""

    def __init__(self, sink: "Sink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        if self.sink.smtp_reply:
            return self.sink.smtp_reply
        self.sink.add_mail((_now(), envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


class GatewayHandler(BaseHTTPRequestHandler):
    """POST /sms: the SMS gateway. GET /: the page of what was sent. GET /sent.json: the same as JSON."""
    server_version = "mail-sink"

    @property
    def sink(self) -> "Sink":
        return self.server.sink

    def do_POST(self):
        if self.path != "/sms":
            return self._reply(404, b'{"error": "not found"}')
        try:
            data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8"))
            to, text = str(data["to"]), str(data["text"])
        except (ValueError, KeyError, TypeError):
            return self._reply(400, b'{"error": "expected JSON {to, text, id}"}')
        answer = self.sink.sms_answer
        if answer == "slow":
            time.sleep(self.sink.slow_seconds)
        if isinstance(answer, int):      # as real gateways do, the refusal names the number
            return self._reply(answer, json.dumps({"error": f"answer {answer} as asked", "to": to}).encode())
        if answer == "garbage":
            return self._reply(200, b"<html>proxy error</html>", "text/html")
        sms = Sms(_now(), to, text, f"sms-{next(self.sink.ids)}", self.headers.get("Idempotency-Key", ""),
                  self.headers.get("Authorization", ""))
        self.sink.add_sms(sms)
        self._reply(200, json.dumps({"id": sms.id}).encode())

    def do_GET(self):
        if self.path == "/sent.json":
            sent = {"emails": [asdict(m) for m in self.sink.emails], "sms": [asdict(s) for s in self.sink.sms]}
            return self._reply(200, json.dumps(sent, ensure_ascii=False).encode())
        if self.path == "/":
            return self._reply(200, self.sink.page().encode(), "text/html")
        self._reply(404, b'{"error": "not found"}')

    def _reply(self, status, body: bytes, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):      # quiet: the page shows what arrived
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up waiting (e.g. a timed-out gateway call) is expected, not an error."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Sink:
    """The SMTP server and the HTTP server, started and stopped together (or the SMTP one alone)."""

    def __init__(self, host="127.0.0.1", smtp_port=8025, http_port=8026, credentials=None):
        """`credentials`: (user, password) the SMTP server then requires (AUTH over plain SMTP)."""
        self.host, self.smtp_port, self.http_port = host, smtp_port, http_port
        self.credentials = credentials
        self._emails: deque[tuple] = deque(maxlen=KEEP)       # newest first, as received
        self.sms: deque[Sms] = deque(maxlen=KEEP)
        self.smtp_reply = None
        self.sms_answer = "ok"
        self.slow_seconds = 2.0
        self.ids = itertools.count(1)
        self._lock = threading.Lock()
        self._smtp = None
        self._http = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "Sink":
        self.start_smtp()
        self._http = _HttpServer((self.host, self.http_port), GatewayHandler)
        self._http.sink = self
        self.http_port = self._http.server_port
        threading.Thread(target=self._http.serve_forever, args=(0.05,), name="mail-sink-http", daemon=True).start()
        return self

    def start_smtp(self):
        auth = {}
        if self.credentials:
            auth = {"auth_required": True, "auth_require_tls": False, "authenticator": self._authenticate}
        self._smtp = Controller(MailCollector(self), hostname=self.host, port=self.smtp_port, **auth)
        self._smtp.start()

    def _authenticate(self, server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.credentials
        return AuthResult(success=ok, handled=False)      # handled=False: a refusal is answered with 535

    def stop_smtp(self):
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None

    def stop(self):
        self.stop_smtp()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    @property
    def sms_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/sms"

    # ---- what arrived ----------------------------------------------------------------------------
    @property
    def emails(self) -> list[Mail]:
        """The e-mails received, newest first."""
        with self._lock:
            received = list(self._emails)
        return [parse_mail(*r) for r in received]

    def add_mail(self, received: tuple):
        with self._lock:
            self._emails.appendleft(received)

    def add_sms(self, sms: Sms):
        with self._lock:
            self.sms.appendleft(sms)

    def page(self) -> str:
        e = html.escape
        emails = self.emails
        mails = "".join(f"<article><h3>{e(m.subject)}</h3><p><small>{e(m.received_at)} · to {e(', '.join(m.to))} · "
                        f"{e(m.message_id)}</small></p><pre>{e(m.body)}</pre></article>" for m in emails)
        texts = "".join(f"<article><p><small>{e(s.received_at)} · to {e(s.to)} · {e(s.id)}</small></p>"
                        f"<pre>{e(s.text)}</pre></article>" for s in list(self.sms))
        return (f"<!doctype html><html lang=zh><meta charset=utf-8><title>Sent (development)</title>"
                f"<meta name=viewport content='width=device-width'><meta http-equiv=refresh content=10>"
                f"<style>body{{font-family:sans-serif;max-width:60em;margin:auto;padding:1em}}"
                f"pre{{white-space:pre-wrap;background:#f4f4f4;padding:.5em}}</style>"
                f"<h1>What the app sent (development)</h1>"
                f"<h2>E-mail ({len(emails)})</h2>{mails or '<p>none yet</p>'}"
                f"<h2>SMS ({len(self.sms)})</h2>{texts or '<p>none yet</p>'}</html>")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--http-port", type=int, default=8026)
    args = parser.parse_args(argv)
    sink = Sink(args.host, args.smtp_port, args.http_port).start()
    print(f"mail sink: SMTP {args.host}:{args.smtp_port}; SMS gateway {sink.sms_url}; "
          f"what was sent: http://{args.host}:{sink.http_port}/", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
