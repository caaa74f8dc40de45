"""Process entry points: ``helpline gateway`` (the Flask app on a threaded WSGI server) and
``helpline worker`` (the sweep loop). Behind a real load balancer, run the app with any WSGI
server (``webhook.serve:wsgi_app()``); the code is the same."""
from __future__ import annotations

import logging
import signal
import sys
import threading

logger = logging.getLogger("webhook")


def _logging() -> None:
    # JSON lines with event names and ids only (webhook/logs.py); access logs stay quiet
    from webhook.logs import setup

    setup()


def wsgi_app():
    from webhook.app import create_app

    return create_app()


def make_server(host: str, port: int, app):
    """werkzeug's threaded server with Nagle's algorithm off: a response written in two pieces
    (headers, body) otherwise waits ~40 ms for the client's delayed ACK on every request."""
    from werkzeug.serving import WSGIRequestHandler
    from werkzeug.serving import make_server as _make_server

    class Handler(WSGIRequestHandler):
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"       # keep-alive for providers that reuse connections

    return _make_server(host, port, app, threaded=True, request_handler=Handler)


def run_gateway(host: str = "127.0.0.1", port: int = 8000) -> int:
    _logging()
    app = wsgi_app()
    server = make_server(host, port, app)
    stop = threading.Event()

    def _term(*_):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _term)
    logger.info("gateway_listening host=%s port=%s", host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["helpline"].close()
    return 0


def run_worker(interval: float = 1.0) -> int:
    from webhook.app import Gateway
    from webhook.dispatcher import BulkLane, Worker
    from webhook.settings import Settings

    _logging()
    gw = Gateway(Settings.from_env(run_dispatcher=False))
    worker = Worker(gw, interval=interval)
    bulk = BulkLane(gw).start()          # campaign messages, behind conversation traffic
    signal.signal(signal.SIGTERM, lambda *_: worker._stop.set())
    logger.info("worker_started")
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        bulk.stop()
        gw.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_worker() if sys.argv[1:2] == ["worker"] else run_gateway())
