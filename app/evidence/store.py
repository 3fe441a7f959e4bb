"""Where evidence contents live, by SHA-256. The default is a directory (EVIDENCE_DIR, else
<instance>/evidence): <dir>/ab/cdef… for the hash abcdef…, written to a temporary file and renamed, so a
content is there whole or not at all. Another store (e.g. an S3-compatible bucket) is a class with the
same methods named in EVIDENCE_STORE ("package.module:Class"), built with the app's config
(app.evidence.s3store:S3Store is one). A store that cannot be reached or written raises StoreUnavailable
(503: nothing was stored or handed out), a content it does not hold FileNotFoundError, and one whose
bytes do not match their hash may raise ContentMismatch (app.evidence.files refuses both as evidence)."""
import importlib
import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Protocol

from ..config import SettingError
from ..errors import AppError

EXTENSION_KEY = "evidence_store"
log = logging.getLogger(__name__)
HEX = set("0123456789abcdef")
UNAVAILABLE = "the evidence store is unavailable: nothing was stored or handed out; try again later"


class StoreUnavailable(AppError):
    """The store could not be reached, or refused to read or write (the cause is in the log)."""
    status = 503
    code = "evidence_store_unavailable"

    def __init__(self, message=UNAVAILABLE):
        super().__init__(message, fields={"file": "the evidence store is unavailable"})


class ContentMismatch(Exception):
    """What the store handed back is not the content of the hash asked for."""


def is_digest(name: str) -> bool:
    """A SHA-256 as the store names its contents: 64 lowercase hex digits."""
    return len(name) == 64 and set(name) <= HEX


def check_digest(sha256: str) -> str:
    if not is_digest(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return sha256


class Stored(NamedTuple):
    """A content the store holds: its hash, its size in bytes and when it was written (UTC)."""
    sha256: str
    size: int
    stored_at: datetime


class EvidenceStore(Protocol):
    def put(self, sha256: str, content: bytes) -> None: ...
    def get(self, sha256: str) -> bytes: ...
    def exists(self, sha256: str) -> bool: ...
    def ready(self) -> bool: ...         # /readyz: the store can take a file now
    # Every content written before `stored_before` (an aware UTC datetime; all when None), in no order.
    def contents(self, stored_before: Optional[datetime] = None) -> Iterator[Stored]: ...


class FileStore:
    def __init__(self, config):
        self.root = Path(config.get("EVIDENCE_DIR") or Path(config["INSTANCE_PATH"]) / "evidence")

    def _path(self, sha256: str) -> Path:
        check_digest(sha256)
        return self.root / sha256[:2] / sha256[2:]

    def put(self, sha256: str, content: bytes) -> None:
        path = self._path(sha256)
        try:
            if path.exists():           # the same content, already stored (for another case, or a failed try)
                self._touch(path)
                return
            self._write(path, content)
        except OSError as err:          # a full disk, a directory that cannot be made or written
            log.error("evidence store: writing %s failed: %s", sha256, err)
            raise StoreUnavailable() from err

    @staticmethod
    def _touch(path: Path) -> None:
        """Stored again now: `flask evidence orphans` gives the content its grace again (the row that names
        it may be on its way). Best effort: a file this process may not touch is still the content."""
        try:
            os.utime(path)
        except OSError as err:
            log.warning("evidence store: could not touch %s: %s", path.name, err)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, sha256: str) -> bytes:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise
        except OSError as err:          # unreadable: a permission, a failing disk, an unmounted share
            log.error("evidence store: reading %s failed: %s", sha256, err)
            raise StoreUnavailable() from err

    def exists(self, sha256: str) -> bool:
        try:
            return self._path(sha256).exists()
        except OSError as err:
            log.error("evidence store: looking for %s failed: %s", sha256, err)
            raise StoreUnavailable() from err

    def contents(self, stored_before: Optional[datetime] = None) -> Iterator[Stored]:
        """The files <dir>/ab/cdef… (a half-written upload's temporary file is no content: see leftovers)."""
        for name, stored in self._files(stored_before):
            if is_digest(name):
                yield stored

    def leftovers(self, stored_before: Optional[datetime] = None) -> Iterator[Stored]:
        """Temporary files of uploads that never finished (a process killed while writing), by their path
        under the folder instead of a hash: they may hold personal data as a content does."""
        for name, stored in self._files(stored_before):
            if not is_digest(name):
                yield stored._replace(sha256=f"{name[:2]}/{name[2:]}")

    def _files(self, stored_before):
        """(folder name + file name, Stored) of the files in the two-letter folders; one deleted meanwhile is
        skipped, any other error makes the store unavailable."""
        try:
            folders = [d for d in self.root.iterdir() if d.is_dir() and len(d.name) == 2] if self.root.is_dir() else []
            for folder in folders:
                for path in folder.iterdir():
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        continue
                    at = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
                    if stored_before is None or at < stored_before:
                        yield folder.name + path.name, Stored(folder.name + path.name, stat.st_size, at)
        except OSError as err:
            log.error("evidence store: listing the folder failed: %s", err)
            raise StoreUnavailable() from err

    def ready(self) -> bool:
        """The folder is there (made if need be, as the first upload would) and this process may write in it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            log.error("evidence store: the folder cannot be made: %s", err)
            return False
        return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)


def init_app(app):
    """Build the configured store once, into app.extensions."""
    setting = app.config.get("EVIDENCE_STORE") or "app.evidence.store:FileStore"
    module, _, name = setting.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:     # the setting names no class: say which
        raise SettingError(f"EVIDENCE_STORE={setting!r}: names no store class, as package.module:Class "
                           f"({err})") from None
    app.extensions[EXTENSION_KEY] = cls({**app.config, "INSTANCE_PATH": app.instance_path})


def store_of(app) -> EvidenceStore:
    return app.extensions[EXTENSION_KEY]
