"""flask processes: check and deploy processes/ and forms/, compare two deployed versions, migrate
running instances onto a version, print the traceability of the written procedure; and
deploy_on_start, which deploys when the app starts."""
import sys

import click
from flask import current_app
from sqlalchemy import inspect, select

from .. import known_lanes, trace
from ..config import ROOT
from ..engine import registry, workflow
from ..extensions import db
from ..jobs import migration, store as jobs
from ..models import ProcessInstance, ProcessVersion
from .group import AUDITED_BY, Group

group = Group("processes", help="Check and deploy processes/ and forms/.")


def _bundles(app):
    return registry.load_processes(app.config["PROCESSES_DIR"], app.config["FORMS_DIR"], known_lanes(app))


def deploy_on_start(app):
    """Deploy when the app starts, if the database is migrated; problems are logged, not fatal."""
    if not app.config.get("DEPLOY_ON_START"):
        return
    with app.app_context():
        if not inspect(db.engine).has_table("process_version"):
            app.logger.warning("database not migrated yet: run `flask db upgrade`; processes not deployed")
            return
        bundles, problems = _bundles(app)
        for problem in problems:
            app.logger.error("not deployed: %s", problem)
        if not problems:
            for process_id, version, new in registry.deploy(db.session, bundles, "system"):
                app.logger.info(_start_log(process_id, version, new))


def _start_log(process_id, version, new) -> str:
    """What the start-up deploy did for one process, naming the version in force (a version uploaded on the
    procedure page stays in force when processes/ still holds an older one)."""
    if new:
        return f"{process_id}: processes/ deployed as version {version}"
    latest = registry.latest_version(db.session, process_id).version
    if latest == version:
        return f"{process_id}: version {version} in force, unchanged"
    return (f"{process_id}: version {latest} in force (deployed later than processes/, which holds version "
            f"{version}; download it from the procedure page to update processes/)")


def _checked_bundles(refusal):
    """The bundles of processes/ and forms/; with problems, print them and the refusal, and exit 1."""
    bundles, problems = _bundles(current_app)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(refusal.format(count=len(problems)), err=True)
        sys.exit(1)
    return bundles


@group.command("check")
def check():
    """Validate processes/ and forms/ without deploying."""
    for bundle in _checked_bundles("{count} problem(s); nothing would be deployed."):
        click.echo(f"ok: {bundle.process_id} ({', '.join(sorted(bundle.files))}; {len(bundle.forms)} forms)")


@group.command("deploy")
@click.option("--by", "deployed_by", default="cli", help="Recorded as the deployer.")
def deploy(deployed_by):
    """Register a new version of each process whose files changed."""
    bundles = _checked_bundles("refused: nothing deployed; the last good versions keep serving.")
    ctx = click.get_current_context()
    for process_id, version, new in registry.deploy(db.session, bundles, deployed_by):
        click.echo(f"{process_id}: version {version} "
                   f"{'deployed' if new else 'unchanged (this content is already deployed)'}")
        if new and version > 1:
            # What changed, and which running complaints could move onto the new version.
            ctx.invoke(diff, process_id=process_id, from_number=None, to_number=version)
            ctx.invoke(migrate, process_id=process_id, to_number=version, dry_run=True, actor=deployed_by)


def _version(process_id, number):
    if number is None:
        version = registry.latest_version(db.session, process_id)
    else:
        version = db.session.execute(select(ProcessVersion).where(
            ProcessVersion.process_id == process_id, ProcessVersion.version == number)).scalar_one_or_none()
    if version is None:
        raise click.ClickException(f"{process_id} has no version {number}" if number is not None else
                                   f"{process_id} has no version deployed")
    return version


@group.command("diff")
@click.argument("process_id")
@click.option("--from", "from_number", type=int, default=None, help="Default: the version before --to.")
@click.option("--to", "to_number", type=int, default=None, help="Default: the latest version.")
def diff(process_id, from_number, to_number):
    """Elements added, removed and changed between two deployed versions."""
    new = _version(process_id, to_number)
    if from_number is None and new.version == 1:
        raise click.ClickException(f"{process_id} version 1 is its first: there is no version before it to compare")
    old = _version(process_id, from_number if from_number is not None else new.version - 1)
    changes = workflow.spec_changes(*workflow.specs(old.content_hash, old.spec_json, old.subprocess_specs_json),
                                    *workflow.specs(new.content_hash, new.spec_json, new.subprocess_specs_json))
    click.echo(f"{process_id}: version {old.version} -> {new.version}")
    for name, change in changes.items():
        click.echo(f"  {name}:")
        for key, value in change.items():
            if value:
                click.echo(f"    {key}: {value}")


