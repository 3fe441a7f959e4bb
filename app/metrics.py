"""Prometheus metrics (prometheus-client), served at /metrics (app/web/health/) to the addresses in
METRICS_ALLOWED_IPS.

Counted in the process where it happens: requests (by Flask endpoint, never the URL, which may carry a
complaint number), their latency, task completions and timers fired (the runtime's verbs wrapped here,
so app/engine/ stays free of Flask and Prometheus). Read from the database when scraped, with cheap
indexed COUNTs (DatabaseCollector): the due-timer backlog, the outbox backlog and its failed deliveries,
open and overdue tasks by role, the age of the scheduler's heartbeat.

Several gunicorn workers (or the scheduler beside them on one host): set PROMETHEUS_MULTIPROC_DIR to an
empty directory shared by them, before they start, as prometheus-client documents; /metrics then adds
up every process's counters (MultiProcessCollector)."""
import ipaddress
import logging
import os
import time

from flask import request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily

from . import logs

log = logging.getLogger(__name__)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")

REQUESTS = Counter("complaints_http_requests_total", "HTTP requests answered, by Flask endpoint, method and status",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("complaints_http_request_duration_seconds", "Time to answer a request, by Flask endpoint",
                    ["endpoint", "method"])
COMPLETIONS = Counter("complaints_task_completions_total", "Human tasks completed, by whom (staff or customer)",
                      ["by"])
TIMERS_FIRED = Counter("complaints_timers_fired_total", "Instances whose due timers were fired (one change each)")


def init_app(app):
    """Count the requests and the runtime's completions and timer firings."""
    count_runtime(app.extensions["runtime"])

    @app.after_request
    def count_request(response):
        endpoint = request.endpoint or "none"           # unmatched URLs: one label, not one per URL
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
        began = logs.started()                          # set by app.logs first of all hooks
        if began is not None:
            LATENCY.labels(endpoint, method).observe(time.perf_counter() - began)
        return response


def count_runtime(runtime):
    """Wrap the verbs that complete a task and fire timers: counted once their change committed."""
    complete, for_customer, fire_timers = runtime.complete, runtime.complete_for_customer, runtime.fire_timers

    def counted_complete(*args, **kwargs):
        change = complete(*args, **kwargs)
        COMPLETIONS.labels("staff").inc()
        return change

    def counted_for_customer(*args, **kwargs):
        change = for_customer(*args, **kwargs)
        COMPLETIONS.labels("customer").inc()
        return change

    def counted_fire_timers(*args, **kwargs):
        change = fire_timers(*args, **kwargs)
        if change is not None:
            TIMERS_FIRED.inc()
        return change
    runtime.complete, runtime.complete_for_customer = counted_complete, counted_for_customer
    runtime.fire_timers = counted_fire_timers


def allowed(app, remote_addr) -> bool:
    """Whether `remote_addr` is in METRICS_ALLOWED_IPS (addresses or networks, comma-separated). A request
    that came through a proxy the app does not trust (X-Forwarded-For with TRUSTED_PROXIES=0) is refused:
    its address is the proxy's, not the client's. So is one with another proxy header (Forwarded,
    X-Real-IP): a proxy on the same host would make every client look like 127.0.0.1."""
    if not app.config.get("TRUSTED_PROXIES") and any(request.headers.get(h) for h in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in _networks(app.config.get("METRICS_ALLOWED_IPS", "")))


def _networks(setting):
    items = setting.split(",") if isinstance(setting, str) else setting
    for item in (i.strip() for i in items):
        try:
            yield ipaddress.ip_network(item, strict=False)
        except ValueError:
            log.warning("METRICS_ALLOWED_IPS: %r is not an address or network; ignored", item)


def exposition():
    """(body, content type) of a scrape: this process's metrics (or every process's, in multiprocess mode)
    and the database's counts."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client.multiprocess import MultiProcessCollector
        MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    registry.register(DatabaseCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Default:
    def collect(self):
        return REGISTRY.collect()


class DatabaseCollector:
    """Gauges counted when scraped, each one indexed COUNT (never updated on a request's path)."""

    def collect(self):
        from sqlalchemy import func, select

        from .extensions import db
        from . import scheduler
        from .models import Delivery, HumanTask, ProcessInstance
        from .timeutil import utcnow
        now, session = utcnow(), db.session
        up = GaugeMetricFamily("complaints_metrics_database_up", "1 when the database answered this scrape's counts")
        try:
            due = session.execute(select(func.count()).select_from(ProcessInstance).where(
                ProcessInstance.status == "running", ProcessInstance.next_timer_at <= now)).scalar_one()
            outbox = dict(session.execute(select(Delivery.status, func.count()).where(
                Delivery.status.in_(("queued", "sending", "failed"))).group_by(Delivery.status)).all())
            open_tasks = session.execute(select(HumanTask.role, func.count()).where(
                HumanTask.state == "open").group_by(HumanTask.role)).all()
            overdue = session.execute(select(HumanTask.role, func.count()).where(
                HumanTask.state == "open", HumanTask.due_at < now).group_by(HumanTask.role)).all()
            age = scheduler.heartbeat_age(session)
            session.rollback()        # a read: end the scrape's transaction
        except Exception:      # noqa: BLE001  (a scrape must answer, saying the database did not)
            session.rollback()
            log.exception("metrics: the database's counts could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _gauge("complaints_timers_due", "Running instances whose next timer is due now (the backlog)", due)
        yield _gauge("complaints_outbox_backlog", "Customer-message deliveries waiting to be sent (queued or sending)",
                     outbox.get("queued", 0) + outbox.get("sending", 0))
        yield _gauge("complaints_outbox_failed", "Deliveries that failed for good (every attempt used)",
                     outbox.get("failed", 0))
        yield _by_role("complaints_open_tasks", "Open human tasks by role (lane)", open_tasks)
        yield _by_role("complaints_overdue_open_tasks", "Open human tasks past their due time, by role", overdue)
        if age is not None:
            yield _gauge("complaints_scheduler_heartbeat_age_seconds", "Seconds since the scheduler's last heartbeat",
                         max(0.0, age.total_seconds()))


def _gauge(name, documentation, value):
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge


def _by_role(name, documentation, rows):
    gauge = GaugeMetricFamily(name, documentation, labels=["role"])
    for role, count in rows:
        gauge.add_metric([role or "none"], count)
    return gauge
