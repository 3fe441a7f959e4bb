"""Evidence: files attached to a case (call recordings, letters, photos, bills), kept by content hash.

- kinds: what a file is, read from its content (never from its name), and whether it is accepted;
- scan: the optional virus scanner hook (a command given the content on stdin);
- store: where contents live (a directory by default; any class with put/get/exists, by configuration);
- files: attaching a file to a case (checked, stored, recorded with its hash in the audit chain) and
  reading it back (its hash verified).

Internal notes are in app.notes; both show in the case's timeline and case file."""
from . import kinds  # noqa: F401
from .store import init_app  # noqa: F401
