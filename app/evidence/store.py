"""Where evidence contents live, by SHA-256. The default is a directory (EVIDENCE_DIR, else
<instance>/evidence): <dir>/ab/cdef… for the hash abcdef…, written to a temporary file and renamed, so a
content is there whole or not at all. Another store (e.g. an S3-compatible bucket) is a class with the
same three methods named in EVIDENCE_STORE ("package.module:Class"), built with the app's config."""
import importlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

EXTENSION_KEY = "evidence_store"


class EvidenceStore(Protocol):
    def put(self, sha256: str, content: bytes) -> None: ...
    def get(self, sha256: str) -> bytes: ...
    def exists(self, sha256: str) -> bool: ...


class FileStore:
    def __init__(self, config):
        self.root = Path(config.get("EVIDENCE_DIR") or Path(config["INSTANCE_PATH"]) / "evidence")

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, sha256: str, content: bytes) -> None:
        path = self._path(sha256)
        if path.exists():
            return                      # the same content, already stored (for another case, say)
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
        return self._path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()


def init_app(app):
    """Build the configured store once, into app.extensions."""
    module, _, name = (app.config.get("EVIDENCE_STORE") or "app.evidence.store:FileStore").partition(":")
    cls = getattr(importlib.import_module(module), name)
    app.extensions[EXTENSION_KEY] = cls({**app.config, "INSTANCE_PATH": app.instance_path})


def store_of(app) -> EvidenceStore:
    return app.extensions[EXTENSION_KEY]
