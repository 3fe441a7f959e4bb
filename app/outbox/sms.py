"""SMS through a provider's HTTP gateway. A provider is a small SmsGateway subclass; HttpJsonGateway
is the one that speaks plain JSON over HTTPS (stdlib urllib)."""
import json
import socket
import urllib.error
import urllib.request

from .failures import PermanentFailure, TemporaryFailure, scrub

# 4xx answers that mean "not now" rather than "never".
RETRYABLE_4XX = (408, 425, 429)


class SmsGateway:
    """A provider adapter: send(to, text, key) -> the provider's reference for the SMS, or raise
    TemporaryFailure / PermanentFailure. `key` is stable across retries: pass it to the provider as
    its idempotency key so that a resend after a crash is not delivered twice."""
    channel = "sms"

    def send(self, to: str, text: str, key: str) -> str:
        raise NotImplementedError

    def close(self):
        """Release connections after a batch (nothing to release by default)."""


class HttpJsonGateway(SmsGateway):
    """POST {"to", "text", "id": key} as JSON with a Bearer key and an Idempotency-Key header;
    a 2xx answer {"id": …} means sent."""

    def __init__(self, url: str, api_key=None, timeout=10.0):
        self.url, self.api_key, self.timeout = url, api_key, timeout

    @classmethod
    def from_config(cls, config):
        """The gateway the configuration describes, or None when SMS_GATEWAY_URL is unset."""
        if not config.get("SMS_GATEWAY_URL"):
            return None
        return cls(config["SMS_GATEWAY_URL"], config.get("SMS_GATEWAY_KEY"),
                   float(config.get("SMS_TIMEOUT_SECONDS", 10)))

    def send(self, to: str, text: str, key: str) -> str:
        request = urllib.request.Request(self.url, method="POST", headers=self._headers(key),
                                         data=json.dumps({"to": to, "text": text, "id": key},
                                                         ensure_ascii=False).encode("utf-8"))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, body = response.status, response.read(4096)
        except urllib.error.HTTPError as exc:
            raise _refused(exc.code, _read(exc), to, text) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TemporaryFailure(scrub(f"gateway unreachable: {type(reason).__name__}: {reason}", to),
                                   unreachable=True) from None
        return _provider_ref(status, body, to, text)

    def _headers(self, key) -> dict:
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
                   "Idempotency-Key": key}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


def _read(exc) -> bytes:
    try:
        return exc.read(1024)
    except (OSError, ValueError):
        return b""


def _answer(body: bytes, to, text) -> str:
    """The gateway's answer as text for last_error, without the number or the message's text."""
    answer = body.decode("utf-8", "replace")
    return scrub(answer.replace(text, "<text>") if text else answer, to)


def _refused(status, body, to, text):
    reason = f"HTTP {status}: {_answer(body, to, text)}".rstrip(": ")
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return PermanentFailure(reason)
    return TemporaryFailure(reason)


def _provider_ref(status, body, to, text) -> str:
    """The provider's id from a 2xx answer; anything else is a temporary failure (garbage)."""
    if not 200 <= status < 300:
        raise TemporaryFailure(f"HTTP {status}: unexpected answer: {_answer(body, to, text)}")
    try:
        ref = json.loads(body.decode("utf-8")).get("id")
    except (ValueError, AttributeError):
        ref = None
    if not isinstance(ref, (str, int)) or isinstance(ref, bool) or str(ref) == "":
        raise TemporaryFailure(f"HTTP {status}: answer without an id: {_answer(body, to, text)}"[:400])
    return str(ref)[:200]
