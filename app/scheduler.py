"""The timer scheduler: an APScheduler interval job that fires due BPMN timers through the same
transactional path as every other change. Run it as its own process (`flask scheduler run`)."""
import logging

from .errors import Conflict, ProcessError

log = logging.getLogger(__name__)


def fire_due_timers(app) -> int:
    """One pass: fire every instance whose next timer is due. Returns how many were changed."""
    fired = 0
    with app.app_context():
        runtime = app.extensions["runtime"]
        for instance_id in runtime.due_instance_ids():
            try:
                if runtime.fire_timers(instance_id) is not None:
                    fired += 1
            except Conflict:
                log.info("instance %s changed concurrently; its timers are retried next pass", instance_id)
            except ProcessError as exc:
                log.error("instance %s: %s", instance_id, exc)
                runtime.mark_error(instance_id, str(exc))
    return fired


def run(app):
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(fire_due_timers, "interval", args=[app], seconds=app.config["SCHEDULER_INTERVAL_SECONDS"],
                      id="fire_due_timers", max_instances=1, coalesce=True)
    log.info("scheduler started: firing due timers every %ss", app.config["SCHEDULER_INTERVAL_SECONDS"])
    fire_due_timers(app)    # catch up at once after downtime
    scheduler.start()
