"""The jobs' folder (JOBS_DIR, default <instance>/jobs; never served by the web server): one folder per job,
named by its id, holding what its items wrote and its result file. A result is kept until the job's
expires_at; purge() deletes it then, and at once the folder of a job that failed, was cancelled or is gone."""
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from ..models import BackgroundJob

PURGED_STATES = ("failed", "cancelled")


class JobFiles:
    def __init__(self, root):
        self.root = Path(root)

    def folder(self, job_id: int) -> Path:
        return self.root / str(int(job_id))

    def path(self, job_id: int, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"not a file name of a job: {name!r}")
        return self.folder(job_id) / name

    def write_lines(self, job_id: int, name: str, lines):
        """Write a file of JSON lines whole (a temporary file renamed: a half-written one never stays)."""
        target = self.path(job_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(tmp, target)

    def read_lines(self, job_id: int, name: str):
        with self.path(job_id, name).open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)

    def remove(self, job_id: int, name: str):
        self.path(job_id, name).unlink(missing_ok=True)

    def purge(self, session, now: datetime) -> int:
        """Forget results past their time and delete the folders no job needs; how many folders went."""
        session.execute(update(BackgroundJob).where(BackgroundJob.result_file.is_not(None),
                                                    BackgroundJob.expires_at <= now)
                        .values(result_file=None).execution_options(synchronize_session=False))
        session.commit()
        if not self.root.is_dir():
            return 0
        folders = {int(p.name): p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit()}
        if not folders:
            return 0
        live = dict(session.execute(select(BackgroundJob.id, BackgroundJob.state)
                                    .where(BackgroundJob.id.in_(folders))).all())
        kept = set(session.execute(select(BackgroundJob.id).where(BackgroundJob.id.in_(folders),
                                                                  BackgroundJob.result_file.is_not(None))).scalars())
        session.rollback()
        gone = 0
        for job_id, folder in folders.items():
            state = live.get(job_id)
            if state is None or state in PURGED_STATES or (state == "done" and job_id not in kept):
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        return gone
