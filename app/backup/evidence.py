"""Evidence files in a backup: the contents of a directory store (FileStore), copied under evidence/ab/cdef… and
checked against their hash on the way; restored into whatever store the app is configured with. A store that is
not a directory (an S3 bucket) is not copied: the bucket's own versioning and replication keep it."""
from ..evidence.store import FileStore, StoreUnavailable, is_digest
from . import BackupError

PREFIX = "evidence/"
NOT_COPIED = ("the evidence store is not a directory (e.g. an S3 bucket): its contents are not in this backup; "
              "the bucket's own versioning and replication keep them (README: Backups and restore)")


def part_name(sha: str) -> str:
    return f"{PREFIX}{sha[:2]}/{sha[2:]}"


def copy_out(store, wanted, writer) -> dict:
    """Copy `wanted` (hashes; None = every content in the store) into the backup. The manifest's evidence
    section: what was copied, and the contents that are missing or damaged in the store."""
    summary = {"store": f"{type(store).__module__}:{type(store).__name__}",
               "scope": "all" if wanted is None else "referenced"}
    if not isinstance(store, FileStore):
        return {**summary, "scope": "none", "files": 0, "note": NOT_COPIED}
    try:
        hashes = sorted(stored.sha256 for stored in store.contents()) if wanted is None else sorted(wanted)
    except StoreUnavailable as exc:     # the folder cannot be read (the cause is in the log)
        raise BackupError(f"the evidence folder could not be listed ({exc.message}); no backup was written") from exc
    missing, damaged = [], []
    for sha in hashes:
        try:
            content = store.get(sha)
        except FileNotFoundError:
            missing.append(sha)
            continue
        except Exception as exc:        # noqa: BLE001  (StoreUnavailable: unreadable, a failing disk)
            raise BackupError(f"could not read evidence {sha} from the store ({exc}); no backup was written") from exc
        name = part_name(sha)
        writer.path(name).write_bytes(content)
        if writer.add(name) != sha:             # changed in the store since it was written
            writer.drop(name)
            damaged.append(sha)
    return {**summary, "files": len(hashes) - len(missing) - len(damaged), "missing": missing, "damaged": damaged}


def parts(manifest) -> dict:
    """{part name: SHA-256} of the evidence in a checked backup; BackupError if a part's recorded hash is
    not its name (a content would go into the store under another content's key)."""
    found = {name: part["sha256"] for name, part in manifest["files"].items() if name.startswith(PREFIX)}
    for name, sha in found.items():
        if not is_digest(sha) or name != part_name(sha):
            raise BackupError(f"{name}: its recorded SHA-256 is not its name: the backup was altered")
    return found


def restore(store, src, manifest) -> int:
    """Put every evidence part of the (checked) backup into the store; how many."""
    found = parts(manifest)
    for name, sha in found.items():
        try:
            store.put(sha, (src / name).read_bytes())
        except Exception as exc:        # noqa: BLE001  (StoreUnavailable: a full disk, a bucket that refuses)
            raise BackupError(f"could not put evidence {sha} into the store ({exc}); the database was not "
                              "restored (the files already put do no harm: a restore again puts the rest)") from exc
    return len(found)


def absent(store, hashes) -> list:
    """The hashes the database refers to that the store does not hold."""
    try:
        return sorted(sha for sha in hashes if not store.exists(sha))
    except Exception as exc:            # noqa: BLE001  (StoreUnavailable)
        raise BackupError(f"the database was restored, but the evidence store could not be checked ({exc}): "
                          "run `flask backup restore --force` again when it is reachable") from exc