@group.command("migrate")
@click.argument("process_id")
@click.option("--to", "to_number", type=int, default=None, help="Default: the latest version.")
@click.option("--dry-run", is_flag=True, help="Only tell, per instance, whether it can be migrated.")
@AUDITED_BY
@click.option("--job", "as_job", is_flag=True,
              help="Queue a background job instead (the scheduler or `flask jobs run-once` works it).")
def migrate(process_id, to_number, dry_run, actor, as_job):
    """Move running instances of older versions onto a version (a dry run first is wise)."""
    target = _version(process_id, to_number)
    runtime = current_app.extensions["runtime"]
    if as_job:
        return _migration_job(target, dry_run, actor)
    rows = db.session.execute(select(ProcessInstance.id, ProcessInstance.business_key).where(
        ProcessInstance.process_id == process_id, ProcessInstance.status == "running",
        ProcessInstance.version_id != target.id).order_by(ProcessInstance.id)).all()
    moved = refused = 0
    for instance_id, key in rows:
        reasons = runtime.migrate(instance_id, target, actor, dry_run=dry_run)
        label = key or f"instance {instance_id}"
        if reasons:
            refused += 1
            click.echo(f"{label}: not migratable: {'; '.join(reasons)}")
        else:
            moved += 1
            click.echo(f"{label}: {'migratable' if dry_run else 'migrated'} to version {target.version}")
    verb = "migratable" if dry_run else "migrated"
    click.echo(f"{moved} {verb}, {refused} not migratable, to {process_id} version {target.version}")


def _migration_job(target, dry_run, actor):
    """A background job over every running instance on another version (each moved in its own transaction)."""
    rows = db.session.execute(select(ProcessInstance.id, ProcessInstance.business_key, ProcessVersion.version)
                              .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
                              .where(ProcessInstance.process_id == target.process_id,
                                     ProcessInstance.status == "running", ProcessInstance.version_id != target.id)
                              .order_by(ProcessInstance.id)).all()
    job = jobs.create(db.session, migration.KIND, actor, migration.params(target, dry_run), migration.items(rows))
    db.session.commit()
    click.echo(f"job {job.id}: {'check' if dry_run else 'migration'} of {len(rows)} instance(s) to "
               f"{target.process_id} version {target.version} queued; follow it with `flask jobs list`")


@group.command("trace")
@click.option("--files", is_flag=True, help="Read processes/ instead of the deployed versions.")
def trace_cmd(files):
    """Print, as Markdown, every clause against the elements that implement it and the tests."""
    bpmn, label = _files_bpmn() if files else _deployed_bpmn()
    try:
        elements = trace.clause_elements(bpmn)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    rows = trace.trace(trace.load_clauses(current_app.config["PROCESSES_DIR"] / "clauses.json"), elements,
                       trace.clause_tests(ROOT / "tests"))
    click.echo(trace.to_markdown(rows, label), nl=False)


def _files_bpmn():
    """The BPMN files in processes/, read per their XML declaration as the check does, and a label."""
    directory = current_app.config["PROCESSES_DIR"]
    return {p.name: registry.decode_xml(p.read_bytes()) for p in directory.glob("*.bpmn") if p.is_file()}, \
        f"files in {directory}"


def _deployed_bpmn():
    """The BPMN files of each process's latest deployed version, and a label naming the versions.
    A database without the tables says what to run, not a traceback (a fresh checkout runs this early)."""
    if not inspect(db.engine).has_table(ProcessVersion.__tablename__):
        raise click.ClickException("the database is not migrated: run `flask db upgrade` first, then "
                                   "`flask processes deploy` (or use --files to trace processes/)")
    ids = db.session.execute(select(ProcessVersion.process_id).distinct()).scalars().all()
    versions = [registry.latest_version(db.session, pid) for pid in sorted(ids)]
    if not versions:
        raise click.ClickException("nothing deployed; run `flask processes deploy` or use --files")
    bpmn = {name: xml for v in versions for name, xml in v.bpmn_files.items()}
    return bpmn, ", ".join(f"{v.process_id} version {v.version}" for v in versions)
