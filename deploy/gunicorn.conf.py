"""gunicorn settings of the web process, for the systemd unit and the container alike:
`gunicorn -c deploy/gunicorn.conf.py wsgi:app`. Where it listens is not set here: under systemd on the socket
that deploy/systemd/complaints-web.socket hands it, in the container on `--bind 0.0.0.0:8000` (deploy/Dockerfile),
else gunicorn's default 127.0.0.1:8000.

- WEB_CONCURRENCY: sync workers (default 4; about 2 per core).
- GUNICORN_TIMEOUT: seconds a request may take before its worker is replaced (default 120: the analysis
  exports stream for a while); also the time old workers get to finish their requests on a reload (HUP) or stop.
- Prometheus: the workers count into PROMETHEUS_MULTIPROC_DIR so that /metrics adds up every worker. When it is
  not set, a fresh folder is made at start and removed at exit; when set, it is emptied at start. A reload (HUP)
  keeps it: the counters of replaced workers still count. A dead worker is marked so (child_exit).
- APP_DIR: the release to load, e.g. the symlink /srv/complaints/current. It is resolved each time this file is
  read, at start and at each reload (HUP): after the symlink moved to a new release, a reload starts workers on the
  new release while the old workers finish their requests on the old one (their files stay where they are).
- Logs go to stderr (journald, `docker logs`). No access log: the app writes one line per request itself
  (logger app.requests) without the URL, which may carry personal data.
"""
import glob
import os
import shutil
import tempfile

chdir = os.path.realpath(os.environ.get("APP_DIR") or os.getcwd())
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
timeout = graceful_timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
accesslog = None
errorlog = "-"
# The workers' heartbeat files on a memory file system where there is one (a container's overlay can stall them).
# No control socket (gunicornc): systemctl reload/restart and signals do the managing; its default place, the
# user's home, is read-only under the unit's hardening.
control_socket_disable = True
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
METRICS_PREFIX = "complaints-metrics-"


def on_starting(server):
    """Once, in the master, before any worker imports the app (a reload does not call it again)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_PREFIX)
        return
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(os.path.join(folder, "*.db")):
        os.remove(stale)


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder if on_starting made it."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(folder).startswith(METRICS_PREFIX) and \
            os.path.dirname(folder) == tempfile.gettempdir():
        shutil.rmtree(folder, ignore_errors=True)
