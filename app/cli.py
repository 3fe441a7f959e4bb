"""flask commands: processes check/deploy, users, tokens, demo users, scheduler, audit."""
import secrets
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import inspect, select

from .extensions import db
from .models import User


def _bundles(app):
    from . import known_lanes
    from .engine.registry import load_processes
    return load_processes(app.config["PROCESSES_DIR"], app.config["FORMS_DIR"], known_lanes(app))


def deploy_on_start(app):
    """Deploy when the app starts, if the database is migrated; problems are logged, not fatal."""
    if not app.config.get("DEPLOY_ON_START"):
        return
    from .engine.registry import deploy
    with app.app_context():
        if not inspect(db.engine).has_table("process_version"):
            app.logger.warning("database not migrated yet: run `flask db upgrade`; processes not deployed")
            return
        bundles, problems = _bundles(app)
        for problem in problems:
            app.logger.error("not deployed: %s", problem)
        if not problems:
            for process_id, version, new in deploy(db.session, bundles, "system"):
                app.logger.info("%s version %s %s", process_id, version, "deployed" if new else "unchanged")


def register_cli(app):
    processes = AppGroup("processes", help="Check and deploy processes/ and forms/.")
    users = AppGroup("users", help="Manage users and API tokens.")
    scheduler = AppGroup("scheduler", help="The timer scheduler.")
    audit_group = AppGroup("audit", help="The audit trail.")
    calendar = AppGroup("calendar", help="Working-day calendar: official data, admin overrides, provisional deadlines.")

    @processes.command("check")
    def check_cmd():
        """Validate processes/ and forms/ without deploying."""
        bundles, problems = _bundles(current_app)
        for problem in problems:
            click.echo(str(problem))
        if problems:
            click.echo(f"{len(problems)} problem(s); nothing would be deployed.", err=True)
            sys.exit(1)
        for bundle in bundles:
            click.echo(f"ok: {bundle.process_id} ({', '.join(sorted(bundle.files))}; {len(bundle.forms)} forms)")

    @processes.command("deploy")
    @click.option("--by", "deployed_by", default="cli", help="Recorded as the deployer.")
    def deploy_cmd(deployed_by):
        """Register a new version of each process whose files changed."""
        from .engine.registry import deploy
        bundles, problems = _bundles(current_app)
        for problem in problems:
            click.echo(str(problem))
        if problems:
            click.echo("refused: nothing deployed; the last good versions keep serving.", err=True)
            sys.exit(1)
        ctx = click.get_current_context()
        for process_id, version, new in deploy(db.session, bundles, deployed_by):
            click.echo(f"{process_id}: version {version} "
                       f"{'deployed' if new else 'unchanged (this content is already deployed)'}")
            if new and version > 1:
                # What changed, and which running complaints could move onto the new version.
                ctx.invoke(diff_cmd, process_id=process_id, from_number=None, to_number=version)
                ctx.invoke(migrate_cmd, process_id=process_id, to_number=version, dry_run=True, actor=deployed_by)

    def _version(process_id, number):
        from .engine.registry import latest_version
        from .models import ProcessVersion
        if number is None:
            version = latest_version(db.session, process_id)
        else:
            version = db.session.execute(select(ProcessVersion).where(
                ProcessVersion.process_id == process_id, ProcessVersion.version == number)).scalar_one_or_none()
        if version is None:
            raise click.ClickException(f"{process_id} has no version {number or '(none deployed)'}")
        return version

    @processes.command("diff")
    @click.argument("process_id")
    @click.option("--from", "from_number", type=int, default=None, help="Default: the version before --to.")
    @click.option("--to", "to_number", type=int, default=None, help="Default: the latest version.")
    def diff_cmd(process_id, from_number, to_number):
        """Elements added, removed and changed between two deployed versions."""
        from .engine import workflow
        new = _version(process_id, to_number)
        old = _version(process_id, from_number if from_number is not None else new.version - 1)
        changes = workflow.spec_changes(*workflow.specs(old.content_hash, old.spec_json, old.subprocess_specs_json),
                                        *workflow.specs(new.content_hash, new.spec_json, new.subprocess_specs_json))
        click.echo(f"{process_id}: version {old.version} -> {new.version}")
        for name, change in changes.items():
            click.echo(f"  {name}:")
            for key, value in change.items():
                if value:
                    click.echo(f"    {key}: {value}")

    @processes.command("migrate")
    @click.argument("process_id")
    @click.option("--to", "to_number", type=int, default=None, help="Default: the latest version.")
    @click.option("--dry-run", is_flag=True, help="Only tell, per instance, whether it can be migrated.")
    @click.option("--by", "actor", default="cli")
    def migrate_cmd(process_id, to_number, dry_run, actor):
        """Move running instances of older versions onto a version (a dry run first is wise)."""
        from .models import ProcessInstance
        target = _version(process_id, to_number)
        runtime = current_app.extensions["runtime"]
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

    @processes.command("trace")
    @click.option("--files", is_flag=True, help="Read processes/ instead of the deployed versions.")
    def trace_cmd(files):
        """Print, as Markdown, every clause against the elements that implement it and the tests."""
        from . import trace
        from .config import ROOT
        from .engine.registry import latest_version
        from .models import ProcessVersion
        if files:
            from .engine.registry import decode_xml      # read per the XML declaration, as the check does
            bpmn = {p.name: decode_xml(p.read_bytes()) for p in current_app.config["PROCESSES_DIR"].glob("*.bpmn")}
            label = f"files in {current_app.config['PROCESSES_DIR']}"
        else:
            ids = db.session.execute(select(ProcessVersion.process_id).distinct()).scalars().all()
            versions = [latest_version(db.session, pid) for pid in sorted(ids)]
            if not versions:
                raise click.ClickException("nothing deployed; run `flask processes deploy` or use --files")
            bpmn = {name: xml for v in versions for name, xml in v.bpmn_files.items()}
            label = ", ".join(f"{v.process_id} version {v.version}" for v in versions)
        rows = trace.trace(trace.load_clauses(current_app.config["PROCESSES_DIR"] / "clauses.json"),
                           trace.clause_elements(bpmn), trace.clause_tests(ROOT / "tests"))
        click.echo(trace.to_markdown(rows, label), nl=False)

    @users.command("create")
    @click.argument("username")
    @click.option("--role", "roles", multiple=True, required=True)
    @click.option("--name", "display_name", default=None)
    @click.option("--password", default=None, help="Generated and printed when omitted.")
    def create_user(username, roles, display_name, password):
        """Create a user with one or more roles."""
        known = current_app.config["ROLES"]
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise click.BadParameter(f"unknown role(s) {unknown}; known: {sorted(known)}")
        if db.session.execute(select(User).where(User.username == username)).scalar_one_or_none():
            raise click.ClickException(f"user {username} exists")
        generated = password is None
        password = password or secrets.token_urlsafe(9)
        user = User(username=username, display_name=display_name or username)
        user.roles = roles
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        click.echo(f"created {username} ({', '.join(roles)})" + (f" password: {password}" if generated else ""))

    @users.command("token")
    @click.argument("username")
    @click.option("--days", type=int, default=None)
    def token_cmd(username, days):
        """Issue an API token (printed once)."""
        from .api.auth import issue_token
        user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"no user {username}")
        click.echo(issue_token(user, days or current_app.config["API_TOKEN_DAYS"], name="cli"))

    @users.command("unlock")
    @click.argument("username")
    @click.option("--by", "actor", default="cli")
    def unlock_cmd(username, actor):
        """End a login lock early (the lock message tells people to ask an administrator): clears the
        account's lock and its count of failed logins; audited."""
        from . import audit, login_limits
        user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"no user {username}")
        user.locked_until, user.failed_logins = None, 0
        login_limits.record_success(db.session, username)
        audit.record(db.session, actor, "account_unlocked", data={"username": username})
        db.session.commit()
        click.echo(f"unlocked {username}")

    @users.command("demo")
    def demo_users():
        """Create one demo user per role (development only); passwords are printed once."""
        created = 0
        for role, spec in current_app.config["ROLES"].items():
            username = f"demo_{role}"
            if db.session.execute(select(User).where(User.username == username)).scalar_one_or_none():
                continue
            password = secrets.token_urlsafe(9)
            user = User(username=username, display_name=f"{spec['zh']}（演示）")
            user.roles = [role]
            user.set_password(password)
            db.session.add(user)
            created += 1
            click.echo(f"{username:28} {role:20} password: {password}")
        db.session.commit()
        if not created:
            click.echo("demo users exist already (passwords were printed when they were created)")

    @scheduler.command("run")
    def scheduler_run():
        """Fire due BPMN timers every SCHEDULER_INTERVAL_SECONDS (blocking)."""
        from .scheduler import run
        run(current_app._get_current_object())

    @scheduler.command("once")
    def scheduler_once():
        """Fire the timers that are due now, once."""
        from .scheduler import fire_due_timers
        click.echo(f"fired timers on {fire_due_timers(current_app._get_current_object())} instance(s)")

    @audit_group.command("verify")
    def audit_verify():
        """Check the audit hash chain; exit 1 and name the first broken row if it was altered."""
        from .audit import verify
        count, broken = verify(db.session)
        if broken is not None:
            click.echo(f"BROKEN at audit row {broken} (after {count} good rows)")
            sys.exit(1)
        click.echo(f"ok: {count} audit rows, chain intact")

    @calendar.command("status")
    def calendar_status():
        """The last year with official data, the overrides, and the provisional open deadlines."""
        from .models import CalendarDay, Deadline
        runtime = current_app.extensions["runtime"]
        click.echo(f"official holiday data up to: {runtime.calendar().last_official_year}")
        for day in db.session.execute(select(CalendarDay).order_by(CalendarDay.day)).scalars():
            click.echo(f"override {day.day} {'working day' if day.working else 'holiday'} "
                       f"{day.note} (by {day.set_by})")
        provisional = db.session.execute(select(Deadline).where(Deadline.state == "open", Deadline.provisional)
                                         .order_by(Deadline.due_at)).scalars().all()
        click.echo(f"provisional open deadlines: {len(provisional)}")
        for d in provisional:
            click.echo(f"  instance {d.instance_id} {d.name} due {d.due_at.isoformat()}")

    @calendar.command("set")
    @click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
    @click.option("--working/--holiday", required=True, help="A (make-up) working day, or a holiday.")
    @click.option("--note", default="")
    @click.option("--by", "set_by", default="cli")
    def calendar_set(day, working, note, set_by):
        """Override one day of the official calendar (e.g. the State Council's schedule for next year)."""
        from .models import CalendarDay
        row = db.session.get(CalendarDay, day.date()) or CalendarDay(day=day.date())
        row.working, row.note, row.set_by = working, note, set_by
        from .timeutil import utcnow
        row.set_at = utcnow()
        db.session.add(row)
        from . import audit
        audit.record(db.session, set_by, "calendar_override_set",
                     data={"day": day.date().isoformat(), "working": working, "note": note})
        db.session.commit()
        click.echo(f"{day.date()} is now a {'working day' if working else 'holiday'}; "
                   f"run `flask calendar recompute` to update provisional deadlines")

    @calendar.command("unset")
    @click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
    @click.option("--by", "set_by", default="cli")
    def calendar_unset(day, set_by):
        """Remove an override; the official data applies again."""
        from .models import CalendarDay
        row = db.session.get(CalendarDay, day.date())
        if row is None:
            raise click.ClickException(f"no override for {day.date()}")
        db.session.delete(row)
        from . import audit
        audit.record(db.session, set_by, "calendar_override_removed", data={"day": day.date().isoformat()})
        db.session.commit()
        click.echo(f"override for {day.date()} removed")

    @calendar.command("recompute")
    @click.option("--by", "actor", default="cli")
    def calendar_recompute(actor):
        """Evaluate every provisional open deadline again with the current calendar."""
        runtime = current_app.extensions["runtime"]
        ids = runtime.provisional_instance_ids()
        for instance_id in ids:
            runtime.recompute_deadlines(instance_id, actor)
        click.echo(f"recomputed provisional deadlines of {len(ids)} instance(s)")

    for group in (processes, users, scheduler, audit_group, calendar):
        app.cli.add_command(group)
