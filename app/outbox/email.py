"""E-mail over SMTP (smtplib + email.message): one connection per dispatcher batch, TLS and AUTH
from the configuration, and SMTP's answers sorted into temporary and permanent failures."""
import smtplib
import ssl
from email import policy
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from .failures import PermanentFailure, TemporaryFailure, scrub

SECURITY = ("starttls", "ssl", "none")
# Refusals that are about the server or our own settings, whatever their code: retried.
SERVER_PROBLEMS = (smtplib.SMTPConnectError, smtplib.SMTPHeloError, smtplib.SMTPAuthenticationError,
                   smtplib.SMTPSenderRefused, smtplib.SMTPNotSupportedError)


class _Headers(HeaderRegistry):
    """The stdlib's header registry builds a new class on every header it parses (about half the
    time of building an e-mail); this one builds each once."""

    def __init__(self):
        super().__init__()
        self._made = {}

    def __getitem__(self, name):
        key = name.lower()
        if key not in self._made:
            self._made[key] = super().__getitem__(name)
        return self._made[key]


POLICY = policy.SMTP.clone(header_factory=_Headers())     # email.policy.default with CRLF line ends


def message_id(key: str, mail_from: str) -> str:
    """The Message-ID of the message with idempotency key `key`: the same on every retry."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<{key}@{domain}>"


def build(mail_from: str, to: str, subject: str, body: str, key: str) -> EmailMessage:
    """A UTF-8 e-mail whose Message-ID derives from `key`."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(key, mail_from)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body, charset="utf-8")
    return msg


class SmtpMailer:
    """Sends e-mails over one lazily opened SMTP connection; close() after each batch."""
    channel = "email"

    def __init__(self, host, port=587, security="starttls", user=None, password=None, timeout=10.0,
                 mail_from="complaints@example.com"):
        if security not in SECURITY:
            raise ValueError(f"SMTP_SECURITY must be one of {', '.join(SECURITY)}, not {security!r}")
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.timeout, self.mail_from = user, password, timeout, mail_from
        self._smtp = None

    @classmethod
    def from_config(cls, config):
        """The mailer the configuration describes, or None when SMTP_HOST is unset."""
        if not config.get("SMTP_HOST"):
            return None
        return cls(config["SMTP_HOST"], int(config.get("SMTP_PORT", 587)), config.get("SMTP_SECURITY", "starttls"),
                   config.get("SMTP_USER"), config.get("SMTP_PASSWORD"),
                   float(config.get("SMTP_TIMEOUT_SECONDS", 10)), config.get("MAIL_FROM", "complaints@example.com"))

    def send(self, to: str, subject: str, body: str, key: str) -> str:
        """Send one e-mail; returns its Message-ID. Raises TemporaryFailure or PermanentFailure."""
        msg = build(self.mail_from, to, subject, body, key)
        smtp = self._connection(to)
        try:
            smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            code, answer = next(iter(exc.recipients.values()))
            raise _by_code(code, answer, to) from None
        except SERVER_PROBLEMS as exc:
            # The server, our credentials or our sender address, not this message: try again later.
            self.close()
            raise TemporaryFailure(scrub(f"SMTP {getattr(exc, 'smtp_code', '')} {_text(exc)}".strip(), to)) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise _by_code(exc.smtp_code, exc.smtp_error, to) from None
        except (smtplib.SMTPException, OSError) as exc:       # refused, timed out, disconnected, TLS
            self.close()
            raise TemporaryFailure(scrub(f"{type(exc).__name__}: {exc}", to)) from None
        return msg["Message-ID"]

    def close(self):
        """Quit the connection, if one is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _connection(self, to) -> smtplib.SMTP:
        """The open connection, or a new one; failing to get one makes the channel unreachable."""
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (smtplib.SMTPException, OSError) as exc:
                code = getattr(exc, "smtp_code", None)
                what = f"SMTP {code} {_text(exc)}" if code else f"{type(exc).__name__}: {exc}"
                raise TemporaryFailure(scrub(f"server unreachable: {what}", to), unreachable=True) from None
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context() if self.security != "none" else None
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _text(exc) -> str:
    error = getattr(exc, "smtp_error", None)
    if isinstance(error, bytes):
        return error.decode("utf-8", "replace")
    return str(error if error is not None else exc)


def _by_code(code, answer, to):
    """4xx: temporary; 5xx (and anything else): permanent."""
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    reason = scrub(f"SMTP {code} {text}", to)
    return TemporaryFailure(reason) if 400 <= int(code) < 500 else PermanentFailure(reason)
