"""Delivery of customer messages: queueing inside the workflow's transaction (queue.py), the channels
(email.py over SMTP, sms.py through an HTTP gateway), the dispatcher that claims, sends and records
(dispatch.py), what an undeliverable message becomes (undelivered.py) and the `flask outbox` commands
(cli.py)."""

CHANNELS = ("email", "sms")
NO_CHANNEL = "none"          # the channel of the failed Delivery that records "no channel"
