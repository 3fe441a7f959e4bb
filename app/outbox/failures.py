"""How a channel says a send did not work, and error texts kept free of personal data."""
import re

MAX_REASON = 400
# An e-mail address, or a run of 7+ digits (a phone or ID number), possibly spaced or dashed.
_EMAIL = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")
_DIGITS = re.compile(r"\+?\d[\d \-]{5,}\d")


class DeliveryFailure(Exception):
    """A send failed; `reason` is the provider's answer, scrubbed of personal data."""
    unreachable = False

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryFailure):
    """Worth trying again later (server down, timeout, 4xx from SMTP, 5xx from the gateway).
    `unreachable`: the channel itself could not be reached, so the rest of a batch need not wait
    for the same timeout one by one."""

    def __init__(self, reason: str, unreachable: bool = False):
        super().__init__(reason)
        self.unreachable = unreachable


class PermanentFailure(DeliveryFailure):
    """Trying again cannot help (address refused, request refused)."""


def scrub(text, *known) -> str:
    """`text` without the recipient's address or number (`known`), nor anything that looks like one,
    cut to MAX_REASON characters."""
    text = str(text)
    for value in known:
        if value:
            text = text.replace(str(value), "<recipient>")
    text = _EMAIL.sub("<address>", text)
    text = _DIGITS.sub("<number>", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"
