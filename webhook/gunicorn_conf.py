"""gunicorn for the scale-out shape: several gateway processes behind one address.

    gunicorn -c python:webhook.gunicorn_conf "webhook.serve:wsgi_app()"

Settings come from the same HELPLINE_* environment as ``helpline gateway``; these add
HELPLINE_BIND (127.0.0.1:8000), HELPLINE_GATEWAY_PROCESSES (2) and HELPLINE_GATEWAY_THREADS (8).
Each process is a whole gateway (its own dispatcher threads); the database's leases keep them
from handling one conversation twice. The schema is migrated once, by the master, before any
process takes a request.
"""
import os

bind = os.environ.get("HELPLINE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("HELPLINE_GATEWAY_PROCESSES", "2"))
worker_class = "gthread"
threads = int(os.environ.get("HELPLINE_GATEWAY_THREADS", "8"))
timeout = 60                 # a request never waits longer than rasa_timeout plus a send
graceful_timeout = 30        # SIGTERM: requests and dispatched conversations finish first
keepalive = 5
accesslog = None             # request lines name the people's channel paths and addresses: no access log
errorlog = "-"
loglevel = "warning"


def on_starting(server):
    from webhook.db import upgrade
    from webhook.logs import setup
    from webhook.settings import Settings

    setup()
    upgrade(Settings.from_env().database_url)


def post_fork(server, worker):
    from webhook.logs import setup

    setup()


def worker_exit(server, worker):
    app = getattr(worker, "wsgi", None)
    gw = getattr(app, "extensions", {}).get("helpline") if app is not None else None
    if gw is not None:
        gw.close()
