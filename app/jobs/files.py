"""A job's files (BackgroundJobFile), in the database: what its items wrote (an export's slices, as JSON lines) and
its result file. Any web worker on any host reads the file the scheduler wrote. A file is written whole, in one
statement, and a slice done again replaces its file. A result is kept until the job's expires_at; purge() deletes
it then, and at once every file of a job that failed or was cancelled and the leftover slices of a job that is
done."""
import json
from datetime import datetime

from sqlalchemy import and_, delete, or_, select, update

from ..extensions import upsert_insert
from ..models import BackgroundJob, BackgroundJobFile
from ..timeutil import utcnow
from .store import ACTIVE             # a job in these states may still read its files


class JobFiles:
    """The files of jobs, through `session` (the caller commits)."""

    def __init__(self, session):
        self.session = session

    def write(self, job_id: int, name: str, content):
        """Write a file whole (again: it replaces the one of that name); `content`: bytes or a bytearray."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"not a file name of a job: {name!r}")
        insert = upsert_insert(self.session.get_bind())(BackgroundJobFile).values(
            job_id=int(job_id), name=name, content=content, written_at=utcnow())
        self.session.execute(insert.on_conflict_do_update(
            index_elements=["job_id", "name"], set_={"content": insert.excluded.content,
                                                     "written_at": insert.excluded.written_at}))

    def read(self, job_id: int, name: str):
        """The file's content, or None when there is none."""
        return self.session.execute(select(BackgroundJobFile.content).where(
            BackgroundJobFile.job_id == int(job_id), BackgroundJobFile.name == name)).scalar_one_or_none()

    def write_lines(self, job_id: int, name: str, lines):
        """A file of JSON lines."""
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        self.write(job_id, name, text.encode("utf-8"))

    def read_lines(self, job_id: int, name: str):
        content = self.read(job_id, name)
        if content is None:
            raise FileNotFoundError(f"job {job_id} has no file {name}")
        for line in content.split(b"\n"):      # not splitlines(): a text may hold U+2028, which JSON leaves as it is
            if line:
                yield json.loads(line)

    def remove(self, job_id: int, name: str):
        self.session.execute(delete(BackgroundJobFile).where(BackgroundJobFile.job_id == int(job_id),
                                                             BackgroundJobFile.name == name))

    def purge(self, now: datetime) -> int:
        """Forget results past their time and delete the files no job needs; how many files went."""
        self.session.execute(update(BackgroundJob).where(BackgroundJob.result_file.is_not(None),
                                                         BackgroundJob.expires_at <= now)
                             .values(result_file=None).execution_options(synchronize_session=False))
        needed = select(BackgroundJob.id).where(BackgroundJob.id == BackgroundJobFile.job_id, or_(
            BackgroundJob.state.in_(ACTIVE),
            and_(BackgroundJob.state == "done", BackgroundJob.result_file == BackgroundJobFile.name)))
        gone = self.session.execute(delete(BackgroundJobFile).where(~needed.exists())
                                    .execution_options(synchronize_session=False)).rowcount
        self.session.commit()
        return gone
