"""A backup on disk: one directory with its parts, manifest.json and SHA256SUMS. It is written in a hidden
directory beside its name and renamed to it when complete, so a directory of that name is a whole backup."""
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from . import BackupError

FORMAT = "complaints-backup/1"
MANIFEST, SUMS = "manifest.json", "SHA256SUMS"


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Writer:
    """`with Writer(dest) as w:` put parts at w.path(name) and w.add(name); w.finish(meta) writes the manifest
    and the sums and gives the backup its name. Left any other way, nothing stays behind."""

    def __init__(self, dest: Path):
        if dest.exists():
            raise BackupError(f"{dest} exists: give each backup a new name (e.g. one with the date and time)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.dest, self.parts = dest, {}
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))   # mode 0700

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.tmp, ignore_errors=True)      # gone already when finish() renamed it

    def path(self, name: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, name: str) -> str:
        """Count a written part in; its SHA-256."""
        path = self.tmp / name
        self.parts[name] = {"sha256": sha256_of(path), "size": path.stat().st_size}
        return self.parts[name]["sha256"]

    def drop(self, name: str):
        (self.tmp / name).unlink(missing_ok=True)
        self.parts.pop(name, None)

    def finish(self, meta: dict) -> dict:
        manifest = {"format": FORMAT, **meta, "files": dict(sorted(self.parts.items()))}
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        sums = {MANIFEST: sha256_of(self.tmp / MANIFEST), **{n: p["sha256"] for n, p in manifest["files"].items()}}
        (self.tmp / SUMS).write_text("".join(f"{sha}  {name}\n" for name, sha in sums.items()), encoding="utf-8")
        _sync(self.tmp)
        os.rename(self.tmp, self.dest)
        return manifest


def _sync(root: Path):
    """Every file on disk before the backup takes its name."""
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())


def read(src: Path) -> dict:
    """The manifest of an intact backup, every part checked against its SHA-256; else BackupError naming
    each part that is missing or differs."""
    if not (src / SUMS).is_file():
        raise BackupError(f"{src} is not a backup: it has no {SUMS}")
    sums = _sums(src / SUMS)
    problems = [f"{name}: {why}" for name, sha in sums.items() if (why := _part_problem(src, name, sha))]
    if problems:
        raise BackupError(f"the backup {src} is damaged or incomplete:\n  " + "\n  ".join(problems))
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (KeyError, ValueError) as exc:
        raise BackupError(f"{src}/{MANIFEST} is not a backup manifest ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src} is not a backup of this app (format {manifest.get('format')!r}, expected {FORMAT})")
    listed = {name: part["sha256"] for name, part in manifest.get("files", {}).items()}
    if MANIFEST not in sums or listed != {n: s for n, s in sums.items() if n != MANIFEST}:
        raise BackupError(f"{src}: {MANIFEST} and {SUMS} do not list the same parts: the backup was altered")
    return manifest


def _sums(path: Path) -> dict:
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        sha, sep, name = line.partition("  ")
        if not sep or len(sha) != 64 or not _safe(name):
            raise BackupError(f"{path} line {number} is not '<sha256>  <file>': the backup was altered")
        sums[name] = sha
    return sums


def _safe(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts


def _part_problem(src: Path, name: str, sha: str):
    path = src / name
    if not path.is_file():
        return "missing"
    return None if sha256_of(path) == sha else "damaged (its SHA-256 differs from the one recorded)"
